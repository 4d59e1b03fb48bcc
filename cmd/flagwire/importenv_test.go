package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/wire"
)

const legacyDotEnv = `# legacy toggles of the checkout service
export FEATURE_CHECKOUT_NEW_FLOW=true
FEATURE_DARK_MODE = off   # not yet
FEATURE_MAX_ITEMS=25
FEATURE_DISCOUNT_RATE=0.15
FEATURE_THEME="dark blue"
FEATURE_BANNER='Hello, "world" # not a comment'
FEATURE_LEGACY_SEARCH=0
FEATURE_EMPTY=
DATABASE_URL=postgres://db.internal/checkout
`

// TestImportEnv converts a .env file, checks that the result lints
// without errors (owners and ttl left as warnings), and that each flag
// serves what its variable said, offline and once applied to a server.
func TestImportEnv(t *testing.T) {
	work := t.TempDir()
	envFile := filepath.Join(work, ".env")
	writeFile(t, envFile, legacyDotEnv)
	flags := filepath.Join(work, "flags")
	out := filepath.Join(flags, "imported.yaml")
	if err := os.Mkdir(flags, 0o755); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, 0, "", "import-env", "-o", out, envFile)
	if !strings.Contains(r.stderr, "imported 7 flags into environment \"prod\"") ||
		!strings.Contains(r.stderr, "FEATURE_EMPTY is empty: skipped") {
		t.Errorf("stderr: %s", r.stderr)
	}
	yml, _ := os.ReadFile(out)
	if strings.Contains(string(yml), "database") {
		t.Errorf("a variable without the prefix was imported:\n%s", yml)
	}

	r = mustRun(t, 0, "", "lint", "--format", "json", flags)
	var doc lintJSONDoc
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Errors != 0 || doc.Warnings != 14 {
		t.Errorf("lint: %d errors, %d warnings, want 0 and 14:\n%s", doc.Errors, doc.Warnings, r.stdout)
	}
	for _, f := range doc.Findings {
		if f.Code != "missing-owners" && f.Code != "missing-ttl" {
			t.Errorf("unexpected finding %+v", f)
		}
	}

	today := map[string]string{
		"checkout-new-flow": "true",
		"dark-mode":         "false",
		"max-items":         "25",
		"discount-rate":     "0.15",
		"theme":             `"dark blue"`,
		"banner":            `"Hello, \"world\" # not a comment"`,
		"legacy-search":     "false",
	}
	srv := flagtest.NewServer(t, flagtest.WithConfig(&evaluate.Config{Environment: "prod"}))
	t.Setenv(tokenEnv, srv.Token())
	mustRun(t, 0, "", "apply", flags, "--server", srv.URL, "--reason", "migration playbook step 2")
	for key, want := range today {
		for _, source := range [][]string{{"--flags", flags}, {"--server", srv.URL}} {
			r := mustRun(t, 0, "", "eval", key, "--format", "json", "--attr", "userId=u1", source[0], source[1])
			var d wire.Decision
			if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
				t.Fatal(err)
			}
			if string(d.Variant) != want {
				t.Errorf("%s %s: %s, want %s", key, source[0], d.Variant, want)
			}
		}
	}

	t.Run("flipping the state flips the toggle", func(t *testing.T) {
		editFile(t, out, "flagKey: dark-mode\n    state: off", "flagKey: dark-mode\n    state: on")
		r := mustRun(t, 0, "", "eval", "dark-mode", "--flags", flags)
		if !strings.HasPrefix(r.stdout, "dark-mode = true\n") {
			t.Errorf("stdout: %s", r.stdout)
		}
	})
}

func TestImportEnvFromEnvironment(t *testing.T) {
	t.Setenv("FWTEST_NEW_SEARCH", "enabled")
	t.Setenv("FWTEST_PAGE_SIZE", "50")
	r := mustRun(t, 0, "", "import-env", "--prefix", "FWTEST_", "--env", "staging")
	for _, want := range []string{"environment: staging\n", "flagKey: new-search\n", "flagKey: page-size\n", "(environment)."} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f.yaml"), r.stdout)
	mustRun(t, 0, "", "lint", dir)
}

func TestImportEnvErrors(t *testing.T) {
	dir := t.TempDir()
	clash := filepath.Join(dir, "clash.env")
	writeFile(t, clash, "FEATURE_NEW_UI=true\nfeature_new_ui=false\n")
	bad := filepath.Join(dir, "bad.env")
	writeFile(t, bad, "FEATURE_A=1\nFEATURE_B=\"open\n")
	none := filepath.Join(dir, "none.env")
	writeFile(t, none, "DATABASE_URL=x\n")
	exists := filepath.Join(dir, "exists.yaml")
	writeFile(t, exists, "x")
	tests := []struct {
		name string
		code int
		args []string
		want string
	}{
		{"two variables, one key", 1, []string{"import-env", clash}, `clash.env:2: feature_new_ui and FEATURE_NEW_UI (` + clash + `:1) both become flag "new-ui"`},
		{"malformed file", 1, []string{"import-env", bad}, "bad.env:2:11: unterminated double-quoted value of FEATURE_B"},
		{"nothing to import", 2, []string{"import-env", none}, `no variables with prefix "FEATURE_" found in ` + none},
		{"missing file", 2, []string{"import-env", filepath.Join(dir, "missing.env")}, "no such file"},
		{"output exists", 2, []string{"import-env", "-o", exists, clash}, "already exists (use --force"},
		{"bad env", 2, []string{"import-env", "--env", "pro d", clash}, `--env "pro d"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, tt.code, "", tt.args...)
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, r.stderr)
			}
		})
	}
	t.Run("later assignment wins", func(t *testing.T) {
		r := mustRun(t, 0, "FEATURE_X=true\nFEATURE_X=false\n", "import-env", "-")
		if !strings.Contains(r.stdout, "flagKey: x\n    state: off") || !strings.Contains(r.stderr, "<stdin>:2: FEATURE_X overrides the value set at <stdin>:1") {
			t.Errorf("%s", r)
		}
	})
}

func TestParseDotEnv(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // NAME=VALUE|… or "error: …"
	}{
		{"plain", "A=1\nB=two", "A=1|B=two"},
		{"comments and blanks", "# c\n\n  A=1 # trailing\n\t# indented", "A=1"},
		{"export", "export A=1\nexport\tB=2", "A=1|B=2"},
		{"spaces around =", "A = x y ", "A=x y"},
		{"hash inside a word", "A=a#b", "A=a#b"},
		{"single quotes are literal", `A='x \n "y" # z'`, `A=x \n "y" # z`},
		{"double quotes escape", `A="x\ty\n\"z\" \\ \$"`, "A=x\ty\n\"z\" \\ $"},
		{"quoted then comment", `A="x" # c`, "A=x"},
		{"crlf", "A=1\r\nB=2\r\n", "A=1|B=2"},
		{"empty", "A=", "A="},
		{"empty quotes", `A=""`, "A="},
		{"no =", "A 1", "error: f.env:1:3: expected '=' after A"},
		{"bad name", "1A=1", "error: f.env:1:1: expected NAME=VALUE"},
		{"unterminated single", "\n  A='x", "error: f.env:2:5: unterminated single-quoted value of A"},
		{"unknown escape", `A="\q"`, `error: f.env:1:4: unknown escape \q`},
		{"junk after quotes", `A="x" y`, `error: f.env:1:7: unexpected "y" after the value of A`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars, err := parseDotEnv("f.env", []byte(tt.in))
			if msg, isErr := strings.CutPrefix(tt.want, "error: "); isErr {
				if err == nil || !strings.Contains(err.Error(), msg) {
					t.Fatalf("err = %v, want %q", err, msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range vars {
				got = append(got, v.name+"="+v.value)
			}
			if strings.Join(got, "|") != tt.want {
				t.Errorf("got %q, want %q", strings.Join(got, "|"), tt.want)
			}
		})
	}
}

func TestToggleFlag(t *testing.T) {
	tests := []struct {
		val, typ, state, variant string
	}{
		{"true", "", "on", ""},
		{"FALSE", "", "off", ""},
		{"1", "", "on", ""},
		{"no", "", "off", ""},
		{"25", "number", "on", "25"},
		{"-1.5e3", "number", "on", "-1.5e3"},
		{"0x10", "string", "on", "0x10"},
		{"NaN", "string", "on", "NaN"},
		{"dark", "string", "on", "dark"},
		{strings.Repeat("x", 65), "string", "on", "current"},
	}
	for _, tt := range tests {
		t.Run(tt.val, func(t *testing.T) {
			f := toggleFlag("k", envVar{name: "FEATURE_K", value: tt.val, at: "env"}, tt.val)
			if string(f.Type) != tt.typ || f.State != tt.state || f.Default == nil {
				t.Fatalf("%+v", f)
			}
			if tt.variant != "" && (len(f.Variants) != 1 || f.Variants[0].Name != tt.variant || f.Default.Variant != tt.variant) {
				t.Errorf("variants %+v default %+v", f.Variants, f.Default)
			}
		})
	}
}

// FuzzParseDotEnv: the .env parser never panics, and whatever it accepts
// converts to flags that compile.
func FuzzParseDotEnv(f *testing.F) {
	f.Add(legacyDotEnv)
	f.Add(`A="x\ty" # c` + "\nexport B='y'\n")
	f.Add("FEATURE_X=\"unterminated")
	f.Fuzz(func(t *testing.T, in string) {
		vars, err := parseDotEnv("f.env", []byte(in))
		if err != nil {
			return
		}
		cfg, _, err := importToggles(vars, "prod", []string{""})
		if err != nil {
			return
		}
		if _, err := evaluate.Compile(cfg); err != nil {
			t.Fatalf("imported flags do not compile: %v\n%q", err, in)
		}
	})
}
