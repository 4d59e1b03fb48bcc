package console

import (
	"crypto/tls"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
)

// consolePages are the pages of the console, as a signed-in person
// reaches them.
var consolePages = []string{
	"/ui/",
	"/ui/flags?environment=prod",
	"/ui/flags?environment=prod&q=search&sort=rollout&order=desc",
	"/ui/flags/checkout-new-flow?environment=prod",
	"/ui/flags/checkout-new-flow/kill?environment=prod",
	"/ui/changes?environment=prod",
	"/ui/changes/cr-1",
	"/ui/audit?environment=prod",
	"/ui/evaluate?environment=prod",
	"/ui/no-such-page",
}

// Without a session, every page redirects to the sign-in page (keeping
// where it was going), and every form post is refused the same way and
// changes nothing.
func TestUnauthenticatedRedirectsToSignIn(t *testing.T) {
	h := newHarness(t, Options{})
	b := h.browser(t)
	for _, p := range consolePages {
		res := b.get(p)
		want := "/ui/signin?next=" + url.QueryEscape(p)
		if res.status != http.StatusSeeOther || res.header.Get("Location") != want {
			t.Errorf("GET %s: status %d, Location %q; want 303 to %s", p, res.status, res.header.Get("Location"), want)
		}
	}
	for _, p := range []string{"/ui/flags/search-v2/kill", "/ui/flags/search-v2/ramp", "/ui/changes/cr-1/approve", "/ui/evaluate", "/ui/signout"} {
		res := b.post(p, url.Values{"environment": {"prod"}, "reason": {"r"}, "percentage": {"50"}, "target": {"default"}, "etag": {"*"}})
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/ui/signin" {
			t.Errorf("POST %s: status %d, Location %q; want 303 to /ui/signin", p, res.status, res.header.Get("Location"))
		}
	}
	if f := h.flag(t, "prod", "search-v2"); f.State == "off" || *f.Default.Percentage != 10 {
		t.Fatalf("an unauthenticated post changed the flag: %+v", f)
	}
	// The assets need no session (they hold no data).
	b.get("/ui/assets/console.css").wantStatus(t, http.StatusOK)
	// "/ui" leads to the console.
	if res := b.get("/ui"); res.status != http.StatusMovedPermanently || res.header.Get("Location") != "/ui/" {
		t.Fatalf("GET /ui: %d %q", res.status, res.header.Get("Location"))
	}
}

// Every response of the console, signed in or not, carries the security
// headers: a CSP without inline script or style and without framing,
// X-Frame-Options, Referrer-Policy and nosniff.
func TestSecurityHeaders(t *testing.T) {
	h := newHarness(t, Options{})
	anon := h.browser(t)
	b := h.browser(t)
	b.signIn(adminToken.Secret)
	check := func(who, p string, res *page) {
		t.Helper()
		hd := res.header
		csp := hd.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s %s: CSP %q lacks %q", who, p, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s %s: CSP %q allows inline code", who, p, csp)
		}
		if hd.Get("X-Frame-Options") != "DENY" || hd.Get("Referrer-Policy") != "no-referrer" || hd.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: headers %v", who, p, hd)
		}
		if strings.HasPrefix(hd.Get("Content-Type"), "text/html") && hd.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: a page with Cache-Control %q", who, p, hd.Get("Cache-Control"))
		}
		if strings.Contains(res.body, "<script>") || strings.Contains(res.body, " style=") || strings.Contains(res.body, "<style") || strings.Contains(res.body, " onclick=") {
			t.Errorf("%s %s: inline script or style in the page", who, p)
		}
	}
	for _, p := range append([]string{"/ui/signin", "/ui/assets/console.js"}, consolePages...) {
		check("anonymous", p, anon.get(p))
		check("signed in", p, b.get(p))
	}
}

// The session cookie is HttpOnly and SameSite=Strict, Secure over TLS
// (and with SecureCookies), scoped to /ui/; it holds no token.
func TestSessionCookieAttributes(t *testing.T) {
	h := newHarness(t, Options{})
	for _, tc := range []struct {
		name   string
		url    string
		client *http.Client
		secure bool
	}{
		{"http", h.URL, nil, false},
		{"tls", "", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := tc.url
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			if tc.secure {
				ts := httptest.NewTLSServer(h.console.Mount(h.api))
				defer ts.Close()
				base = ts.URL
				client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
				defer client.Transport.(*http.Transport).CloseIdleConnections()
			}
			jar, _ := cookiejar.New(nil)
			client.Jar = jar
			res, err := client.Get(base + "/ui/signin")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			var pre *http.Cookie
			for _, c := range res.Cookies() {
				if c.Name == signinCookie {
					pre = c
				}
			}
			if pre == nil || !pre.HttpOnly || pre.SameSite != http.SameSiteStrictMode || pre.Secure != tc.secure {
				t.Fatalf("sign-in cookie %+v", pre)
			}
			u, _ := url.Parse(base + "/ui/signin")
			csrf := ""
			for _, c := range jar.Cookies(u) {
				if c.Name == signinCookie {
					csrf = c.Value
				}
			}
			res, err = client.PostForm(base+"/ui/signin", url.Values{"csrf": {csrf}, "token": {writerToken.Secret}})
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign-in: %d", res.StatusCode)
			}
			var sc *http.Cookie
			for _, c := range res.Cookies() {
				if c.Name == sessionCookie {
					sc = c
				}
			}
			if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Secure != tc.secure || sc.Path != "/ui/" {
				t.Fatalf("session cookie %+v", sc)
			}
			if strings.Contains(sc.Value, writerToken.Secret) || strings.Contains(res.Header.Get("Location"), writerToken.Secret) {
				t.Fatal("the token is in the cookie or the redirect")
			}
		})
	}
	// SecureCookies marks them Secure on plain HTTP (TLS ends at a proxy).
	hs := newHarness(t, Options{SecureCookies: true})
	res := hs.browser(t).get("/ui/signin")
	if !strings.Contains(res.header.Get("Set-Cookie"), "Secure") {
		t.Fatalf("SecureCookies: Set-Cookie %q", res.header.Get("Set-Cookie"))
	}
}

// A form post without the session's CSRF token, or with another session's,
// is refused (403) and changes nothing; so is a sign-in without the
// sign-in form's token.
func TestCSRFRequired(t *testing.T) {
	h := newHarness(t, Options{})
	alice := h.browser(t)
	alice.signIn(adminToken.Secret)
	bob := h.browser(t)
	bobCSRF := bob.signIn(writerToken.Secret)
	etag := alice.get("/ui/flags/search-v2?environment=prod").field(t, etagRE)
	for _, csrf := range []string{"", "forged", bobCSRF} {
		form := url.Values{"environment": {"prod"}, "reason": {"incident"}, "etag": {etag}, "target": {"default"}, "percentage": {"50"}}
		if csrf != "" {
			form.Set("csrf", csrf)
		}
		alice.post("/ui/flags/search-v2/kill", form).wantStatus(t, http.StatusForbidden).wantContains(t, "security token")
		alice.post("/ui/flags/search-v2/ramp", form).wantStatus(t, http.StatusForbidden)
		alice.post("/ui/signout", form).wantStatus(t, http.StatusForbidden)
	}
	f := h.flag(t, "prod", "search-v2")
	if f.State == "off" || *f.Default.Percentage != 10 {
		t.Fatalf("a post without a valid CSRF token changed the flag: state %q, percentage %v", f.State, *f.Default.Percentage)
	}
	alice.get("/ui/flags?environment=prod").wantStatus(t, http.StatusOK) // still signed in

	anon := h.browser(t)
	anon.get("/ui/signin")
	anon.post("/ui/signin", url.Values{"token": {adminToken.Secret}}).wantStatus(t, http.StatusForbidden)
	anon.post("/ui/signin", url.Values{"token": {adminToken.Secret}, "csrf": {"guess"}}).wantStatus(t, http.StatusForbidden)
	if res := anon.get("/ui/flags"); res.status != http.StatusSeeOther {
		t.Fatalf("signed in without the sign-in form's CSRF token: %d", res.status)
	}
}

// A session cookie made by one console is refused by another whose key
// differs, although both serve the same API; a tampered cookie is refused
// by its own console.
func TestCookieFromAnotherInstanceRefused(t *testing.T) {
	a := newHarness(t, Options{SessionKey: []byte("key-of-instance-a-0123456789abcdef")})
	b := newHarness(t, Options{SessionKey: []byte("key-of-instance-b-0123456789abcdef")})
	ba := a.browser(t)
	ba.signIn(adminToken.Secret)
	ua, _ := url.Parse(a.URL + "/ui/")
	var cookie *http.Cookie
	for _, c := range ba.client.Jar.Cookies(ua) {
		if c.Name == sessionCookie {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("no session cookie")
	}
	get := func(base string, value string) *http.Response {
		req, _ := http.NewRequest("GET", base+"/ui/flags?environment=prod", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: value})
		res, err := (&http.Transport{}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := get(a.URL, cookie.Value); res.StatusCode != http.StatusOK {
		t.Fatalf("instance A refused its own cookie: %d", res.StatusCode)
	}
	if res := get(b.URL, cookie.Value); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/ui/signin") {
		t.Fatalf("instance B accepted A's cookie: %d", res.StatusCode)
	}
	// The same session id under B's key's MAC: B has the key, not the
	// session, and still refuses; A refuses the id with a wrong MAC.
	id, _, _ := strings.Cut(cookie.Value, ".")
	if res := get(b.URL, id+"."+b.console.sessions.mac(id)); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("instance B accepted a session it does not have: %d", res.StatusCode)
	}
	if res := get(a.URL, id+"."+b.console.sessions.mac(id)); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("instance A accepted its session id under another key's MAC: %d", res.StatusCode)
	}
	if res := get(a.URL, id); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("instance A accepted a session id without a MAC: %d", res.StatusCode)
	}
}

// No page, redirect or cookie ever carries a token's secret: not the
// signed-in person's, not anyone else's.
func TestTokenNeverRendered(t *testing.T) {
	h := newHarness(t, Options{})
	b := h.browser(t)
	csrf := b.signIn(adminToken.Secret)
	var seen []*page
	for _, p := range append([]string{"/ui/signin"}, consolePages...) {
		seen = append(seen, b.get(p))
	}
	// Pages after writes (history, diffs, results) too.
	etag := b.get("/ui/flags/search-v2?environment=prod").field(t, etagRE)
	seen = append(seen,
		b.post("/ui/flags/search-v2/ramp", url.Values{"csrf": {csrf}, "environment": {"prod"}, "etag": {etag}, "target": {"default"}, "step": {"25"}, "reason": {"ramp"}}),
		b.post("/ui/flags/checkout-new-flow/kill", url.Values{"csrf": {csrf}, "environment": {"prod"}, "reason": {"incident 7"}}),
		b.post("/ui/evaluate", url.Values{"csrf": {csrf}, "environment": {"prod"}, "flag": {"checkout-new-flow"}, "context": {`{"userId":"u1","plan":"pro"}`}}),
		b.get("/ui/flags/search-v2?environment=prod"),
		b.get("/ui/audit?environment=prod"),
	)
	for i, p := range seen {
		for _, tok := range allTokens {
			all := p.body + p.header.Get("Location") + strings.Join(p.header.Values("Set-Cookie"), ";")
			if strings.Contains(all, tok.Secret) {
				t.Fatalf("response %d shows %s's token", i, tok.Subject)
			}
		}
	}
}

// Sign-out ends the session: the old cookie no longer opens a page, even
// replayed by hand.
func TestSignOut(t *testing.T) {
	h := newHarness(t, Options{})
	b := h.browser(t)
	csrf := b.signIn(writerToken.Secret)
	u, _ := url.Parse(h.URL + "/ui/")
	old := b.client.Jar.Cookies(u)
	res := b.post("/ui/signout", url.Values{"csrf": {csrf}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/ui/signin" {
		t.Fatalf("sign-out: %d %q", res.status, res.header.Get("Location"))
	}
	if !strings.Contains(res.header.Get("Set-Cookie"), sessionCookie+"=;") {
		t.Fatalf("sign-out did not clear the cookie: %q", res.header.Get("Set-Cookie"))
	}
	if got := b.get("/ui/flags"); got.status != http.StatusSeeOther {
		t.Fatalf("after sign-out: %d", got.status)
	}
	replay := h.browser(t)
	replay.client.Jar.SetCookies(u, old)
	if got := replay.get("/ui/flags"); got.status != http.StatusSeeOther {
		t.Fatalf("the old cookie still opens the console: %d", got.status)
	}
	if n := h.console.sessions.count(); n != 0 {
		t.Fatalf("%d sessions after sign-out", n)
	}
}

// A wrong token does not sign in (and the page says so); the server's
// limit on failed authentication per address applies to the form too.
func TestSignInWrongToken(t *testing.T) {
	h := newHarness(t, Options{})
	b := h.browser(t)
	form := b.get("/ui/signin")
	res := b.post("/ui/signin", url.Values{"csrf": {form.field(t, csrfRE)}, "token": {"not-a-token"}})
	res.wantStatus(t, http.StatusUnauthorized).wantContains(t, "did not accept this token")
	if strings.Contains(res.body, "not-a-token") {
		t.Fatal("the refused token is echoed in the page")
	}
	if h.console.sessions.count() != 0 {
		t.Fatal("a session was made for a wrong token")
	}
}

// Sessions are bounded: beyond MaxSessions the least recently used one
// ends. They expire SessionTTL after sign-in and IdleTimeout after their
// last use.
func TestSessionsBoundedAndExpire(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	h := newHarness(t, Options{MaxSessions: 2, SessionTTL: 8 * time.Hour, IdleTimeout: time.Hour, Now: clock.now})
	a, b, c := h.browser(t), h.browser(t), h.browser(t)
	a.signIn(adminToken.Secret)
	clock.add(time.Minute)
	b.signIn(writerToken.Secret)
	clock.add(time.Minute)
	a.get("/ui/flags").wantStatus(t, http.StatusOK) // a is now more recent than b
	clock.add(time.Minute)
	c.signIn(readerToken.Secret)
	if n := h.console.sessions.count(); n != 2 {
		t.Fatalf("%d sessions, want at most 2", n)
	}
	if b.get("/ui/flags").status != http.StatusSeeOther {
		t.Fatal("the least recently used session survived")
	}
	a.get("/ui/flags").wantStatus(t, http.StatusOK)
	c.get("/ui/flags").wantStatus(t, http.StatusOK)

	clock.add(59 * time.Minute) // c idle for 59m: alive; a was used just now
	c.get("/ui/flags").wantStatus(t, http.StatusOK)
	clock.add(61 * time.Minute) // both idle for 61m
	if a.get("/ui/flags").status != http.StatusSeeOther || c.get("/ui/flags").status != http.StatusSeeOther {
		t.Fatal("an idle session outlived IdleTimeout")
	}

	d := h.browser(t)
	d.signIn(adminToken.Secret)
	for i := range 8 { // used every 59 minutes (7h52m in all): never idle
		clock.add(59 * time.Minute)
		if d.get("/ui/flags").status != http.StatusOK {
			t.Fatalf("the session ended %d minutes after sign-in", (i+1)*59)
		}
	}
	clock.add(10 * time.Minute) // 8h02m after sign-in, 10 minutes idle
	if d.get("/ui/flags").status != http.StatusSeeOther {
		t.Fatal("a session outlived SessionTTL")
	}
}

// The page to return to after sign-in is a console path, never another
// site.
func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/ui/flags?environment=prod": "/ui/flags?environment=prod",
		"/ui/flags/a%2Fb":            "/ui/flags/a%2Fb",
		"":                           "/ui/",
		"https://evil.example/ui/":   "/ui/",
		"//evil.example/ui/":         "/ui/",
		"/\\evil.example":            "/ui/",
		"/v1/flags":                  "/ui/",
		"/ui/signin?next=/ui/":       "/ui/",
		"javascript:alert(1)":        "/ui/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// Sign-in goes through the API's limit on failed authentication per
// client address: past it, even the right token is refused for a while,
// and the page says why.
func TestSignInFailuresLimited(t *testing.T) {
	api, err := flagserver.New(flagserver.Options{Configs: []*evaluate.Config{testConfig("prod")}, Tokens: allTokens,
		AuthFailureLimit: flagserver.RateLimit{PerSecond: 0.001, Burst: 3}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{API: api})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(c.Mount(api))
	t.Cleanup(func() { hs.Close(); api.Close() })
	b := (&harness{api: api, console: c, hs: hs, URL: hs.URL}).browser(t)
	try := func(token string) *page {
		form := b.get("/ui/signin")
		return b.post("/ui/signin", url.Values{"csrf": {form.field(t, csrfRE)}, "token": {token}})
	}
	for range 3 {
		try("guess").wantStatus(t, http.StatusUnauthorized).wantContains(t, "did not accept this token")
	}
	try(adminToken.Secret).wantStatus(t, http.StatusUnauthorized).wantContains(t, "Too many failed sign-ins")
}
