package evaluate_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLeafDependencies checks that evaluate stays a pure leaf — no file,
// network or process I/O among its imports — and that neither it nor the
// SDK package that embeds it links a YAML parser (flags as code live in
// package flagfile).
func TestLeafDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goList := func(args ...string) []string {
		t.Helper()
		out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
		if err != nil {
			t.Skipf("go list: %v", err)
		}
		return strings.Fields(string(out))
	}
	forbidden := map[string]bool{"os": true, "io/fs": true, "net": true, "net/http": true, "os/exec": true, "path/filepath": true, "syscall": true}
	for _, imp := range goList("-f", `{{join .Imports " "}}`, "github.com/flagwire/flagwire/evaluate") {
		if forbidden[imp] {
			t.Errorf("evaluate imports %s: it must do no I/O", imp)
		}
	}
	for _, dep := range goList("-deps", "github.com/flagwire/flagwire", "github.com/flagwire/flagwire/evaluate") {
		if strings.Contains(strings.ToLower(dep), "yaml") {
			t.Errorf("the SDK or evaluate depends on %s: YAML belongs in package flagfile", dep)
		}
	}
}
