// Package bench measures Flagwire side by side with its peers: the
// LaunchDarkly Go server SDK v7 and the OpenFeature Go SDK. It is a
// separate module (github.com/flagwire/flagwire/bench) so that the SDK's own
// module never depends on them.
//
// Every engine evaluates the design's benchmark flag: a boolean flag with
// three rules — plan == 'enterprise' and region == 'EU'; member of the
// segment beta_testers (1,000 static ids); semver(appVersion) < 2.0.0 —
// and a 25% / 75% rollout as fallthrough, for the subject
// {userId: 8a7f4c91, plan: pro, region: US, appVersion: 2.3.1}, which
// misses every rule and lands in the rollout. The same flag is expressed
//
//   - for Flagwire as an evaluate.Config (FlagwireConfig),
//   - for LaunchDarkly as a flag and a regular segment with included keys,
//     built with ldbuilders (LaunchDarklyFlag, LaunchDarklySegment): clauses
//     "plan in [enterprise]" and "region in [EU]", a segmentMatch clause, a
//     semVerLessThan clause, and a 25,000/75,000 rollout,
//   - for the OpenFeature in-memory provider, which has no rules engine, as a
//     ContextEvaluator: the same logic written directly in Go
//     (OpenFeatureFlag). That is the fastest an OpenFeature in-memory
//     evaluation can be; the SDK's own overhead (context merging,
//     flattening, hooks, resolution details) is what it measures.
//
// Rollouts bucket differently in each product (Flagwire: SHA-256 of
// salt:seed:id; LaunchDarkly: SHA-1 of key.salt.id), so the 25% are not
// the same users; the rule outcomes are the same (see TestEnginesAgree).
//
// Run the comparison and print the README's table with
//
//	cd bench && go run ./cmd/table
package bench

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
)

// The benchmark flag's names and its subject.
const (
	FlagKey     = "bench-flag"
	SegmentKey  = "beta_testers"
	SegmentSize = 1000
	Salt        = "prod-salt-2026"
	Environment = "prod"
)

// Subject is the evaluated subject's attributes.
var Subject = flagwire.Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US", "appVersion": "2.3.1"}

// SubjectAttrs returns Subject as a list of Attrs (flagwire.WithSubject,
// evaluate.Snapshot.EvaluateAttrs).
func SubjectAttrs() []flagwire.Attr {
	return []flagwire.Attr{
		flagwire.StringAttr("userId", Subject["userId"].(string)),
		flagwire.StringAttr("plan", Subject["plan"].(string)),
		flagwire.StringAttr("region", Subject["region"].(string)),
		flagwire.StringAttr("appVersion", Subject["appVersion"].(string)),
	}
}

// SegmentIDs returns the segment's static ids: beta-0000000 … beta-0000999.
func SegmentIDs() []string {
	ids := make([]string, SegmentSize)
	for i := range ids {
		ids[i] = fmt.Sprintf("beta-%07d", i)
	}
	return ids
}

// benchFlag is the benchmark flag for Flagwire, under key.
func benchFlag(key string) evaluate.Flag {
	return evaluate.Flag{
		Key: key,
		Rules: []evaluate.Rule{
			{ID: "enterprise-eu", When: "plan == 'enterprise' and region == 'EU'", Serve: evaluate.Serve{Variant: true}},
			{ID: "beta", Segment: SegmentKey, Serve: evaluate.Serve{Variant: true}},
			{ID: "old-app", When: "semver(appVersion) < '2.0.0'", Serve: evaluate.Serve{Variant: false}},
		},
		Default: &evaluate.Serve{Rollout: []evaluate.WeightedVariant{{Variant: true, Weight: 25}, {Variant: false, Weight: 75}}},
	}
}

// FlagwireConfig is the benchmark flag for Flagwire, with the flags
// bench-flag-0 … bench-flag-(extra-1) beside it (copies of it) when extra
// is positive.
func FlagwireConfig(extra int) *evaluate.Config {
	cfg := &evaluate.Config{
		Environment: Environment,
		Salt:        Salt,
		Version:     1,
		Segments:    []evaluate.Segment{{Key: SegmentKey, Included: SegmentIDs()}},
		Flags:       []evaluate.Flag{benchFlag(FlagKey)},
	}
	for i := 0; i < extra; i++ {
		cfg.Flags = append(cfg.Flags, benchFlag(FlagKey+"-"+strconv.Itoa(i)))
	}
	return cfg
}

// FlagwireRulesConfig is a flag "rules" with n rules
// "plan == 'plan-i' and region == 'EU'", none of which matches Subject,
// and a fixed fallthrough: the cost of trying n rules.
func FlagwireRulesConfig(n int) *evaluate.Config {
	rules := make([]evaluate.Rule, n)
	for i := range rules {
		rules[i] = evaluate.Rule{ID: "r" + strconv.Itoa(i), When: fmt.Sprintf("plan == 'plan-%d' and region == 'EU'", i), Serve: evaluate.Serve{Variant: true}}
	}
	return &evaluate.Config{
		Environment: Environment,
		Salt:        Salt,
		Version:     1,
		Flags:       []evaluate.Flag{{Key: "rules", Rules: rules, Default: &evaluate.Serve{Variant: false}}},
	}
}

// LaunchDarklyContext is Subject as a LaunchDarkly context.
func LaunchDarklyContext() ldcontext.Context {
	return ldcontext.NewBuilder(Subject["userId"].(string)).
		SetString("plan", Subject["plan"].(string)).
		SetString("region", Subject["region"].(string)).
		SetString("appVersion", Subject["appVersion"].(string)).
		Build()
}

// LaunchDarklySegment is the segment beta_testers with 1,000 included keys.
func LaunchDarklySegment() ldmodel.Segment {
	return ldbuilders.NewSegmentBuilder(SegmentKey).Included(SegmentIDs()...).Version(1).Build()
}

// LaunchDarklyFlag is the benchmark flag for LaunchDarkly, under key.
// Variation 0 is false, 1 is true.
func LaunchDarklyFlag(key string) ldmodel.FeatureFlag {
	return ldbuilders.NewFlagBuilder(key).
		On(true).
		Variations(ldvalue.Bool(false), ldvalue.Bool(true)).
		OffVariation(0).
		AddRule(ldbuilders.NewRuleBuilder().ID("enterprise-eu").Variation(1).Clauses(
			ldbuilders.Clause("plan", ldmodel.OperatorIn, ldvalue.String("enterprise")),
			ldbuilders.Clause("region", ldmodel.OperatorIn, ldvalue.String("EU")),
		)).
		AddRule(ldbuilders.NewRuleBuilder().ID("beta").Variation(1).Clauses(
			ldbuilders.SegmentMatchClause(SegmentKey),
		)).
		AddRule(ldbuilders.NewRuleBuilder().ID("old-app").Variation(0).Clauses(
			ldbuilders.Clause("appVersion", ldmodel.OperatorSemVerLessThan, ldvalue.String("2.0.0")),
		)).
		Fallthrough(ldbuilders.Rollout(ldbuilders.Bucket(1, 25000), ldbuilders.Bucket(0, 75000))).
		Salt(Salt).
		Version(1).
		Build()
}

// LaunchDarklyRulesFlag is FlagwireRulesConfig's flag for LaunchDarkly.
func LaunchDarklyRulesFlag(n int) ldmodel.FeatureFlag {
	b := ldbuilders.NewFlagBuilder("rules").On(true).
		Variations(ldvalue.Bool(false), ldvalue.Bool(true)).
		OffVariation(0).
		FallthroughVariation(0).
		Version(1)
	for i := 0; i < n; i++ {
		b.AddRule(ldbuilders.NewRuleBuilder().ID("r"+strconv.Itoa(i)).Variation(1).Clauses(
			ldbuilders.Clause("plan", ldmodel.OperatorIn, ldvalue.String("plan-"+strconv.Itoa(i))),
			ldbuilders.Clause("region", ldmodel.OperatorIn, ldvalue.String("EU")),
		))
	}
	return b.Build()
}

// OpenFeatureContext is Subject as an OpenFeature evaluation context.
func OpenFeatureContext() openfeature.EvaluationContext {
	return openfeature.NewEvaluationContext(Subject["userId"].(string), map[string]any{
		"plan":       Subject["plan"],
		"region":     Subject["region"],
		"appVersion": Subject["appVersion"],
	})
}

// OpenFeatureFlag is the benchmark flag for the OpenFeature in-memory
// provider: its ContextEvaluator implements the three rules and the
// rollout directly in Go (the provider has no rules engine), with the
// segment as a Go map and Flagwire's bucketing function.
func OpenFeatureFlag() memprovider.InMemoryFlag {
	segment := make(map[string]struct{}, SegmentSize)
	for _, id := range SegmentIDs() {
		segment[id] = struct{}{}
	}
	eval := func(this memprovider.InMemoryFlag, c openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		str := func(k string) string { s, _ := c[k].(string); return s }
		id := str(openfeature.TargetingKey)
		switch {
		case str("plan") == "enterprise" && str("region") == "EU":
			return true, openfeature.ProviderResolutionDetail{Reason: openfeature.TargetingMatchReason, Variant: "on"}
		case inSet(segment, id):
			return true, openfeature.ProviderResolutionDetail{Reason: openfeature.TargetingMatchReason, Variant: "on"}
		case semverLess(str("appVersion"), 2, 0, 0):
			return false, openfeature.ProviderResolutionDetail{Reason: openfeature.TargetingMatchReason, Variant: "off"}
		}
		if rolloutBucket(id) < 25000 {
			return true, openfeature.ProviderResolutionDetail{Reason: openfeature.SplitReason, Variant: "on"}
		}
		return false, openfeature.ProviderResolutionDetail{Reason: openfeature.SplitReason, Variant: "off"}
	}
	return memprovider.InMemoryFlag{
		Key:              FlagKey,
		State:            memprovider.Enabled,
		DefaultVariant:   "off",
		Variants:         map[string]any{"on": true, "off": false},
		ContextEvaluator: &eval,
	}
}

func inSet(set map[string]struct{}, id string) bool {
	_, ok := set[id]
	return ok
}

// semverLess reports whether v (MAJOR.MINOR.PATCH, pre-release ignored)
// is below major.minor.patch; an unparsable v is not.
func semverLess(v string, major, minor, patch int) bool {
	v, _, _ = strings.Cut(v, "-")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) != 3 {
		return false
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil {
			return false
		}
		n[i] = x
	}
	want := [3]int{major, minor, patch}
	for i := range n {
		if n[i] != want[i] {
			return n[i] < want[i]
		}
	}
	return false
}

// rolloutBucket is Flagwire's bucketing function (evaluate.Bucket) for the
// benchmark flag, written out so the OpenFeature evaluator pays the same
// hashing cost without calling Flagwire.
func rolloutBucket(id string) uint32 {
	var buf [160]byte
	b := append(buf[:0], Salt...)
	b = append(b, ':')
	b = append(b, FlagKey...)
	b = append(b, ':')
	b = append(b, id...)
	h := sha256.Sum256(b)
	return uint32(binary.BigEndian.Uint64(h[:8]) % 100000)
}

// Background is the context used by every benchmark call.
var Background = context.Background()
