package evaluate

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func benchConfig(segmentSize int) *Config {
	ids := make([]string, segmentSize)
	for i := range ids {
		ids[i] = fmt.Sprintf("beta-%07d", i)
	}
	return &Config{
		Environment: "prod",
		Salt:        "prod-salt-2026",
		Segments:    []Segment{{Key: "beta_testers", Included: ids}},
		Flags: []Flag{{
			Key: "bench-flag",
			Rules: []Rule{
				{ID: "enterprise-eu", When: "plan == 'enterprise' and region == 'EU'", Serve: Serve{Variant: true}},
				{ID: "beta", Segment: "beta_testers", Serve: Serve{Variant: true}},
				{ID: "old-app", When: "semver(appVersion) < '2.0.0'", Serve: Serve{Variant: false}},
			},
			Default: &Serve{Rollout: []WeightedVariant{{Variant: true, Weight: 25}, {Variant: false, Weight: 75}}},
		}},
	}
}

var benchAttrs = Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US", "appVersion": "2.3.1"}

func TestEvaluatePrecedence(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	cfg := &Config{
		Salt: "s",
		Segments: []Segment{
			{Key: "beta_testers", Included: []string{"beta-1"}, Excluded: []string{"banned"}, When: "plan == 'internal'"},
			{Key: "eu", When: "region in ['DE', 'FR']"},
		},
		Flags: []Flag{
			{
				Key:     "f",
				Targets: []Target{{Variant: false, Values: []string{"vip-off"}}},
				Rules: []Rule{
					{ID: "rule-1", When: "plan == 'pro' and region == 'US'", Serve: Serve{Variant: true}},
					{ID: "rule-2", Segment: "beta_testers", Serve: Serve{Variant: true}},
					{ID: "rule-3", When: "segment('eu') and plan == 'free'", Serve: Serve{Variant: false}},
					{ID: "gradual", Serve: Serve{Percentage: pct(0)}},
				},
				Default: &Serve{Variant: false},
			},
			{Key: "off", State: StateOff, Rules: []Rule{{ID: "r", When: "true", Serve: Serve{Variant: true}}}},
			{Key: "needs-f", Prerequisites: []Prerequisite{{FlagKey: "f", Variants: []any{true}}}, Default: &Serve{Variant: true}},
			{Key: "str", Variants: []Variant{{Name: "control"}, {Name: "B", Payload: map[string]any{"price": 23.0, "currency": "EUR"}}}, OffVariant: "control",
				Rules: []Rule{{ID: "b", When: "country == 'DE'", Serve: Serve{Variant: "B"}}}, Default: &Serve{Variant: "control"}},
		},
	}
	snap := mustCompile(t, cfg)
	cases := []struct {
		name    string
		flag    string
		attrs   Attributes
		value   any
		kind    ReasonKind
		ruleID  string
		segment string
	}{
		{"rule 1 wins", "f", Attributes{"userId": "beta-1", "plan": "pro", "region": "US"}, true, ReasonRuleMatch, "rule-1", ""},
		{"static segment", "f", Attributes{"userId": "beta-1", "plan": "free"}, true, ReasonSegmentMatch, "rule-2", "beta_testers"},
		{"rule-based segment", "f", Attributes{"userId": "x", "plan": "internal"}, true, ReasonSegmentMatch, "rule-2", "beta_testers"},
		{"excluded beats rule", "f", Attributes{"userId": "banned", "plan": "internal"}, false, ReasonDefault, "", ""},
		{"segment in condition", "f", Attributes{"userId": "x", "plan": "free", "region": "DE"}, false, ReasonRuleMatch, "rule-3", ""},
		{"target before rules", "f", Attributes{"userId": "vip-off", "plan": "pro", "region": "US"}, false, ReasonTargetMatch, "", ""},
		{"0% rule falls through", "f", Attributes{"userId": "nobody"}, false, ReasonDefault, "", ""},
		{"off", "off", Attributes{"userId": "x"}, false, ReasonOff, "", ""},
		{"prerequisite holds", "needs-f", Attributes{"userId": "beta-1", "plan": "pro", "region": "US"}, true, ReasonDefault, "", ""},
		{"prerequisite fails", "needs-f", Attributes{"userId": "nobody"}, false, ReasonPrerequisiteFailed, "", ""},
		{"string variant", "str", Attributes{"country": "DE"}, "B", ReasonRuleMatch, "b", ""},
		{"string default", "str", Attributes{"country": "US"}, "control", ReasonDefault, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := snap.Evaluate(tc.flag, tc.attrs, now)
			if r.Value != tc.value || r.Reason.Kind != tc.kind || r.Reason.RuleID != tc.ruleID || r.Reason.Segment != tc.segment {
				t.Fatalf("got %v %+v", r.Value, r.Reason)
			}
			_, trace := snap.EvaluateExplain(tc.flag, tc.attrs, now)
			if len(trace) == 0 {
				t.Fatal("explain returned no trace")
			}
		})
	}
	r := snap.Evaluate("str", Attributes{"country": "DE"}, now)
	if string(r.PayloadJSON) != `{"currency":"EUR","price":23}` {
		t.Fatalf("payload %s", r.PayloadJSON)
	}
	if r := snap.Evaluate("nope", nil, now); r.Reason.Kind != ReasonError || r.Reason.ErrorCode != ErrorFlagNotFound || r.Value != nil {
		t.Fatalf("missing flag: %+v", r)
	}
}

func TestProgressiveRollout(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 12, d, 0, 0, 0, 0, time.UTC) }
	steps := []RampStep{{day(1), 1}, {day(2), 5}, {day(3), 10}, {day(4), 25}, {day(5), 50}, {day(6), 100}}
	mk := func(paused bool, at time.Time) *Snapshot {
		return mustCompile(t, &Config{Salt: "s", Flags: []Flag{{Key: "f", Rules: []Rule{{ID: "ramp", Serve: Serve{Progressive: &Progressive{Steps: steps, Paused: paused, PausedAt: at}}}}, Default: &Serve{Variant: false}}}})
	}
	snap := mk(false, time.Time{})
	share := func(s *Snapshot, now time.Time) float64 {
		on := 0
		for i := 0; i < 20000; i++ {
			if s.Evaluate("f", Attributes{"userId": strconv.Itoa(i)}, now).Value == true {
				on++
			}
		}
		return float64(on) / 200
	}
	for _, tc := range []struct {
		now  time.Time
		want float64
	}{
		{day(1).Add(-time.Second), 0}, {day(1), 1}, {day(2).Add(12 * time.Hour), 5}, {day(4), 25}, {day(6), 100}, {day(30), 100},
	} {
		if got := share(snap, tc.now); got < tc.want-1 || got > tc.want+1 {
			t.Errorf("at %s: %.2f%% served, want %v%%", tc.now.Format(time.DateOnly), got, tc.want)
		}
	}
	paused := mk(true, day(3).Add(time.Hour))
	if got := share(paused, day(30)); got < 9 || got > 11 {
		t.Errorf("paused at step 10%%: %.2f%% served at a later time", got)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"unknown segment", Config{Flags: []Flag{{Key: "f", Rules: []Rule{{ID: "r", Segment: "nope", Serve: Serve{Variant: true}}}}}}, []string{`flag "f" rule "r" segment: references unknown segment "nope"`}},
		{"unknown segment in when", Config{Flags: []Flag{{Key: "f", Rules: []Rule{{ID: "r", When: "segment('ghost')", Serve: Serve{Variant: true}}}}}}, []string{`unknown segment "ghost"`}},
		{"duplicate rule id", Config{Flags: []Flag{{Key: "f", Rules: []Rule{{ID: "r", Serve: Serve{Variant: true}}, {ID: "r", Serve: Serve{Variant: false}}}}}}, []string{"duplicate rule id"}},
		{"weights", Config{Flags: []Flag{{Key: "f", Default: &Serve{Rollout: []WeightedVariant{{true, 50}, {false, 40}}}}}}, []string{"weights sum to 90, not 100"}},
		{"type mismatch", Config{Flags: []Flag{{Key: "f", Type: TypeNumber, Variants: []Variant{{Name: "a", Value: "x"}}}}}, []string{`variant "a": value "x" is not a finite number`}},
		{"unknown variant", Config{Flags: []Flag{{Key: "f", Rules: []Rule{{ID: "r", Serve: Serve{Variant: "maybe"}}}}}}, []string{`unknown variant "maybe" (variants: true, false)`}},
		{"prereq cycle", Config{Flags: []Flag{
			{Key: "a", Prerequisites: []Prerequisite{{FlagKey: "b", Variants: []any{true}}}},
			{Key: "b", Prerequisites: []Prerequisite{{FlagKey: "a", Variants: []any{true}}}},
		}}, []string{"prerequisite cycle"}},
		{"segment cycle", Config{Segments: []Segment{{Key: "x", When: "segment('y')"}, {Key: "y", When: "segment('x')"}}}, []string{"segment cycle"}},
		{"bad regex", Config{Flags: []Flag{{Key: "f", Rules: []Rule{{ID: "r", When: "email matches '(['", Serve: Serve{Variant: true}}}}}}, []string{`rule "r" when`}},
		{"bad version", Config{Flags: []Flag{{Key: "f", Rules: []Rule{{ID: "r", When: "semver(v) < '2.x'", Serve: Serve{Variant: true}}}}}}, []string{"not a valid semantic version"}},
		{"syntax position", Config{Flags: []Flag{{Key: "f", Rules: []Rule{{ID: "r", When: "plan == 'pro' and and", Serve: Serve{Variant: true}}}}}}, []string{"1:19"}},
		{"bad key", Config{Flags: []Flag{{Key: "bad key!"}}}, []string{"invalid flag key"}},
		{"duplicate flag", Config{Flags: []Flag{{Key: "f"}, {Key: "f"}}}, []string{"duplicate flag key"}},
		{"ramp down", Config{Flags: []Flag{{Key: "f", Default: &Serve{Progressive: &Progressive{Steps: []RampStep{{time.Unix(1, 0), 50}, {time.Unix(2, 0), 10}}}}}}}, []string{"a ramp never goes down"}},
		{"duplicate prerequisite", Config{Flags: []Flag{{Key: "a"}, {Key: "b", Prerequisites: []Prerequisite{{FlagKey: "a", Variants: []any{true}}, {FlagKey: "a", Variants: []any{false}}}}}}, []string{"listed twice"}},
		{"prerequisite work", prereqFanout(12), []string{"more than 256 flags through prerequisites"}},
		{"serves nothing", Config{Flags: []Flag{{Key: "f", Rules: []Rule{{ID: "r", When: "true"}}}}}, []string{"serves nothing"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(&tc.cfg)
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("want *CompileError, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestSeedPatchRule(t *testing.T) {
	// The seed's rollout step: {"id":"gradual","percentage":25,"seed":"checkout-new-flow"}.
	snap := mustCompile(t, &Config{Salt: "s", Flags: []Flag{{Key: "checkout-new-flow", Rules: []Rule{{ID: "gradual", Serve: Serve{Percentage: pct(25), Seed: "checkout-new-flow"}}}}}})
	on := 0
	for i := 0; i < 10000; i++ {
		r := snap.Evaluate("checkout-new-flow", Attributes{"userId": strconv.Itoa(i)}, time.Time{})
		if r.Value == true {
			on++
			if r.Reason.RuleID != "gradual" || !r.HasBucketing || r.Bucketing.Seed != "checkout-new-flow" {
				t.Fatalf("%+v", r)
			}
		}
	}
	if on < 2300 || on > 2700 {
		t.Fatalf("%d of 10000 in a 25%% step", on)
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	snap := mustCompile(t, benchConfig(1000))
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() { snap.Evaluate("bench-flag", benchAttrs, now) }); n != 0 {
		t.Fatalf("Evaluate allocates %v times per call", n)
	}
}

// TestEvaluateAttrsDoesNotAllocate: the list form reads strings, bools and
// numbers unboxed, through rules, a static segment, targets and a rollout.
func TestEvaluateAttrsDoesNotAllocate(t *testing.T) {
	snap := mustCompile(t, benchConfig(1000))
	now := time.Now()
	attrs := benchAttrList()
	var r Result
	if n := testing.AllocsPerRun(1000, func() { snap.EvaluateAttrsTo(&r, "bench-flag", attrs, now) }); n != 0 {
		t.Fatalf("EvaluateAttrsTo allocates %v times per call", n)
	}
	if n := testing.AllocsPerRun(1000, func() { r = snap.EvaluateAttrs("bench-flag", attrs, now) }); n != 0 {
		t.Fatalf("EvaluateAttrs allocates %v times per call", n)
	}
	// A list built per call stays on the caller's stack: the engine keeps
	// no pointer to it (it would be moved to the heap otherwise).
	if n := testing.AllocsPerRun(1000, func() {
		snap.EvaluateAttrsTo(&r, "bench-flag", []Attr{{"userId", Int64Value(12345)}, {"plan", StringValue("pro")},
			{"appVersion", StringValue("2.3.1")}, {"score", Float64Value(0.5)}}, now)
	}); n != 0 {
		t.Fatalf("EvaluateAttrsTo of a list literal with a numeric id allocates %v times per call", n)
	}
}

// benchAttrList is benchAttrs as a list.
func benchAttrList() []Attr {
	var list []Attr
	for _, k := range slices.Sorted(maps.Keys(benchAttrs)) {
		list = append(list, Attr{Key: k, Value: AnyValue(benchAttrs[k])})
	}
	return list
}

// BenchmarkEvaluateAttrsBenchFlagNoAlloc is BenchmarkEvaluateBenchFlagNoAlloc
// with the subject as a list of Attrs.
func BenchmarkEvaluateAttrsBenchFlagNoAlloc(b *testing.B) {
	snap := mustCompile(b, benchConfig(1000))
	now := time.Now()
	attrs := benchAttrList()
	var r Result
	b.ReportAllocs()
	for b.Loop() {
		snap.EvaluateAttrsTo(&r, "bench-flag", attrs, now)
	}
}

// BenchmarkEvaluateBenchFlagNoAlloc is the design's benchmark flag: three
// rules (one a 1,000-id static segment) and a 25% rollout fallthrough.
func BenchmarkEvaluateBenchFlagNoAlloc(b *testing.B) {
	snap := mustCompile(b, benchConfig(1000))
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap.Evaluate("bench-flag", benchAttrs, now)
	}
}

// BenchmarkEvaluateSegmentSize shows static segment membership is O(1).
func BenchmarkEvaluateSegmentSize(b *testing.B) {
	for _, n := range []int{1000, 100000, 1000000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			snap := mustCompile(b, benchConfig(n))
			attrs := Attributes{"userId": fmt.Sprintf("beta-%07d", n/2)}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				snap.Evaluate("bench-flag", attrs, time.Time{})
			}
		})
	}
}

// BenchmarkEvaluateRules shows cost growing linearly with the rules tried.
func BenchmarkEvaluateRules(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			rules := make([]Rule, n)
			for i := range rules {
				rules[i] = Rule{ID: "r" + strconv.Itoa(i), When: fmt.Sprintf("plan == 'plan-%d' and region == 'EU'", i), Serve: Serve{Variant: true}}
			}
			snap := mustCompile(b, &Config{Flags: []Flag{{Key: "f", Rules: rules, Default: &Serve{Variant: false}}}})
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				snap.Evaluate("f", benchAttrs, time.Time{})
			}
		})
	}
}

func manyFlags(n int) *Config {
	cfg := &Config{Environment: "prod", Salt: "s", Segments: []Segment{{Key: "beta_testers", Included: []string{"a", "b"}}}}
	for i := 0; i < n; i++ {
		cfg.Flags = append(cfg.Flags, Flag{
			Key: "flag-" + strconv.Itoa(i),
			Rules: []Rule{
				// Distinct rule text per flag: no sharing flatters the figure.
				{ID: "r1", When: fmt.Sprintf("plan == 'enterprise-%d' and region == 'EU'", i), Serve: Serve{Variant: true}},
				{ID: "r2", Segment: "beta_testers", Serve: Serve{Variant: true}},
			},
			Default: &Serve{Percentage: pct(25)},
		})
	}
	return cfg
}

// BenchmarkCompile10000Flags is the compile half of "bootstrap of 10,000
// flags ≤ 50 ms".
func BenchmarkCompile10000Flags(b *testing.B) {
	cfg := manyFlags(10000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Compile(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// prereqFanout builds flags f0…fn where each fi needs f(i-1) and a sibling
// that also needs f(i-1): evaluation work doubles per level.
func prereqFanout(n int) Config {
	cfg := Config{Flags: []Flag{{Key: "f0"}}}
	for i := 1; i <= n; i++ {
		prev := "f" + strconv.Itoa(i-1)
		sib := "s" + strconv.Itoa(i)
		cfg.Flags = append(cfg.Flags,
			Flag{Key: sib, Prerequisites: []Prerequisite{{FlagKey: prev, Variants: []any{true}}}},
			Flag{Key: "f" + strconv.Itoa(i), Prerequisites: []Prerequisite{{FlagKey: prev, Variants: []any{true}}, {FlagKey: sib, Variants: []any{true}}}})
	}
	return cfg
}

// TestSegmentFunctionUsesEvaluationTime: a time-dependent segment (its
// condition uses now or date()) gives the same answer whether a rule names
// it in `segment:` or calls segment('x') in `when`, at the same now. The
// segment() function used to be evaluated at time zero.
func TestSegmentFunctionUsesEvaluationTime(t *testing.T) {
	cfg := &Config{
		Salt: "s",
		Segments: []Segment{
			{Key: "launched", When: "now >= '2026-06-01'"},
			{Key: "in-trial", When: "date(trialEnds) > now"},
		},
	}
	for _, seg := range []string{"launched", "in-trial"} {
		cfg.Flags = append(cfg.Flags,
			Flag{Key: seg + "-field", Rules: []Rule{{ID: "r", Segment: seg, Serve: Serve{Variant: true}}}, Default: &Serve{Variant: false}},
			Flag{Key: seg + "-func", Rules: []Rule{{ID: "r", When: "segment('" + seg + "')", Serve: Serve{Variant: true}}}, Default: &Serve{Variant: false}},
			Flag{Key: seg + "-nested", Rules: []Rule{{ID: "r", When: "not (not segment('" + seg + "'))", Serve: Serve{Variant: true}}}, Default: &Serve{Variant: false}})
	}
	// A segment calling segment() must pass the time on too.
	cfg.Segments = append(cfg.Segments, Segment{Key: "launched-via", When: "segment('launched')"})
	cfg.Flags = append(cfg.Flags, Flag{Key: "launched-via-field", Rules: []Rule{{ID: "r", Segment: "launched-via", Serve: Serve{Variant: true}}}, Default: &Serve{Variant: false}})
	snap := mustCompile(t, cfg)
	attrs := Attributes{"userId": "u1", "trialEnds": "2026-08-01T00:00:00Z"}
	cases := []struct {
		seg  string
		now  time.Time
		want bool // from the segment's definition
	}{
		{"launched", time.Date(2026, 5, 31, 0, 0, 0, 0, time.UTC), false},
		{"launched", time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), true},
		{"in-trial", time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), true},
		{"in-trial", time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), false},
	}
	for _, c := range cases {
		t.Run(c.seg+"@"+c.now.Format("2006-01-02"), func(t *testing.T) {
			field := snap.Evaluate(c.seg+"-field", attrs, c.now)
			wantField := Reason{Kind: ReasonDefault, RuleIndex: -1}
			if c.want {
				wantField = Reason{Kind: ReasonSegmentMatch, RuleID: "r", Segment: c.seg}
			}
			if field.Value != c.want || field.Reason != wantField {
				t.Errorf("segment: %s: %v %+v, want %v %+v", c.seg, field.Value, field.Reason, c.want, wantField)
			}
			wantFunc := Reason{Kind: ReasonDefault, RuleIndex: -1}
			if c.want {
				wantFunc = Reason{Kind: ReasonRuleMatch, RuleID: "r"}
			}
			for _, key := range []string{c.seg + "-func", c.seg + "-nested"} {
				if r := snap.Evaluate(key, attrs, c.now); r.Value != c.want || r.Reason != wantFunc {
					t.Errorf("%s: %v %+v, want %v %+v", key, r.Value, r.Reason, c.want, wantFunc)
				}
			}
			if got := snap.MatchSegmentAt(c.seg, attrs, c.now); got != c.want {
				t.Errorf("MatchSegmentAt(%s) = %v, want %v", c.seg, got, c.want)
			}
			if c.seg == "launched" {
				wantVia := Reason{Kind: ReasonDefault, RuleIndex: -1}
				if c.want {
					wantVia = Reason{Kind: ReasonSegmentMatch, RuleID: "r", Segment: "launched-via"}
				}
				if r := snap.Evaluate("launched-via-field", attrs, c.now); r.Value != c.want || r.Reason != wantVia {
					t.Errorf("launched-via: %v %+v, want %v %+v", r.Value, r.Reason, c.want, wantVia)
				}
			}
		})
	}
}

type segsAt struct{ got time.Time }

func (s *segsAt) MatchSegment(string, Attributes) bool { return false }
func (s *segsAt) MatchSegmentAt(_ string, _ Attributes, now time.Time) bool {
	s.got = now
	return true
}

// TestSegmentFunctionUsesEvaluationTimeMatcherAt: a user SegmentMatcher
// implementing SegmentMatcherAt gets Match's now.
func TestSegmentFunctionUsesEvaluationTimeMatcherAt(t *testing.T) {
	c, err := ParseCondition("segment('x')")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	m := &segsAt{}
	if !c.Match(nil, m, now) || !m.got.Equal(now) {
		t.Fatalf("MatchSegmentAt called with %v, want %v", m.got, now)
	}
	var nilSnap *Snapshot
	if c.Match(nil, nilSnap, now) {
		t.Fatal("nil *Snapshot matcher: want false")
	}
}

// TestStaticReason: STATIC is "the flag is on and has no targeting: no
// prerequisites, no targets, no rules, and a fixed default (or none)". Every
// other shape keeps its own reason; expectations follow that definition.
func TestStaticReason(t *testing.T) {
	str := func(name string) Variant { return Variant{Name: name} }
	cfg := &Config{
		Salt:     "s",
		Segments: []Segment{{Key: "seg", Included: []string{"nobody"}}},
		Flags: []Flag{
			{Key: "fixed-true", Default: &Serve{Variant: true}},
			{Key: "fixed-string", Type: TypeString, Variants: []Variant{str("a"), str("b")}, Default: &Serve{Variant: "b"}},
			{Key: "no-default"}, // serves the off variant to everyone
			{Key: "off", State: StateOff, Default: &Serve{Variant: true}},
			{Key: "percentage-default", Default: &Serve{Percentage: pct(100)}},
			{Key: "percentage-0-default", Default: &Serve{Percentage: pct(0)}},
			{Key: "rollout-default", Default: &Serve{Rollout: []WeightedVariant{{true, 100}, {false, 0}}}},
			{Key: "progressive-default", Default: &Serve{Progressive: &Progressive{Steps: []RampStep{{At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Percentage: 100}}}}},
			{Key: "with-prereq", Prerequisites: []Prerequisite{{FlagKey: "fixed-true", Variants: []any{true}}}, Default: &Serve{Variant: true}},
			{Key: "with-failed-prereq", Prerequisites: []Prerequisite{{FlagKey: "fixed-true", Variants: []any{false}}}, Default: &Serve{Variant: true}},
			{Key: "with-target-miss", Targets: []Target{{Variant: false, Values: []string{"someone-else"}}}, Default: &Serve{Variant: true}},
			{Key: "with-target-hit", Targets: []Target{{Variant: false, Values: []string{"u1"}}}, Default: &Serve{Variant: true}},
			{Key: "with-rule-miss", Rules: []Rule{{ID: "r", When: "plan == 'enterprise'", Serve: Serve{Variant: false}}}, Default: &Serve{Variant: true}},
			{Key: "with-segment-rule-miss", Rules: []Rule{{ID: "r", Segment: "seg", Serve: Serve{Variant: false}}}, Default: &Serve{Variant: true}},
			{Key: "with-rule-hit", Rules: []Rule{{ID: "r", When: "plan == 'pro'", Serve: Serve{Variant: false}}}, Default: &Serve{Variant: true}},
		},
	}
	snap := mustCompile(t, cfg)
	now := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		key     string
		attrs   Attributes
		value   any
		variant string
		reason  Reason
	}{
		{"fixed-true", Attributes{"userId": "u1"}, true, "true", Reason{Kind: ReasonStatic, RuleIndex: -1}},
		{"fixed-true", nil, true, "true", Reason{Kind: ReasonStatic, RuleIndex: -1}}, // no id needed
		{"fixed-string", Attributes{"userId": "u1"}, "b", "b", Reason{Kind: ReasonStatic, RuleIndex: -1}},
		{"no-default", Attributes{"userId": "u1"}, false, "false", Reason{Kind: ReasonStatic, RuleIndex: -1}},
		{"off", Attributes{"userId": "u1"}, false, "false", Reason{Kind: ReasonOff, RuleIndex: -1}},
		{"percentage-default", Attributes{"userId": "u1"}, true, "true", Reason{Kind: ReasonRollout, RuleIndex: -1, InRollout: true}},
		{"percentage-default", nil, false, "false", Reason{Kind: ReasonDefault, RuleIndex: -1, ErrorCode: ErrorMissingBucketAttr}},
		{"percentage-0-default", Attributes{"userId": "u1"}, false, "false", Reason{Kind: ReasonRollout, RuleIndex: -1, InRollout: true}},
		{"rollout-default", Attributes{"userId": "u1"}, true, "true", Reason{Kind: ReasonRollout, RuleIndex: -1, InRollout: true}},
		{"progressive-default", Attributes{"userId": "u1"}, true, "true", Reason{Kind: ReasonRollout, RuleIndex: -1, InRollout: true}},
		{"with-prereq", Attributes{"userId": "u1"}, true, "true", Reason{Kind: ReasonDefault, RuleIndex: -1}},
		{"with-failed-prereq", Attributes{"userId": "u1"}, false, "false", Reason{Kind: ReasonPrerequisiteFailed, Prerequisite: "fixed-true", RuleIndex: -1}},
		{"with-target-miss", Attributes{"userId": "u1"}, true, "true", Reason{Kind: ReasonDefault, RuleIndex: -1}},
		{"with-target-hit", Attributes{"userId": "u1"}, false, "false", Reason{Kind: ReasonTargetMatch, RuleIndex: -1}},
		{"with-rule-miss", Attributes{"userId": "u1", "plan": "pro"}, true, "true", Reason{Kind: ReasonDefault, RuleIndex: -1}},
		{"with-segment-rule-miss", Attributes{"userId": "u1"}, true, "true", Reason{Kind: ReasonDefault, RuleIndex: -1}},
		{"with-rule-hit", Attributes{"userId": "u1", "plan": "pro"}, false, "false", Reason{Kind: ReasonRuleMatch, RuleID: "r", RuleIndex: 0}},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			r := snap.Evaluate(c.key, c.attrs, now)
			if r.Value != c.value || r.Variant != c.variant || r.Reason != c.reason {
				t.Errorf("got %v %q %+v, want %v %q %+v", r.Value, r.Variant, r.Reason, c.value, c.variant, c.reason)
			}
			// Explain agrees with Evaluate.
			re, _ := snap.EvaluateExplain(c.key, c.attrs, now)
			if re.Reason != r.Reason || re.Variant != r.Variant {
				t.Errorf("explain: %q %+v, evaluate: %q %+v", re.Variant, re.Reason, r.Variant, r.Reason)
			}
		})
	}
}

// TestSubjectIDPerAttribute: targets, static segments and prerequisites
// that read different id attributes each see their own attribute's id
// within one evaluation.
func TestSubjectIDPerAttribute(t *testing.T) {
	snap := mustCompile(t, &Config{Salt: "s",
		Segments: []Segment{{Key: "accounts", By: "accountId", Included: []string{"u-1"}}},
		Flags: []Flag{
			{Key: "parent", Targets: []Target{{Variant: true, Values: []string{"u-1"}}}, Default: &Serve{Variant: false}},
			{Key: "child", Bucketing: Bucketing{By: "accountId"},
				Prerequisites: []Prerequisite{{FlagKey: "parent", Variants: []any{true}}},
				Targets:       []Target{{Variant: true, Values: []string{"acc-1"}}},
				Rules:         []Rule{{ID: "seg", Segment: "accounts", Serve: Serve{Variant: true}}},
				Default:       &Serve{Variant: false}},
			{Key: "by-user", Rules: []Rule{{ID: "seg", Segment: "accounts", Serve: Serve{Variant: true}}}, Default: &Serve{Percentage: pct(100)}},
		}})
	cases := []struct {
		key    string
		attrs  Attributes
		value  bool
		reason Reason
	}{
		{"child", Attributes{"userId": "u-1", "accountId": "acc-1"}, true, Reason{Kind: ReasonTargetMatch, RuleIndex: -1}},
		{"child", Attributes{"userId": "u-2", "accountId": "acc-1"}, false, Reason{Kind: ReasonPrerequisiteFailed, Prerequisite: "parent", RuleIndex: -1}},
		{"child", Attributes{"userId": "u-1", "accountId": "u-1"}, true, Reason{Kind: ReasonSegmentMatch, RuleID: "seg", Segment: "accounts"}},
		{"child", Attributes{"userId": "u-1", "accountId": "acc-2"}, false, Reason{Kind: ReasonDefault, RuleIndex: -1}},
		// The segment reads accountId, the rollout userId.
		{"by-user", Attributes{"userId": "u-1", "accountId": "acc-9"}, true, Reason{Kind: ReasonRollout, RuleIndex: -1, InRollout: true}},
		{"by-user", Attributes{"userId": "x", "accountId": "u-1"}, true, Reason{Kind: ReasonSegmentMatch, RuleID: "seg", Segment: "accounts"}},
		{"by-user", Attributes{"accountId": "acc-9"}, false, Reason{Kind: ReasonDefault, RuleIndex: -1, ErrorCode: ErrorMissingBucketAttr}},
	}
	for i, c := range cases {
		r := snap.Evaluate(c.key, c.attrs, time.Time{})
		if r.Value != c.value || r.Reason != c.reason {
			t.Errorf("case %d %s %v: %v %+v, want %v %+v", i, c.key, c.attrs, r.Value, r.Reason, c.value, c.reason)
		}
	}
}

// TestEvaluateToOverwritesWhole reuses one Result across evaluations of
// every outcome — rollout, percentage rule missed then fixed default,
// missing bucketing attribute, target, off, prerequisite failed, unknown
// flag — in a random order, and compares each with a fresh Result from
// Evaluate: nothing of an earlier answer may survive in a field the later
// answer leaves empty.
func TestEvaluateToOverwritesWhole(t *testing.T) {
	cfg := &Config{
		Environment: "prod", Salt: "s", Version: 1,
		Segments: []Segment{{Key: "beta", Included: []string{"u-beta"}}},
		Flags: []Flag{
			{Key: "rollout", Default: &Serve{Rollout: []WeightedVariant{{Variant: true, Weight: 50}, {Variant: false, Weight: 50}}}},
			{Key: "pct-then-fixed", Rules: []Rule{{ID: "half", When: "plan == 'pro'", Serve: Serve{Variant: true, Percentage: ptrFloat(50)}}}, Default: &Serve{Variant: false}},
			{Key: "targeted", Targets: []Target{{Variant: true, Values: []string{"u-1"}}}, Default: &Serve{Variant: false}},
			{Key: "off", State: "off", Default: &Serve{Variant: true}},
			{Key: "prereq", Prerequisites: []Prerequisite{{FlagKey: "off", Variants: []any{true}}}, Default: &Serve{Variant: true}},
			{Key: "segment", Rules: []Rule{{ID: "b", Segment: "beta", Serve: Serve{Variant: true}}}, Default: &Serve{Variant: false}},
		},
	}
	snap := mustCompile(t, cfg)
	keys := []string{"rollout", "pct-then-fixed", "targeted", "off", "prereq", "segment", "missing-flag"}
	subjects := []Attributes{
		{"userId": "u-1", "plan": "pro"}, {"userId": "u-2", "plan": "pro"}, {"userId": "u-beta"},
		{"plan": "pro"}, {"userId": 42, "plan": "free"}, {},
	}
	for i := range 40 {
		subjects = append(subjects, Attributes{"userId": "u-r" + strconv.Itoa(i), "plan": "pro"})
	}
	now := time.Now()
	var reused Result
	for i := range 5000 {
		key := keys[(i*7+i/13)%len(keys)]
		attrs := subjects[(i*11+i/7)%len(subjects)]
		want := snap.Evaluate(key, attrs, now)
		if snap.EvaluateTo(&reused, key, attrs, now); !resultsEqual(reused, want) {
			t.Fatalf("step %d, %s %v: EvaluateTo into a reused Result\n got %+v\nwant %+v", i, key, attrs, reused, want)
		}
		var list []Attr
		for _, k := range slices.Sorted(maps.Keys(attrs)) {
			list = append(list, Attr{Key: k, Value: AnyValue(attrs[k])})
		}
		if snap.EvaluateAttrsTo(&reused, key, list, now); !resultsEqual(reused, want) {
			t.Fatalf("step %d, %s %v: EvaluateAttrsTo into a reused Result\n got %+v\nwant %+v", i, key, attrs, reused, want)
		}
	}
}

func ptrFloat(f float64) *float64 { return &f }

// resultsEqual compares two Results field by field (Value and Payload
// with ==, which suffices for the scalar flags of the test).
func resultsEqual(a, b Result) bool {
	return a.Value == b.Value && a.Variant == b.Variant && a.Payload == b.Payload &&
		string(a.ValueJSON) == string(b.ValueJSON) && string(a.PayloadJSON) == string(b.PayloadJSON) &&
		a.Reason == b.Reason && a.Bucketing == b.Bucketing && a.HasBucketing == b.HasBucketing &&
		a.FlagVersion == b.FlagVersion && (a.FlagMetadata == nil) == (b.FlagMetadata == nil)
}
