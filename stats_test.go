package flagwire

import (
	"context"
	"testing"
)

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
