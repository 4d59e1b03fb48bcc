package flagfile

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/flagwire/flagwire/evaluate"
	"go.yaml.in/yaml/v3"
)

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
		txt := mapScalar("t.yaml", []byte(src), lineStarts([]byte(src)), n)
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

// TestSyntaxErrorPositions: every YAML syntax error names file:line:col,
// the place where the library stopped (col in characters), and the
// construct it was reading with where that starts. The positions are
// counted by hand from the input.
func TestSyntaxErrorPositions(t *testing.T) {
	tests := []struct {
		name, src, pos, msg string
	}{
		// The input ends (line 3, col 1, after the last newline) inside
		// the flow sequence opened on line 2.
		{"unclosed list at the end", "flagKey: a\nrules: [\n", "f.yaml:3:1", "did not find expected node content"},
		// The tab that starts line 3.
		{"tab indentation", "flagKey: a\nmetadata:\n\tteam: x\n", "f.yaml:3:1", "found character that cannot start any token"},
		// "flagKey: a" is 10 characters; the second ':' is the 11th.
		{"second colon on a line", "flagKey: a: b\n", "f.yaml:1:11", "mapping values are not allowed in this context"},
		// " state" continues the plain scalar "a"; its ':' is col 7.
		{"key indented by one", "flagKey: a\n state: on\n", "f.yaml:2:7", "mapping values are not allowed in this context"},
		// "owner" at col 2 closes the mapping of metadata (indented 2) and
		// is no key of the top-level mapping (indented 0) opened at 1:1.
		{"key between two indents", "flagKey: a\nmetadata:\n  team: x\n owner: y\n", "f.yaml:4:2",
			"did not find expected key (while parsing a block mapping that starts at 1:1)"},
		// The quote opened at col 10 is still open at the end (2:1).
		{"unterminated quote", "flagKey: 'unterminated\n", "f.yaml:2:1",
			"found unexpected end of stream (while scanning a quoted scalar that starts at 1:10)"},
		// The backslash of \q is col 12: `flagKey: "a` is 11 characters.
		{"unknown escape", "flagKey: \"a\\qb\"\n", "f.yaml:1:12",
			"found unknown escape character (while parsing a quoted scalar that starts at 1:10)"},
		{"reserved character", "flagKey: @a\n", "f.yaml:1:10", "found character that cannot start any token"},
		// "y" and "state" on the next line form one plain scalar inside the
		// list opened at 2:9; its ':' (col 6 of line 3) ends that.
		{"list left open", "flagKey: a\nowners: [x, y\nstate: on\n", "f.yaml:3:6",
			"(while parsing a flow sequence that starts at 2:9)"},
		{"mapping left open", "{flagKey: a\n", "f.yaml:2:1", "did not find expected ',' or '}' (while parsing a flow mapping that starts at 1:1)"},
		// Lines count across documents: the list opened at 4:8 is open at
		// the end of the input, line 5 col 1.
		{"in the second document", "flagKey: a\n---\nflagKey: b\nstate: [on\n", "f.yaml:5:1",
			"(while parsing a flow sequence that starts at 4:8)"},
		// Columns count characters, not bytes: 'é' is one.
		{"after a multi-byte character", "flagKey: 'é': x\n", "f.yaml:1:13", "mapping values are not allowed in this context"},
		// An invalid byte: "flagKey: a\n" and "state: " are 18 bytes, so
		// the byte 0xff is line 2, col 8.
		{"invalid UTF-8", "flagKey: a\nstate: \xff\n", "f.yaml:2:8", "invalid leading UTF-8 octet"},
		{"invalid UTF-8 after a multi-byte character", "flagKey: é\xff\n", "f.yaml:1:11", "invalid leading UTF-8 octet"},
		// The alias *v starts at col 11 of line 2.
		{"unknown anchor", "flagKey: a\nvariants: *v\n", "f.yaml:2:11", "unknown anchor 'v' referenced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadYAML("f.yaml", []byte(tt.src))
			fs := loadErrorFindings(t, err)
			if len(fs) != 1 || fs[0].Code != "yaml-syntax" {
				t.Fatalf("findings %v, want one yaml-syntax finding", fs)
			}
			if got := fs[0].Pos.String(); got != tt.pos {
				t.Errorf("position %s, want %s (%s)", got, tt.pos, fs[0].Msg)
			}
			if !strings.HasPrefix(fs[0].Msg, "invalid YAML: ") || !strings.Contains(fs[0].Msg, tt.msg) {
				t.Errorf("message %q, want one containing %q", fs[0].Msg, tt.msg)
			}
		})
	}
}

// TestStopPointWithoutAParser: with no decoder state to read, stopPoint
// says so, and the error keeps the line of the library's text.
func TestStopPointWithoutAParser(t *testing.T) {
	if _, ok := stopPoint(nil, nil); ok {
		t.Error("stopPoint(nil) claims a position")
	}
	d := &decoder{file: "f.yaml"}
	d.syntaxError(errors.New("yaml: line 4: did not find expected key"), nil)
	if len(d.errs) != 1 || d.errs[0].Pos.String() != "f.yaml:4" || d.errs[0].Msg != "invalid YAML: did not find expected key" {
		t.Errorf("finding %+v", d.errs)
	}
}
