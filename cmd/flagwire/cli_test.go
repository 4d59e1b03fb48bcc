package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/flagwire/flagwire/flagtest"
)

// cliResult is the outcome of one in-process flagwire run.
type cliResult struct {
	code           int
	stdout, stderr string
	err            error
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// runCLI runs the flagwire command tree in-process with args and stdin,
// as main does, and returns the exit status main would use.
func runCLI(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(stdin))
	err := root.ExecuteContext(context.Background())
	return cliResult{code: exitCode(err), stdout: out.String(), stderr: errb.String(), err: err}
}

// mustRun runs the CLI and fails the test unless it exits with code.
func mustRun(t *testing.T, code int, stdin string, args ...string) cliResult {
	t.Helper()
	r := runCLI(t, stdin, args...)
	if r.code != code {
		t.Fatalf("flagwire %s: want exit %d, got %s", strings.Join(args, " "), code, r)
	}
	return r
}

// exampleFlags copies the top-level example flags (flagfile/testdata/flags:
// the prod environment) to a temporary directory, with their ttls moved
// far into the future so that lint stays clean whenever the tests run.
func exampleFlags(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "..", "flagfile", "testdata", "flags")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("ttl: 2027-"), []byte("ttl: 2099-"))
		writeFile(t, filepath.Join(dir, e.Name()), string(b))
	}
	return dir
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	writeFile(t, path, strings.Replace(string(b), old, new, 1))
}

// startFlags starts a flagtest server serving the flags-as-code in dir and
// puts its token in FLAGWIRE_TOKEN.
func startFlags(t *testing.T, dir string, opts ...flagtest.Option) *flagtest.Server {
	t.Helper()
	srv := flagtest.NewServer(t, append([]flagtest.Option{flagtest.WithYAMLDir(os.DirFS(dir), ".")}, opts...)...)
	t.Setenv(tokenEnv, srv.Token())
	return srv
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"failure", failure("lint: 1 error"), 1},
		{"usage", usageError("bad flag"), 2},
		{"plain error is usage or I/O", errors.New("unknown flag: --x"), 2},
		{"wrapped failure", fmt.Errorf("ctx: %w", failure("x")), 1},
		{"findings", &findingsError{what: "x"}, 1},
		{"api refusal", &apiError{status: 403}, 1},
		{"conflict", &conflictError{c: &change{}}, 1},
		{"fs error", &fs.PathError{Op: "open", Path: "x", Err: fs.ErrNotExist}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCode(tt.err); got != tt.want {
				t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// TestHelp checks that every command documents its exit status and gives
// an example.
func TestHelp(t *testing.T) {
	r := mustRun(t, 0, "", "--help")
	for _, want := range []string{"Exit status:", "lint", "keygen", "sign", "verify", "apply", "eval", "import-env", "serve"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("root help lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, name := range []string{"lint", "keygen", "sign", "verify", "apply", "eval", "import-env"} {
		t.Run(name, func(t *testing.T) {
			r := mustRun(t, 0, "", name, "--help")
			for _, want := range []string{"Exit status: 0", "Examples:", "flagwire " + name} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("%s --help lacks %q:\n%s", name, want, r.stdout)
				}
			}
		})
	}
}

// TestEveryCommandHasExamples: every command's --help shows examples,
// each a flagwire command line.
func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no examples in its --help", c.CommandPath())
		} else if !strings.Contains(c.Example, "flagwire ") {
			t.Errorf("%q: examples without a flagwire command line:\n%s", c.CommandPath(), c.Example)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	r := mustRun(t, 0, "", "serve", "--help")
	if !strings.Contains(r.stdout, "Examples:") {
		t.Errorf("flagwire serve --help prints no examples:\n%s", r.stdout)
	}
}

// TestCompletion checks that cobra's shell completion is wired up.
func TestCompletion(t *testing.T) {
	r := mustRun(t, 0, "", "__complete", "lint", "--format", "")
	for _, want := range []string{"human", "json", "github"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("completion of --format lacks %q:\n%s", want, r.stdout)
		}
	}
	mustRun(t, 0, "", "completion", "bash")
}

// buildBinary builds the flagwire binary into a temporary directory, with
// extra go build flags, and returns its path and the go command; it skips
// the test under -short or without a go command in PATH.
func buildBinary(t *testing.T, flags ...string) (bin, goBin string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	bin = filepath.Join(t.TempDir(), "flagwire")
	args := append(append([]string{"build"}, flags...), "-o", bin, ".")
	if out, err := exec.Command(goBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin, goBin
}

// TestBinaryExitCodes builds the real binary into a temporary directory
// and checks the exit statuses main maps errors to.
func TestBinaryExitCodes(t *testing.T) {
	bin, _ := buildBinary(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"help", []string{"--help"}, 0, "Exit status:", ""},
		{"lint errors", []string{"lint", "--now", lintNow, "testdata/lint/defects"}, 1, "testdata/lint/defects/expired.yaml:9:8: error:", "flagwire: lint: 5 errors, 1 warning"},
		{"lint warnings only", []string{"lint", "testdata/lint/warnings"}, 0, "0 errors, 2 warnings", ""},
		{"lint strict", []string{"lint", "--strict", "testdata/lint/warnings"}, 1, "", "(--strict)"},
		{"lint missing dir", []string{"lint", "testdata/lint/missing"}, 2, "", "no such file or directory"},
		{"unknown flag", []string{"lint", "--bogus"}, 2, "", "unknown flag: --bogus"},
		{"unknown command", []string{"frobnicate"}, 2, "", "unknown command"},
		{"verify without key", []string{"verify", "x.json"}, 2, "", `"pub" not set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(out.String(), tt.stdout) || !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("flagwire %s: exit %d (want %d)\nstdout (want %q):\n%s\nstderr (want %q):\n%s",
					strings.Join(tt.args, " "), code, tt.code, tt.stdout, out.String(), tt.stderr, errb.String())
			}
		})
	}
}

// TestReadInputAndWriteOutput covers the small file helpers.
func TestReadInputAndWriteOutput(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.txt")
	if err := writeOutput(io.Discard, p, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	b, err := readInput(nil, p, 10)
	if err != nil || string(b) != "hello" {
		t.Fatalf("readInput = %q, %v", b, err)
	}
	if _, err := readInput(nil, p, 3); exitCode(err) != exitUsage {
		t.Errorf("over the limit: %v", err)
	}
	if b, err := readInput(strings.NewReader("stdin"), "-", 10); err != nil || string(b) != "stdin" {
		t.Errorf("stdin: %q %v", b, err)
	}
	if err := writeOutput(io.Discard, filepath.Join(dir, "missing", "x"), nil, 0o600); exitCode(err) != exitUsage {
		t.Errorf("write into a missing directory: %v", err)
	}
	var buf bytes.Buffer
	if err := writeOutput(&buf, "-", []byte("x"), 0); err != nil || buf.String() != "x" {
		t.Errorf("stdout: %q %v", buf.String(), err)
	}
}

func TestNewAPIClient(t *testing.T) {
	tests := []struct {
		server string
		ok     bool
		warn   bool
	}{
		{"", false, false},
		{"flags.example.com", false, false},
		{"ftp://flags.example.com", false, false},
		{"https://user:pw@flags.example.com", false, false},
		{"http://127.0.0.1:8080/", true, false},
		{"http://localhost:8080", true, false},
		{"https://flags.example.com/api/", true, false},
		{"http://flags.example.com", true, true},
	}
	t.Setenv(tokenEnv, "secret")
	for _, tt := range tests {
		t.Run(tt.server, func(t *testing.T) {
			var warn bytes.Buffer
			c, err := newAPIClient(tt.server, 0, &warn)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if err != nil {
				if exitCode(err) != exitUsage {
					t.Errorf("exit %d", exitCode(err))
				}
				return
			}
			defer c.close()
			if (warn.Len() > 0) != tt.warn {
				t.Errorf("warning %q, want %v", warn.String(), tt.warn)
			}
			if strings.Contains(warn.String(), "secret") {
				t.Error("the token leaked into a warning")
			}
			if strings.HasSuffix(c.base.Path, "/") {
				t.Errorf("base path %q keeps its slash", c.base.Path)
			}
		})
	}
}
