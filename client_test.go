package flagwire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func ptr[T any](v T) *T { return &v }

// exampleFlags are the seed's flags, as a test environment.
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

func user(id, plan, region string) context.Context {
	return WithAttributes(context.Background(), Attributes{"userId": id, "plan": plan, "region": region})
}

func (h *harness) evaluations() int64 { return h.srv.Requests("POST", "/v1/evaluate") }

func TestBoolRemoteThenCache(t *testing.T) {
	h := newHarness(t)
	ctx := user("8a7f4c91", "pro", "US")
	v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false)
	if !v || d.Source != SourceRemote || d.Reason.Kind != "RULE_MATCH" || d.Reason.RuleID != "rule-1" || d.ErrorCode != "" {
		t.Fatalf("first call: %v %+v", v, d)
	}
	v, d = h.c.BoolDetail(ctx, "checkout-new-flow", false)
	if !v || d.Source != SourceCache || d.Reason.RuleID != "rule-1" {
		t.Fatalf("second call: %v %+v", v, d)
	}
	if n := h.evaluations(); n != 1 {
		t.Fatalf("server saw %d evaluate requests, want 1", n)
	}
	// Another context is another cache entry.
	v, d = h.c.BoolDetail(user("beta-1", "free", "EU"), "checkout-new-flow", false)
	if !v || d.Reason.Kind != "SEGMENT_MATCH" || d.Reason.Segment != "beta_testers" {
		t.Fatalf("beta user: %v %+v", v, d)
	}
	st := h.c.Stats()
	if st.CacheHits != 1 || st.CacheMisses != 2 || st.Evaluations != 3 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestStatsEvaluationsEveryMode: every evaluation counts once in
// Stats.Evaluations, whichever way it was answered (a cache hit or miss,
// in process, batched, after Close).
func TestStatsEvaluationsEveryMode(t *testing.T) {
	h := newHarness(t)
	ctx := user("8a7f4c91", "pro", "US")
	h.c.Bool(ctx, "checkout-new-flow", false)
	h.c.Bool(ctx, "checkout-new-flow", false)
	h.c.Evaluate(ctx, []Request{{FlagKey: "checkout-new-flow", Default: false}, {FlagKey: "pricing-experiment", Default: ""}})
	if st := h.c.Stats(); st.Evaluations != 4 || st.CacheHits+st.CacheMisses != 4 {
		t.Errorf("remote: %d evaluations, %d hits, %d misses; want 4 evaluations, all hits or misses", st.Evaluations, st.CacheHits, st.CacheMisses)
	}
	local := newLocal(t, h.srv)
	local.Bool(ctx, "checkout-new-flow", false)
	local.Evaluate(ctx, []Request{{FlagKey: "checkout-new-flow", Default: false}})
	if err := local.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	local.Bool(ctx, "checkout-new-flow", false)
	local.Evaluate(ctx, []Request{{FlagKey: "checkout-new-flow", Default: false}})
	if st := local.Stats(); st.Evaluations != 4 || st.CacheHits+st.CacheMisses != 0 {
		t.Errorf("local then closed: %d evaluations, %d hits, %d misses; want 4 and no cache lookups", st.Evaluations, st.CacheHits, st.CacheMisses)
	}
}

func TestTypedValues(t *testing.T) {
	h := newHarness(t)
	ctx := WithAttributes(context.Background(), Attributes{"userId": "u1", "accountId": "acme-co-1337", "country": "DE"})
	s, d := h.c.StringDetail(ctx, "pricing-experiment", "control")
	if d.ErrorCode != "" || d.Source != SourceRemote || d.Variant != s {
		t.Fatalf("string: %q %+v", s, d)
	}
	if s != "control" {
		var p struct {
			Price    float64 `json:"price"`
			Currency string  `json:"currency"`
		}
		if err := json.Unmarshal(d.Payload, &p); err != nil || p.Currency != "EUR" {
			t.Fatalf("payload %s: %v", d.Payload, err)
		}
	}
	if n := h.c.Int(ctx, "max-items", 1); n != 100 {
		t.Fatalf("Int = %d", n)
	}
	if f := h.c.Float(ctx, "max-items", 1); f != 100 {
		t.Fatalf("Float = %v", f)
	}
	theme := map[string]string{"bg": "default"}
	if d := h.c.JSON(ctx, "theme", &theme); d.ErrorCode != "" || theme["bg"] != "#000" {
		t.Fatalf("JSON: %v %+v", theme, d)
	}
}

func TestTypeMismatchAndNotFound(t *testing.T) {
	h := newHarness(t)
	ctx := user("u1", "free", "US")
	v, d := h.c.StringDetail(ctx, "checkout-new-flow", "dflt")
	if v != "dflt" || d.ErrorCode != CodeTypeMismatch || d.Source != SourceCallerDefault {
		t.Fatalf("mismatch: %q %+v", v, d)
	}
	var n int
	if d := h.c.JSON(ctx, "checkout-new-flow", &n); d.ErrorCode != CodeTypeMismatch || n != 0 {
		t.Fatalf("JSON mismatch: %v %+v", n, d)
	}
	b, d := h.c.BoolDetail(ctx, "no-such-flag", true)
	if !b || d.ErrorCode != CodeFlagNotFound || d.Source != SourceCallerDefault {
		t.Fatalf("not found: %v %+v", b, d)
	}
	// The negative answer is cached: no second request.
	before := h.evaluations()
	h.c.Bool(ctx, "no-such-flag", true)
	if h.evaluations() != before {
		t.Fatal("FLAG_NOT_FOUND was not cached")
	}
}

func TestNilAndEmptyAttributes(t *testing.T) {
	h := newHarness(t)
	for _, ctx := range []context.Context{context.Background(), WithAttributes(context.Background(), nil), WithAttributes(context.Background(), Attributes{})} {
		v, d := h.c.BoolDetail(ctx, "checkout-new-flow", true)
		// No userId: the 10% default rollout cannot bucket → off variant,
		// the flag's own answer, which says why.
		if v || d.ErrorCode != CodeMissingBucketingAttribute || d.Source == SourceCallerDefault || d.Variant != "false" || d.Reason.Kind != "DEFAULT" {
			t.Fatalf("%v %+v", v, d)
		}
	}
	var nilClient *Client
	if v, d := nilClient.BoolDetail(context.Background(), "x", true); !v || d.ErrorCode != CodeClosed {
		t.Fatalf("nil client: %v %+v", v, d)
	}
}

func TestCoalescing1000Misses(t *testing.T) {
	// A generous timeout: this test counts requests, and under -race with
	// 1,000 goroutines on 2 cores the default 200 ms is tight.
	h := newHarness(t, WithTimeout(10*time.Second))
	remove := h.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Latency: 50 * time.Millisecond})
	defer remove()
	ctx := user("8a7f4c91", "pro", "US")
	var wg sync.WaitGroup
	var wrong atomic.Int64
	start := make(chan struct{})
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if !h.c.Bool(ctx, "checkout-new-flow", false) {
				wrong.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := h.evaluations(); n != 1 {
		t.Fatalf("1000 concurrent misses made %d requests, want exactly 1", n)
	}
	if wrong.Load() != 0 {
		t.Fatalf("%d callers got the wrong value", wrong.Load())
	}
}

func TestSlowServerReturnsWithinTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	h := newHarness(t, WithTimeout(timeout))
	remove := h.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Latency: 2 * time.Second})
	defer remove()
	start := time.Now()
	v, d := h.c.BoolDetail(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false)
	elapsed := time.Since(start)
	if v || d.ErrorCode != CodeTimeout || d.Source != SourceCallerDefault {
		t.Fatalf("%v %+v", v, d)
	}
	// The target is timeout + 10 ms; the bound leaves room for a loaded
	// 2-core CI machine running packages in parallel under -race.
	if elapsed > timeout+100*time.Millisecond {
		t.Fatalf("returned after %v, want ≤ timeout %v (+ scheduling slack)", elapsed, timeout)
	}
	t.Logf("slow server: returned after %v (timeout %v)", elapsed, timeout)
	// The caller's own deadline is honoured too.
	ctx, cancel := context.WithTimeout(user("x", "pro", "US"), 20*time.Millisecond)
	defer cancel()
	start = time.Now()
	h.c.Bool(ctx, "checkout-new-flow", false)
	if e := time.Since(start); e > 120*time.Millisecond {
		t.Fatalf("caller deadline 20ms: returned after %v", e)
	}
}

func TestRateLimitedHonoursRetryAfter(t *testing.T) {
	h := newHarness(t, WithTimeout(100*time.Millisecond))
	remove := h.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: 429, RetryAfter: 30 * time.Second})
	v, d := h.c.BoolDetail(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false)
	if v || d.ErrorCode != CodeRateLimited {
		t.Fatalf("%v %+v", v, d)
	}
	n := h.evaluations()
	if n != 1 {
		t.Fatalf("%d requests: a 30s Retry-After does not fit a 100ms budget, so no retry", n)
	}
	remove()
	// Within the Retry-After window nothing is sent.
	h.clock.Advance(10 * time.Second)
	if _, d := h.c.BoolDetail(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false); d.ErrorCode != CodeRateLimited {
		t.Fatalf("during Retry-After: %+v", d)
	}
	if h.evaluations() != n {
		t.Fatal("a request was sent during the Retry-After window")
	}
	h.clock.Advance(21 * time.Second)
	if v := h.c.Bool(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false); !v {
		t.Fatal("after Retry-After: no fresh answer")
	}
}

func TestRetryAfterWithinBudgetIsWaited(t *testing.T) {
	h := newHarness(t, WithTimeout(3*time.Second))
	h.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: 503, RetryAfter: time.Second, Count: 1})
	// The fake clock does not move by itself, but the retry waits on a
	// real timer: one second.
	v, d := h.c.BoolDetail(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false)
	if !v || d.Source != SourceRemote {
		t.Fatalf("%v %+v", v, d)
	}
	if n := h.evaluations(); n != 2 {
		t.Fatalf("%d requests, want 2 (one 503, one retry)", n)
	}
}

func TestRetriesOn5xx(t *testing.T) {
	h := newHarness(t, WithRetry(RetrySettings{MaxAttempts: 3, Base: time.Millisecond, Cap: 5 * time.Millisecond}))
	h.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: 500, Count: 2})
	if v, d := h.c.BoolDetail(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false); !v || d.Source != SourceRemote {
		t.Fatalf("%v %+v", v, d)
	}
	if n := h.evaluations(); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
	// 4xx other than 429: no retry.
	h.srv.ResetCounts()
	h.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: 400, Count: 1})
	if _, d := h.c.BoolDetail(user("other", "pro", "US"), "checkout-new-flow", false); d.ErrorCode == "" {
		t.Fatalf("400: %+v", d)
	}
	if n := h.evaluations(); n != 1 {
		t.Fatalf("400 retried: %d requests", n)
	}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	const openFor = 200 * time.Millisecond
	h := newHarness(t,
		WithRetry(RetrySettings{MaxAttempts: -1}),
		WithBreaker(BreakerSettings{ConsecutiveFailures: 3, OpenTimeout: openFor}))
	remove := h.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: 503})
	for i := 0; i < 3; i++ {
		if _, d := h.c.BoolDetail(user("u"+string(rune('a'+i)), "pro", "US"), "checkout-new-flow", false); d.ErrorCode != CodeUnavailable {
			t.Fatalf("call %d: %+v", i, d)
		}
	}
	if st := h.c.Stats(); st.Breaker != BreakerOpen {
		t.Fatalf("breaker %s after 3 failures", st.Breaker)
	}
	n := h.evaluations()
	for i := 0; i < 50; i++ {
		if _, d := h.c.BoolDetail(user("open", "pro", "US"), "checkout-new-flow", false); d.ErrorCode != CodeCircuitOpen {
			t.Fatalf("while open: %+v", d)
		}
	}
	if h.evaluations() != n {
		t.Fatalf("server saw %d calls while the breaker was open", h.evaluations()-n)
	}
	remove()
	// gobreaker reads the wall clock: wait out its open timeout (the state
	// it reports turns half-open once the timeout has passed).
	testkit.WaitFor(t, patience, "the breaker to let a probe through", func() bool { return h.c.Stats().Breaker == BreakerHalfOpen })
	if v, d := h.c.BoolDetail(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false); !v || d.Source != SourceRemote {
		t.Fatalf("half-open probe: %v %+v", v, d)
	}
	if st := h.c.Stats(); st.Breaker != BreakerClosed || st.BreakerTransitions < 3 {
		t.Fatalf("after recovery: %s, %d transitions", st.Breaker, st.BreakerTransitions)
	}
}

func TestStaleServedWhenServerFails(t *testing.T) {
	h := newHarness(t, WithRetry(RetrySettings{MaxAttempts: -1}), WithCache(CacheSettings{MaxStale: time.Hour}))
	ctx := user("8a7f4c91", "pro", "US")
	if !h.c.Bool(ctx, "checkout-new-flow", false) {
		t.Fatal("warm-up")
	}
	h.clock.Advance(61 * time.Second) // past the 60s TTL
	h.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: 500})
	v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false)
	if !v || d.Source != SourceStale || d.ErrorCode != CodeUnavailable {
		t.Fatalf("%v %+v", v, d)
	}
	h.clock.Advance(2 * time.Hour) // past max staleness
	v, d = h.c.BoolDetail(ctx, "checkout-new-flow", false)
	if v || d.Source != SourceCallerDefault {
		t.Fatalf("beyond max staleness: %v %+v", v, d)
	}
}

func TestMalformedAndMismatchedResponses(t *testing.T) {
	cases := []struct {
		name  string
		fault flagtest.Fault
	}{
		{"malformed", flagtest.Fault{Path: "/v1/evaluate", Body: []byte(`{"decisions": [`)}},
		{"truncated", flagtest.Fault{Path: "/v1/evaluate", Truncate: true}},
		{"other flag", flagtest.Fault{Path: "/v1/evaluate", Body: []byte(`{"requestId":"r","decisions":[{"flagKey":"other","variant":true,"ttlSeconds":60}]}`)}},
		{"too many decisions", flagtest.Fault{Path: "/v1/evaluate", Body: []byte(`{"requestId":"r","decisions":[{"flagKey":"checkout-new-flow","variant":true},{"flagKey":"x","variant":true}]}`)}},
		{"reset", flagtest.Fault{Path: "/v1/evaluate", Reset: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, WithRetry(RetrySettings{MaxAttempts: -1}))
			remove := h.srv.InjectFault(tc.fault)
			ctx := user("8a7f4c91", "pro", "US")
			v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false)
			if v || d.Source != SourceCallerDefault || d.ErrorCode == "" {
				t.Fatalf("%v %+v", v, d)
			}
			remove()
			// Nothing was cached: the next call asks again and succeeds.
			if v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); !v || d.Source != SourceRemote {
				t.Fatalf("after fault: %v %+v", v, d)
			}
		})
	}
}

func TestInvalidateOneFlag(t *testing.T) {
	h := newHarness(t)
	ctx := user("8a7f4c91", "pro", "US")
	h.c.Bool(ctx, "checkout-new-flow", false)
	h.c.String(ctx, "pricing-experiment", "control")
	h.c.Invalidate("checkout-new-flow")
	if _, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); d.Source != SourceRemote {
		t.Fatalf("invalidated flag served from %s", d.Source)
	}
	if _, d := h.c.StringDetail(ctx, "pricing-experiment", "control"); d.Source != SourceCache {
		t.Fatalf("other flag served from %s", d.Source)
	}
	h.c.Invalidate("")
	if _, d := h.c.StringDetail(ctx, "pricing-experiment", "control"); d.Source != SourceRemote {
		t.Fatalf("after Invalidate of every flag: %s", d.Source)
	}
}

func TestRefreshAhead(t *testing.T) {
	h := newHarness(t)
	ctx := user("8a7f4c91", "pro", "US")
	h.c.Bool(ctx, "checkout-new-flow", false)
	h.clock.Advance(50 * time.Second) // past 80% of the 60s TTL
	if _, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); d.Source != SourceCache {
		t.Fatalf("hot entry near expiry: %s", d.Source)
	}
	// After the background refresh lands, the entry lives on past the
	// original TTL.
	testkit.WaitFor(t, 5*time.Second, "refreshed entry stored", func() bool {
		d := h.c.cache.get(mustKey(t, h.c, ctx, "checkout-new-flow"), h.clock.Nanotime())
		return d != nil && d.fetchedAt > 1
	})
	if n := h.evaluations(); n != 2 {
		t.Fatalf("%d requests, want 2 (fetch + one refresh)", n)
	}
	h.clock.Advance(20 * time.Second)
	if _, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); d.Source != SourceCache {
		t.Fatalf("after refresh: %s", d.Source)
	}
}

func TestPrivateAttributesNeverSent(t *testing.T) {
	rt := &testkit.RecordingTransport{}
	h := newHarness(t, WithHTTPClient(&http.Client{Transport: rt}), WithPrivateAttributes("email"))
	ctx := WithAttributes(context.Background(), Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US", "email": "jane@example.com"})
	if !h.c.Bool(ctx, "checkout-new-flow", false) {
		t.Fatal("evaluation failed")
	}
	bodies := rt.Bodies()
	if len(bodies) != 1 || bytes.Contains(bodies[0], []byte("jane@example.com")) || bytes.Contains(bodies[0], []byte(`"email"`)) {
		t.Fatalf("private attribute sent: %s", bodies)
	}
	// The caller's default stays in the process: the decision is cached
	// for every typed read of the flag.
	if bytes.Contains(bodies[0], []byte(`"defaultValue"`)) {
		t.Fatalf("request carries the caller's default: %s", bodies[0])
	}
}

func TestUnauthorized(t *testing.T) {
	h := newHarness(t, WithToken("wrong"))
	if _, d := h.c.BoolDetail(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false); d.ErrorCode != CodeUnauthorized {
		t.Fatalf("%+v", d)
	}
	if st := h.c.Stats(); st.Breaker != BreakerClosed {
		t.Fatalf("401 counted against the breaker: %s", st.Breaker)
	}
}

func TestHooks(t *testing.T) {
	var mu sync.Mutex
	var events []string
	rec := func(s string) { mu.Lock(); events = append(events, s); mu.Unlock() }
	h := newHarness(t, WithHooks(Hook{
		Before:  func(ctx context.Context, key string) { rec("before " + key) },
		After:   func(ctx context.Context, key string, d Detail) { rec("after " + d.Variant) },
		Error:   func(ctx context.Context, key string, d Detail) { rec("error " + string(d.ErrorCode)) },
		Finally: func(ctx context.Context, key string, d Detail) { rec("finally") },
	}, Hook{Before: func(context.Context, string) { panic("boom") }}))
	h.c.Bool(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false)
	h.c.Bool(user("8a7f4c91", "pro", "US"), "missing", false)
	want := []string{"before checkout-new-flow", "after true", "finally", "before missing", "error FLAG_NOT_FOUND", "finally"}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != len(want) {
		t.Fatalf("events %q, want %q", events, want)
	}
	for i := range want {
		if events[i] != want[i] {
			t.Fatalf("events %q, want %q", events, want)
		}
	}
}

func TestCloseStopsEverything(t *testing.T) {
	h := newHarness(t)
	ctx := user("8a7f4c91", "pro", "US")
	h.c.Bool(ctx, "checkout-new-flow", false)
	if err := h.c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); v || d.ErrorCode != CodeClosed {
		t.Fatalf("after Close: %v %+v", v, d)
	}
}

func TestNewValidation(t *testing.T) {
	cases := map[string][]Option{
		"no endpoint":     {},
		"bad endpoint":    {WithEndpoint("ftp://x")},
		"relative":        {WithEndpoint("/v1")},
		"empty env":       {WithEndpoint("http://127.0.0.1:1"), WithEnvironment("")},
		"bad ratio":       {WithEndpoint("http://127.0.0.1:1"), WithBreaker(BreakerSettings{FailureRatio: 2})},
		"ttl bounds":      {WithEndpoint("http://127.0.0.1:1"), WithCache(CacheSettings{MinTTL: time.Hour, MaxTTL: time.Second})},
		"offline no boot": {WithMode(ModeOffline)},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := New(context.Background(), opts...)
			if !errors.Is(err, ErrInvalidConfig) || c != nil {
				t.Fatalf("New = %v, %v; want ErrInvalidConfig", c, err)
			}
		})
	}
	// New does not touch the network: an unreachable endpoint is fine.
	c, err := New(context.Background(), WithEndpoint("http://127.0.0.1:1"), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	c.Close(context.Background())
}

func TestContextHashCanonical(t *testing.T) {
	key := func(a Attributes) [2]uint64 {
		hi, lo, _ := newEvalContext(a).key()
		return [2]uint64{hi, lo}
	}
	same := [][2]Attributes{
		{{"userId": "u", "n": 1, "nested": map[string]any{"x": []any{"a", 2.0}}}, {"nested": map[string]any{"x": []any{"a", int64(2)}}, "n": 1.0, "userId": "u"}},
		{{"id": json.Number("9007199254740993")}, {"id": int64(9007199254740993)}},
		{{"n": uint64(7)}, {"n": 7}},
	}
	for i, p := range same {
		if key(p[0]) != key(p[1]) {
			t.Errorf("pair %d: equal contexts hash differently", i)
		}
	}
	differ := [][2]Attributes{
		{{"userId": "u"}, {"userId": "v"}},
		{{"a": "b"}, {"ab": ""}},
		{{"id": int64(9007199254740993)}, {"id": int64(9007199254740992)}}, // beyond float64 precision
		{{"x": 1.5}, {"x": 1}},
		{{"x": "1"}, {"x": 1}},
		{nil, {"x": nil}},
	}
	for i, p := range differ {
		if key(p[0]) == key(p[1]) {
			t.Errorf("pair %d: different contexts hash equal", i)
		}
	}
	ec := newEvalContext(Attributes{"userId": "u"})
	if n := testing.AllocsPerRun(100, func() { ec.key() }); n != 0 {
		t.Errorf("key() allocates %v after the first call", n)
	}
}
