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
