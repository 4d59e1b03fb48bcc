package evaluate

import (
	"testing"
	"time"
)

// TestCompileReusing: a segment whose definition shares its storage with
// the previous config's is reused, not rebuilt; a changed one is rebuilt,
// and evaluation follows the new definition.
func TestCompileReusing(t *testing.T) {
	ids := []string{"a", "b"}
	cfg := func(segIDs []string, when string) *Config {
		return &Config{Environment: "dev",
			Segments: []Segment{{Key: "s", Included: segIDs, When: when}},
			Flags:    []Flag{{Key: "f", Rules: []Rule{{ID: "r", Segment: "s", Serve: Serve{Variant: true}}}}},
		}
	}
	in := func(snap *Snapshot, user string) bool {
		res := snap.Evaluate("f", map[string]any{"userId": user}, time.Unix(0, 0))
		return res.Value == true
	}
	p1, err := Compile(cfg(ids, ""))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := CompileReusing(cfg(ids, ""), p1)
	if err != nil {
		t.Fatal(err)
	}
	if p2.segments["s"] != p1.segments["s"] {
		t.Fatal("an unchanged segment was rebuilt")
	}
	for name, c := range map[string]*Config{
		"new ids":      cfg([]string{"c"}, ""),
		"new when":     cfg(ids, "plan == 'pro'"),
		"shorter view": cfg(ids[:1], ""),
	} {
		p, err := CompileReusing(c, p1)
		if err != nil {
			t.Fatal(err)
		}
		if p.segments["s"] == p1.segments["s"] {
			t.Fatalf("%s: a changed segment was reused", name)
		}
	}
	p3, _ := CompileReusing(cfg([]string{"c"}, ""), p1)
	if in(p3, "a") || !in(p3, "c") {
		t.Fatal("evaluation does not follow the new segment")
	}
	other := cfg(ids, "")
	other.Environment = "prod"
	if p4, _ := CompileReusing(other, p1); p4.segments["s"] == p1.segments["s"] {
		t.Fatal("reused across environments")
	}
}
