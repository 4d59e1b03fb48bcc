package flagfile

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf8"

	"github.com/flagwire/flagwire/evaluate"
	"go.yaml.in/yaml/v3"
)

// seedYAML is the seed's flags-as-code example, exactly as written.
const seedYAML = `flagKey: checkout-new-flow
environment: prod
state: off
owners: ["payments-team"]
rules:
  - id: rule-1
    when: plan == 'pro' and region == 'US'
    variant: true
bucketing:
  seed: checkout-new-flow
metadata:
  jira: PAY-1234
  ttl: 2026-12-31
`

// findingStrings formats findings as "file:line:col severity code" for
// exact comparison.
func findingStrings(fs []evaluate.Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Pos.String() + " " + string(f.Severity) + " " + f.Code
	}
	return out
}

func loadErrorFindings(t *testing.T, err error) []evaluate.Finding {
	t.Helper()
	var le *evaluate.LoadError
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not a *LoadError", err, err)
	}
	return le.Findings
}

func mustLoad(t *testing.T, name, src string) map[string]*evaluate.Config {
	t.Helper()
	f, err := LoadYAML(name, []byte(src))
	if err != nil {
		t.Fatalf("LoadYAML: %v", err)
	}
	cfgs, err := MergeFiles(f)
	if err != nil {
		t.Fatalf("MergeFiles: %v", err)
	}
	return cfgs
}

func TestLoadYAMLSeedExample(t *testing.T) {
	f, err := LoadYAML("checkout.yaml", []byte(seedYAML))
	if err != nil {
		t.Fatal(err)
	}
	pct := (*float64)(nil)
	want := evaluate.Flag{
		Key:         "checkout-new-flow",
		Environment: "prod",
		State:       "off",
		Owners:      []string{"payments-team"},
		Rules: []evaluate.Rule{{
			ID:    "rule-1",
			When:  "plan == 'pro' and region == 'US'",
			Serve: evaluate.Serve{Variant: true, Percentage: pct},
		}},
		Bucketing: evaluate.Bucketing{Seed: "checkout-new-flow"},
		Metadata:  evaluate.Metadata{Jira: "PAY-1234", TTL: "2026-12-31"},
	}
	if len(f.Flags) != 1 || !reflect.DeepEqual(f.Flags[0], want) {
		t.Fatalf("loaded\n%#v\nwant\n%#v", f.Flags, want)
	}
	if f.Environment != "" || len(f.Segments) != 0 {
		t.Errorf("file-level settings from a flag document: %+v", f)
	}
	cfgs, err := MergeFiles(f)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := evaluate.Compile(cfgs["prod"])
	if err != nil {
		t.Fatal(err)
	}
	// The flag is off: everyone gets the off variant, false.
	r := snap.Evaluate("checkout-new-flow", evaluate.Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US"}, time.Time{})
	if r.Value != false || r.Reason.Kind != evaluate.ReasonOff {
		t.Errorf("off flag served %v (%s)", r.Value, r.Reason.Kind)
	}
	// Turned on, rule-1 matches.
	cfgs["prod"].Flags[0].State = evaluate.StateOn
	snap, err = evaluate.Compile(cfgs["prod"])
	if err != nil {
		t.Fatal(err)
	}
	r = snap.Evaluate("checkout-new-flow", evaluate.Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US"}, time.Time{})
	if r.Value != true || r.Reason.RuleID != "rule-1" {
		t.Errorf("on flag served %v (%+v)", r.Value, r.Reason)
	}
	out, err := MarshalYAML(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != seedYAML {
		t.Errorf("MarshalYAML of the seed flag:\n%s\nwant exactly:\n%s", out, seedYAML)
	}
}

func TestLoadYAMLForms(t *testing.T) {
	t.Run("multi-document", func(t *testing.T) {
		src := `environment: staging
salt: s1
segments:
  - key: internal
    when: email endsWith '@example.com'
---
flagKey: a
rules:
  - id: r1
    segment: internal
    variant: true
---
# an empty document is skipped
---
flagKey: b
environment: prod
`
		cfgs := mustLoad(t, "multi.yaml", src)
		if len(cfgs) != 2 {
			t.Fatalf("environments: %v", keysOf(cfgs))
		}
		st := cfgs["staging"]
		if st.Salt != "s1" || len(st.Flags) != 1 || st.Flags[0].Key != "a" || len(st.Segments) != 1 {
			t.Errorf("staging: %+v", st)
		}
		if p := cfgs["prod"]; len(p.Flags) != 1 || p.Flags[0].Key != "b" || p.Salt != "" || len(p.Segments) != 0 {
			t.Errorf("prod: %+v", p)
		}
		for env, c := range cfgs {
			if _, err := evaluate.Compile(c); err != nil {
				t.Errorf("%s: %v", env, err)
			}
		}
	})
	t.Run("config document", func(t *testing.T) {
		src := `environment: dev
version: 7
requireChangeReason: true
attributes: {plan: string, age: number}
flags:
  - flagKey: z
  - flagKey: y
    type: number
    variants:
      - {name: low, value: 1}
      - {name: high, value: 2.5}
    default: {variant: high}
`
		c := mustLoad(t, "dev.yaml", src)["dev"]
		if c.Version != 7 || !c.RequireChangeReason || c.Attributes["age"] != "number" || len(c.Flags) != 2 {
			t.Fatalf("config: %+v", c)
		}
		if c.Flags[0].Key != "y" || c.Flags[1].Key != "z" {
			t.Errorf("flags not sorted by key: %s, %s", c.Flags[0].Key, c.Flags[1].Key)
		}
		if v := c.Flags[0].Variants[1].Value; v != 2.5 {
			t.Errorf("variant value %#v", v)
		}
		if v := c.Flags[0].Variants[0].Value; v != int64(1) {
			t.Errorf("variant value %#v", v)
		}
		if _, err := evaluate.Compile(c); err != nil {
			t.Error(err)
		}
	})
	t.Run("anchors and merge keys", func(t *testing.T) {
		src := `environment: prod
flags:
  - &base
    flagKey: one
    owners: &owners ["team-a", "team-b"]
    metadata: &meta {team: a, ttl: 2027-01-01}
  - <<: *base
    flagKey: two
    metadata:
      <<: *meta
      jira: X-1
`
		c := mustLoad(t, "anchors.yaml", src)["prod"]
		two := c.Flags[1]
		if two.Key != "two" || !reflect.DeepEqual(two.Owners, []string{"team-a", "team-b"}) || !reflect.DeepEqual(two.Metadata, evaluate.Metadata{Team: "a", TTL: "2027-01-01", Jira: "X-1"}) {
			t.Errorf("merged flag: %+v", two)
		}
	})
	t.Run("scalars keep their text", func(t *testing.T) {
		src := `flagKey: 1234
environment: prod
state: on
type: string
variants:
  - {name: "true", value: "yes"}
  - {name: "1.10"}
  - {name: off, payload: {when: 2026-01-01, n: 0x10, f: 1.5, "no": null, list: [a, 1, true]}}
targets:
  - {variant: "1.10", values: [12345, 1e3, abc]}
metadata: {jira: 0042, ttl: 2026-12-31T10:00:00Z}
`
		c := mustLoad(t, "scalars.yaml", src)["prod"]
		f := c.Flags[0]
		if f.Key != "1234" || f.State != "on" || f.Metadata.Jira != "0042" || f.Metadata.TTL != "2026-12-31T10:00:00Z" {
			t.Errorf("strings: %+v", f)
		}
		if f.Variants[0].Name != "true" || f.Variants[0].Value != "yes" || f.Variants[1].Name != "1.10" || f.Variants[2].Name != "off" {
			t.Errorf("variants: %+v", f.Variants)
		}
		wantPayload := map[string]any{"when": "2026-01-01", "n": int64(16), "f": 1.5, "no": nil, "list": []any{"a", int64(1), true}}
		if !reflect.DeepEqual(f.Variants[2].Payload, wantPayload) {
			t.Errorf("payload %#v", f.Variants[2].Payload)
		}
		if !reflect.DeepEqual(f.Targets[0].Values, []string{"12345", "1e3", "abc"}) {
			t.Errorf("target ids %#v", f.Targets[0].Values)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		for _, src := range []string{"", "# nothing\n", "---\n---\n"} {
			f, err := LoadYAML("empty.yaml", []byte(src))
			if err != nil || len(f.Flags) != 0 {
				t.Errorf("%q: %v %+v", src, err, f)
			}
		}
	})
}

func keysOf[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestLoadYAMLErrors checks every load error with its exact position.
func TestLoadYAMLErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // "file:line:col severity code"
		msg  string   // a substring of the first finding's message
	}{
		{"unknown flag field", "flagKey: a\nstat: on\n", []string{"f.yaml:2:1 error unknown-field"}, `unknown field "stat"; did you mean "state"?`},
		{"unknown rule field", "flagKey: a\nrules:\n  - id: r\n    whne: x == 1\n", []string{"f.yaml:4:5 error unknown-field"}, `did you mean "when"?`},
		{"unknown field, no close match", "flagKey: a\nmetadata:\n  zzzzzzzzzz: 1\n", []string{"f.yaml:3:3 error unknown-field"}, "known fields: team, ttl, jira"},
		{"unknown config field", "environment: prod\nflag: []\n", []string{"f.yaml:2:1 error unknown-field"}, `did you mean "flags"?`},
		{"wrong type: number", "flagKey: a\nrules: [{id: r, percentage: ten}]\n", []string{"f.yaml:2:29 error type"}, `expected a number, got "ten"`},
		{"wrong type: quoted number", "flagKey: a\ndefault: {percentage: \"10\"}\n", []string{"f.yaml:2:23 error type"}, "expected a number"},
		{"wrong type: bool for string", "flagKey: a\nstate: true\n", []string{"f.yaml:2:8 error type"}, `got the boolean true (quote it: "true")`},
		{"wrong type: scalar for list", "flagKey: a\nowners: payments-team\n", []string{"f.yaml:2:9 error type"}, "expected a list"},
		{"wrong type: list for mapping", "flagKey: a\nmetadata: [a]\n", []string{"f.yaml:2:11 error type"}, "expected a mapping"},
		{"wrong type: mapping for string", "flagKey: a\nenvironment: {x: 1}\n", []string{"f.yaml:2:14 error type"}, "expected a string, got a mapping"},
		{"wrong type: yes is no bool", "flagKey: a\nmetadata: {killSwitch: yes}\n", []string{"f.yaml:2:24 error type"}, "expected true or false"},
		{"wrong type: integer", "flagKey: a\nversion: 1.5\n", []string{"f.yaml:2:10 error type"}, "expected an integer"},
		{"wrong type: time", "flagKey: a\ndefault:\n  progressive:\n    steps: [{at: soon, percentage: 5}]\n", []string{"f.yaml:4:18 error type"}, "expected a time"},
		{"duplicate key", "flagKey: a\nstate: on\nstate: off\n", []string{"f.yaml:3:1 error duplicate-key"}, `duplicate key "state" (first at line 2)`},
		{"missing flagKey in list", "environment: prod\nflags:\n  - state: on\n", []string{"f.yaml:3:5 error missing-field"}, "no flagKey"},
		{"document not a mapping", "- flagKey: a\n", []string{"f.yaml:1:1 error type"}, "must be a mapping"},
		{"malformed YAML", "flagKey: a\nrules: [\n", []string{"f.yaml:2 error yaml-syntax"}, "invalid YAML"},
		{"malformed YAML: tab", "flagKey: a\nmetadata:\n\tteam: x\n", []string{"f.yaml:3 error yaml-syntax"}, "invalid YAML"},
		{"conflicting environments", "environment: prod\n---\nenvironment: dev\n", []string{"f.yaml:3:14 error conflict"}, `conflicts with "prod"`},
		{"merge of a scalar", "flagKey: a\nmetadata:\n  <<: x\n", []string{"f.yaml:3:7 error type"}, "a merge key (<<) needs a mapping"},
		{"alias of the wrong kind", "flagKey: a\nvariants: &v [*v]\n", []string{"f.yaml:2:15 error type"}, "expected a mapping, got a list"},
		{"alias cycle", "flagKey: a\nvariants:\n  - name: x\n    payload: &p {a: *p}\n", []string{"f.yaml:4:14 error limit"}, "nesting deeper than"},
		{"several errors, sorted", "flagKey: a\nzz: 1\nrules:\n  - id: r\n    percentage: x\nstate: [on]\n", []string{"f.yaml:2:1 error unknown-field", "f.yaml:5:17 error type", "f.yaml:6:8 error type"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadYAML("f.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			fs := loadErrorFindings(t, err)
			if got := findingStrings(fs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("findings %q, want %q\n%v", got, tt.want, err)
			}
			if !strings.Contains(fs[0].Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", fs[0].Msg, tt.msg)
			}
			if fs[0].Flag == "" && strings.HasPrefix(tt.src, "flagKey: a") && fs[0].Code != "yaml-syntax" {
				t.Errorf("finding does not name the flag: %+v", fs[0])
			}
		})
	}
}

func TestLoadYAMLLimits(t *testing.T) {
	t.Run("file size", func(t *testing.T) {
		big := make([]byte, MaxYAMLFileSize+1)
		_, err := LoadYAML("big.yaml", big)
		if fs := loadErrorFindings(t, err); fs[0].Code != "limit" || fs[0].Pos.File != "big.yaml" {
			t.Errorf("%v", err)
		}
	})
	t.Run("billion laughs", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("flagKey: a\nvariants:\n  - name: x\n    payload:\n      l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n")
		for i := 1; i <= 9; i++ {
			b.WriteString("      l" + strconv.Itoa(i) + ": &l" + strconv.Itoa(i) + " [")
			for j := 0; j < 10; j++ {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString("*l" + strconv.Itoa(i-1))
			}
			b.WriteString("]\n")
		}
		start := time.Now()
		_, err := LoadYAML("laughs.yaml", []byte(b.String()))
		fs := loadErrorFindings(t, err)
		if fs[0].Code != "limit" || !strings.Contains(fs[0].Msg, "aliases expand") {
			t.Errorf("%v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("nesting depth", func(t *testing.T) {
		src := "flagKey: a\nvariants:\n  - name: x\n    payload: " + strings.Repeat("[", evaluate.MaxNestingDepth) + strings.Repeat("]", evaluate.MaxNestingDepth) + "\n"
		_, err := LoadYAML("deep.yaml", []byte(src))
		if fs := loadErrorFindings(t, err); fs[0].Code != "limit" {
			t.Errorf("%v", err)
		}
	})
	t.Run("finding count", func(t *testing.T) {
		src := "flagKey: a\n"
		for i := 0; i < 2*evaluate.MaxLoadFindings; i++ {
			src += "k" + strconv.Itoa(i) + ": 1\n"
		}
		_, err := LoadYAML("many.yaml", []byte(src))
		if fs := loadErrorFindings(t, err); len(fs) != evaluate.MaxLoadFindings {
			t.Errorf("%d findings", len(fs))
		}
	})
}

// TestCompilePositions checks that Compile findings on loaded configs get
// their file positions, including inside rule conditions of every scalar
// style.
func TestCompilePositions(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"plain when", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    when: plan == 'pro' and and\n    variant: true\n", []string{"f.yaml:5:29 error syntax"}},
		{"single-quoted when", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    when: 'plan == ''pro'' and and'\n    variant: true\n", []string{"f.yaml:5:32 error syntax"}},
		{"double-quoted when with escapes", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    when: \"plan == \\\"pro\\\" and and\"\n    variant: true\n", []string{"f.yaml:5:32 error syntax"}},
		{"double-quoted when with unicode escape", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    when: \"name == '\\u00e9' and and\"\n    variant: true\n", []string{"f.yaml:5:33 error syntax"}},
		{"multi-byte characters", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    when: name == 'ééé' and and\n    variant: true\n", []string{"f.yaml:5:29 error syntax"}},
		{"double-quoted when with an escaped line break", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    when: \"plan == 'pro'\\nand and\"\n    variant: true\n", []string{"f.yaml:5:31 error syntax"}},
		{"when folded at a lone carriage return", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    when: \"plan ==\r 'pro' and and\"\n    variant: true\n", []string{"f.yaml:6:12 error syntax"}},
		{"folded plain when", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    when: plan == 'pro'\n      and and\n    variant: true\n", []string{"f.yaml:6:11 error syntax"}},
		{"literal block when", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    when: |\n      plan == 'pro'\n        and and\n    variant: true\n", []string{"f.yaml:7:13 error syntax"}},
		{"folded block when", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    when: >-\n      plan == 'pro'\n\n      and and\n    variant: true\n", []string{"f.yaml:8:11 error syntax"}},
		{"error at end of when", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    when: plan ==\n    variant: true\n", []string{"f.yaml:5:18 error syntax"}},
		{"unknown segment", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    segment: nope\n    variant: true\n", []string{"f.yaml:5:14 error unknown-segment"}},
		{"segment in when", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    when: segment('nope')\n    variant: true\n", []string{"f.yaml:5:11 error unknown-segment"}},
		{"rollout weights", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    rollout: [{variant: true, weight: 50}, {variant: false, weight: 40}]\n", []string{"f.yaml:5:14 error weights-sum"}},
		{"rollout variant", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    rollout: [{variant: true, weight: 50}, {variant: maybe, weight: 50}]\n", []string{"f.yaml:5:54 error unknown-variant"}},
		{"default serve", "flagKey: a\nenvironment: e\ndefault: {percentage: 150}\n", []string{"f.yaml:3:23 error invalid-percentage"}},
		{"missing serve", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    when: x == 1\n", []string{"f.yaml:4:5 error missing-serve"}},
		{"missing rule id", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    variant: true\n  - variant: false\n", []string{"f.yaml:6:5 error missing-rule-id"}},
		{"duplicate rule id", "flagKey: a\nenvironment: e\nrules:\n  - id: r\n    variant: true\n  - id: r\n    variant: false\n", []string{"f.yaml:6:9 error duplicate-rule-id"}},
		{"state", "flagKey: a\nenvironment: e\nstate: paused\n", []string{"f.yaml:3:8 error invalid-state"}},
		{"variant type", "flagKey: a\nenvironment: e\ntype: number\nvariants:\n  - {name: x, value: abc}\n", []string{"f.yaml:5:5 error type-mismatch"}},
		{"target variant", "flagKey: a\nenvironment: e\ntargets:\n  - variant: nope\n    values: [u1]\n", []string{"f.yaml:4:14 error unknown-variant"}},
		{"invalid key", "flagKey: 'a b'\nenvironment: e\n", []string{"f.yaml:1:10 error invalid-key"}},
		{"segment when syntax", "environment: e\nsegments:\n  - key: s\n    when: country ==\n", []string{"f.yaml:4:21 error syntax"}},
		{"flag metadata value", "flagKey: a\nenvironment: e\nflagMetadata:\n  ok: 1\n  bad: [1, 2]\n", []string{"f.yaml:5:8 error invalid-flag-metadata"}},
		{"flag metadata null", "flagKey: a\nenvironment: e\nflagMetadata:\n  gone: ~\n", []string{"f.yaml:4:9 error invalid-flag-metadata"}},
		{"flag metadata reserved key", "flagKey: a\nenvironment: e\nflagMetadata: {ruleId: x}\n", []string{"f.yaml:3:24 error invalid-flag-metadata"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfgs := mustLoad(t, "f.yaml", tt.src)
			_, err := evaluate.Compile(cfgs["e"])
			var ce *evaluate.CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("Compile: %v", err)
			}
			if got := findingStrings(ce.Findings); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("findings %q, want %q\n%v", got, tt.want, err)
			}
		})
	}
}

// TestYAMLTextPositions maps every character of scalars of each style back
// to the source and checks it is the character found there.
func TestYAMLTextPositions(t *testing.T) {
	scalars := []string{
		"plain text here",
		"plain folded\n    over lines\n\n    and a paragraph",
		"'single ''quoted'' text'",
		"'single folded\n    text'",
		"\"double \\\"escaped\\\" \\u00e9 text\"",
		"\"double folded \\\n    escaped break\"",
		"|\n    literal one\n      indented two\n\n    three\n",
		">\n    folded one\n    two\n\n    three\n      more\n    four\n",
		"ééé ünïcode",
	}
	for _, sc := range scalars {
		src := "k: " + strings.ReplaceAll(sc, "\\n", "\n") + "\n"
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		n := doc.Content[0].Content[1]
		txt := ymlMapScalar("t.yaml", []byte(src), ymlLineStarts([]byte(src)), n)
		if txt.valid != len(n.Value) {
			t.Errorf("%q: only %d of %d bytes of %q mapped", src, txt.valid, len(n.Value), n.Value)
			continue
		}
		lines := strings.Split(src, "\n")
		for i := 0; i < len(n.Value); {
			r, w := utf8.DecodeRuneInString(n.Value[i:])
			line := lines[txt.lines[i]-1]
			col := int(txt.cols[i])
			rs := []rune(line)
			if col < 1 || col > len(rs)+1 {
				t.Errorf("%q: byte %d at %d:%d is off the line", src, i, txt.lines[i], col)
				break
			}
			if r != ' ' && r != '\n' && r != '"' && r != '\'' && col <= len(rs) && rs[col-1] != r && rs[col-1] != '\\' {
				t.Errorf("%q: %q at byte %d maps to %d:%d which holds %q", src, r, i, txt.lines[i], col, rs[col-1])
			}
			i += w
		}
	}
}

func TestMergeFilesAndLoadDir(t *testing.T) {
	fsys := fstest.MapFS{
		"flags/prod.yaml":         {Data: []byte("environment: prod\nsalt: p\nattributes: {plan: string}\nsegments:\n  - key: s\n    included: [u1]\n")},
		"flags/dev.yml":           {Data: []byte("environment: dev\nsalt: d\n")},
		"flags/a.yaml":            {Data: []byte("flagKey: a\nenvironment: prod\n---\nflagKey: a\nenvironment: dev\n")},
		"flags/sub/b.yaml":        {Data: []byte("environment: prod\nflags:\n  - flagKey: b\n  - flagKey: c\n    environment: dev\n")},
		"flags/.hidden/x.yaml":    {Data: []byte("not: [valid")},
		"flags/.skip.yaml":        {Data: []byte("not: [valid")},
		"flags/README.md":         {Data: []byte("# not a flag file")},
		"flags/sub/notes.txt":     {Data: []byte("ignored")},
		"flags/sub/empty.yaml":    {Data: []byte("")},
		"flags/sub/prod-too.yaml": {Data: []byte("environment: prod\nsalt: p\nattributes: {plan: string, age: number}\n")},
	}
	cfgs, err := LoadDir(fsys, "flags")
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(cfgs); !reflect.DeepEqual(got, []string{"dev", "prod"}) {
		t.Fatalf("environments %v", got)
	}
	prod, dev := cfgs["prod"], cfgs["dev"]
	if prod.Salt != "p" || dev.Salt != "d" || len(prod.Segments) != 1 || len(dev.Segments) != 0 {
		t.Errorf("settings: prod %+v dev %+v", prod, dev)
	}
	if !reflect.DeepEqual(prod.Attributes, map[string]string{"plan": "string", "age": "number"}) {
		t.Errorf("attributes %v", prod.Attributes)
	}
	flagKeys := func(c *evaluate.Config) (ks []string) {
		for _, f := range c.Flags {
			ks = append(ks, f.Key)
		}
		return ks
	}
	if got := flagKeys(prod); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("prod flags %v", got)
	}
	if got := flagKeys(dev); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Errorf("dev flags %v", got)
	}
	// Compile findings name the file of the flag.
	prod.Flags[1].State = "bogus"
	_, err = evaluate.Compile(prod)
	var ce *evaluate.CompileError
	if !errors.As(err, &ce) || ce.Findings[0].Pos.String() != "flags/sub/b.yaml:3:5" {
		t.Errorf("compile finding: %v", err)
	}

	errorCases := []struct {
		name  string
		files fstest.MapFS
		want  []string
		msg   string
	}{
		{"flag without environment", fstest.MapFS{"d/a.yaml": {Data: []byte("flagKey: a\n")}}, []string{"d/a.yaml:1:10 error missing-environment"}, "flag has no environment"},
		{"segment without environment", fstest.MapFS{"d/a.yaml": {Data: []byte("segments:\n  - key: s\n")}}, []string{"d/a.yaml:2:5 error missing-environment"}, "segment has no environment"},
		{"salt without environment", fstest.MapFS{"d/a.yaml": {Data: []byte("salt: x\n")}}, []string{"d/a.yaml:1:7 error missing-environment"}, "salt needs a file-level environment"},
		{"duplicate flag across files", fstest.MapFS{"d/a.yaml": {Data: []byte("flagKey: x\nenvironment: e\n")}, "d/b.yaml": {Data: []byte("environment: e\nflags:\n  - flagKey: x\n")}}, []string{"d/b.yaml:3:14 error duplicate-flag"}, "first at d/a.yaml:1:10"},
		{"duplicate segment", fstest.MapFS{"d/a.yaml": {Data: []byte("environment: e\nsegments: [{key: s}, {key: s}]\n")}}, []string{"d/a.yaml:2:28 error duplicate-segment"}, "first at d/a.yaml:2:18"},
		{"salt conflict", fstest.MapFS{"d/a.yaml": {Data: []byte("environment: e\nsalt: one\n")}, "d/b.yaml": {Data: []byte("environment: e\nsalt: two\n")}}, []string{"d/b.yaml:2:7 error conflict"}, "salt differs from the one set at d/a.yaml:2:7"},
		{"attribute conflict", fstest.MapFS{"d/a.yaml": {Data: []byte("environment: e\nattributes: {x: string}\n")}, "d/b.yaml": {Data: []byte("environment: e\nattributes:\n  x: number\n")}}, []string{"d/b.yaml:3:6 error conflict"}, `declared as "number" here and as "string" at d/a.yaml:2:17`},
		{"invalid environment", fstest.MapFS{"d/a.yaml": {Data: []byte("environment: 'pr od'\n")}}, []string{"d/a.yaml:1:14 error invalid-environment"}, "invalid environment name"},
		{"errors in several files", fstest.MapFS{"d/a.yaml": {Data: []byte("flagKey: a\nx: 1\n")}, "d/b.yaml": {Data: []byte("flagKey: [\n")}}, []string{"d/a.yaml:2:1 error unknown-field", "d/b.yaml:1 error yaml-syntax"}, ""},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadDir(tt.files, "d")
			if err == nil {
				t.Fatal("no error")
			}
			fs := loadErrorFindings(t, err)
			if got := findingStrings(fs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("findings %q, want %q\n%v", got, tt.want, err)
			}
			if !strings.Contains(fs[0].Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", fs[0].Msg, tt.msg)
			}
		})
	}

	t.Run("missing directory", func(t *testing.T) {
		if _, err := LoadDir(fstest.MapFS{}, "nope"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("single file", func(t *testing.T) {
		for _, name := range []string{"flags/a.yaml", "flags/.skip.yaml"} {
			cfgs, err := LoadDir(fsys, name)
			if name == "flags/.skip.yaml" {
				if fs := loadErrorFindings(t, err); fs[0].Pos.File != name {
					t.Errorf("%v", err)
				}
				continue
			}
			if err != nil || len(cfgs) != 2 || cfgs["prod"].Flags[0].Key != "a" {
				t.Errorf("%v %v", cfgs, err)
			}
		}
		cfgs, err := LoadDir(fstest.MapFS{"a.yaml": {Data: []byte("flagKey: a\nenvironment: e\nstate: x\n")}}, ".")
		if err != nil {
			t.Fatal(err)
		}
		_, err = evaluate.Compile(cfgs["e"])
		var ce *evaluate.CompileError
		if !errors.As(err, &ce) || ce.Findings[0].Pos.String() != "a.yaml:3:8" {
			t.Errorf("%v", err)
		}
	})
	t.Run("empty directory", func(t *testing.T) {
		cfgs, err := LoadDir(fstest.MapFS{"d/x.txt": {}}, "d")
		if err != nil || len(cfgs) != 0 {
			t.Errorf("%v %v", cfgs, err)
		}
	})
}

// demoConfig loads the product demo's flags from testdata/flags.
func demoConfig(t testing.TB) *evaluate.Config {
	t.Helper()
	cfgs, err := LoadDir(os.DirFS("testdata"), "flags")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 1 || cfgs["prod"] == nil {
		t.Fatalf("environments %v", keysOf(cfgs))
	}
	return cfgs["prod"]
}

func TestDemoFlags(t *testing.T) {
	cfg := demoConfig(t)
	if cfg.Salt != "prod-salt-2026" {
		t.Errorf("salt %q", cfg.Salt)
	}
	snap, err := evaluate.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Keys(); !reflect.DeepEqual(got, []string{"bench-flag", "checkout-new-flow", "pricing-experiment"}) {
		t.Errorf("keys %v", got)
	}
	if fs := Lint(cfg, time.Date(2026, 6, 25, 12, 0, 0, 0, time.UTC), LintOptions{}); len(fs) != 0 {
		t.Errorf("lint findings on the demo flags:\n%v", fs)
	}
	now := time.Date(2026, 6, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		flag    string
		attrs   evaluate.Attributes
		variant string
		reason  evaluate.ReasonKind
		rule    string
	}{
		{"checkout-new-flow", evaluate.Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US"}, "true", evaluate.ReasonRuleMatch, "rule-1"},
		{"checkout-new-flow", evaluate.Attributes{"userId": "c0ffee42", "plan": "free", "region": "US"}, "true", evaluate.ReasonSegmentMatch, "rule-2"},
		{"checkout-new-flow", evaluate.Attributes{"plan": "free"}, "false", evaluate.ReasonDefault, ""},
		{"pricing-experiment", evaluate.Attributes{"accountId": "acc-1", "country": "US"}, "control", evaluate.ReasonDefault, ""},
		{"bench-flag", evaluate.Attributes{"userId": "u", "plan": "enterprise", "region": "EU"}, "true", evaluate.ReasonRuleMatch, "enterprise-eu"},
		{"bench-flag", evaluate.Attributes{"userId": "bench-0999"}, "true", evaluate.ReasonSegmentMatch, "bench-segment"},
		{"bench-flag", evaluate.Attributes{"userId": "u", "appVersion": "1.9.3"}, "false", evaluate.ReasonRuleMatch, "old-app"},
	}
	for _, tt := range tests {
		r := snap.Evaluate(tt.flag, tt.attrs, now)
		if r.Variant != tt.variant || r.Reason.Kind != tt.reason || r.Reason.RuleID != tt.rule {
			t.Errorf("%s %v: %s %+v, want %s %s %s", tt.flag, tt.attrs, r.Variant, r.Reason, tt.variant, tt.reason, tt.rule)
		}
	}
	// The pricing rollout splits by accountId, 34/33/33; payloads come along.
	counts := map[string]int{}
	for i := 0; i < 3000; i++ {
		r := snap.Evaluate("pricing-experiment", evaluate.Attributes{"accountId": "acc-" + strconv.Itoa(i%1000) + strconv.Itoa(i/1000), "country": "DE"}, now)
		counts[r.Variant]++
		if p, ok := r.Payload.(map[string]any); !ok || p["currency"] != "EUR" {
			t.Fatalf("payload %#v", r.Payload)
		}
	}
	for _, v := range []string{"control", "A", "B"} {
		if counts[v] < 850 || counts[v] > 1200 {
			t.Errorf("rollout counts %v", counts)
		}
	}
	// The default 10% rollout of checkout-new-flow and 25% of bench-flag.
	on := map[string]int{}
	for i := 0; i < 4000; i++ {
		id := "user-" + strconv.Itoa(i%1000) + "-" + strconv.Itoa(i/1000)
		for _, k := range []string{"checkout-new-flow", "bench-flag"} {
			if snap.Evaluate(k, evaluate.Attributes{"userId": id}, now).Value == true {
				on[k]++
			}
		}
	}
	if on["checkout-new-flow"] < 300 || on["checkout-new-flow"] > 500 || on["bench-flag"] < 900 || on["bench-flag"] > 1100 {
		t.Errorf("rollout shares out of 4000: %v", on)
	}
}

// TestMarshalYAMLRoundTrip marshals flags and configs and loads them back.
func TestMarshalYAMLRoundTrip(t *testing.T) {
	pct := 12.5
	at := time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC)
	rich := evaluate.Flag{
		Key:         "rich",
		Environment: "prod",
		Type:        evaluate.TypeJSON,
		State:       evaluate.StateOn,
		Variants: []evaluate.Variant{
			{Name: "small", Value: map[string]any{"size": 1.0, "tags": []any{"a", "true", true, nil}}, Payload: map[string]any{"color": "#ff4d4f"}},
			{Name: "null", Value: map[string]any{"size": 2.0, "label": "line one\nline two"}},
			{Name: "yes", Value: []any{"1.0", 1.5, "2026-12-31"}},
		},
		OffVariant:    "small",
		Targets:       []evaluate.Target{{Variant: "null", Values: []string{"u1", "true", "007"}}},
		Prerequisites: []evaluate.Prerequisite{{FlagKey: "other", Variants: []any{true}}},
		Rules: []evaluate.Rule{
			{ID: "r1", When: "plan == 'pro' and country in ['DE', 'FR']", Serve: evaluate.Serve{Variant: "yes", Percentage: &pct, Seed: "s"}},
			{ID: "r2", Segment: "seg", Serve: evaluate.Serve{Rollout: []evaluate.WeightedVariant{{Variant: "small", Weight: 33.333}, {Variant: "null", Weight: 66.667}}}},
			{ID: "r3", When: "a == 1\nor b == 2", Serve: evaluate.Serve{Progressive: &evaluate.Progressive{Variant: "yes", Steps: []evaluate.RampStep{{At: at, Percentage: 1}, {At: at.Add(24 * time.Hour), Percentage: 50}}, Paused: true, PausedAt: at.Add(time.Hour)}}},
		},
		Default:      &evaluate.Serve{Variant: "small"},
		Bucketing:    evaluate.Bucketing{Seed: "rich-seed", By: "account.id"},
		Owners:       []string{"team-a", "on"},
		Metadata:     evaluate.Metadata{Team: "t", TTL: "2027-01-01", Jira: "1234", RiskLevel: "null", KillSwitch: true, Dashboards: []string{"https://grafana.example.com/d/x"}, Description: "has: colons # and hashes"},
		FlagMetadata: map[string]any{"release": "1.0.2", "build": 2.0, "ratio": 0.1, "beta": true, "on": "true", "nothing": "null"},
		Version:      3,
	}
	demo := demoConfig(t)
	flags := append([]evaluate.Flag{rich, {Key: "minimal"}}, demo.Flags...)
	for _, f := range flags {
		t.Run(f.Key, func(t *testing.T) {
			out, err := MarshalYAML(f)
			if err != nil {
				t.Fatal(err)
			}
			back, err := LoadYAML("rt.yaml", out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if len(back.Flags) != 1 {
				t.Fatalf("%d flags", len(back.Flags))
			}
			if a, b := canonicalJSON(t, f), canonicalJSON(t, back.Flags[0]); a != b {
				t.Errorf("round trip changed the flag:\n%s\n%s\n%s", out, a, b)
			}
			again, err := MarshalYAML(back.Flags[0])
			if err != nil || string(again) != string(out) {
				t.Errorf("second marshal differs:\n%s\n%s", out, again)
			}
		})
	}
	t.Run("config", func(t *testing.T) {
		demo := *demo
		demo.Version = 9
		demo.RequireChangeReason = true
		demo.Attributes = map[string]string{"<<": "string", "true": "bool", "": "number", "a.b": "list"}
		for k, v := range demoConfig(t).Attributes {
			demo.Attributes[k] = v
		}
		demo.Segments = append(demo.Segments, evaluate.Segment{Key: "rules", Description: "x", When: "plan == 'pro'", By: "accountId", Excluded: []string{"a"}, Version: 2})
		out, err := MarshalConfigYAML(&demo)
		if err != nil {
			t.Fatal(err)
		}
		back := mustLoad(t, "prod.yaml", string(out))["prod"]
		if a, b := canonicalJSON(t, &demo), canonicalJSON(t, back); a != b {
			t.Errorf("config round trip:\n%s\n%s", a, b)
		}
	})
}

// canonicalJSON renders v as JSON, normalizing numbers (YAML integers and
// floats both become JSON numbers).
func canonicalJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(x)
	return string(b)
}

// TestYAMLFieldsMatchModel keeps the decoder's field lists in step with the
// model's yaml tags.
func TestYAMLFieldsMatchModel(t *testing.T) {
	plan := func(v any) []string {
		return (&ymlDecoder{}).structOf(reflect.TypeOf(v)).names
	}
	tests := []struct {
		typ    any
		fields []string
	}{
		{evaluate.Config{}, plan(evaluate.Config{})},
		{evaluate.Flag{}, plan(evaluate.Flag{})},
		{evaluate.Variant{}, plan(evaluate.Variant{})},
		{evaluate.Target{}, plan(evaluate.Target{})},
		{evaluate.Serve{}, plan(evaluate.Serve{})},
		{evaluate.Rule{}, plan(evaluate.Rule{})},
		{evaluate.WeightedVariant{}, plan(evaluate.WeightedVariant{})},
		{evaluate.Progressive{}, plan(evaluate.Progressive{})},
		{evaluate.RampStep{}, plan(evaluate.RampStep{})},
		{evaluate.Bucketing{}, plan(evaluate.Bucketing{})},
		{evaluate.Prerequisite{}, plan(evaluate.Prerequisite{})},
		{evaluate.Metadata{}, plan(evaluate.Metadata{})},
		{evaluate.Segment{}, plan(evaluate.Segment{})},
	}
	for _, tt := range tests {
		var tags []string
		var walk func(rt reflect.Type)
		walk = func(rt reflect.Type) {
			for i := range rt.NumField() {
				sf := rt.Field(i)
				tag := sf.Tag.Get("yaml")
				name, opts, _ := strings.Cut(tag, ",")
				if sf.Anonymous && strings.Contains(opts, "inline") {
					walk(sf.Type)
					continue
				}
				if !sf.IsExported() || name == "-" {
					continue
				}
				if name == "" {
					name = strings.ToLower(sf.Name)
				}
				tags = append(tags, name)
			}
		}
		walk(reflect.TypeOf(tt.typ))
		got := append([]string(nil), tt.fields...)
		sort.Strings(got)
		sort.Strings(tags)
		if !reflect.DeepEqual(got, tags) {
			t.Errorf("%T: decoder knows %v, model has %v", tt.typ, got, tags)
		}
	}
}

// TestDecodeConfigJSON round-trips the demo flags, loaded from YAML,
// through the JSON wire form (evaluate's decode_test.go checks the
// decoder's errors).
func TestDecodeConfigJSON(t *testing.T) {
	demo := demoConfig(t)
	data, err := json.MarshalIndent(demo, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := evaluate.DecodeConfigJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := canonicalJSON(t, demo), canonicalJSON(t, cfg); a != b {
		t.Errorf("JSON round trip:\n%s\n%s", a, b)
	}
	if _, err := evaluate.Compile(cfg); err != nil {
		t.Error(err)
	}
}

// TestLoadYAMLEveryField sets every field of every model type in one file
// and compares with the structs written out by hand, so that the
// tag-driven walker is checked on each field kind (strings, named strings,
// booleans, integers, floats, pointers, times, lists, free-form values,
// the inline serve of a rule).
func TestLoadYAMLEveryField(t *testing.T) {
	src := `flagKey: every
environment: prod
type: string
state: "on"
variants:
  - {name: A, value: a, payload: {price: 23.5, tags: [x]}}
  - {name: B}
offVariant: B
targets:
  - {variant: A, values: [u1, u2]}
rules:
  - id: r1
    when: plan == 'pro'
    segment: beta
    variant: A
    percentage: 12.5
    seed: s-r1
  - id: r2
    rollout: [{variant: A, weight: 40}, {variant: B, weight: 60}]
  - id: r3
    progressive:
      variant: A
      steps: [{at: 2026-06-25T10:00:00Z, percentage: 5}, {at: "2026-07-01", percentage: 50}]
      paused: true
      pausedAt: 2026-06-26T10:00:00Z
default: {variant: B, percentage: ~}
bucketing: {seed: seed-1, by: accountId}
prerequisites:
  - {flagKey: other, variants: [true, on, 3]}
owners: [team-a]
metadata:
  team: growth
  ttl: 2027-03-31
  jira: GRO-77
  riskLevel: low
  killSwitch: true
  dashboards: [https://grafana.example.com/d/x]
  description: every field
flagMetadata: {release: 1.0.2, build: 2, ratio: 0.1, beta: true, quoted: "true"}
version: 9
---
environment: prod
segments:
  - key: beta
    description: opted in
    when: country == 'DE'
    by: accountId
    included: [a1]
    excluded: [a2]
    version: 3
`
	pct := 12.5
	want := evaluate.Flag{
		Key: "every", Environment: "prod", Type: evaluate.TypeString, State: "on",
		Variants: []evaluate.Variant{
			{Name: "A", Value: "a", Payload: map[string]any{"price": 23.5, "tags": []any{"x"}}},
			{Name: "B"},
		},
		OffVariant: "B",
		Targets:    []evaluate.Target{{Variant: "A", Values: []string{"u1", "u2"}}},
		Rules: []evaluate.Rule{
			{ID: "r1", When: "plan == 'pro'", Segment: "beta", Serve: evaluate.Serve{Variant: "A", Percentage: &pct, Seed: "s-r1"}},
			{ID: "r2", Serve: evaluate.Serve{Rollout: []evaluate.WeightedVariant{{Variant: "A", Weight: 40}, {Variant: "B", Weight: 60}}}},
			{ID: "r3", Serve: evaluate.Serve{Progressive: &evaluate.Progressive{
				Variant: "A",
				Steps: []evaluate.RampStep{
					{At: time.Date(2026, 6, 25, 10, 0, 0, 0, time.UTC), Percentage: 5},
					{At: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), Percentage: 50},
				},
				Paused:   true,
				PausedAt: time.Date(2026, 6, 26, 10, 0, 0, 0, time.UTC),
			}}},
		},
		Default:       &evaluate.Serve{Variant: "B"},
		Bucketing:     evaluate.Bucketing{Seed: "seed-1", By: "accountId"},
		Prerequisites: []evaluate.Prerequisite{{FlagKey: "other", Variants: []any{true, "on", int64(3)}}},
		Owners:        []string{"team-a"},
		Metadata: evaluate.Metadata{Team: "growth", TTL: "2027-03-31", Jira: "GRO-77", RiskLevel: "low", KillSwitch: true,
			Dashboards: []string{"https://grafana.example.com/d/x"}, Description: "every field"},
		FlagMetadata: map[string]any{"release": "1.0.2", "build": int64(2), "ratio": 0.1, "beta": true, "quoted": "true"},
		Version:      9,
	}
	wantSeg := evaluate.Segment{Key: "beta", Description: "opted in", When: "country == 'DE'", By: "accountId", Included: []string{"a1"}, Excluded: []string{"a2"}, Version: 3}
	f, err := LoadYAML("every.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Flags) != 1 || len(f.Segments) != 1 {
		t.Fatalf("%d flags, %d segments", len(f.Flags), len(f.Segments))
	}
	if !reflect.DeepEqual(f.Flags[0], want) {
		t.Errorf("flag\n got %#v\nwant %#v", f.Flags[0], want)
	}
	if !reflect.DeepEqual(f.Segments[0], wantSeg) {
		t.Errorf("segment\n got %#v\nwant %#v", f.Segments[0], wantSeg)
	}
}
