// The root package's tests are grouped by the behaviour they pin, one file
// a concern (eval, detail, context, contextkey, cache, remote, fallback,
// coalescing, batch, hooks, privacy, local, stream, stream_versions,
// listeners, bootstrap, lastknown, modes, lifecycle, status, stats,
// endpoint, redirect, ofrep, …); this file holds what several of them
// share: the leak check, fixtures and helpers.
package flagwire

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// TestMain fails the package's tests when a goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func ptr[T any](v T) *T { return &v }

// exampleConfig holds the Flag API guide's example flags, as a test
// environment.
func exampleConfig() *evaluate.Config {
	return &evaluate.Config{
		Environment: "prod",
		Salt:        "prod-salt-2026",
		Segments: []evaluate.Segment{
			{Key: "beta_testers", Included: []string{"beta-1", "beta-2"}},
		},
		Flags: []evaluate.Flag{
			{
				Key: "checkout-new-flow",
				Rules: []evaluate.Rule{
					{ID: "rule-1", When: "plan == 'pro' and region == 'US'", Serve: evaluate.Serve{Variant: true}},
					{ID: "rule-2", Segment: "beta_testers", Serve: evaluate.Serve{Variant: true}},
				},
				Default: &evaluate.Serve{Percentage: ptr(10.0)},
			},
			{
				Key:  "pricing-experiment",
				Type: evaluate.TypeString,
				Variants: []evaluate.Variant{
					{Name: "control"},
					{Name: "A", Payload: map[string]any{"price": 21.0, "currency": "EUR"}},
					{Name: "B", Payload: map[string]any{"price": 23.0, "currency": "EUR"}},
				},
				Bucketing: evaluate.Bucketing{By: "accountId"},
				Rules: []evaluate.Rule{
					{ID: "eu", When: "country in ['DE', 'FR']", Serve: evaluate.Serve{Rollout: []evaluate.WeightedVariant{{Variant: "control", Weight: 34}, {Variant: "A", Weight: 33}, {Variant: "B", Weight: 33}}}},
				},
				Default: &evaluate.Serve{Variant: "control"},
			},
			{
				Key:      "max-items",
				Type:     evaluate.TypeNumber,
				Variants: []evaluate.Variant{{Name: "small", Value: 10}, {Name: "large", Value: 100}},
				Default:  &evaluate.Serve{Variant: "large"},
			},
			{
				Key:      "theme",
				Type:     evaluate.TypeJSON,
				Variants: []evaluate.Variant{{Name: "dark", Value: map[string]any{"bg": "#000", "fg": "#fff"}}},
				Default:  &evaluate.Serve{Variant: "dark"},
			},
		},
	}
}

type harness struct {
	t     *testing.T
	srv   *flagtest.Server
	c     *Client
	clock *testkit.Clock
}

func newHarness(t *testing.T, opts ...Option) *harness {
	t.Helper()
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	clock := testkit.NewClock()
	base := []Option{
		WithEndpoint(srv.URL),
		WithToken(srv.Token()),
		WithEnvironment("prod"),
		WithLogger(slog.New(slog.DiscardHandler)),
		withClock(clock),
	}
	c, err := New(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &harness{t: t, srv: srv, c: c, clock: clock}
}

func (h *harness) evaluations() int64 { return h.srv.Requests("POST", "/v1/evaluate") }

func user(id, plan, region string) context.Context {
	return WithAttributes(context.Background(), Attributes{"userId": id, "plan": plan, "region": region})
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newLocal(t *testing.T, srv *flagtest.Server, opts ...Option) *Client {
	t.Helper()
	return newLocalAt(t, srv.URL, srv.Token(), opts...)
}

// newLocalAt is newLocal for a server at url, reached with token.
func newLocalAt(t *testing.T, url, token string, opts ...Option) *Client {
	t.Helper()
	base := []Option{WithEndpoint(url), WithToken(token), WithEnvironment("prod"), WithMode(ModeLocal), WithLogger(quietLogger())}
	c, err := New(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// patience bounds every wait for an outcome in these tests: generous, so
// a fully loaded machine never fails a test that would pass on a quiet
// one; a passing test never waits it out.
const patience = 30 * time.Second

// frontServer is a loopback server in front of a flagtest server: answer
// may handle a request itself (returning true); every other request is
// proxied to srv, a real peer.
func frontServer(t *testing.T, srv *flagtest.Server, answer func(w http.ResponseWriter, r *http.Request) bool) *httptest.Server {
	t.Helper()
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = nil
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if answer != nil && answer(w, r) {
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	return front
}

// mustKey returns the decision cache key c uses for key in ctx.
func mustKey(t testing.TB, c *Client, ctx context.Context, key string) cacheKey {
	t.Helper()
	k, ok := c.keyOf(contextOf(ctx), key)
	if !ok {
		t.Fatalf("context of %q cannot be keyed", key)
	}
	return k
}

// remoteAt returns a remote-mode client of srv's environment "prod",
// without streaming (so nothing but the calls themselves changes its
// cache) unless opts say otherwise.
func remoteAt(t testing.TB, srv *flagtest.Server, opts ...Option) *Client {
	t.Helper()
	return remoteAtURL(t, srv.URL, srv.Token(), opts...)
}

// remoteAtURL is remoteAt for a server at url (a proxy in front of one).
func remoteAtURL(t testing.TB, url, token string, opts ...Option) *Client {
	t.Helper()
	base := []Option{
		WithEndpoint(url), WithToken(token), WithEnvironment("prod"),
		WithStreaming(false), WithTimeout(5 * time.Second),
		WithLogger(slog.New(slog.DiscardHandler)),
	}
	c, err := New(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// engineAnswer is the oracle of a decision: the rules engine's answer for
// cfg (compiled here, from the same document the server holds) and attrs.
func engineAnswer(t testing.TB, cfg *evaluate.Config, key string, attrs Attributes) evaluate.Result {
	t.Helper()
	snap, err := evaluate.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return snap.Evaluate(key, attrs, time.Now())
}

// sameAnswer fails unless d reports what r decided: variant, reason kind,
// rule and error code.
func sameAnswer(t testing.TB, what string, d Detail, r evaluate.Result) {
	t.Helper()
	if d.Variant != r.Variant || d.Reason.Kind != r.Reason.Kind || d.Reason.RuleID != r.Reason.RuleID ||
		(d.ErrorCode == CodeMissingBucketingAttribute) != (r.Reason.ErrorCode == evaluate.ErrorMissingBucketAttr) {
		t.Errorf("%s: got variant %q reason %s/%s code %q; the engine says variant %q reason %s/%s code %q",
			what, d.Variant, d.Reason.Kind, d.Reason.RuleID, d.ErrorCode, r.Variant, r.Reason.Kind, r.Reason.RuleID, r.Reason.ErrorCode)
	}
}

// hookCounter counts hook calls per flag: before, after, error, finally.
type hookCounter struct {
	mu sync.Mutex
	n  map[string]*[4]int
}

func (hc *hookCounter) add(key string, i int) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.n == nil {
		hc.n = map[string]*[4]int{}
	}
	if hc.n[key] == nil {
		hc.n[key] = &[4]int{}
	}
	hc.n[key][i]++
}

func (hc *hookCounter) counts(key string) [4]int {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.n[key] == nil {
		return [4]int{}
	}
	return *hc.n[key]
}

func (hc *hookCounter) reset() {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	hc.n = nil
}

func (hc *hookCounter) hook() Hook {
	return Hook{
		Before:  func(_ context.Context, key string) { hc.add(key, 0) },
		After:   func(_ context.Context, key string, _ Detail) { hc.add(key, 1) },
		Error:   func(_ context.Context, key string, _ Detail) { hc.add(key, 2) },
		Finally: func(_ context.Context, key string, _ Detail) { hc.add(key, 3) },
	}
}

// nest returns {"d": {"d": … {"v": leaf}}} with n maps above the leaf.
func nest(n int, leaf any) map[string]any {
	m := map[string]any{"v": leaf}
	for range n - 1 {
		m = map[string]any{"d": m}
	}
	return m
}

// typesConfig has a flag of every type, each serving a fixed variant (no
// bucketing), so the expected answers are plain to read.
func typesConfig() *evaluate.Config {
	return &evaluate.Config{
		Environment: "prod",
		Salt:        "types-salt",
		Flags: []evaluate.Flag{
			// A boolean flag: everyone gets true; the variant has no payload.
			{Key: "kill-switch", Default: &evaluate.Serve{Variant: true}},
			// A string flag: everyone gets "A", whose payload is a price.
			{Key: "plan-banner", Type: evaluate.TypeString,
				Variants: []evaluate.Variant{{Name: "control"}, {Name: "A", Payload: map[string]any{"price": 21.0, "currency": "EUR"}}},
				Default:  &evaluate.Serve{Variant: "A"}},
			// A number flag: everyone gets 100 ("large"), with a payload.
			{Key: "max-items", Type: evaluate.TypeNumber,
				Variants: []evaluate.Variant{{Name: "small", Value: 10}, {Name: "large", Value: 100, Payload: map[string]any{"tier": "gold"}}},
				Default:  &evaluate.Serve{Variant: "large"}},
			// A JSON flag: everyone gets {"bg":"#000","fg":"#fff"}.
			{Key: "theme", Type: evaluate.TypeJSON,
				Variants: []evaluate.Variant{{Name: "dark", Value: map[string]any{"bg": "#000", "fg": "#fff"}}},
				Default:  &evaluate.Serve{Variant: "dark"}},
			// A 50% rollout by userId: a context without userId cannot be
			// bucketed and gets the off variant (false).
			{Key: "half-rollout", Default: &evaluate.Serve{Percentage: ptr(50.0)}},
		},
	}
}

// modeClient makes a client of mode on srv (environment prod). Remote
// clients go through /v1/evaluate, or OFREP with ofrep.
func modeClient(t *testing.T, srv *flagtest.Server, mode Mode, ofrep bool, extra ...Option) *Client {
	t.Helper()
	opts := []Option{WithEndpoint(srv.URL), WithToken(srv.Token()), WithEnvironment("prod"), WithMode(mode),
		WithStreaming(false), WithLogger(quietLogger()), WithTimeout(5 * time.Second)}
	if ofrep {
		opts = append(opts, WithOFREP(true))
	}
	c, err := New(context.Background(), append(opts, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// onlyPath serves path with h and answers 404 to any other path.
func onlyPath(path string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	})
}

// failingTransport fails the test if anything touches the network.
type failingTransport struct{ t *testing.T }

func (f failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("offline mode made a network call: %s %s", r.Method, r.URL.Path)
	return nil, errors.New("no network in offline mode")
}

// switchProxy forwards to one of its backends, switchable at any time;
// SSE passes through (flushed at once).
type switchProxy struct {
	*httptest.Server
	target atomic.Pointer[url.URL]
	// replay, when set, answers GET /v1/flags instead of the backend.
	replay atomic.Pointer[recorded]
	// record keeps the first GET /v1/flags answer.
	mu    sync.Mutex
	first *recorded
}

type recorded struct {
	header http.Header
	body   []byte
}

func newSwitchProxy(t *testing.T, to *flagtest.Server) *switchProxy {
	p := &switchProxy{}
	p.point(to)
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(p.target.Load()) },
		FlushInterval: -1,
		ModifyResponse: func(res *http.Response) error {
			if res.Request.Method != http.MethodGet || res.Request.URL.Path != "/v1/flags" || res.StatusCode != 200 {
				return nil
			}
			body, err := io.ReadAll(res.Body)
			if err != nil {
				return err
			}
			res.Body = io.NopCloser(bytes.NewReader(body))
			p.mu.Lock()
			if p.first == nil {
				p.first = &recorded{res.Header.Clone(), body}
			}
			p.mu.Unlock()
			return nil
		},
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec := p.replay.Load(); rec != nil && r.Method == http.MethodGet && r.URL.Path == "/v1/flags" {
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(200)
			w.Write(rec.body)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *switchProxy) point(to *flagtest.Server) {
	u, err := url.Parse(to.URL)
	if err != nil {
		panic(err)
	}
	p.target.Store(u)
}

func killConfig(on bool) *evaluate.Config {
	return &evaluate.Config{Environment: "prod", Salt: "s", Version: 1,
		Flags: []evaluate.Flag{{Key: "kill", Default: &evaluate.Serve{Variant: on}}}}
}

// dropAndHold ends the client's stream and keeps it from reconnecting
// until the returned func is called; it returns once the server has no
// subscriber left, so a change made then reaches nobody.
func dropAndHold(t *testing.T, srv *flagtest.Server, c *Client) (release func()) {
	t.Helper()
	release = srv.InjectFault(flagtest.Fault{Path: "/v1/stream", Status: http.StatusServiceUnavailable})
	srv.DropStreams()
	testkit.WaitFor(t, patience, "the stream to drop", func() bool { return !c.Status().StreamConnected && srv.Streams() == 0 })
	return release
}

// connected releases a held stream and waits for connection number n.
func connected(t *testing.T, c *Client, release func(), n int64) {
	t.Helper()
	release()
	testkit.WaitFor(t, patience, "the stream's connection", func() bool {
		return c.local.stream.connects.Load() == n && c.Status().StreamConnected
	})
}
