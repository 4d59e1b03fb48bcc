package flagfile_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagfile"
)

// TestFileFormatDocExamples loads the YAML examples of the package
// documentation's "File format" section, as a user would copy them: the
// flag document and the config document as two files of one directory,
// the rules example inside a string flag with its variants. They must
// load, merge, compile and lint without errors, so the reference a reader
// learns the format from stays true.
func TestFileFormatDocExamples(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, format, ok := strings.Cut(string(src), "// # File format")
	if !ok {
		t.Fatal("doc.go has no File format section")
	}
	var blocks []string
	var cur strings.Builder
	for line := range strings.SplitSeq(format, "\n") {
		if code, ok := strings.CutPrefix(line, "//\t"); ok {
			cur.WriteString(code + "\n")
			continue
		}
		if cur.Len() > 0 {
			blocks = append(blocks, cur.String())
			cur.Reset()
		}
	}
	if len(blocks) != 3 {
		t.Fatalf("the File format section has %d YAML examples, want 3 (flag document, config document, rules)", len(blocks))
	}
	flagDoc, configDoc, rules := blocks[0], blocks[1], blocks[2]
	pricing := "flagKey: pricing-experiment\nenvironment: prod\ntype: string\nowners: [growth]\n" +
		"variants: [{name: control}, {name: A}, {name: B}]\nmetadata: {ttl: 2027-06-30}\n" + rules

	var files []*flagfile.File
	for name, body := range map[string]string{"checkout.yaml": flagDoc, "prod.yaml": configDoc, "pricing.yaml": pricing} {
		f, err := flagfile.LoadYAML(name, []byte(body))
		if err != nil {
			t.Fatalf("%s does not load: %v\n%s", name, err, body)
		}
		files = append(files, f)
	}
	cfgs, err := flagfile.MergeFiles(files...)
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	cfg := cfgs["prod"]
	if cfg == nil || len(cfg.Flags) != 3 || len(cfg.Segments) != 1 || cfg.Salt == "" || !cfg.RequireChangeReason || !cfg.RequireApproval {
		t.Fatalf("merged config: %+v", cfg)
	}
	snap, err := evaluate.Compile(cfg)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	now := time.Date(2026, 7, 10, 0, 0, 0, 0, time.UTC)
	if findings := flagfile.Lint(cfg, now, flagfile.LintOptions{}); flagfile.HasErrors(findings) {
		t.Errorf("lint errors: %v", findings)
	}
	// The documented meaning: a pro user in the US matches rule-1.
	r := snap.Evaluate("checkout-new-flow", evaluate.Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US"}, now)
	if r.Value != true || r.Reason.RuleID != "rule-1" {
		t.Errorf("checkout-new-flow for a pro user in the US: %v %v, want true by rule-1", r.Value, r.Reason)
	}
}
