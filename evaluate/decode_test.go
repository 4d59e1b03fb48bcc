package evaluate

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func decodeFindings(t *testing.T, err error) []Finding {
	t.Helper()
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not a *LoadError", err, err)
	}
	return le.Findings
}

// TestDecodeConfigJSONErrors checks every error of the strict JSON decoder
// with its exact position and field path.
func TestDecodeConfigJSONErrors(t *testing.T) {
	// The seed's payload form.
	cfg, err := DecodeConfigJSON([]byte(`{"environment": "prod", "flags": [{"key": "p", "type": "string", "variants": [{"name": "A", "payload": {"price": 23.00, "currency": "EUR"}}]}]}`))
	if err != nil || cfg.Environment != "prod" || cfg.Flags[0].Variants[0].Payload.(map[string]any)["price"] != 23.0 {
		t.Errorf("%+v %v", cfg, err)
	}

	tests := []struct {
		name string
		in   string
		want []string // "line:col code field"
		msg  string
	}{
		{"unknown field", "{\n  \"flags\": [\n    {\"key\": \"a\", \"stat\": \"on\"}\n  ]\n}", []string{"3:18 unknown-field flags[0]"}, `unknown field "stat"; did you mean "state"?`},
		{"unknown fields everywhere", "{\"flagz\": [], \"segments\": [{\"key\": \"s\", \"include\": []}]}", []string{"1:2 unknown-field ", "1:41 unknown-field segments[0]"}, `did you mean "flags"?`},
		{"unknown field in embedded serve", `{"flags": [{"key": "a", "rules": [{"id": "r", "variantt": true}]}]}`, []string{"1:47 unknown-field flags[0].rules[0]"}, `did you mean "variant"?`},
		// Names match exactly and may not repeat, as in the SDK's decoder
		// (which would load no flags from "Flags"): a file that verifies
		// loads the same in the SDK.
		{"field name in other case", `{"Flags": []}`, []string{"1:2 unknown-field "}, `unknown field "Flags"; did you mean "flags"?`},
		{"repeated field", `{"flags": [], "flags": []}`, []string{"1:15 duplicate-key "}, `duplicate key "flags"`},
		{"wrong type", "{\"flags\": [{\"key\": 1}]}", []string{"1:20 type flags[0].key"}, "expected a string, got the number 1"},
		{"wrong type: array", `{"flags": {}}`, []string{"1:11 type flags"}, "expected an array, got an object"},
		{"wrong type: integer", `{"version": 1.5}`, []string{"1:13 type version"}, "expected an integer"},
		{"wrong type: bool", `{"requireChangeReason": "yes"}`, []string{"1:25 type requireChangeReason"}, "expected true or false"},
		{"wrong type: time", `{"flags": [{"key": "a", "default": {"progressive": {"steps": [{"at": "soon", "percentage": 5}]}}}]}`, []string{"1:70 type flags[0].default.progressive.steps[0].at"}, "expected a time"},
		{"wrong type: map value", `{"attributes": {"plan": 1}}`, []string{"1:25 type attributes.plan"}, "expected a string"},
		{"syntax error", "{\n  \"flags\": [}\n", []string{"2:13 json-syntax "}, "invalid JSON"},
		{"truncated", `{"flags": [`, []string{"1:12 json-syntax "}, "invalid JSON"},
		{"trailing data", "{}\n{}", []string{"2:1 json-syntax "}, "unexpected data after the config"},
		{"not an object", "  [1]", []string{"1:3 json-syntax "}, "must be a JSON object"},
		{"null", "null", []string{"1:1 json-syntax "}, "must be a JSON object"},
		{"empty", "", []string{"1:1 json-syntax "}, "must be a JSON object"},
		{"too deep", `{"flags": [{"key": "a", "variants": [{"name": "x", "payload": ` + strings.Repeat("[", MaxNestingDepth) + strings.Repeat("]", MaxNestingDepth) + `}]}]}`, []string{"1:158 limit "}, "nesting deeper than"},
		{"number overflow", `{"flags": [{"key": "a", "variants": [{"name": "x", "payload": 1e999}]}]}`, []string{"1:63 type flags[0].variants[0].payload"}, "number 1e999 does not fit a float64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeConfigJSON([]byte(tt.in))
			if err == nil {
				t.Fatal("no error")
			}
			fs := decodeFindings(t, err)
			var got []string
			for _, f := range fs {
				got = append(got, f.Pos.String()+" "+f.Code+" "+f.Field)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("findings %q, want %q\n%v", got, tt.want, err)
			}
			if !strings.Contains(fs[0].Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", fs[0].Msg, tt.msg)
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		_, err := DecodeConfigJSON(make([]byte, MaxConfigJSONSize+1))
		if fs := decodeFindings(t, err); fs[0].Code != "limit" {
			t.Error(err)
		}
	})
}
