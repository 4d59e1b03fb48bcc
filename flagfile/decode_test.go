package flagfile

import (
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
)

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
			t.Fatalf("environments: %v", slices.Sorted(maps.Keys(cfgs)))
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
requireApproval: true
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
		if c.Version != 7 || !c.RequireChangeReason || !c.RequireApproval || c.Attributes["age"] != "number" || len(c.Flags) != 2 {
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
		{"malformed YAML", "flagKey: a\nrules: [\n", []string{"f.yaml:3:1 error yaml-syntax"}, "invalid YAML"},
		{"malformed YAML: tab", "flagKey: a\nmetadata:\n\tteam: x\n", []string{"f.yaml:3:1 error yaml-syntax"}, "invalid YAML"},
		{"conflicting environments", "environment: prod\n---\nenvironment: dev\n", []string{"f.yaml:3:14 error conflict"}, `conflicts with "prod"`},
		{"merge of a scalar", "flagKey: a\nmetadata:\n  <<: x\n", []string{"f.yaml:3:7 error type"}, "a merge key (<<) needs a mapping"},
		{"alias of the wrong kind", "flagKey: a\nvariants: &v [*v]\n", []string{"f.yaml:2:15 error type"}, "expected a mapping, got a list"},
		{"alias cycle", "flagKey: a\nvariants:\n  - name: x\n    payload: &p {a: *p}\n", []string{"f.yaml:4:14 error limit"}, "nesting deeper than"},
		{"several errors, sorted", "flagKey: a\nzz: 1\nrules:\n  - id: r\n    percentage: x\nstate: [on]\n", []string{"f.yaml:2:1 error unknown-field", "f.yaml:5:17 error type", "f.yaml:6:8 error type"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadYAML("f.yaml", []byte(tt.src))
			fs := checkLoadError(t, err, tt.want, tt.msg)
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

// TestYAMLFieldsMatchModel keeps the decoder's field lists in step with the
// model's yaml tags.
func TestYAMLFieldsMatchModel(t *testing.T) {
	plan := func(v any) []string {
		return (&decoder{}).structOf(reflect.TypeOf(v)).names
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
