package flagwire

import (
	"time"

	"context"
	"maps"
	"testing"
)

// statsCounts is the part of Stats that a typed call changes.
type statsCounts struct {
	evaluations, hits, misses, stale, defaults uint64
	errors                                     map[ErrorCode]uint64
}

func countsOf(c *Client) statsCounts {
	st := c.Stats()
	return statsCounts{st.Evaluations, st.CacheHits, st.CacheMisses, st.StaleServed, st.DefaultsServed, maps.Clone(st.Errors)}
}

func (a statsCounts) minus(b statsCounts) statsCounts {
	d := statsCounts{a.evaluations - b.evaluations, a.hits - b.hits, a.misses - b.misses, a.stale - b.stale, a.defaults - b.defaults, map[ErrorCode]uint64{}}
	for k, v := range a.errors {
		if v != b.errors[k] {
			d.errors[k] = v - b.errors[k]
		}
	}
	return d
}

func (a statsCounts) equal(b statsCounts) bool {
	return a.evaluations == b.evaluations && a.hits == b.hits && a.misses == b.misses &&
		a.stale == b.stale && a.defaults == b.defaults && maps.Equal(a.errors, b.errors)
}

// TestPlainCallsAgreeWithDetail checks that Bool, String, Float and Int
// (which answer their success path without a Detail, see quick) serve what
// their …Detail forms serve and change the Stats the same way: in remote
// mode (a miss, then cache hits), local mode with a map and with a
// WithSubject subject, and a closed client; for a flag of each type, a
// JSON flag and an unknown flag, so success, TYPE_MISMATCH and
// FLAG_NOT_FOUND are all crossed.
func TestPlainCallsAgreeWithDetail(t *testing.T) {
	// Agreement is the subject, not timeouts: a loaded machine must not
	// turn one of the two calls into a TIMEOUT fallback (it did, at a
	// load average of 12 on 2 cores, with the default 200 ms).
	h := newHarness(t, WithTimeout(5*time.Second))
	local := newLocal(t, h.srv)
	closed := newLocal(t, h.srv)
	if err := closed.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A subject, told apart by probe, an attribute no rule reads: the
	// Detail call and the plain call each get their own cache entry, so
	// that in remote mode both miss on the first round and hit on the
	// second.
	mapCtx := func(probe int) context.Context {
		return WithAttributes(context.Background(), Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US", "probe": probe})
	}
	subjectCtx := func(probe int) context.Context {
		return WithSubject(context.Background(), StringAttr("userId", "8a7f4c91"), StringAttr("plan", "pro"), StringAttr("region", "US"), IntAttr("probe", int64(probe)))
	}
	clients := []struct {
		name string
		c    *Client
		ctx  func(probe int) context.Context
	}{
		{"remote", h.c, mapCtx}, {"remote-subject", h.c, subjectCtx},
		{"local", local, mapCtx}, {"local-subject", local, subjectCtx}, {"closed", closed, mapCtx},
	}
	probe := 0
	flags := []string{"checkout-new-flow", "pricing-experiment", "max-items", "theme", "no-such-flag"}
	type call struct {
		name   string
		plain  func(c *Client, ctx context.Context, key string) any
		detail func(c *Client, ctx context.Context, key string) any
	}
	calls := []call{
		{"Bool", func(c *Client, ctx context.Context, k string) any { return c.Bool(ctx, k, true) },
			func(c *Client, ctx context.Context, k string) any { v, _ := c.BoolDetail(ctx, k, true); return v }},
		{"String", func(c *Client, ctx context.Context, k string) any { return c.String(ctx, k, "def") },
			func(c *Client, ctx context.Context, k string) any { v, _ := c.StringDetail(ctx, k, "def"); return v }},
		{"Float", func(c *Client, ctx context.Context, k string) any { return c.Float(ctx, k, -1.5) },
			func(c *Client, ctx context.Context, k string) any { v, _ := c.FloatDetail(ctx, k, -1.5); return v }},
		{"Int", func(c *Client, ctx context.Context, k string) any { return c.Int(ctx, k, -7) },
			func(c *Client, ctx context.Context, k string) any { v, _ := c.IntDetail(ctx, k, -7); return v }},
	}
	for _, cl := range clients {
		for _, key := range flags {
			for _, cc := range calls {
				probe += 2
				for round := range 2 {
					before := countsOf(cl.c)
					want := cc.detail(cl.c, cl.ctx(probe), key)
					mid := countsOf(cl.c)
					got := cc.plain(cl.c, cl.ctx(probe+1), key)
					after := countsOf(cl.c)
					if got != want {
						t.Errorf("%s %s(%s) round %d: plain %v, Detail %v", cl.name, cc.name, key, round, got, want)
					}
					if dd, dp := mid.minus(before), after.minus(mid); !dd.equal(dp) {
						t.Errorf("%s %s(%s) round %d: Stats change by %+v for the Detail call, %+v for the plain call", cl.name, cc.name, key, round, dd, dp)
					}
				}
			}
		}
	}
}
