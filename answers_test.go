package flagwire

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// Regression tests for wrong answers. Every expected answer is written from
// the documented semantics of the flags below, never computed with evaluate.

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

// TestMissingBucketingAttributeSurfaced: a rollout without the bucketing
// attribute serves the flag's off variant with MISSING_BUCKETING_ATTRIBUTE
// in every mode; it is the flag's answer (After hooks, no fallback, no
// error in Status).
func TestMissingBucketingAttributeSurfaced(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(typesConfig()))
	s := testkit.NewSigner()
	cfg := typesConfig()
	cfg.Version = 3
	env := s.Envelope(t, cfg, time.Now(), time.Hour)
	modes := []struct {
		name string
		make func(t *testing.T, hook Hook) *Client
		src  Source
	}{
		{"remote", func(t *testing.T, hook Hook) *Client { return modeClient(t, srv, ModeRemote, false, WithHooks(hook)) }, SourceRemote},
		{"ofrep", func(t *testing.T, hook Hook) *Client { return modeClient(t, srv, ModeRemote, true, WithHooks(hook)) }, SourceRemote},
		{"local", func(t *testing.T, hook Hook) *Client { return modeClient(t, srv, ModeLocal, false, WithHooks(hook)) }, SourceLocal},
		{"offline", func(t *testing.T, hook Hook) *Client {
			c, err := New(context.Background(), WithMode(ModeOffline), WithEnvironment("prod"), WithBootstrap(env), WithTrustedKeys(s.Pub),
				WithLogger(quietLogger()), WithHooks(hook))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close(context.Background()) })
			return c
		}, SourceBootstrap},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			var hc hookCounter
			c := m.make(t, hc.hook())
			ctx := WithAttributes(context.Background(), Attributes{"plan": "pro"}) // no userId
			v, d := c.BoolDetail(ctx, "half-rollout", true)
			if v || d.ErrorCode != CodeMissingBucketingAttribute || d.Variant != "false" || d.Reason.Kind != "DEFAULT" || d.Source != m.src {
				t.Fatalf("got %v %+v; want the off variant false from %s with MISSING_BUCKETING_ATTRIBUTE", v, d, m.src)
			}
			if got := hc.counts("half-rollout"); got != [4]int{1, 1, 0, 1} {
				t.Errorf("hooks before/after/error/finally = %v, want [1 1 0 1]", got)
			}
			if st := c.Status(); st.LastError != "" || st.State == StateError {
				t.Errorf("status %+v", st)
			}
			if errs := c.Stats().Errors; len(errs) != 0 {
				t.Errorf("counted as errors: %v", errs)
			}
			// With a userId the rollout buckets: no code.
			if _, d := c.BoolDetail(WithAttributes(context.Background(), Attributes{"userId": "u1"}), "half-rollout", true); d.ErrorCode != "" || d.Reason.Kind != "ROLLOUT" {
				t.Errorf("with userId: %+v", d)
			}
		})
	}
}

// TestInvalidatedDecisionsNeverServedAgain: after Invalidate(""), or
// Invalidate of the flag, a failed fetch does not bring the dropped
// decision back as STALE.
func TestInvalidatedDecisionsNeverServedAgain(t *testing.T) {
	for _, tc := range []struct {
		name       string
		invalidate func(c *Client)
	}{
		{"InvalidateAll", func(c *Client) { c.Invalidate("") }},
		{"Invalidate", func(c *Client) { c.Invalidate("checkout-new-flow") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, WithRetry(RetrySettings{MaxAttempts: -1}), WithStreaming(false))
			ctx := user("8a7f4c91", "pro", "US")
			if v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); !v || d.Source != SourceRemote {
				t.Fatalf("first call: %v %+v", v, d)
			}
			tc.invalidate(h.c)
			h.srv.Down()
			v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false)
			if v || d.Source != SourceCallerDefault || d.ErrorCode != CodeUnavailable || d.Variant != "" || d.Reason.Kind != "ERROR" {
				t.Fatalf("after %s with the server down: %v %+v; want the default with UNAVAILABLE", tc.name, v, d)
			}
			if err := h.srv.Up(); err != nil {
				t.Fatal(err)
			}
			if v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); !v || d.Source != SourceRemote {
				t.Fatalf("server back: %v %+v", v, d)
			}
		})
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

// TestBatchRunsHooksForEveryItem: Evaluate and the prefetch run Before, then
// After or Error, then Finally for every item, exactly as single
// evaluations do: cached, fetched and failed items alike, in remote and
// local mode.
func TestBatchRunsHooksForEveryItem(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(typesConfig()))
	for _, mode := range []Mode{ModeRemote, ModeLocal} {
		t.Run(mode.String(), func(t *testing.T) {
			var hc hookCounter
			c := modeClient(t, srv, mode, false, WithHooks(hc.hook()))
			ctx := WithAttributes(context.Background(), Attributes{"userId": "u1"})
			c.Bool(ctx, "kill-switch", false) // cached (remote) before the batch
			hc.reset()
			res := c.Evaluate(ctx, []Request{
				{FlagKey: "kill-switch", Default: false}, // success (cache in remote mode)
				{FlagKey: "plan-banner", Default: "x"},   // success
				{FlagKey: "no-such-flag", Default: 1.0},  // FLAG_NOT_FOUND
			})
			if res[0].Value != true || res[1].Value != "A" || res[2].Value != 1.0 || res[2].Detail.ErrorCode != CodeFlagNotFound {
				t.Fatalf("results %+v", res)
			}
			want := map[string][4]int{"kill-switch": {1, 1, 0, 1}, "plan-banner": {1, 1, 0, 1}, "no-such-flag": {1, 0, 1, 1}}
			for key, w := range want {
				if got := hc.counts(key); got != w {
					t.Errorf("Evaluate %s: before/after/error/finally = %v, want %v", key, got, w)
				}
			}
			hc.reset()
			if failed := c.prefetch(ctx, "max-items", "theme"); failed != 0 {
				t.Fatalf("prefetch failed %d", failed)
			}
			for _, key := range []string{"max-items", "theme"} {
				if got := hc.counts(key); got != [4]int{1, 1, 0, 1} {
					t.Errorf("prefetch %s: before/after/error/finally = %v, want [1 1 0 1]", key, got)
				}
			}
			// A closed client: every item still goes through the hooks.
			c.Close(context.Background())
			hc.reset()
			c.Evaluate(ctx, []Request{{FlagKey: "kill-switch"}})
			if got := hc.counts("kill-switch"); got != [4]int{1, 0, 1, 1} {
				t.Errorf("closed: before/after/error/finally = %v, want [1 0 1 1]", got)
			}
		})
	}
}

// TestOFREPCodeDefaultIsSuccess: an OFREP 200 without a value (flagd and
// GO Feature Flag answer so for a disabled flag; OFREP ADR-0006) serves
// the caller's default as a success, with the server's reason and variant;
// foreign OpenFeature reasons are kept.
func TestOFREPCodeDefaultIsSuccess(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(typesConfig()))
	const single = "/ofrep/v1/evaluate/flags/"
	answer := func(key, body string) {
		srv.InjectFault(flagtest.Fault{Method: http.MethodPost, Path: single + key, Body: []byte(body)})
	}
	answer("disabled-flag", `{"key":"disabled-flag","reason":"DISABLED","variant":"off"}`)
	answer("static-flag", `{"key":"static-flag","value":"blue","reason":"STATIC","variant":"b"}`)
	answer("split-flag", `{"key":"split-flag","value":"green","reason":"TARGETING_MATCH_SPLIT","variant":"g"}`)
	answer("cached-flag", `{"key":"cached-flag","value":"red","reason":"CACHED","variant":"r"}`)
	answer("unknown-flag", `{"key":"unknown-flag","value":"grey","reason":"UNKNOWN"}`)
	answer("default-flag", `{"key":"default-flag","reason":"DEFAULT","variant":"control","metadata":{"team":"growth"}}`)
	c := modeClient(t, srv, ModeRemote, true)
	ctx := WithAttributes(context.Background(), Attributes{"userId": "u1"})

	for _, src := range []Source{SourceRemote, SourceCache} {
		v, d := c.BoolDetail(ctx, "disabled-flag", true)
		if !v || d.ErrorCode != "" || d.Variant != "off" || d.Reason.Kind != "OFF" || d.Source != src {
			t.Errorf("disabled-flag (%s): %v %+v; want the default true, variant off, reason OFF, no error", src, v, d)
		}
	}
	var dst = map[string]int{"keep": 1}
	if d := c.JSON(ctx, "default-flag", &dst); dst["keep"] != 1 || len(dst) != 1 || d.ErrorCode != "" || d.Variant != "control" || d.Reason.Kind != "DEFAULT" {
		t.Errorf("default-flag JSON: %v %+v", dst, d)
	}
	for _, tc := range []struct {
		key, value, variant string
		kind                evaluate.ReasonKind
	}{
		{"static-flag", "blue", "b", "STATIC"},
		{"split-flag", "green", "g", "TARGETING_MATCH_SPLIT"},
		{"cached-flag", "red", "r", "CACHED"},
		{"unknown-flag", "grey", "grey", "UNKNOWN"},
	} {
		if v, d := c.StringDetail(ctx, tc.key, "x"); v != tc.value || d.Variant != tc.variant || d.Reason.Kind != tc.kind || d.ErrorCode != "" {
			t.Errorf("%s: %q %+v; want %q variant %q reason %q", tc.key, v, d, tc.value, tc.variant, tc.kind)
		}
	}

	// In a bulk answer too.
	srv.ClearFaults()
	srv.InjectFault(flagtest.Fault{Method: http.MethodPost, Path: "/ofrep/v1/evaluate/flags", Count: 1,
		Body: []byte(`{"flags":[{"key":"a","reason":"DISABLED","variant":"off"},{"key":"b","value":3,"reason":"SPLIT","variant":"three"}]}`)})
	res := c.Evaluate(WithAttributes(context.Background(), Attributes{"userId": "u2"}), []Request{{FlagKey: "a", Default: "dflt"}, {FlagKey: "b", Default: 0.0}})
	if res[0].Value != "dflt" || res[0].Detail.ErrorCode != "" || res[0].Detail.Variant != "off" || res[0].Detail.Reason.Kind != "OFF" || res[0].Detail.Source != SourceRemote {
		t.Errorf("bulk a: %+v", res[0])
	}
	if res[1].Value != 3.0 || res[1].Detail.Reason.Kind != "ROLLOUT" || res[1].Detail.Variant != "three" {
		t.Errorf("bulk b: %+v", res[1])
	}
	if !slices.Equal([]string{res[0].Detail.FlagKey, res[1].Detail.FlagKey}, []string{"a", "b"}) {
		t.Errorf("keys %+v", res)
	}
}

// TestStreamReconnectExpiresButKeepsStale: a stream reconnect that cannot
// resume (no event id yet), or a reset event, makes every cached decision
// computed before the version it announces be asked again, but unlike an
// invalidation it drops nothing: if the API then fails, the cached
// decision is served as STALE rather than the bootstrap or default.
func TestStreamReconnectExpiresButKeepsStale(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(typesConfig()))
	c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithEnvironment("prod"),
		WithLogger(quietLogger()), WithTimeout(5*time.Second), WithRetry(RetrySettings{MaxAttempts: -1}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	connected(t, c, func() {}, 1)
	ctx := WithAttributes(context.Background(), Attributes{"userId": "u1"})
	if v, d := c.BoolDetail(ctx, "kill-switch", false); !v || d.Source != SourceRemote {
		t.Fatalf("first: %v %+v", v, d)
	}
	// Another flag changes while the stream is down: the reconnect
	// announces a version after the cached decision's.
	theme := typesConfig().Flags[3]
	changeTheme := func() int64 {
		theme.Owners = append(theme.Owners, "o")
		v, err := srv.SetFlag("prod", theme)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	release := dropAndHold(t, srv, c)
	changeTheme()
	connected(t, c, release, 2)
	if v, d := c.BoolDetail(ctx, "kill-switch", false); !v || d.Source != SourceRemote {
		t.Fatalf("after a reconnect: %v %+v; want the flag asked again", v, d)
	}
	// A reset event (the server cannot replay) is the same: asked again.
	// (Delivered by hand while the stream is held, so no event of the
	// change gets there first.)
	release = dropAndHold(t, srv, c)
	c.onRemoteInvalidation(wire.StreamEvent{Type: wire.EventReset, Version: changeTheme()})
	if v, d := c.BoolDetail(ctx, "kill-switch", false); !v || d.Source != SourceRemote {
		t.Fatalf("after a reset: %v %+v; want the flag asked again", v, d)
	}
	changeTheme()
	srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: http.StatusServiceUnavailable})
	connected(t, c, release, 3)
	if v, d := c.BoolDetail(ctx, "kill-switch", false); !v || d.Source != SourceStale || d.ErrorCode != CodeUnavailable || d.Variant != "true" {
		t.Fatalf("after a reconnect with the API failing: %v %+v; want the cached true as STALE", v, d)
	}
}
