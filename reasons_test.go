package flagwire

import (
	"testing"

	"github.com/flagwire/flagwire/evaluate"
)

// TestReasonConstantsAreTheEngines: the root package's reason kinds are
// the engine's, so a Detail from any mode compares equal to them.
func TestReasonConstantsAreTheEngines(t *testing.T) {
	for root, engine := range map[string]evaluate.ReasonKind{
		ReasonOff: evaluate.ReasonOff, ReasonTargetMatch: evaluate.ReasonTargetMatch,
		ReasonRuleMatch: evaluate.ReasonRuleMatch, ReasonSegmentMatch: evaluate.ReasonSegmentMatch,
		ReasonRollout: evaluate.ReasonRollout, ReasonPrerequisiteFailed: evaluate.ReasonPrerequisiteFailed,
		ReasonDefault: evaluate.ReasonDefault, ReasonStatic: evaluate.ReasonStatic, ReasonError: evaluate.ReasonError,
	} {
		if root != string(engine) {
			t.Errorf("%q != engine's %q", root, engine)
		}
	}
}
