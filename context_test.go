package flagwire

import (
	"context"
	"encoding/json"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// TestAttributesContextParentValues checks that the context WithAttributes
// and WithSubject return passes every other key, Done, Err and Deadline to
// its parent, as context.WithValue does.
func TestAttributesContextParentValues(t *testing.T) {
	type other struct{}
	deadline := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	parent, cancel := context.WithDeadline(context.WithValue(context.Background(), other{}, "v"), deadline)
	for name, ctx := range map[string]context.Context{
		"WithAttributes": WithAttributes(parent, Attributes{"userId": "u"}),
		"WithSubject":    WithSubject(parent, StringAttr("userId", "u")),
	} {
		if got := ctx.Value(other{}); got != "v" {
			t.Errorf("%s: parent's value = %v, want v", name, got)
		}
		if d, ok := ctx.Deadline(); !ok || !d.Equal(deadline) {
			t.Errorf("%s: Deadline = %v %v, want %v", name, d, ok, deadline)
		}
		if got := AttributesFrom(ctx)["userId"]; got != "u" {
			t.Errorf("%s: AttributesFrom[userId] = %v, want u", name, got)
		}
	}
	ctx := WithAttributes(parent, nil)
	cancel()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the parent's cancellation did not reach the child")
	}
	if ctx.Err() != context.Canceled {
		t.Errorf("Err = %v, want context.Canceled", ctx.Err())
	}
}

// TestAttributesContextCancelNoGoroutine: context.WithCancel on a child of
// WithAttributes finds the parent's cancelCtx through Value, as it does
// through context.WithValue, and so starts no goroutine to propagate
// cancellation. 200 children would leave 200 goroutines blocked until
// the parent is cancelled.
func TestAttributesContextCancelNoGoroutine(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := runtime.NumGoroutine()
	var children []context.CancelFunc
	for i := 0; i < 200; i++ {
		_, c := context.WithCancel(WithSubject(WithAttributes(parent, Attributes{"userId": "u"}), StringAttr("plan", "pro")))
		children = append(children, c)
	}
	if after := runtime.NumGoroutine(); after-before >= 100 {
		t.Errorf("goroutines: %d before, %d after 200 WithCancel children: cancellation is propagated by goroutines", before, after)
	}
	for _, c := range children {
		c()
	}
}

// TestAttributesContextString: a context's String names the parent and
// the attribute count, never an attribute value (it may identify a
// person).
func TestAttributesContextString(t *testing.T) {
	s := WithAttributes(context.Background(), Attributes{"userId": "8a7f4c91", "plan": "pro"}).(interface{ String() string }).String()
	if want := "context.Background.WithAttributes(2 attributes)"; s != want {
		t.Errorf("String = %q, want %q", s, want)
	}
	s = WithSubject(context.TODO(), StringAttr("userId", "8a7f4c91")).(interface{ String() string }).String()
	if want := "context.TODO.WithSubject(1 attributes)"; s != want {
		t.Errorf("String = %q, want %q", s, want)
	}
	if strings.Contains(s, "8a7f4c91") {
		t.Errorf("String %q shows an attribute value", s)
	}
}

// TestSubjectAttributesFrom: the map a subject is read as (local
// evaluation, API requests, AttributesFrom) holds the values as an
// Attributes map would, the last of a repeated key winning.
func TestSubjectAttributesFrom(t *testing.T) {
	ctx := WithSubject(nil, StringAttr("userId", "u"), BoolAttr("beta", true), IntAttr("n", 3), FloatAttr("f", 0.5),
		AnyAttr("l", []string{"x"}), AnyAttr("none", nil), StringAttr("userId", "v"))
	got := AttributesFrom(ctx)
	want := Attributes{"userId": "v", "beta": true, "n": int64(3), "f": 0.5, "l": []string{"x"}, "none": nil}
	if len(got) != len(want) {
		t.Fatalf("AttributesFrom = %v, want %v", got, want)
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || !sameJSON(t, g, w) {
			t.Errorf("%s = %#v, want %#v", k, g, w)
		}
	}
	if n := testing.AllocsPerRun(100, func() { AttributesFrom(ctx) }); n != 0 {
		t.Errorf("AttributesFrom allocates %v after the first call: the map must be built once", n)
	}
}

// TestSubjectAllocations: a subject of up to 8 attributes costs one
// allocation, and its hash none.
func TestSubjectAllocations(t *testing.T) {
	id, plan := "user-1", "pro"
	bg := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		ctx := WithSubject(bg, StringAttr("userId", id), StringAttr("plan", plan), StringAttr("region", "US"), IntAttr("n", 7))
		contextOf(ctx).key()
	}); n > 1 {
		t.Errorf("WithSubject with 4 attributes + hash: %v allocations, want at most 1", n)
	}
	attrs := Attributes{"userId": id, "plan": plan, "nested": map[string]any{"a": []any{1, "b"}}}
	if n := testing.AllocsPerRun(100, func() {
		contextOf(WithAttributes(bg, attrs)).key()
	}); n > 1 {
		t.Errorf("WithAttributes + hash: %v allocations, want at most 1", n)
	}
}

// TestSubjectEvaluatesLikeAttributes: in remote and local mode a subject
// gets the answers the equal Attributes map gets (value, variant, reason,
// error code), and, in remote mode, the map form's cached decisions: no
// second request.
func TestSubjectEvaluatesLikeAttributes(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	type subject struct {
		attrs   []Attr
		asMap   Attributes
		wantVal bool // from exampleConfig: rule-1 is plan pro in US; beta_testers are beta-1, beta-2
		wantWhy evaluate.ReasonKind
	}
	subjects := []subject{
		{[]Attr{StringAttr("userId", "8a7f4c91"), StringAttr("plan", "pro"), StringAttr("region", "US")},
			Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US"}, true, "RULE_MATCH"},
		{[]Attr{StringAttr("userId", "beta-2"), StringAttr("plan", "free"), StringAttr("region", "EU")},
			Attributes{"userId": "beta-2", "plan": "free", "region": "EU"}, true, "SEGMENT_MATCH"},
		{[]Attr{StringAttr("userId", "someone"), StringAttr("plan", "free"), IntAttr("age", 40), BoolAttr("vip", false)},
			Attributes{"userId": "someone", "plan": "free", "age": 40, "vip": false}, false, "ROLLOUT"},
	}
	for _, mode := range []Mode{ModeRemote, ModeLocal} {
		t.Run(string(mode), func(t *testing.T) {
			c := modeClient(t, srv, mode, false)
			for _, s := range subjects {
				before := srv.Requests("POST", "/v1/evaluate")
				mv, md := c.BoolDetail(WithAttributes(context.Background(), s.asMap), "checkout-new-flow", true)
				sv, sd := c.BoolDetail(WithSubject(context.Background(), s.attrs...), "checkout-new-flow", true)
				if mv != s.wantVal || md.Reason.Kind != s.wantWhy || md.ErrorCode != "" {
					t.Fatalf("map form %v: %v %+v, want %v %s", s.asMap, mv, md, s.wantVal, s.wantWhy)
				}
				if sv != mv || sd.Variant != md.Variant || sd.Reason != md.Reason || sd.ErrorCode != md.ErrorCode {
					t.Errorf("subject %v: %v %+v; map form: %v %+v", s.attrs, sv, sd, mv, md)
				}
				if mode == ModeRemote {
					if sd.Source != SourceCache {
						t.Errorf("subject %v: source %v, want CACHE (the map form's decision)", s.attrs, sd.Source)
					}
					if n := srv.Requests("POST", "/v1/evaluate") - before; n != 1 {
						t.Errorf("subject %v: %d requests for the map form and the subject, want 1", s.attrs, n)
					}
				} else if sd.Source != SourceLocal {
					t.Errorf("subject %v: source %v, want LOCAL", s.attrs, sd.Source)
				}
			}
		})
	}
}

// TestNonFiniteNumbersCountAsMissingInEveryMode: a number that is not
// finite (NaN, +Inf, -Inf) in a context counts as null, a missing
// attribute, in every mode: remote and OFREP send null in its place
// (JSON cannot carry it; before, the request failed with GENERAL), and
// local and offline evaluation treat it as null. The oracle is the
// documented equivalence: every answer equals the engine's for the same
// context with null in place of the number.
func TestNonFiniteNumbersCountAsMissingInEveryMode(t *testing.T) {
	cfg := &evaluate.Config{Environment: "prod", Salt: "s", Version: 1, Flags: []evaluate.Flag{
		{Key: "big-score", Rules: []evaluate.Rule{{ID: "gt", When: "score > 5", Serve: evaluate.Serve{Variant: true}}}},
		{Key: "low-score", Rules: []evaluate.Rule{{ID: "lt", When: "not (score >= 5)", Serve: evaluate.Serve{Variant: true}}}},
		{Key: "has-score", Rules: []evaluate.Rule{{ID: "has", When: "has(account.score)", Serve: evaluate.Serve{Variant: true}}}},
		{Key: "by-score", Bucketing: evaluate.Bucketing{By: "score"}, Default: &evaluate.Serve{Percentage: ptr(50.0)}},
	}}
	srv := flagtest.NewServer(t, flagtest.WithConfig(cfg))
	signer := testkit.NewSigner()
	env := signer.Envelope(t, cfg, time.Now().Add(-time.Minute), 2*time.Hour)
	modes := map[string][]Option{
		"remote":  nil,
		"ofrep":   {WithOFREP(true)},
		"local":   {WithMode(ModeLocal)},
		"offline": nil, // built below: no server
	}
	for name, opts := range modes {
		var c *Client
		if name == "offline" {
			var err error
			c, err = New(context.Background(), WithMode(ModeOffline), WithEnvironment("prod"), WithBootstrap(env), WithTrustedKeys(signer.Pub), WithLogger(quietLogger()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
		} else {
			c = remoteAt(t, srv, opts...)
			if name == "local" {
				if err := c.WaitReady(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			attrs := Attributes{"userId": "u", "score": x, "account": map[string]any{"score": x}, "list": []any{1.0, x}}
			asNull := Attributes{"userId": "u", "score": nil, "account": map[string]any{"score": nil}, "list": []any{1.0, nil}}
			for _, flag := range []string{"big-score", "low-score", "has-score", "by-score"} {
				for _, ctx := range []context.Context{
					WithAttributes(context.Background(), attrs),
					WithSubject(context.Background(), StringAttr("userId", "u"), FloatAttr("score", x), AnyAttr("account", map[string]any{"score": x}), AnyAttr("list", []any{1.0, x})),
				} {
					_, d := c.BoolDetail(ctx, flag, false)
					if d.ErrorCode.isFallback() {
						t.Errorf("%s, %v, %s: %+v", name, x, flag, d)
						continue
					}
					sameAnswer(t, name+" "+flag, d, engineAnswer(t, cfg, flag, asNull))
				}
			}
		}
	}
}

func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatalf("marshal: %v %v", err1, err2)
	}
	return string(ja) == string(jb)
}
