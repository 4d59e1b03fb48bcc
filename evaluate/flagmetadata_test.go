package evaluate

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestFlagMetadataServedWithEveryAnswer: a flag's FlagMetadata comes with
// every result of the flag, whatever the reason, normalized (numbers as
// float64); a flag without any and an unknown flag have none.
func TestFlagMetadataServedWithEveryAnswer(t *testing.T) {
	md := map[string]any{"release": "1.0.2", "build": 2, "ratio": 0.1, "beta": true, "big": int64(1) << 40, "n": json.Number("7")}
	// Written from the documented rule: every number is a float64.
	want := map[string]any{"release": "1.0.2", "build": 2.0, "ratio": 0.1, "beta": true, "big": float64(1 << 40), "n": 7.0}
	cfg := &Config{Salt: "s", Flags: []Flag{
		{Key: "gate", State: StateOff},
		{Key: "f", FlagMetadata: md,
			Prerequisites: []Prerequisite{{FlagKey: "gate", Variants: []any{true}}}},
		{Key: "g", FlagMetadata: md, Rules: []Rule{{ID: "pro", When: "plan == 'pro'", Serve: Serve{Variant: true}}}},
		{Key: "h", FlagMetadata: md, State: StateOff},
		{Key: "plain"},
		{Key: "empty", FlagMetadata: map[string]any{}},
	}}
	snap := mustCompile(t, cfg)
	cases := []struct {
		key   string
		attrs Attributes
		kind  ReasonKind
		want  map[string]any
	}{
		{"f", nil, ReasonPrerequisiteFailed, want},
		{"g", Attributes{"plan": "pro"}, ReasonRuleMatch, want},
		{"g", Attributes{"plan": "free"}, ReasonDefault, want},
		{"h", nil, ReasonOff, want},
		{"plain", nil, ReasonStatic, nil},
		{"empty", nil, ReasonStatic, nil},
		{"missing", nil, ReasonError, nil},
	}
	for _, tc := range cases {
		r := snap.Evaluate(tc.key, tc.attrs, time.Time{})
		if r.Reason.Kind != tc.kind {
			t.Errorf("%s %v: reason %s, want %s", tc.key, tc.attrs, r.Reason.Kind, tc.kind)
		}
		if !reflect.DeepEqual(r.FlagMetadata, tc.want) || (tc.want == nil) != (r.FlagMetadata == nil) {
			t.Errorf("%s %v: FlagMetadata %#v, want %#v", tc.key, tc.attrs, r.FlagMetadata, tc.want)
		}
	}
	// Compiled once: the caller's map is not the one served, and changing
	// it afterwards (which Compile forbids) does not reach results.
	md["release"] = "changed"
	if got := snap.Evaluate("g", nil, time.Time{}).FlagMetadata["release"]; got != "1.0.2" {
		t.Errorf("release %v after the source changed", got)
	}
}

// TestFlagMetadataEvaluateDoesNotAllocate: serving the metadata costs no
// allocation.
func TestFlagMetadataEvaluateDoesNotAllocate(t *testing.T) {
	snap := mustCompile(t, &Config{Flags: []Flag{{Key: "f", FlagMetadata: map[string]any{"a": "b", "n": 1.5}}}})
	if n := testing.AllocsPerRun(1000, func() { snap.Evaluate("f", nil, time.Time{}) }); n != 0 {
		t.Fatalf("Evaluate allocates %v times per call", n)
	}
}

// TestFlagMetadataCompileErrors: values other than strings, booleans and
// finite numbers, reserved and empty keys and the limits are compile
// errors naming the flag and the key.
func TestFlagMetadataCompileErrors(t *testing.T) {
	many := map[string]any{}
	for i := range MaxFlagMetadataEntries + 1 {
		many[strings.Repeat("k", i+1)] = true
	}
	cases := []struct {
		name string
		md   map[string]any
		want string
	}{
		{"object", map[string]any{"nested": map[string]any{"a": 1}}, `flag "f" flagMetadata.nested: flagMetadata "nested": map[string]interface {} is not allowed: use a string, a boolean or a number`},
		{"list", map[string]any{"tags": []any{"a"}}, `flag "f" flagMetadata.tags: flagMetadata "tags": []interface {} is not allowed`},
		{"null", map[string]any{"gone": nil}, `flagMetadata "gone": null is not allowed`},
		{"NaN", map[string]any{"x": math.NaN()}, `flagMetadata "x": number NaN is not finite`},
		{"infinity", map[string]any{"x": math.Inf(1)}, `flagMetadata "x": number +Inf is not finite`},
		{"reserved", map[string]any{"ruleId": "r"}, `flagMetadata key "ruleId" is reserved`},
		{"empty key", map[string]any{"": "r"}, `flagMetadata has an empty key`},
		{"long string", map[string]any{"s": strings.Repeat("x", MaxFlagMetadataValueLen+1)}, `flagMetadata "s": string of 1025 bytes exceeds the limit of 1024`},
		{"too many", many, `65 flagMetadata entries exceed the limit of 64`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(&Config{Flags: []Flag{{Key: "f", FlagMetadata: tc.md}}})
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("want *CompileError, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

// TestDecodeConfigJSONFlagMetadata: the strict JSON decoder accepts
// flagMetadata, and the values it decodes compile.
func TestDecodeConfigJSONFlagMetadata(t *testing.T) {
	cfg, err := DecodeConfigJSON([]byte(`{"flags": [{"key": "m", "flagMetadata": {"string": "1.0.2", "integer": 2, "float": 0.1, "boolean": true}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"string": "1.0.2", "integer": 2.0, "float": 0.1, "boolean": true}
	if got := mustCompile(t, cfg).Evaluate("m", nil, time.Time{}).FlagMetadata; !reflect.DeepEqual(got, want) {
		t.Errorf("FlagMetadata %#v, want %#v", got, want)
	}
	_, err = DecodeConfigJSON([]byte(`{"flags": [{"key": "m", "flagmetadata": {}}]}`))
	if err == nil || !strings.Contains(err.Error(), `unknown field "flagmetadata"`) {
		t.Errorf("misspelled field: %v", err)
	}
}
