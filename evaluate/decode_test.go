package evaluate

import (
	"encoding/json"
	"errors"
	"fmt"
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
		// The SDK refuses these too (go-json-experiment); encoding/json
		// kept the last value and replaced bad bytes with U+FFFD.
		{"repeated field in a payload", `{"flags": [{"key": "a", "variants": [{"name": "x", "payload": {"p": 1, "p": 2}}]}]}`, []string{"1:72 duplicate-key flags[0].variants[0].payload"}, `duplicate key "p"`},
		{"invalid UTF-8", "{\"salt\": \"s\xff\"}", []string{"1:12 json-syntax "}, "invalid UTF-8"},
		{"one error of each kind, in order", "{\"version\": \"7\",\n \"flags\": [{\"key\": \"a\", \"rules\": [{\"id\": \"r\", \"percentage\": true, \"when\": 1}]}, \"b\"],\n \"segmentz\": []}",
			[]string{"1:13 type version", "2:61 type flags[0].rules[0].percentage", "2:75 type flags[0].rules[0].when", "2:81 type flags[1]", "3:2 unknown-field "}, `expected an integer, got the string "7"`},
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

// TestDecodeJSONOptions checks what DecodeJSON's callers rely on: a flag
// or segment counts nesting from its config's root, a write body may add
// fields of its own beside the entity's, AllowUnknownFields skips unknown
// members only, ExactNumbers keeps numbers as written, and a failed
// decode leaves v zero.
func TestDecodeJSONOptions(t *testing.T) {
	arrays := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	// A flag body's payload starts at depth 4 ({"variants": [{"payload":),
	// depth 6 in its config: 95 levels of payload make 100 there.
	for _, tc := range []struct {
		n  int
		ok bool
	}{{MaxNestingDepth - 5, true}, {MaxNestingDepth - 4, false}} {
		var f Flag
		err := DecodeJSON([]byte(`{"key": "a", "variants": [{"name": "x", "payload": `+arrays(tc.n)+`}]}`), &f, JSONOptions{})
		if (err == nil) != tc.ok {
			t.Errorf("flag with %d nested arrays: %v", tc.n, err)
		}
		var c Config
		err = DecodeJSON([]byte(`{"flags": [{"key": "a", "variants": [{"name": "x", "payload": `+arrays(tc.n)+`}]}]}`), &c, JSONOptions{})
		if (err == nil) != tc.ok {
			t.Errorf("config with %d nested arrays: %v", tc.n, err)
		}
	}

	var body struct {
		Segment
		Reason string `json:"changeReason"`
	}
	if err := DecodeJSON([]byte(`{"key": "s", "changeReason": "why", "included": ["a"]}`), &body, JSONOptions{}); err != nil || body.Key != "s" || body.Reason != "why" || len(body.Included) != 1 {
		t.Errorf("write body: %+v %v", body, err)
	}
	err := DecodeJSON([]byte(`{"key": "s", "chngeReason": "why"}`), &body, JSONOptions{})
	if fs := decodeFindings(t, err); fs[0].Msg != `unknown field "chngeReason"; did you mean "changeReason"?` || body.Key != "" {
		t.Errorf("%v; body %+v, want zero", err, body)
	}

	lenient := JSONOptions{AllowUnknownFields: true}
	var c Config
	if err := DecodeJSON([]byte(`{"salt": "s", "next": {"a": [1]}, "flags": [{"key": "a", "next": 1, "Key": "b"}]}`), &c, lenient); err != nil || c.Salt != "s" || c.Flags[0].Key != "a" {
		t.Errorf("unknown members (and a name in another case) skipped: %+v %v", c, err)
	}
	for _, in := range []string{`{"salt": "s", "salt": "t"}`, `{"salt": 1}`, `{"flags": [{"key": "a", "next": {"x": 1, "x": 2}}]}`} {
		if err := DecodeJSON([]byte(in), &c, lenient); err == nil {
			t.Errorf("%s: accepted leniently", in)
		}
	}

	const in = `{"flags": [{"key": "a", "type": "json", "variants": [{"name": "x", "value": {"id": 12345678901234567890, "f": 2.50}}], "flagMetadata": {"n": 1e2}}]}`
	for _, tc := range []struct {
		opts     JSONOptions
		id, f, n any
	}{
		{JSONOptions{}, 12345678901234567890.0, 2.5, 100.0},
		{JSONOptions{ExactNumbers: true}, json.Number("12345678901234567890"), json.Number("2.50"), json.Number("1e2")},
	} {
		var c Config
		if err := DecodeJSON([]byte(in), &c, tc.opts); err != nil {
			t.Fatal(err)
		}
		v := c.Flags[0].Variants[0].Value.(map[string]any)
		if v["id"] != tc.id || v["f"] != tc.f || c.Flags[0].FlagMetadata["n"] != tc.n {
			t.Errorf("%+v: %#v %#v", tc.opts, v, c.Flags[0].FlagMetadata)
		}
	}

	if err := DecodeJSON([]byte(`{}`), Config{}, JSONOptions{}); err == nil {
		t.Error("a non-pointer was accepted")
	}
	// No "flags" member: Flags stays nil (the decoder sizes it up front).
	if err := DecodeJSON([]byte(`{"segments": [{"key": "s", "description": "`+strings.Repeat("d", 1000)+`"}]}`), &c, JSONOptions{}); err != nil || c.Flags != nil {
		t.Errorf("flags %#v, %v", c.Flags, err)
	}
}

// TestDecodeJSONFindingsBounded: after the first error DecodeJSON reads
// on for more, up to MaxLoadFindings, and rereads a large input only a
// bounded number of times.
func TestDecodeJSONFindingsBounded(t *testing.T) {
	var small strings.Builder
	small.WriteString(`{"flags": [`)
	for i := range 2 * MaxLoadFindings {
		if i > 0 {
			small.WriteString(",")
		}
		fmt.Fprintf(&small, `{"key": "f%d", "stat": "on"}`, i)
	}
	small.WriteString(`]}`)
	if fs := decodeFindings(t, DecodeJSON([]byte(small.String()), &Config{}, JSONOptions{})); len(fs) != MaxLoadFindings {
		t.Errorf("%d findings, want %d", len(fs), MaxLoadFindings)
	}
	large := strings.Replace(small.String(), `{"flags": [`, `{"salt": "`+strings.Repeat("s", 2<<20)+`", "flags": [`, 1)
	if fs := decodeFindings(t, DecodeJSON([]byte(large), &Config{}, JSONOptions{})); len(fs) == 0 || len(fs) > 8 {
		t.Errorf("%d findings in a 2 MiB input, want 1 to 8", len(fs))
	}
}
