package evaluate

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkBenchFlagParts measures what each part of the benchmark flag
// costs: the full flag (full), the flag without one of its three rules
// (no-rule1, no-seg, no-semver), the rollout alone, the rules with a fixed
// default, and a fixed flag (the cost of finding a flag and writing its
// Result). The difference between two rows is a part's marginal cost.
func BenchmarkBenchFlagParts(b *testing.B) {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = "beta-" + strconv.Itoa(1e7 + i)[1:]
	}
	rule1 := Rule{ID: "enterprise-eu", When: "plan == 'enterprise' and region == 'EU'", Serve: Serve{Variant: true}}
	rule2 := Rule{ID: "beta", Segment: "beta_testers", Serve: Serve{Variant: true}}
	rule3 := Rule{ID: "old-app", When: "semver(appVersion) < '2.0.0'", Serve: Serve{Variant: false}}
	rollout := &Serve{Rollout: []WeightedVariant{{Variant: true, Weight: 25}, {Variant: false, Weight: 75}}}
	fixed := &Serve{Variant: false}
	variants := []struct {
		name  string
		rules []Rule
		def   *Serve
	}{
		{"full", []Rule{rule1, rule2, rule3}, rollout},
		{"no-rule1", []Rule{rule2, rule3}, rollout},
		{"no-seg", []Rule{rule1, rule3}, rollout},
		{"no-semver", []Rule{rule1, rule2}, rollout},
		{"rollout-only", nil, rollout},
		{"rules-fixed", []Rule{rule1, rule2, rule3}, fixed},
		{"fixed-only", nil, fixed},
	}
	attrs := []Attr{{Key: "userId", Value: StringValue("8a7f4c91")}, {Key: "plan", Value: StringValue("pro")}, {Key: "region", Value: StringValue("US")}, {Key: "appVersion", Value: StringValue("2.3.1")}}
	for _, v := range variants {
		cfg := &Config{Environment: "prod", Salt: "prod-salt-2026", Version: 1,
			Segments: []Segment{{Key: "beta_testers", Included: ids}},
			Flags:    []Flag{{Key: "bench-flag", Rules: v.rules, Default: v.def}}}
		snap, err := Compile(cfg)
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		b.Run(v.name, func(b *testing.B) {
			var r Result
			for b.Loop() {
				snap.EvaluateAttrsTo(&r, "bench-flag", attrs, now)
			}
		})
	}
}
