package evaluate_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLeafDependencies checks that evaluate stays a pure leaf — no file,
// network or process I/O among its imports, no module beyond the allowed
// ones — and that neither it nor the SDK package that embeds it links a
// YAML parser (flags as code live in package flagfile).
func TestLeafDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	// A go list that fails is a failure, not a skip: a check that cannot
	// run must not pass quietly.
	goList := func(args ...string) []string {
		t.Helper()
		cmd := exec.Command("go", append([]string{"list"}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return strings.Fields(string(out))
	}
	forbidden := map[string]bool{"os": true, "io/fs": true, "net": true, "net/http": true, "os/exec": true, "path/filepath": true, "syscall": true}
	// Beyond the standard library evaluate imports only these: its helpers
	// (shortsha: SHA-256 of the bucketing input), and go-json-experiment, the one decoder of JSON configs (DecodeJSON),
	// which does no I/O and is in the SDK's module graph anyway. Anything
	// else is a decision to make here, not by accident.
	allowed := map[string]bool{
		"github.com/flagwire/flagwire/internal/fieldpath": true,
		"github.com/flagwire/flagwire/internal/shortsha":  true,
		"github.com/flagwire/flagwire/internal/suggest":   true,
		"github.com/go-json-experiment/json":              true,
		"github.com/go-json-experiment/json/jsontext":     true,
	}
	for _, imp := range goList("-f", `{{join .Imports " "}}`, "github.com/flagwire/flagwire/evaluate") {
		if forbidden[imp] {
			t.Errorf("evaluate imports %s: it must do no I/O", imp)
		}
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") && !allowed[imp] {
			t.Errorf("evaluate imports %s: not among its allowed dependencies", imp)
		}
	}
	for _, dep := range goList("-deps", "github.com/flagwire/flagwire", "github.com/flagwire/flagwire/evaluate") {
		if strings.Contains(strings.ToLower(dep), "yaml") {
			t.Errorf("the SDK or evaluate depends on %s: YAML belongs in package flagfile", dep)
		}
	}
}
