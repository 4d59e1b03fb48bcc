package flagfile

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
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

// checkLoadError checks that err is a *LoadError with exactly the findings
// want (as findingStrings gives them), the first one's message containing
// msg, and returns the findings.
func checkLoadError(t *testing.T, err error, want []string, msg string) []evaluate.Finding {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	fs := loadErrorFindings(t, err)
	if got := findingStrings(fs); !reflect.DeepEqual(got, want) {
		t.Errorf("findings %q, want %q\n%v", got, want, err)
	}
	if len(fs) > 0 && !strings.Contains(fs[0].Msg, msg) {
		t.Errorf("message %q does not contain %q", fs[0].Msg, msg)
	}
	return fs
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

// demoConfig loads the product demo's flags from testdata/flags.
func demoConfig(t testing.TB) *evaluate.Config {
	t.Helper()
	cfgs, err := LoadDir(os.DirFS("testdata"), "flags")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 1 || cfgs["prod"] == nil {
		t.Fatalf("environments %v", slices.Sorted(maps.Keys(cfgs)))
	}
	return cfgs["prod"]
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
