package console

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Tokens of the test server. Their secrets must never appear in a page.
var (
	adminToken  = flagserver.Token{Secret: "admin-secret-7c1e", Subject: "alice", Scopes: []string{"flags:read", "flags:write", "flags:approve", "audit:read"}}
	writerToken = flagserver.Token{Secret: "writer-secret-93ab", Subject: "bob", Scopes: []string{"flags:read", "flags:write", "audit:read"}}
	readerToken = flagserver.Token{Secret: "reader-secret-55d0", Subject: "carol", Scopes: []string{"flags:read"}}
	stagingTok  = flagserver.Token{Secret: "staging-secret-1f2f", Subject: "dave", Scopes: []string{"flags:read", "flags:write"}, Environments: []string{"staging"}}
	allTokens   = []flagserver.Token{adminToken, writerToken, readerToken, stagingTok}
)

func pct(p float64) *float64 { return &p }

// testConfig is prod with the seed's checkout-new-flow (rule-2 serves true
// to segment beta_testers), a 10 % rollout and a prerequisite chain.
func testConfig(env string) *evaluate.Config {
	return &evaluate.Config{
		Environment: env,
		Salt:        env + "-salt",
		Segments:    []evaluate.Segment{{Key: "beta_testers", When: "plan == 'pro'", Description: "pro plan"}},
		Flags: []evaluate.Flag{
			{
				Key:    "checkout-new-flow",
				Owners: []string{"payments-team"},
				Rules: []evaluate.Rule{
					{ID: "rule-1", When: "region == 'EU' and plan == 'free'", Serve: evaluate.Serve{Variant: false}},
					{ID: "rule-2", Segment: "beta_testers", Serve: evaluate.Serve{Variant: true}},
				},
				Metadata: evaluate.Metadata{KillSwitch: true, Team: "payments", TTL: "2031-01-01", Description: "the new checkout"},
			},
			{
				Key:      "search-v2",
				Owners:   []string{"search-team"},
				Default:  &evaluate.Serve{Variant: true, Percentage: pct(10)},
				Metadata: evaluate.Metadata{TTL: "2020-06-30"},
			},
			{
				Key:           "search-v2-ranking",
				Prerequisites: []evaluate.Prerequisite{{FlagKey: "search-v2", Variants: []any{true}}},
				Default:       &evaluate.Serve{Variant: true},
			},
		},
	}
}

// harness is a Flag API server with the console mounted, over loopback.
type harness struct {
	api     *flagserver.Server
	console *Console
	hs      *httptest.Server
	URL     string
}

func newHarness(t testing.TB, opts Options, configs ...*evaluate.Config) *harness {
	t.Helper()
	if configs == nil {
		configs = []*evaluate.Config{testConfig("prod"), testConfig("staging")}
	}
	return newHarnessAPI(t, flagserver.Options{Configs: configs, Tokens: allTokens, RequireChangeReason: map[string]bool{}}, opts)
}

// newHarnessAPI is newHarness with the API server's options.
func newHarnessAPI(t testing.TB, apiOpts flagserver.Options, opts Options) *harness {
	t.Helper()
	api, err := flagserver.New(apiOpts)
	if err != nil {
		t.Fatal(err)
	}
	opts.API = api
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(c.Mount(api))
	t.Cleanup(func() {
		hs.Close()
		api.Close()
	})
	return &harness{api: api, console: c, hs: hs, URL: hs.URL}
}

// browser is one person's cookie jar; it does not follow redirects, so
// that tests see them.
type browser struct {
	t      testing.TB
	h      *harness
	client *http.Client
}

func (h *harness) browser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, h: h, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return &page{status: res.StatusCode, header: res.Header, body: string(body)}
}

func (b *browser) get(path string) *page {
	b.t.Helper()
	req, err := http.NewRequest("GET", b.h.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) *page {
	b.t.Helper()
	req, err := http.NewRequest("POST", b.h.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	etagRE = regexp.MustCompile(`name="etag" value="([^"]+)"`)
)

// field returns the value of the first hidden field matched by re on p,
// HTML-unescaped.
func (p *page) field(t testing.TB, re *regexp.Regexp) string {
	t.Helper()
	m := re.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no %s on the page (status %d):\n%s", re, p.status, p.body)
	}
	return htmlUnescape(m[1])
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#34;", `"`, "&quot;", `"`, "&amp;", "&", "&lt;", "<", "&gt;", ">", "&#39;", "'").Replace(s)
}

func (p *page) wantStatus(t testing.TB, status int) *page {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d:\n%s", p.status, status, p.body)
	}
	return p
}

func (p *page) wantContains(t testing.TB, parts ...string) *page {
	t.Helper()
	for _, s := range parts {
		if !strings.Contains(p.body, s) {
			t.Fatalf("the page lacks %q:\n%s", s, p.body)
		}
	}
	return p
}

// signIn signs in with token through the sign-in form and returns the
// CSRF token of the session (from the page it lands on).
func (b *browser) signIn(token string) string {
	b.t.Helper()
	form := b.get("/ui/signin").wantStatus(b.t, http.StatusOK)
	res := b.post("/ui/signin", url.Values{"csrf": {form.field(b.t, csrfRE)}, "token": {token}, "next": {"/ui/flags"}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/ui/flags" {
		b.t.Fatalf("sign-in: status %d, Location %q:\n%s", res.status, res.header.Get("Location"), res.body)
	}
	return b.get("/ui/flags?environment=prod").wantStatus(b.t, http.StatusOK).field(b.t, csrfRE)
}

// flag reads a flag through the API (the test's own view, not the
// console's).
func (h *harness) flag(t testing.TB, env, key string) evaluate.Flag {
	t.Helper()
	snap, ok := h.api.Snapshot(env)
	if !ok {
		t.Fatalf("no environment %s", env)
	}
	f, ok := snap.Flag(key)
	if !ok {
		t.Fatalf("no flag %s in %s", key, env)
	}
	return *f
}

// fakeClock is an adjustable clock for sessions.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
