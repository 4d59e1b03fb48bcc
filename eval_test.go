package flagwire

import (
	"context"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
)

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

// TestWrongTypedCallDoesNotPoisonCache: a String call on a boolean flag
// is a TYPE_MISMATCH for that call only; the Bool call that follows gets
// the flag's answer, from the cache the first call filled (one request).
func TestWrongTypedCallDoesNotPoisonCache(t *testing.T) {
	h := newHarness(t)
	ctx := user("8a7f4c91", "pro", "US") // rule-1: plan pro in US → true
	s, d := h.c.StringDetail(ctx, "checkout-new-flow", "x")
	if s != "x" || d.ErrorCode != CodeTypeMismatch || d.Source != SourceCallerDefault || d.Variant != "" {
		t.Fatalf("String on a boolean flag: %q %+v", s, d)
	}
	v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false)
	if !v || d.ErrorCode != "" || d.Source != SourceCache || d.Variant != "true" || d.Reason.Kind != "RULE_MATCH" || d.Reason.RuleID != "rule-1" {
		t.Fatalf("Bool after a wrong-typed call: %v %+v", v, d)
	}
	// And the other way round, on another flag: the right type first.
	if n, d := h.c.IntDetail(ctx, "max-items", 1); n != 100 || d.ErrorCode != "" || d.Variant != "large" {
		t.Fatalf("Int: %d %+v", n, d)
	}
	if b, d := h.c.BoolDetail(ctx, "max-items", true); !b || d.ErrorCode != CodeTypeMismatch {
		t.Fatalf("Bool on a number flag: %v %+v", b, d)
	}
	if n, d := h.c.IntDetail(ctx, "max-items", 1); n != 100 || d.ErrorCode != "" || d.Source != SourceCache {
		t.Fatalf("Int after a wrong-typed call: %d %+v", n, d)
	}
	if n := h.evaluations(); n != 2 {
		t.Fatalf("%d evaluate requests, want 2 (one per flag and context, whatever the types asked)", n)
	}
}

// TestJSONOnNonJSONFlagSameInEveryMode: JSON on a flag of any type answers
// the same in remote, OFREP and local mode: a JSON flag's value, else the
// served variant's payload, else its value; and it leaves the typed calls
// of the flag intact.
func TestJSONOnNonJSONFlagSameInEveryMode(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(typesConfig()))
	modes := []struct {
		name  string
		mode  Mode
		ofrep bool
		src   Source
	}{
		{"remote", ModeRemote, false, SourceRemote},
		{"ofrep", ModeRemote, true, SourceRemote},
		{"local", ModeLocal, false, SourceLocal},
	}
	type price struct {
		Price    float64 `json:"price"`
		Currency string  `json:"currency"`
	}
	type tier struct {
		Tier string `json:"tier"`
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			c := modeClient(t, srv, m.mode, m.ofrep)
			ctx := WithAttributes(context.Background(), Attributes{"userId": "u1"})

			var b bool // boolean flag, no payload: its value
			if d := c.JSON(ctx, "kill-switch", &b); !b || d.ErrorCode != "" || d.Variant != "true" || d.Source != m.src {
				t.Errorf("kill-switch: %v %+v", b, d)
			}
			p := price{Price: -1} // string flag: variant A's payload
			if d := c.JSON(ctx, "plan-banner", &p); p != (price{21, "EUR"}) || d.ErrorCode != "" || d.Variant != "A" || d.Source != m.src {
				t.Errorf("plan-banner: %+v %+v", p, d)
			}
			var tr tier // number flag: variant large's payload
			if d := c.JSON(ctx, "max-items", &tr); tr.Tier != "gold" || d.ErrorCode != "" || d.Variant != "large" {
				t.Errorf("max-items: %+v %+v", tr, d)
			}
			var theme map[string]string // JSON flag: its value
			if d := c.JSON(ctx, "theme", &theme); theme["bg"] != "#000" || theme["fg"] != "#fff" || d.ErrorCode != "" || d.Variant != "dark" {
				t.Errorf("theme: %v %+v", theme, d)
			}
			// A payload that does not fit dst: TYPE_MISMATCH, dst untouched.
			n := 7
			if d := c.JSON(ctx, "plan-banner", &n); n != 7 || d.ErrorCode != CodeTypeMismatch || d.Source != SourceCallerDefault {
				t.Errorf("plan-banner into int: %d %+v", n, d)
			}
			// The typed calls still get the flags' answers.
			if v, d := c.BoolDetail(ctx, "kill-switch", false); !v || d.ErrorCode != "" {
				t.Errorf("Bool after JSON: %v %+v", v, d)
			}
			if v, d := c.StringDetail(ctx, "plan-banner", "x"); v != "A" || d.ErrorCode != "" {
				t.Errorf("String after JSON: %q %+v", v, d)
			}
			if v, d := c.IntDetail(ctx, "max-items", 1); v != 100 || d.ErrorCode != "" {
				t.Errorf("Int after JSON: %d %+v", v, d)
			}
		})
	}
}

// TestJSONFlagWithAScalarValueServesTheValue: Client.JSON on a JSON flag
// returns the flag's value even when that value is a scalar ("dark") and
// the variant has a payload; on a scalar flag it returns the payload. In
// remote and local mode alike.
func TestJSONFlagWithAScalarValueServesTheValue(t *testing.T) {
	cfg := &evaluate.Config{Environment: "prod", Salt: "s", Flags: []evaluate.Flag{
		{Key: "theme", Type: evaluate.TypeJSON, Variants: []evaluate.Variant{{Name: "dark", Value: "dark", Payload: map[string]any{"bg": "#000"}}}},
		{Key: "plan", Type: evaluate.TypeString, Variants: []evaluate.Variant{{Name: "pro", Value: "pro", Payload: map[string]any{"seats": 5.0}}}},
	}}
	srv := flagtest.NewServer(t, flagtest.WithConfig(cfg))
	for _, mode := range []Mode{ModeRemote, ModeLocal} {
		c := remoteAt(t, srv, WithMode(mode))
		if mode == ModeLocal {
			if err := c.WaitReady(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		ctx := WithAttributes(context.Background(), Attributes{"userId": "u"})
		var theme any
		if d := c.JSON(ctx, "theme", &theme); d.ErrorCode != "" || theme != "dark" {
			t.Errorf("%s: JSON flag with value \"dark\": got %#v (%+v), want \"dark\"", mode, theme, d)
		}
		var plan map[string]any
		if d := c.JSON(ctx, "plan", &plan); d.ErrorCode != "" || plan["seats"] != 5.0 {
			t.Errorf("%s: string flag with a payload: got %#v (%+v), want the payload", mode, plan, d)
		}
	}
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

// statsCounts is the part of Stats that a typed call changes.
type statsCounts struct {
	evaluations, hits, misses, stale, defaults uint64
	errors                                     map[ErrorCode]uint64
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

func countsOf(c *Client) statsCounts {
	st := c.Stats()
	return statsCounts{st.Evaluations, st.CacheHits, st.CacheMisses, st.StaleServed, st.DefaultsServed, maps.Clone(st.Errors)}
}
