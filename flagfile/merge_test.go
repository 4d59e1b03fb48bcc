package flagfile

import (
	"errors"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flagwire/flagwire/evaluate"
)

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
	if got := slices.Sorted(maps.Keys(cfgs)); !reflect.DeepEqual(got, []string{"dev", "prod"}) {
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
		{"errors in several files", fstest.MapFS{"d/a.yaml": {Data: []byte("flagKey: a\nx: 1\n")}, "d/b.yaml": {Data: []byte("flagKey: [\n")}}, []string{"d/a.yaml:2:1 error unknown-field", "d/b.yaml:2:1 error yaml-syntax"}, ""},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadDir(tt.files, "d")
			checkLoadError(t, err, tt.want, tt.msg)
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
