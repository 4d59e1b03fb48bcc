package flagwire

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

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
