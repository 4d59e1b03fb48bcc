package wire

import "testing"

// TestOFREPReason: the mapping written from OpenFeature's reason
// definitions (DISABLED means the caller's default is served; a failed
// prerequisite serves the flag's off variant, a targeting decision).
func TestOFREPReason(t *testing.T) {
	for kind, want := range map[string]string{
		"OFF": "DISABLED", "TARGET_MATCH": "TARGETING_MATCH", "RULE_MATCH": "TARGETING_MATCH",
		"SEGMENT_MATCH": "TARGETING_MATCH", "PREREQUISITE_FAILED": "TARGETING_MATCH",
		"ROLLOUT": "SPLIT", "DEFAULT": "DEFAULT", "STATIC": "STATIC", "ERROR": "ERROR",
		"": "UNKNOWN", "CACHED": "CACHED", "TARGETING_MATCH_SPLIT": "TARGETING_MATCH_SPLIT",
	} {
		if got := OFREPReason(kind); got != want {
			t.Errorf("OFREPReason(%q) = %q, want %q", kind, got, want)
		}
	}
}
