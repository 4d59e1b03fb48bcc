package flagwire

import (
	"testing"

	"github.com/flagwire/flagwire/evaluate"
)

// TestReasonKindsAreTheDocumentedNames: Reason.Kind is the engine's typed
// kind, and each constant a caller compares with prints the name the Flag
// API documents for it (the reason kinds of POST /v1/evaluate).
func TestReasonKindsAreTheDocumentedNames(t *testing.T) {
	for doc, kind := range map[string]evaluate.ReasonKind{
		"OFF": evaluate.ReasonOff, "TARGET_MATCH": evaluate.ReasonTargetMatch,
		"RULE_MATCH": evaluate.ReasonRuleMatch, "SEGMENT_MATCH": evaluate.ReasonSegmentMatch,
		"ROLLOUT": evaluate.ReasonRollout, "PREREQUISITE_FAILED": evaluate.ReasonPrerequisiteFailed,
		"DEFAULT": evaluate.ReasonDefault, "STATIC": evaluate.ReasonStatic, "ERROR": evaluate.ReasonError,
	} {
		var r Reason
		r.Kind = kind
		if string(r.Kind) != doc {
			t.Errorf("%q != documented %q", r.Kind, doc)
		}
	}
}
