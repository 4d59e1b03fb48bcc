package flagfile

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
)

// lintNow is the time the lint testdata is checked at.
var lintNow = time.Date(2026, 6, 25, 12, 0, 0, 0, time.UTC)

var lintOptionsRE = regexp.MustCompile(`# options: maxStaticSegmentIDs=(-?\d+)`)

// TestLintTestdata lints each testdata/lint/*.yaml file and checks that it
// reports exactly the findings its "# want: COL SEVERITY CODE" comments
// name, each at that line and column.
func TestLintTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/lint/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no lint testdata: %v", err)
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			want := testkit.LintWants(t, name, data)
			var opts LintOptions
			if m := lintOptionsRE.FindSubmatch(data); m != nil {
				opts.MaxStaticSegmentIDs, _ = strconv.Atoi(string(m[1]))
			}
			file, err := LoadYAML(name, data)
			if err != nil {
				t.Fatal(err)
			}
			cfgs, err := MergeFiles(file)
			if err != nil || len(cfgs) != 1 {
				t.Fatalf("%v %v", cfgs, err)
			}
			for _, cfg := range cfgs {
				findings := Lint(cfg, lintNow, opts)
				got := findingStrings(findings)
				sort.Strings(got)
				sort.Strings(want)
				if !reflect.DeepEqual(got, want) {
					var b strings.Builder
					for _, f := range findings {
						b.WriteString("\n\t" + f.String())
					}
					t.Errorf("got  %q\nwant %q\nfindings:%s", got, want, b.String())
				}
				if !sort.SliceIsSorted(findings, func(i, j int) bool {
					a, b := findings[i].Pos, findings[j].Pos
					return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
				}) {
					t.Error("findings not sorted by position")
				}
				for _, f := range findings {
					if f.Msg == "" || f.Code == "" || (f.Flag == "" && f.Segment == "" && !strings.HasPrefix(f.Field, "attributes.")) {
						t.Errorf("incomplete finding %+v", f)
					}
				}
			}
		})
	}
}

func TestLintMessages(t *testing.T) {
	cfgs := mustLoad(t, "m.yaml", `environment: e
attributes: {plan: string, accountId: string}
flags:
  - flagKey: f
    owners: [a]
    metadata: {ttl: 2026-01-01}
    rules:
      - id: r
        when: palm == 'x' and plan == 1
        variant: true
`)
	fs := Lint(cfgs["e"], lintNow, LintOptions{})
	want := []string{
		`m.yaml:6:21: error: flag "f" metadata.ttl: flag expired on 2026-01-01 but is still on: clean it up or extend the ttl`,
		`m.yaml:9:15: error: flag "f" rule "r" when: attribute "palm" is not in the declared schema; did you mean "plan"?`,
		`m.yaml:9:31: error: flag "f" rule "r" when: attribute "plan" is declared string but used as number`,
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !HasErrors(fs) || HasErrors(nil) || HasErrors([]evaluate.Finding{{Severity: evaluate.SeverityWarning}}) {
		t.Error("HasErrors")
	}
}

// TestLintWithoutSource lints a Config built in code: the same findings,
// with positions inside rule conditions relative to the condition.
func TestLintWithoutSource(t *testing.T) {
	cfg := &evaluate.Config{
		Environment: "e",
		Attributes:  map[string]string{"plan": "string"},
		Flags: []evaluate.Flag{{
			Key:    "f",
			Owners: []string{"a"},
			Rules:  []evaluate.Rule{{ID: "r", When: "plan == 'x' or region == 'EU'", Serve: evaluate.Serve{Variant: true}}},
		}},
		Segments: []evaluate.Segment{{Key: "big", Included: make([]string, DefaultMaxStaticSegmentIDs+1)}},
	}
	fs := Lint(cfg, lintNow, LintOptions{})
	got := make([]string, len(fs))
	for i, f := range fs {
		got[i] = f.Pos.String() + " " + f.Code + " " + f.Field
	}
	want := []string{" large-segment included", " missing-ttl metadata", "1:16 unknown-attribute when"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if fs := Lint(cfg, lintNow, LintOptions{MaxStaticSegmentIDs: -1}); len(fs) != 2 {
		t.Errorf("disabled segment check: %v", fs)
	}
	if Lint(nil, lintNow, LintOptions{}) != nil {
		t.Error("nil config has findings")
	}
}

func TestLintPII(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"jane.doe+news@example.co.uk", "an email address"},
		{"contact: a@b.io today", "an email address"},
		{"4111111111111111", "a payment card number"},
		{"5500-0000-0000-0004", "a payment card number"},
		{"378282246310005", "a payment card number"},
		{"4111111111111112", ""},
		{"0000000000000000", ""},
		{"+1 415 555 2671", "a phone number"},
		{"+4915112345678", "a phone number"},
		{"(555) 123-4567", "a phone number"},
		{"555.123.4567", "a phone number"},
		{"030 12345678", "a phone number"},
		{"1719308400", ""},
		{"2026-12-31 10:00", ""},
		{"2026-12-31T10:00:00Z", ""},
		{"192.168.100.200", ""},
		{"1.2.3", ""},
		{"23.00 EUR", ""},
		{"#ff4d4f", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := lintPII(tt.in); got != tt.want {
			t.Errorf("lintPII(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, k := range []string{"email", "E-Mail", "user_email", "contactEmailAddress", "phone", "phoneNumber", "SSN", "password", "adminPassword", "credit_card", "cvv"} {
		if !lintSensitiveKey(k) {
			t.Errorf("%q not sensitive", k)
		}
	}
	for _, k := range []string{"className", "headphones", "price", "currency", "mailbox", "emailEnabledFlag"} {
		if lintSensitiveKey(k) {
			t.Errorf("%q sensitive", k)
		}
	}
}

func TestLintTTL(t *testing.T) {
	for _, tt := range []struct {
		ttl     string
		expired bool
		valid   bool
	}{
		{"2026-06-24", true, true},
		{"2026-06-25", false, true}, // the whole day is still valid
		{"2026-06-26", false, true},
		{"2026-06-25T11:59:59Z", true, true},
		{"2026-06-25T14:00:00+02:00", true, true},
		{"2026-06-25T12:00:01Z", false, true},
		{"25.06.2026", false, false},
		{"2026-13-01", false, false},
	} {
		exp, ok := lintParseTTL(tt.ttl)
		if ok != tt.valid || (ok && !lintNow.Before(exp) != tt.expired) {
			t.Errorf("%s: expiry %v %v", tt.ttl, exp, ok)
		}
	}
}
