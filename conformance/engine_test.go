package conformance

import (
	"maps"
	"slices"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
)

// engineOutcome evaluates c with the engine and applies typed access.
func engineOutcome(t *testing.T, snap *evaluate.Snapshot, c *tcase, exact, list bool) outcome {
	t.Helper()
	def := c.defaultValue(t)
	var res evaluate.Result
	if list {
		res = snap.EvaluateAttrs(c.Flag, attrList(c.attrs(t, exact)), c.when(t))
	} else {
		res = snap.Evaluate(c.Flag, c.attrs(t, exact), c.when(t))
	}
	if res.Reason.Kind == evaluate.ReasonError {
		return errorOutcome(def, string(res.Reason.ErrorCode))
	}
	ft, _ := snap.FlagType(c.Flag)
	v, ok := typedAccess(c.Type, ft, norm(res.Value), norm(res.Payload))
	if !ok {
		return errorOutcome(def, string(evaluate.ErrorTypeMismatch))
	}
	o := outcome{
		Value: v, Variant: res.Variant, Reason: string(res.Reason.Kind),
		RuleID: res.Reason.RuleID, Segment: res.Reason.Segment,
		ErrorCode: string(res.Reason.ErrorCode), Prerequisite: res.Reason.Prerequisite,
		Payload: norm(res.Payload), Bucket: -1,
	}
	if res.HasBucketing {
		o.Bucket = int(res.Bucketing.Bucket)
	}
	return o
}

// attrList states a case's context as a list of Attrs, in a fixed order
// (sorted keys) so that a failure repeats.
func attrList(m map[string]any) []evaluate.Attr {
	list := make([]evaluate.Attr, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		list = append(list, evaluate.Attr{Key: k, Value: evaluate.AnyValue(m[k])})
	}
	return list
}

func runEngine(t *testing.T, exact, list bool) {
	files := loadCases(t)
	skip := func(cf *caseFile, c *tcase) string {
		if !exact && c.ExactNumbers {
			return "needs exact numbers (float64 context)"
		}
		return ""
	}
	forEachCase(t, files, skip, func(t *testing.T, cf *caseFile, c *tcase) {
		cfg := decodeConfig(t, cf.config(c))
		snap, err := evaluate.Compile(cfg)
		if c.Expect.CompileError {
			checkCompileError(t, c, "evaluate.Compile", err)
			return
		}
		if err != nil {
			t.Fatalf("compile: %v", err)
		}
		check(t, c, c.Expect, engineOutcome(t, snap, c, exact, list))
	})
}

// TestEngine runs every case through evaluate.Compile + Snapshot.Evaluate
// with the context's numbers as json.Number (exact), as the server decodes
// them.
func TestEngine(t *testing.T) { runEngine(t, true, false) }

// TestEngineFloat64 runs them again with the context's numbers as float64,
// as a Go caller's map literal holds them (cases needing exact big numbers
// are skipped).
func TestEngineFloat64(t *testing.T) { runEngine(t, false, false) }

// TestEngineAttrs runs every case through Snapshot.EvaluateAttrs, the
// context stated as a list of Attrs (evaluate.AnyValue of each value;
// strings, bools and numbers held unboxed), as flagwire.WithSubject
// states it in local and offline modes.
func TestEngineAttrs(t *testing.T) { runEngine(t, true, true) }

// TestEngineAttrsFloat64 is TestEngineAttrs with the numbers as float64
// (Float64Value), as flagwire.Float64 states them.
func TestEngineAttrsFloat64(t *testing.T) { runEngine(t, false, true) }
