package flagwire

import (
	"net/http"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// twoRegions starts two servers with the same flags: a primary and a
// secondary region.
func twoRegions(t *testing.T) (a, b *flagtest.Server) {
	return flagtest.NewServer(t, flagtest.WithConfig(exampleConfig())), flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
}

// TestFailoverToTheNextEndpointAndBack: with WithEndpoint, evaluations go
// to the primary; while it is down they are answered by the secondary
// (REMOTE, not a fallback), and once it is back (its breaker lets a probe
// through) they return to it.
func TestFailoverToTheNextEndpointAndBack(t *testing.T) {
	a, b := twoRegions(t)
	c := remoteAt(t, a, WithEndpoint(a.URL, b.URL), WithBreaker(BreakerSettings{OpenTimeout: 100 * time.Millisecond}))
	ask := func(id string) Detail {
		_, d := c.BoolDetail(user(id, "pro", "US"), "checkout-new-flow", false)
		return d
	}
	if d := ask("u-1"); d.Source != SourceRemote || a.Requests("POST", "/v1/evaluate") != 1 {
		t.Fatalf("primary up: %+v, primary saw %d requests", d, a.Requests("POST", "/v1/evaluate"))
	}
	a.Down()
	for i := range 10 {
		if d := ask("down-" + string(rune('a'+i))); d.Source != SourceRemote || d.ErrorCode != "" {
			t.Fatalf("primary down, call %d: %+v, want the secondary's answer", i, d)
		}
	}
	if got := c.Status().Endpoint; got != b.URL {
		t.Fatalf("Status().Endpoint = %q, want the secondary %q", got, b.URL)
	}
	if n := b.Requests("POST", "/v1/evaluate"); n != 10 {
		t.Fatalf("the secondary saw %d requests, want 10", n)
	}
	a.Up()
	testkit.WaitFor(t, patience, "evaluations to return to the primary", func() bool {
		ask("back-" + time.Now().Format("150405.000000000"))
		return a.Requests("POST", "/v1/evaluate") > 1
	})
	if got := c.Status().Endpoint; got != a.URL {
		t.Fatalf("Status().Endpoint = %q, want the primary %q", got, a.URL)
	}
}

// TestRetryAfterIsPerEndpoint: a primary that answers 429 with a long
// Retry-After is left alone for that time, and the secondary answers
// meanwhile, instead of every call failing with RATE_LIMITED.
func TestRetryAfterIsPerEndpoint(t *testing.T) {
	a, b := twoRegions(t)
	a.InjectFault(flagtest.Fault{Method: "POST", Path: "/v1/evaluate", Status: http.StatusTooManyRequests, RetryAfter: time.Minute})
	c := remoteAt(t, a, WithEndpoint(a.URL, b.URL))
	for i := range 5 {
		if _, d := c.BoolDetail(user("u"+string(rune('0'+i)), "pro", "US"), "checkout-new-flow", false); d.Source != SourceRemote || d.ErrorCode != "" {
			t.Fatalf("call %d: %+v, want the secondary's answer", i, d)
		}
	}
	if n := a.Requests("POST", "/v1/evaluate"); n != 1 {
		t.Errorf("the rate-limited primary saw %d requests, want 1 (then its Retry-After is honoured)", n)
	}
}

// TestLocalModeSyncsFromTheSecondary: a local-mode client whose primary is
// down syncs its config from the secondary.
func TestLocalModeSyncsFromTheSecondary(t *testing.T) {
	a, b := twoRegions(t)
	a.Down()
	c := newLocalAt(t, a.URL, a.Token(), WithEndpoint(a.URL, b.URL), WithStreaming(false))
	if got := c.Status().Endpoint; got != b.URL {
		t.Fatalf("Status().Endpoint = %q, want the secondary", got)
	}
	if v, d := c.BoolDetail(user("u", "pro", "US"), "checkout-new-flow", false); !v || d.Source != SourceLocal {
		t.Fatalf("%v %+v", v, d)
	}
}

// TestStreamFailsOverAndMovesBack: the stream connects to the secondary
// while the primary is down (changes made there reach the client), and
// moves back to the primary once it is up again (changes made there reach
// the client).
func TestStreamFailsOverAndMovesBack(t *testing.T) {
	a, b := twoRegions(t)
	a.Down()
	c := remoteAt(t, a, WithEndpoint(a.URL, b.URL), WithStreaming(true), withStreamPreferEvery(50*time.Millisecond),
		WithBreaker(BreakerSettings{OpenTimeout: 100 * time.Millisecond}))
	ctx := user("u-1", "pro", "US")
	testkit.WaitFor(t, patience, "the stream on the secondary", func() bool { return c.Status().StreamConnected })
	if !c.Bool(ctx, "checkout-new-flow", false) {
		t.Fatal("rule-1 serves true")
	}
	off := evaluate.Flag{Key: "checkout-new-flow", State: "off"}
	if _, err := b.SetFlag("prod", off); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, patience, "the secondary's change", func() bool { return !c.Bool(ctx, "checkout-new-flow", true) })

	a.Up()
	testkit.WaitFor(t, patience, "the stream to move back to the primary", func() bool {
		return a.Requests("GET", "/v1/stream") > 0 && c.Status().StreamConnected
	})
	// The primary still has the flag on; its change (off) must arrive.
	c.Bool(ctx, "checkout-new-flow", false) // cached from the primary
	if _, err := a.SetFlag("prod", off); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, patience, "the primary's change over its stream", func() bool { return !c.Bool(ctx, "checkout-new-flow", true) })
}
