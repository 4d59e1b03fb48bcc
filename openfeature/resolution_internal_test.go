package flagwireof

import (
	"testing"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/flagwire/flagwire"
)

// TestResolutionMissingBucketingAttribute: a Flagwire detail carrying
// MISSING_BUCKETING_ATTRIBUTE (the off variant served, reason DEFAULT, from
// any source) becomes OpenFeature's TARGETING_KEY_MISSING with reason
// ERROR and no variant, so the SDK returns the caller's default.
func TestResolutionMissingBucketingAttribute(t *testing.T) {
	for _, src := range []flagwire.Source{flagwire.SourceRemote, flagwire.SourceLocal, flagwire.SourceCache} {
		d := flagwire.Detail{
			FlagKey: "f", Variant: "false", Source: src, ErrorCode: "MISSING_BUCKETING_ATTRIBUTE",
			Reason: flagwire.Reason{Kind: "DEFAULT", Bucket: -1},
		}
		r := resolution(d)
		if got := r.ResolutionDetail(); got.ErrorCode != of.TargetingKeyMissingCode || got.Reason != of.ErrorReason || got.Variant != "" {
			t.Errorf("%v: code %q reason %q variant %q; want TARGETING_KEY_MISSING, ERROR, no variant", src, got.ErrorCode, got.Reason, got.Variant)
		}
	}
}

// TestReasonDisabledOnlyForOff: OFF is DISABLED from any data the value
// came from; PREREQUISITE_FAILED (the flag is on, its prerequisite decided
// for this subject) is TARGETING_MATCH.
func TestReasonDisabledOnlyForOff(t *testing.T) {
	cases := []struct {
		d    flagwire.Detail
		want of.Reason
	}{
		{flagwire.Detail{Source: flagwire.SourceRemote, Reason: flagwire.Reason{Kind: "OFF"}}, of.DisabledReason},
		{flagwire.Detail{Source: flagwire.SourceCache, Reason: flagwire.Reason{Kind: "OFF"}}, of.DisabledReason},
		{flagwire.Detail{Source: flagwire.SourceLocal, Reason: flagwire.Reason{Kind: "OFF"}}, of.DisabledReason},
		{flagwire.Detail{Source: flagwire.SourceRemote, Reason: flagwire.Reason{Kind: "PREREQUISITE_FAILED"}}, of.TargetingMatchReason},
		{flagwire.Detail{Source: flagwire.SourceRemote, Reason: flagwire.Reason{Kind: "STATIC"}}, of.StaticReason},
		{flagwire.Detail{Source: flagwire.SourceCache, Reason: flagwire.Reason{Kind: "STATIC"}}, of.CachedReason},
	}
	for _, tc := range cases {
		if got := Reason(tc.d); got != tc.want {
			t.Errorf("%v %s: %q, want %q", tc.d.Source, tc.d.Reason.Kind, got, tc.want)
		}
	}
}
