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

// TestResolutionFlagMetadata: the flag's own metadata reaches OpenFeature's
// FlagMetadata with the types its getters read (a whole number within
// ±2^53 an int64, any other number a float64), beside Flagwire's entries,
// in a map of its own.
func TestResolutionFlagMetadata(t *testing.T) {
	shared := map[string]any{"s": "1.0.2", "b": true, "i": 2.0, "neg": -3.0, "f": 0.1, "huge": float64(1<<53) * 4, "edge": float64(1 << 53)}
	d := flagwire.Detail{FlagKey: "f", Variant: "true", Source: flagwire.SourceRemote, Reason: flagwire.Reason{Kind: "STATIC", Bucket: -1}, FlagMetadata: shared}
	md := resolution(d).FlagMetadata
	want := of.FlagMetadata{"s": "1.0.2", "b": true, "i": int64(2), "neg": int64(-3), "f": 0.1, "huge": float64(1<<53) * 4, "edge": int64(1 << 53),
		"source": "REMOTE", "reasonKind": "STATIC"}
	if len(md) != len(want) {
		t.Fatalf("metadata %#v, want %#v", md, want)
	}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("metadata[%q] = %#v (%T), want %#v (%T)", k, md[k], md[k], v, v)
		}
	}
	if i, err := md.GetInt("i"); err != nil || i != 2 {
		t.Errorf("GetInt: %v %v", i, err)
	}
	if f, err := md.GetFloat("f"); err != nil || f != 0.1 {
		t.Errorf("GetFloat: %v %v", f, err)
	}
	md["s"] = "changed"
	if shared["s"] != "1.0.2" {
		t.Error("changing OpenFeature's metadata changed the Detail's shared map")
	}
}
