package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/internal/testkit"
)

// lintNow is the time the lint testdata is checked at.
const lintNow = "2026-06-25T12:00:00Z"

// lintWants collects the "# want: COL SEVERITY CODE[; …]" comments of the
// YAML files under dir as "file:line:col severity code".
func lintWants(t *testing.T, dir string) []string {
	t.Helper()
	var want []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		want = append(want, testkit.LintWants(t, filepath.ToSlash(p), data)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	return want
}

type lintJSONDoc struct {
	Findings []lintJSONFinding `json:"findings"`
	Errors   int               `json:"errors"`
	Warnings int               `json:"warnings"`
}

// TestLintSeededDefects lints each testdata/lint directory and checks that
// every seeded defect is found at its exact file:line:col with the right
// severity and code, nothing else is, and the exit status is right.
func TestLintSeededDefects(t *testing.T) {
	tests := []struct {
		dir  string
		code int
	}{
		{"testdata/lint/defects", 1},  // an expired flag still on, type errors, an unknown attribute, PII
		{"testdata/lint/warnings", 0}, // warnings only
		{"testdata/lint/broken", 1},   // a load error: unknown field
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.dir), func(t *testing.T) {
			want := lintWants(t, tt.dir)
			r := mustRun(t, tt.code, "", "lint", "--format", "json", "--now", lintNow, tt.dir)
			var doc lintJSONDoc
			if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
				t.Fatalf("bad JSON: %v\n%s", err, r.stdout)
			}
			var got []string
			errs := 0
			for _, f := range doc.Findings {
				got = append(got, f.File+":"+strconv.Itoa(f.Line)+":"+strconv.Itoa(f.Col)+" "+f.Severity+" "+f.Code)
				if f.Severity == "error" {
					errs++
				}
				if f.Message == "" {
					t.Errorf("finding without a message: %+v", f)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("findings\n got  %q\n want %q", got, want)
			}
			if doc.Errors != errs || doc.Warnings != len(doc.Findings)-errs {
				t.Errorf("counts: errors %d warnings %d for %d findings", doc.Errors, doc.Warnings, len(doc.Findings))
			}
		})
	}
}

// TestLintFormats checks the human and GitHub renderings of one finding.
func TestLintFormats(t *testing.T) {
	dir := "testdata/lint/defects"
	tests := []struct {
		format string
		want   []string
	}{
		{"human", []string{
			`testdata/lint/defects/expired.yaml:9:8: error: flag "holiday-banner" metadata.ttl: flag expired on 2026-01-31 but is still on: clean it up or extend the ttl [expired-flag]`,
			`testdata/lint/defects/pii.yaml:9:16: error: flag "support-contact" variants[0].payload.contact: value looks like an email address`,
			`testdata/lint/defects/types.yaml:9:11: error: flag "checkout-new-flow" rule "rule-2" when: attribute "regoin" is not in the declared schema; did you mean "region"? [unknown-attribute]`,
			"5 errors, 1 warning (5 flags in 1 environment)",
		}},
		{"github", []string{
			`::error file=testdata/lint/defects/expired.yaml,line=9,col=8,title=flagwire expired-flag::flag "holiday-banner" metadata.ttl: flag expired on 2026-01-31 but is still on: clean it up or extend the ttl` + "\n",
			`::warning file=testdata/lint/defects/expired.yaml,line=15,col=17,title=flagwire expired-flag::flag "old-experiment"`,
			`::error file=testdata/lint/defects/types.yaml,line=6,col=29,title=flagwire attribute-type::flag "checkout-new-flow" rule "rule-1" when: attribute "seats" is declared number but used as string`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			r := mustRun(t, 1, "", "lint", "--format", tt.format, "--now", lintNow, dir)
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
			if !strings.Contains(r.stderr, "flagwire: lint: 5 errors, 1 warning") {
				t.Errorf("stderr: %q", r.stderr)
			}
		})
	}
	r := mustRun(t, 1, "", "lint", "--format", "github", "--now", lintNow, dir)
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if !strings.HasPrefix(line, "::error file=") && !strings.HasPrefix(line, "::warning file=") {
			t.Errorf("not a workflow command: %q", line)
		}
	}
}

// TestLintOptions covers --strict, --env, --now and the example flags.
func TestLintOptions(t *testing.T) {
	t.Run("example flags are clean", func(t *testing.T) {
		r := mustRun(t, 0, "", "lint", "--now", lintNow, "../../flagfile/testdata/flags")
		if !strings.Contains(r.stdout, "ok: 3 flags in 1 environment, no findings") {
			t.Errorf("stdout: %s", r.stdout)
		}
	})
	t.Run("strict fails on warnings", func(t *testing.T) {
		mustRun(t, 1, "", "lint", "--strict", "testdata/lint/warnings")
	})
	t.Run("env filter", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "a.yaml"), "flagKey: a\nenvironment: dev\nowners: [x]\nmetadata: {ttl: 2020-01-01}\n")
		writeFile(t, filepath.Join(dir, "b.yaml"), "flagKey: b\nenvironment: prod\nowners: [x]\nmetadata: {ttl: 2099-01-01}\n")
		mustRun(t, 1, "", "lint", dir)
		mustRun(t, 0, "", "lint", "--env", "prod", dir)
		r := mustRun(t, 2, "", "lint", "--env", "staging", dir)
		if !strings.Contains(r.stderr, `environment "staging" is not defined`) || !strings.Contains(r.stderr, "dev, prod") {
			t.Errorf("stderr: %s", r.stderr)
		}
	})
	t.Run("now moves expiry", func(t *testing.T) {
		mustRun(t, 0, "", "lint", "--now", "2026-06-29", "testdata/lint/warnings")
		r := mustRun(t, 1, "", "lint", "--now", "2027-01-02", "testdata/lint/warnings")
		if !strings.Contains(r.stdout, "expired-flag") {
			t.Errorf("stdout: %s", r.stdout)
		}
	})
	t.Run("single file", func(t *testing.T) {
		mustRun(t, 0, "", "lint", "testdata/lint/warnings/flags.yaml")
	})
}

func TestLintUsageErrors(t *testing.T) {
	empty := t.TempDir()
	wantUsageErrors(t, []usageCase{
		{"missing dir", []string{"lint", "testdata/lint/missing"}, "testdata/lint/missing: no such file or directory"},
		{"empty dir", []string{"lint", empty}, "no flags-as-code files"},
		{"bad format", []string{"lint", "--format", "xml", "testdata/lint/warnings"}, `--format "xml"`},
		{"bad now", []string{"lint", "--now", "tomorrow", "testdata/lint/warnings"}, `--now "tomorrow"`},
		{"two dirs", []string{"lint", "a", "b"}, "accepts at most 1 arg"},
	})
}

// usageCase is a command line that is a usage error (exit status 2) and
// what its standard error must hold.
type usageCase struct {
	name   string
	args   []string
	stderr string
}

// wantUsageErrors runs each case as a subtest.
func wantUsageErrors(t *testing.T, cases []usageCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, 2, "", tt.args...)
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr lacks %q: %s", tt.stderr, r.stderr)
			}
		})
	}
}

func TestGitHubEscaping(t *testing.T) {
	if got := ghData("100%\nnext\r"); got != "100%25%0Anext%0D" {
		t.Errorf("ghData = %q", got)
	}
	if got := ghProperty("a:b,c%"); got != "a%3Ab%2Cc%25" {
		t.Errorf("ghProperty = %q", got)
	}
}

// BenchmarkLint measures a lint of the example flags (1,000-id segment
// included) in-process, the cost of a pre-commit hook after start-up.
func BenchmarkLint(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		root := newRootCmd()
		root.SetArgs([]string{"lint", "--now", lintNow, "../../flagfile/testdata/flags"})
		root.SetOut(discard{})
		root.SetErr(discard{})
		if err := root.Execute(); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
