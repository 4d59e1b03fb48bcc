package flagwire

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

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

// TestRetryAfterCappedEverywhere: a "Retry-After: 999999999" (or an HTTP
// date years ahead) silences remote evaluations, local syncs and stream
// reconnects for at most RetrySettings.MaxRetryAfter (default 5 minutes),
// not 24 hours.
func TestRetryAfterCappedEverywhere(t *testing.T) {
	const huge = 999999999 * time.Second
	ctx := user("8a7f4c91", "pro", "US")

	t.Run("evaluations/delay-seconds/default cap", func(t *testing.T) {
		srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
		srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: http.StatusTooManyRequests, RetryAfter: huge, Count: 1})
		clk := testkit.NewClock()
		c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithLogger(quietLogger()),
			WithStreaming(false), withClock(clk), WithRetry(RetrySettings{MaxAttempts: -1}), WithTimeout(patience))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		checkRateLimitGate(t, func() int64 { return srv.Requests("POST", "/v1/evaluate") }, c, clk, ctx, 5*time.Minute)
	})
	t.Run("evaluations/delay-seconds/configured cap", func(t *testing.T) {
		srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
		srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: http.StatusTooManyRequests, RetryAfter: huge, Count: 1})
		clk := testkit.NewClock()
		c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithLogger(quietLogger()),
			WithStreaming(false), withClock(clk), WithRetry(RetrySettings{MaxAttempts: -1, MaxRetryAfter: time.Minute}), WithTimeout(patience))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		checkRateLimitGate(t, func() int64 { return srv.Requests("POST", "/v1/evaluate") }, c, clk, ctx, time.Minute)
	})
	t.Run("evaluations/HTTP-date", func(t *testing.T) {
		srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
		var evaluations atomic.Int64
		front := frontServer(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/v1/evaluate" || evaluations.Add(1) > 1 {
				return false
			}
			w.Header().Set("Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		})
		clk := testkit.NewClock()
		c, err := New(context.Background(), WithEndpoint(front.URL), WithToken(srv.Token()), WithLogger(quietLogger()),
			WithStreaming(false), withClock(clk), WithRetry(RetrySettings{MaxAttempts: -1}), WithTimeout(patience))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		checkRateLimitGate(t, evaluations.Load, c, clk, ctx, 5*time.Minute)
	})

	t.Run("local sync", func(t *testing.T) {
		srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
		c := newLocal(t, srv, WithStreaming(false), WithPollInterval(time.Hour), WithRetry(RetrySettings{MaxRetryAfter: 50 * time.Millisecond}))
		before := srv.Requests("GET", "/v1/flags")
		srv.InjectFault(flagtest.Fault{Path: "/v1/flags", Status: http.StatusServiceUnavailable, RetryAfter: huge, Count: 1})
		c.requestSync()
		testkit.WaitFor(t, patience, "the refused sync", func() bool { return srv.Requests("GET", "/v1/flags") > before })
		if _, err := srv.SetFlag("prod", evaluate.Flag{Key: "after-retry-after", Default: &evaluate.Serve{Variant: true}}); err != nil {
			t.Fatal(err)
		}
		c.requestSync() // waits out the capped Retry-After, then fetches
		testkit.WaitFor(t, patience, "a sync after the capped Retry-After", func() bool {
			v, d := c.BoolDetail(ctx, "after-retry-after", false)
			return v && d.Source == SourceLocal && d.ErrorCode == ""
		})
	})

	t.Run("stream reconnect", func(t *testing.T) {
		srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
		srv.InjectFault(flagtest.Fault{Path: "/v1/stream", Status: http.StatusServiceUnavailable, RetryAfter: huge, Count: 1})
		c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithLogger(quietLogger()),
			WithRetry(RetrySettings{MaxRetryAfter: 50 * time.Millisecond}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		testkit.WaitFor(t, patience, "the stream reconnected after the capped Retry-After", func() bool { return c.Status().StreamConnected })
		if n := srv.Requests("GET", "/v1/stream"); n < 2 {
			t.Fatalf("%d stream requests; want the refused one and the reconnect", n)
		}
	})
}

// checkRateLimitGate makes the first evaluation meet the 429, then checks
// that the API is left alone until just before limit and asked again after.
func checkRateLimitGate(t *testing.T, requests func() int64, c *Client, clk *testkit.Clock, ctx context.Context, limit time.Duration) {
	t.Helper()
	if _, d := c.BoolDetail(ctx, "checkout-new-flow", false); d.ErrorCode != CodeRateLimited {
		t.Fatalf("first evaluation: %+v; want RATE_LIMITED", d)
	}
	if n := requests(); n != 1 {
		t.Fatalf("%d evaluate requests, want 1", n)
	}
	clk.Advance(limit - time.Second)
	if _, d := c.BoolDetail(ctx, "checkout-new-flow", false); d.ErrorCode != CodeRateLimited || d.Source != SourceCallerDefault {
		t.Fatalf("inside the capped Retry-After: %+v; want RATE_LIMITED from the default", d)
	}
	if n := requests(); n != 1 {
		t.Fatalf("%d evaluate requests inside the Retry-After, want 1", n)
	}
	clk.Advance(2 * time.Second)
	v, d := c.BoolDetail(ctx, "checkout-new-flow", false)
	// The seed's flag: plan pro in the US matches rule-1, serving true.
	if !v || d.Source != SourceRemote || d.ErrorCode != "" || d.Reason.Kind != "RULE_MATCH" || d.Reason.RuleID != "rule-1" {
		t.Fatalf("after the capped Retry-After (%v): %v %+v; want true from the API (rule-1)", limit, v, d)
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

// TestDeclaredOversizedResponseRefusedUnread: an answer whose
// Content-Length is over the response bound is refused from its headers,
// before any of the body is read: a BAD_RESPONSE, not a TIMEOUT after
// reading (or waiting for) megabytes a hostile server never finishes.
func TestDeclaredOversizedResponseRefusedUnread(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/stream" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(1<<30))
		io.WriteString(w, `{"requestId":"x","decisions":[`)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the rest never comes
	}))
	defer hs.Close()
	for _, ofrep := range []bool{false, true} {
		opts := []Option{WithEndpoint(hs.URL), WithStreaming(false), WithRetry(RetrySettings{MaxAttempts: -1}),
			WithTimeout(patience), WithLogger(quietLogger())}
		if ofrep {
			opts = append(opts, WithOFREP(true))
		}
		c, err := New(context.Background(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, d := c.BoolDetail(context.Background(), "f", false); d.ErrorCode != CodeBadResponse {
			t.Errorf("ofrep=%v: %+v; want BAD_RESPONSE from the declared length", ofrep, d)
		}
		c.Close(context.Background())
	}
}

// TestChunkedOversizedResponseRefused: an answer without a declared length
// that runs past the bound is cut off at the bound and refused.
func TestChunkedOversizedResponseRefused(t *testing.T) {
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = ' '
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"requestId":"x","decisions":[]`)
		for sent := 0; sent <= 5<<20 && r.Context().Err() == nil; sent += len(chunk) { // chunked: no Content-Length
			w.Write(chunk)
		}
		io.WriteString(w, `}`)
	}))
	defer hs.Close()
	c, err := New(context.Background(), WithEndpoint(hs.URL), WithStreaming(false), WithRetry(RetrySettings{MaxAttempts: -1}),
		WithTimeout(patience), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, d := c.BoolDetail(context.Background(), "f", false); d.ErrorCode != CodeBadResponse {
		t.Errorf("%+v; want BAD_RESPONSE", d)
	}
	if st := c.Status(); !strings.Contains(st.LastError, "larger than") {
		t.Errorf("Status().LastError = %q; want it to say the response was too large", st.LastError)
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

// TestMisconfigurationNotReportedAsFlagNotFound: an environment the server
// does not have, or an endpoint that is not the API's base URL, is reported
// as what it is (UNKNOWN_ENVIRONMENT, a wrong endpoint) in the Detail and
// in Status().LastError, never as FLAG_NOT_FOUND; an endpoint given with
// the API's /v1 prefix works.
func TestMisconfigurationNotReportedAsFlagNotFound(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(typesConfig())) // environment prod only
	ctx := WithAttributes(context.Background(), Attributes{"userId": "u1"})
	newClient := func(t *testing.T, opts ...Option) *Client {
		t.Helper()
		base := []Option{WithToken(srv.Token()), WithLogger(quietLogger()), WithTimeout(5 * time.Second), WithRetry(RetrySettings{MaxAttempts: -1})}
		c, err := New(context.Background(), append(base, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}

	t.Run("unknown environment, remote", func(t *testing.T) {
		c := newClient(t, WithEndpoint(srv.URL), WithEnvironment("staging"), WithStreaming(false))
		v, d := c.BoolDetail(ctx, "kill-switch", false)
		if v || d.ErrorCode != CodeUnknownEnvironment || d.Source != SourceCallerDefault {
			t.Fatalf("got %v %+v; want the default with UNKNOWN_ENVIRONMENT", v, d)
		}
		st := c.Status()
		if st.State != StateError || !strings.Contains(st.LastError, `"staging"`) || !strings.Contains(st.LastError, "environment") {
			t.Fatalf("status %+v; want an error naming environment \"staging\"", st)
		}
	})

	t.Run("unknown environment, remote with stream", func(t *testing.T) {
		c := newClient(t, WithEndpoint(srv.URL), WithEnvironment("staging"))
		testkit.WaitFor(t, 5*time.Second, "stream refused", func() bool { return c.local.stream.stopped.Load() })
		st := c.Status()
		if st.State != StateError || !strings.Contains(st.LastError, `"staging"`) || strings.Contains(st.LastError, "/v1/stream") {
			t.Fatalf("status %+v; want the unknown environment named, not a missing /v1/stream", st)
		}
	})

	t.Run("unknown environment, local", func(t *testing.T) {
		c := newClient(t, WithEndpoint(srv.URL), WithEnvironment("staging"), WithMode(ModeLocal), WithStreaming(false))
		testkit.WaitFor(t, 5*time.Second, "first sync failed", func() bool { return c.Status().LastError != "" })
		st := c.Status()
		if st.State != StateError || !strings.Contains(st.LastError, string(CodeUnknownEnvironment)) || !strings.Contains(st.LastError, `"staging"`) {
			t.Fatalf("status %+v", st)
		}
	})

	for _, suffix := range []string{"/v1", "/v1/"} {
		t.Run("endpoint with "+suffix, func(t *testing.T) {
			c := newClient(t, WithEndpoint(srv.URL+suffix), WithEnvironment("prod"), WithStreaming(false))
			if v, d := c.BoolDetail(ctx, "kill-switch", false); !v || d.ErrorCode != "" || d.Source != SourceRemote || d.Variant != "true" {
				t.Fatalf("got %v %+v; want the flag's true", v, d)
			}
		})
	}

	t.Run("endpoint not the API", func(t *testing.T) {
		c := newClient(t, WithEndpoint(srv.URL+"/api"), WithEnvironment("prod"), WithStreaming(false))
		v, d := c.BoolDetail(ctx, "kill-switch", false)
		if v || d.ErrorCode == CodeFlagNotFound || d.ErrorCode != CodeGeneral {
			t.Fatalf("got %v %+v; want GENERAL (a wrong endpoint), not FLAG_NOT_FOUND", v, d)
		}
		if st := c.Status(); st.State != StateError || !strings.Contains(st.LastError, "endpoint") {
			t.Fatalf("status %+v; want the endpoint named", st)
		}
	})

	t.Run("unknown flag is still FLAG_NOT_FOUND", func(t *testing.T) {
		c := newClient(t, WithEndpoint(srv.URL), WithEnvironment("prod"), WithStreaming(false))
		if v, d := c.BoolDetail(ctx, "no-such-flag", true); !v || d.ErrorCode != CodeFlagNotFound {
			t.Fatalf("got %v %+v", v, d)
		}
		if st := c.Status(); st.LastError != "" || st.State != StateReady {
			t.Fatalf("status %+v", st)
		}
	})
}

// TestFlagtestDefaultEnvironmentIsTheSDKs: a test written as the README
// shows (a flagtest server with its defaults, a client with only an
// endpoint and a token) sees the server's flags.
func TestFlagtestDefaultEnvironmentIsTheSDKs(t *testing.T) {
	srv := flagtest.NewServer(t)
	if _, err := srv.SetFlag(flagtest.DefaultEnvironment, evaluate.Flag{Key: "new-ui", Default: &evaluate.Serve{Variant: true}}); err != nil {
		t.Fatal(err)
	}
	c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithLogger(quietLogger()), WithStreaming(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if v, d := c.BoolDetail(context.Background(), "new-ui", false); !v || d.ErrorCode != "" || d.Source != SourceRemote {
		t.Fatalf("got %v %+v; want true from the server", v, d)
	}
	// And a config without an environment joins that one too.
	srv2 := flagtest.NewServer(t, flagtest.WithConfig(&evaluate.Config{Flags: []evaluate.Flag{{Key: "f", Default: &evaluate.Serve{Variant: true}}}}))
	c2, err := New(context.Background(), WithEndpoint(srv2.URL), WithToken(srv2.Token()), WithLogger(quietLogger()), WithStreaming(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(context.Background())
	if v, d := c2.BoolDetail(context.Background(), "f", false); !v || d.ErrorCode != "" {
		t.Fatalf("WithConfig without environment: %v %+v", v, d)
	}
}
