package flagwire

import (
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
)

// TestFirstStreamConnectExpiresEarlierDecisions: a decision fetched before
// the event stream's first connection cannot have been invalidated by it,
// and a change made in between is never replayed (there is no event id to
// resume from). The first connection must therefore expire what was
// cached before it, as a reconnect that cannot resume does: the next call
// asks again and gets the change instead of a cached answer that is stale
// until its TTL.
func TestFirstStreamConnectExpiresEarlierDecisions(t *testing.T) {
	h := newHarness(t)
	remove := h.srv.InjectFault(flagtest.Fault{Path: "/v1/stream", Status: 503}) // the stream cannot connect yet
	ctx := user("8a7f4c91", "pro", "US")
	if v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); !v || d.Source != SourceRemote {
		t.Fatalf("before the change: %v %+v", v, d)
	}
	h.clock.Advance(time.Millisecond) // the connection comes after the fetch (well within the TTL)
	off := exampleConfig().Flags[0]
	if off.Key != "checkout-new-flow" {
		t.Fatalf("fixture: first flag is %q", off.Key)
	}
	off.State = evaluate.StateOff
	if _, err := h.srv.SetFlag("prod", off); err != nil { // published while nobody listens
		t.Fatal(err)
	}
	remove()
	waitFor(t, patience, "the stream's first connection", func() bool { return h.c.Status().StreamConnected })
	if v, d := h.c.BoolDetail(ctx, "checkout-new-flow", true); v || d.Reason.Kind != ReasonOff || d.Source != SourceRemote {
		t.Fatalf("after the first connection: %v %+v; want the change (false, OFF) from a new request", v, d)
	}
}
