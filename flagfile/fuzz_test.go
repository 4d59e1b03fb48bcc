package flagfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
)

// fuzzNow is the evaluation and lint time of the fuzz targets.
var fuzzNow = time.Date(2026, 6, 25, 12, 0, 0, 0, time.UTC)

// fuzzAttrs are the subjects every flag of a fuzzed config is evaluated
// for: none, typical, and attributes of every awkward type.
var fuzzAttrs = []evaluate.Attributes{
	nil,
	{},
	{"userId": "8a7f4c91", "plan": "pro", "region": "US", "country": "DE", "accountId": "acc-1", "appVersion": "1.9.0"},
	{"userId": "bench-0005", "plan": "enterprise", "region": "EU", "appVersion": "v2", "email": "x@example.com"},
	{"userId": 42, "plan": true, "region": []any{"US"}, "appVersion": map[string]any{"major": 1}, "account": map[string]any{"id": 3.5, "plan": "pro"}, "tags": []string{"beta"}, "age": json.Number("30")},
}

// fuzzYAMLSeeds are the flags-as-code files under testdata.
func fuzzYAMLSeeds(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	for _, dir := range []string{"testdata/flags", "testdata/lint"} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
				return err
			}
			data, err := os.ReadFile(p)
			seeds = append(seeds, data)
			return err
		})
		if err != nil {
			f.Fatal(err)
		}
	}
	return append(seeds, []byte(seedYAML))
}

// checkEvaluable asserts the fuzz properties of a decoded config: Lint
// never panics, and a config that compiles evaluates every flag for every
// subject without panicking and with a consistent result.
func checkEvaluable(t *testing.T, cfg *evaluate.Config) {
	t.Helper()
	for _, f := range Lint(cfg, fuzzNow, LintOptions{}) {
		if f.Code == "" || f.Msg == "" || (f.Severity != evaluate.SeverityError && f.Severity != evaluate.SeverityWarning) {
			t.Fatalf("malformed finding %+v", f)
		}
	}
	snap, err := evaluate.Compile(cfg)
	if err != nil {
		var ce *evaluate.CompileError
		if !errors.As(err, &ce) || len(ce.Findings) == 0 {
			t.Fatalf("Compile error %v is no *CompileError with findings", err)
		}
		return
	}
	for _, key := range snap.Keys() {
		for _, attrs := range fuzzAttrs {
			r := snap.Evaluate(key, attrs, fuzzNow)
			if r.Reason.Kind == evaluate.ReasonError {
				t.Fatalf("flag %q: evaluation error %+v", key, r.Reason)
			}
			if r.Variant == "" {
				t.Fatalf("flag %q: no variant served (%+v)", key, r.Reason)
			}
			r2, _ := snap.EvaluateExplain(key, attrs, fuzzNow)
			if r2.Variant != r.Variant {
				t.Fatalf("flag %q: Evaluate served %q, EvaluateExplain %q", key, r.Variant, r2.Variant)
			}
		}
	}
}

// FuzzLoadYAML feeds arbitrary bytes to the flags-as-code loader: it never
// panics, errors are *LoadError findings positioned in the file, and what
// loads, merges and compiles is evaluable. A loaded flag marshals back to
// YAML that loads again to the same YAML.
func FuzzLoadYAML(f *testing.F) {
	for _, s := range fuzzYAMLSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte("flagKey: a\nenvironment: e\nrules:\n  - id: r\n    when: >\n      a == 'x'\n      and b\n    variant: true\n"))
	f.Add([]byte("x: &a [*a, *a]\nflagKey: &k k\nenvironment: *k\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := LoadYAML("fuzz.yaml", data)
		if err != nil {
			var le *evaluate.LoadError
			if !errors.As(err, &le) || len(le.Findings) == 0 {
				t.Fatalf("error %v is no *LoadError with findings", err)
			}
			for _, f := range le.Findings {
				if f.Pos.File != "fuzz.yaml" || f.Severity != evaluate.SeverityError {
					t.Fatalf("finding without file position: %+v", f)
				}
			}
			return
		}
		for _, fl := range file.Flags {
			out, err := MarshalYAML(fl)
			if err != nil {
				continue // values YAML cannot represent
			}
			back, err := LoadYAML("again.yaml", out)
			if err != nil {
				t.Fatalf("marshaled flag does not load: %v\n%s", err, out)
			}
			if len(back.Flags) != 1 {
				t.Fatalf("marshaled flag loads as %d flags:\n%s", len(back.Flags), out)
			}
			again, err := MarshalYAML(back.Flags[0])
			if err != nil || string(again) != string(out) {
				t.Fatalf("round trip changed the flag:\n%s\n%s", out, again)
			}
		}
		cfgs, err := MergeFiles(file)
		if err != nil {
			return
		}
		for _, cfg := range cfgs {
			checkEvaluable(t, cfg)
		}
	})
}

// FuzzDecodeConfig feeds arbitrary bytes to the JSON wire-form decoder: it
// never panics, errors are *LoadError findings, a config it accepts is
// read the same way by a second decoder (encoding/json, refusing unknown
// fields) and by the decoder's lenient and exact-number forms, and a
// config that decodes and compiles is evaluable.
func FuzzDecodeConfig(f *testing.F) {
	for _, s := range fuzzYAMLSeeds(f) {
		file, err := LoadYAML("seed.yaml", s)
		if err != nil {
			continue
		}
		cfgs, err := MergeFiles(file)
		if err != nil {
			continue
		}
		for _, cfg := range cfgs {
			if data, err := json.Marshal(cfg); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte(`{"flags": [{"key": "a", "rules": [{"id": "r", "when": "x == 1", "percentage": 50}]}]}`))
	f.Add([]byte(`{"flags": [{"key": "a", "stat": "on"}]} `))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := evaluate.DecodeConfigJSON(data)
		if err != nil {
			var le *evaluate.LoadError
			if !errors.As(err, &le) || len(le.Findings) == 0 || len(le.Findings) > evaluate.MaxLoadFindings {
				t.Fatalf("error %v is no *LoadError with 1 to MaxLoadFindings findings", err)
			}
			for _, f := range le.Findings {
				if f.Pos.Line < 1 || f.Pos.Col < 1 || f.Code == "" {
					t.Fatalf("finding without a position or code: %+v", f)
				}
			}
			return
		}
		var other evaluate.Config
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&other); err != nil || !reflect.DeepEqual(&other, cfg) {
			t.Fatalf("encoding/json reads it otherwise (%v):\n%#v\n%#v", err, &other, cfg)
		}
		var lenient, exact evaluate.Config
		if err := evaluate.DecodeJSON(data, &lenient, evaluate.JSONOptions{AllowUnknownFields: true}); err != nil || !reflect.DeepEqual(&lenient, cfg) {
			t.Fatalf("the lenient form reads it otherwise (%v)", err)
		}
		if err := evaluate.DecodeJSON(data, &exact, evaluate.JSONOptions{ExactNumbers: true}); err != nil {
			t.Fatalf("the exact-number form refuses it: %v", err)
		}
		checkEvaluable(t, cfg)
	})
}
