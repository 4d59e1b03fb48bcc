package testkit

import (
	"fmt"

	"github.com/flagwire/flagwire/evaluate"
)

// BenchFlag is the design's benchmark flag under key (a boolean): rules
// enterprise-eu (plan enterprise in region EU: true), beta (segment
// beta_testers: true) and old-app (appVersion below 2.0.0: false), then a
// 25% rollout to true.
func BenchFlag(key string) evaluate.Flag {
	return evaluate.Flag{
		Key: key,
		Rules: []evaluate.Rule{
			{ID: "enterprise-eu", When: "plan == 'enterprise' and region == 'EU'", Serve: evaluate.Serve{Variant: true}},
			{ID: "beta", Segment: "beta_testers", Serve: evaluate.Serve{Variant: true}},
			{ID: "old-app", When: "semver(appVersion) < '2.0.0'", Serve: evaluate.Serve{Variant: false}},
		},
		Default: &evaluate.Serve{Rollout: []evaluate.WeightedVariant{{Variant: true, Weight: 25}, {Variant: false, Weight: 75}}},
	}
}

// BetaSegment is the benchmark flag's segment beta_testers: the n ids
// BetaID(0) … BetaID(n-1).
func BetaSegment(n int) evaluate.Segment {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = BetaID(i)
	}
	return evaluate.Segment{Key: "beta_testers", Included: ids}
}

// BetaID is the i-th id of BetaSegment: "beta-0042" for 42.
func BetaID(i int) string { return fmt.Sprintf("beta-%04d", i) }

// SeedSalt returns the first salt "prod-salt-N" under which account
// "acme-co-1337" lands in the B half (bucket 50000 and up) of
// pricing-experiment's 50/50 rollout, as in the integration guide's
// example response.
func SeedSalt() string {
	for i := 0; ; i++ {
		salt := fmt.Sprintf("prod-salt-%d", i)
		if _, b := evaluate.Bucket(salt, "pricing-experiment", "acme-co-1337"); b >= 50000 {
			return salt
		}
	}
}
