package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
)

// caseFile is one group of cases (cases/NAME.json). See README.md.
type caseFile struct {
	Group       string          `json:"group"`
	Description string          `json:"description"`
	Config      json.RawMessage `json:"config"`
	Cases       []tcase         `json:"cases"`

	file string // base name without .json
}

// tcase is one case. Config, when set, replaces the group's config.
type tcase struct {
	Name          string          `json:"name"`
	Description   string          `json:"description"`
	Config        json.RawMessage `json:"config"`
	Context       json.RawMessage `json:"context"`
	Time          string          `json:"time"`
	Flag          string          `json:"flag"`
	Type          string          `json:"type"`
	Default       json.RawMessage `json:"default"`
	Expect        expectation     `json:"expect"`
	TimeDependent bool            `json:"timeDependent"`
	ExactNumbers  bool            `json:"exactNumbers"`
}

// expectation is what every path must answer. A nil pointer field means
// "none" (absent); Payload is checked only when present in the file.
type expectation struct {
	CompileError bool            `json:"compileError"`
	Findings     []findingExp    `json:"findings"`
	Value        json.RawMessage `json:"value"`
	Variant      *string         `json:"variant"`
	Reason       string          `json:"reason"`
	RuleID       *string         `json:"ruleId"`
	Segment      *string         `json:"segment"`
	Bucket       *int            `json:"bucket"`
	ErrorCode    *string         `json:"errorCode"`
	Prerequisite *string         `json:"prerequisite"`
	Payload      json.RawMessage `json:"payload"`
}

// findingExp is one compile error: its kind (evaluate.Finding.Code) and
// where it is (README: compile errors). Empty fields are "none".
type findingExp struct {
	Code    string `json:"code"`
	Flag    string `json:"flag,omitempty"`
	Segment string `json:"segment,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Field   string `json:"field,omitempty"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
}

func (f findingExp) String() string {
	b, _ := json.Marshal(f)
	return string(b)
}

// findingsOf states a path's compile errors in the suite's terms.
func findingsOf(fs []evaluate.Finding) []findingExp {
	out := make([]findingExp, 0, len(fs))
	for _, f := range fs {
		if f.Severity != evaluate.SeverityError {
			continue
		}
		out = append(out, findingExp{Code: f.Code, Flag: f.Flag, Segment: f.Segment, Rule: f.Rule, Field: f.Field, Line: f.Pos.Line, Col: f.Pos.Col})
	}
	return out
}

// checkFindings compares a path's compile errors with the case's: the same
// set (in any order). With subset, got need only be a non-empty part of
// the expected set (a path that stops at the first write that fails).
func checkFindings(t *testing.T, c *tcase, path string, got []findingExp, subset bool) {
	t.Helper()
	want := c.Expect.Findings
	key := func(f findingExp) string { return f.String() }
	wantSet := map[string]int{}
	for _, f := range want {
		wantSet[key(f)]++
	}
	var extra []string
	for _, f := range got {
		if wantSet[key(f)] == 0 {
			extra = append(extra, f.String())
			continue
		}
		wantSet[key(f)]--
	}
	var missing []string
	for _, f := range want {
		if wantSet[key(f)] > 0 {
			missing = append(missing, f.String())
			wantSet[key(f)]--
		}
	}
	if len(extra) > 0 || len(got) == 0 || (!subset && len(missing) > 0) {
		t.Errorf("%s: compile errors differ (%s)\n\tunexpected: %s\n\tmissing: %s", path, c.Description,
			strings.Join(extra, " "), strings.Join(missing, " "))
	}
}

// checkCompileError checks that err, a path's refusal of the case's config,
// is a *evaluate.CompileError with the case's findings.
func checkCompileError(t *testing.T, c *tcase, path string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s accepted a config that must not compile (%s)", path, c.Description)
	}
	var ce *evaluate.CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: the error does not carry the compile errors (*evaluate.CompileError): %v", path, err)
	}
	checkFindings(t, c, path, findingsOf(ce.Findings), false)
}

// outcome is what a path answered, in the suite's terms.
type outcome struct {
	Value        any
	Variant      string
	Reason       string
	RuleID       string
	Segment      string
	Bucket       int // -1: none
	ErrorCode    string
	Prerequisite string
	Payload      any // nil: none

	// What the path cannot report is not checked.
	noPayload   bool
	noErrorCode bool
}

func loadCases(t *testing.T) []*caseFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("cases", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no case files in cases/: %v", err)
	}
	var out []*caseFile
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var cf caseFile
		if err := dec.Decode(&cf); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		cf.file = strings.TrimSuffix(filepath.Base(p), ".json")
		for _, c := range cf.Cases {
			if c.Expect.CompileError != (len(c.Expect.Findings) > 0) {
				t.Fatalf("%s: case %s: a compileError case lists its findings, and only it", p, c.Name)
			}
			if (c.Expect.Reason == string(evaluate.ReasonPrerequisiteFailed)) != (c.Expect.Prerequisite != nil) {
				t.Fatalf("%s: case %s: a PREREQUISITE_FAILED case names the prerequisite, and only it", p, c.Name)
			}
		}
		out = append(out, &cf)
	}
	return out
}

// config returns the case's config (its own, else the group's).
func (cf *caseFile) config(c *tcase) json.RawMessage {
	if len(c.Config) > 0 {
		return c.Config
	}
	return cf.Config
}

func decodeConfig(t *testing.T, raw json.RawMessage) *evaluate.Config {
	t.Helper()
	cfg, err := evaluate.DecodeConfigJSON(raw)
	if err != nil {
		t.Fatalf("case config does not decode: %v", err)
	}
	return cfg
}

func (c *tcase) when(t *testing.T) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, c.Time)
	if err != nil {
		t.Fatalf("time %q: %v", c.Time, err)
	}
	return tm
}

// attrs decodes the context: numbers as json.Number (exact) or float64.
func (c *tcase) attrs(t *testing.T, exact bool) map[string]any {
	t.Helper()
	m := map[string]any{}
	if len(c.Context) == 0 || string(c.Context) == "null" {
		return m
	}
	dec := json.NewDecoder(bytes.NewReader(c.Context))
	if exact {
		dec.UseNumber()
	}
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("context: %v", err)
	}
	return nonFinite(m, false).(map[string]any)
}

// wireContext is the context as JSON carries it: a non-finite number
// marker becomes null, what an SDK sends in its place.
func (c *tcase) wireContext(t *testing.T) json.RawMessage {
	t.Helper()
	if !bytes.Contains(c.Context, []byte(`"$number"`)) {
		return c.Context
	}
	var m any
	dec := json.NewDecoder(bytes.NewReader(c.Context))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("context: %v", err)
	}
	b, err := json.Marshal(nonFinite(m, true))
	if err != nil {
		t.Fatalf("context: %v", err)
	}
	return b
}

// nonFinite replaces, at any depth, the case format's markers of numbers
// JSON cannot carry, {"$number": "NaN" | "Infinity" | "-Infinity"}, by
// the float64 they stand for, or by nil with asNull.
func nonFinite(v any, asNull bool) any {
	switch x := v.(type) {
	case map[string]any:
		if s, ok := x["$number"].(string); ok && len(x) == 1 {
			f := map[string]float64{"NaN": math.NaN(), "Infinity": math.Inf(1), "-Infinity": math.Inf(-1)}[s]
			if asNull || f == 0 {
				return nil
			}
			return f
		}
		for k, e := range x {
			x[k] = nonFinite(e, asNull)
		}
	case []any:
		for i, e := range x {
			x[i] = nonFinite(e, asNull)
		}
	}
	return v
}

func (c *tcase) defaultValue(t *testing.T) any {
	t.Helper()
	return mustJSON(t, c.Default)
}

func mustJSON(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	if len(raw) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("bad JSON %s: %v", raw, err)
	}
	return v
}

// norm turns any Go value into its JSON-decoded form (float64 numbers).
func norm(v any) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<unencodable %T>", v)
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// flagTypeOf is the flag's type as the config declares it (README: a flag
// with no type and no variants is a boolean; otherwise the type is inferred
// from the variants' values).
func flagTypeOf(cfg *evaluate.Config, key string) (evaluate.FlagType, bool) {
	for i := range cfg.Flags {
		f := &cfg.Flags[i]
		if f.Key != key {
			continue
		}
		if f.Type != "" {
			return f.Type, true
		}
		if len(f.Variants) == 0 {
			return evaluate.TypeBoolean, true
		}
		switch f.Variants[0].Value.(type) {
		case bool:
			return evaluate.TypeBoolean, true
		case nil, string:
			return evaluate.TypeString, true
		case float64, json.Number:
			return evaluate.TypeNumber, true
		}
		return evaluate.TypeJSON, true
	}
	return "", false
}

func flagIsOff(cfg *evaluate.Config, key string) bool {
	for i := range cfg.Flags {
		if cfg.Flags[i].Key == key {
			return cfg.Flags[i].State == evaluate.StateOff
		}
	}
	return false
}

// typedAccess applies the README's typed-access rules for paths without a
// typed API: bool, string and number ask for a JSON value of that kind;
// object asks for the value of a json flag, or the served variant's payload
// for any other flag type (its value when the variant has no payload). ok is
// false for a TYPE_MISMATCH.
func typedAccess(reqType string, ft evaluate.FlagType, value, payload any) (any, bool) {
	switch reqType {
	case "bool":
		_, ok := value.(bool)
		return value, ok
	case "string":
		_, ok := value.(string)
		return value, ok
	case "number":
		_, ok := value.(float64)
		return value, ok
	case "object":
		if ft == evaluate.TypeJSON {
			return value, value != nil
		}
		if payload != nil {
			return payload, true
		}
		return value, value != nil
	}
	return nil, false
}

// errorOutcome is a failed evaluation: the caller's default and the code.
func errorOutcome(def any, code string) outcome {
	return outcome{Value: def, Reason: string(evaluate.ReasonError), ErrorCode: code, Bucket: -1}
}

// check compares got with the case's expectation and reports every field
// that differs, in one line each.
func check(t *testing.T, c *tcase, exp expectation, got outcome) {
	t.Helper()
	var diffs []string
	add := func(field string, got, want any) {
		diffs = append(diffs, fmt.Sprintf("%s = %s, want %s", field, show(got), show(want)))
	}
	wantValue := norm(mustJSON(t, exp.Value))
	if gv := norm(got.Value); !reflect.DeepEqual(gv, wantValue) {
		add("value", gv, wantValue)
	}
	if got.Variant != str(exp.Variant) {
		add("variant", got.Variant, str(exp.Variant))
	}
	if got.Reason != exp.Reason {
		add("reason", got.Reason, exp.Reason)
	}
	if got.RuleID != str(exp.RuleID) {
		add("ruleId", got.RuleID, str(exp.RuleID))
	}
	if got.Segment != str(exp.Segment) {
		add("segment", got.Segment, str(exp.Segment))
	}
	wantBucket := -1
	if exp.Bucket != nil {
		wantBucket = *exp.Bucket
	}
	if got.Bucket != wantBucket {
		add("bucket", got.Bucket, wantBucket)
	}
	if !got.noErrorCode && got.ErrorCode != str(exp.ErrorCode) {
		add("errorCode", got.ErrorCode, str(exp.ErrorCode))
	}
	if got.Prerequisite != str(exp.Prerequisite) {
		add("prerequisite", got.Prerequisite, str(exp.Prerequisite))
	}
	if !got.noPayload && len(exp.Payload) > 0 {
		wp := norm(mustJSON(t, exp.Payload))
		if gp := norm(got.Payload); !reflect.DeepEqual(gp, wp) {
			add("payload", gp, wp)
		}
	}
	if len(diffs) > 0 {
		ctx := strings.Join(strings.Fields(string(c.Context)), " ")
		t.Errorf("flag %q as %s, context %s at %s:\n\t%s", c.Flag, c.Type, ctx, c.Time, strings.Join(diffs, "\n\t"))
	}
}

func show(v any) string {
	if s, ok := v.(string); ok {
		if s == "" {
			return "(none)"
		}
		return fmt.Sprintf("%q", s)
	}
	if i, ok := v.(int); ok && i == -1 {
		return "(none)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// forEachCase runs fn for every case as subtest file/case, skipping what
// the runner cannot do (skip returns a reason, or "").
func forEachCase(t *testing.T, files []*caseFile, skip func(cf *caseFile, c *tcase) string, fn func(t *testing.T, cf *caseFile, c *tcase)) {
	for _, cf := range files {
		t.Run(cf.file, func(t *testing.T) {
			for i := range cf.Cases {
				c := &cf.Cases[i]
				t.Run(c.Name, func(t *testing.T) {
					if why := skip(cf, c); why != "" {
						t.Skip(why)
					}
					fn(t, cf, c)
				})
			}
		})
	}
}

// groupsWithout returns the files except those named.
func groupsWithout(files []*caseFile, names ...string) []*caseFile {
	var out []*caseFile
	for _, f := range files {
		if !slices.Contains(names, f.file) {
			out = append(out, f)
		}
	}
	return out
}
