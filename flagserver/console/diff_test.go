package console

import (
	"slices"
	"testing"
)

// diffJSON lists changed fields by path: a changed scalar with both
// values, an added or removed member or element with its one value;
// objects compare by member, arrays by index; the server's version is
// left out.
func TestDiffJSON(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after string
		want          []fieldChange
	}{
		{"create", ``, `{"key":"f","state":"on","version":3}`, []fieldChange{
			{Path: "key", After: `"f"`, Kind: "added"}, {Path: "state", After: `"on"`, Kind: "added"}}},
		{"delete", `{"key":"f"}`, ``, []fieldChange{{Path: "key", Before: `"f"`, Kind: "removed"}}},
		{"scalar", `{"default":{"percentage":10,"variant":true},"version":1}`, `{"default":{"percentage":25,"variant":true},"version":2}`,
			[]fieldChange{{Path: "default.percentage", Before: "10", After: "25", Kind: "changed"}}},
		{"array", `{"owners":["a","b"]}`, `{"owners":["a"]}`, []fieldChange{{Path: "owners[1]", Before: `"b"`, Kind: "removed"}}},
		{"emptied", `{"rules":[{"id":"r1"}]}`, `{"rules":[]}`, []fieldChange{
			{Path: "rules", After: "[]", Kind: "added"}, {Path: "rules[0].id", Before: `"r1"`, Kind: "removed"}}},
		{"exact numbers", `{"n":12345678901234567890}`, `{"n":12345678901234567891}`,
			[]fieldChange{{Path: "n", Before: "12345678901234567890", After: "12345678901234567891", Kind: "changed"}}},
		{"unchanged", `{"a":{"b":[1,{"c":null}]}}`, `{"a":{"b":[1,{"c":null}]}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := diffJSON([]byte(tc.before), []byte(tc.after)); !slices.Equal(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// rampPatch changes only the chosen percentage and keeps the rest of the
// document byte for byte.
func TestRampPatch(t *testing.T) {
	doc := []byte(`{"key":"f","default":{"variant":"B","percentage":10,"seed":"s"},"rules":[{"id":"r1","when":"a == 1","percentage":5,"variant":1.50},{"id":"r2","variant":true}]}`)
	p, err := rampPatch(doc, "rule:r1", 25)
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonText(p); got != `{"rules":[{"id":"r1","percentage":25,"variant":1.50,"when":"a == 1"},{"id":"r2","variant":true}]}` {
		t.Fatalf("rule:r1 → %s", got)
	}
	p, err = rampPatch(doc, "default", 12.5)
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonText(p); got != `{"default":{"percentage":12.5,"seed":"s","variant":"B"}}` {
		t.Fatalf("default → %s", got)
	}
	for _, target := range []string{"rule:r2", "rule:nope", "nonsense"} {
		if _, err := rampPatch(doc, target, 50); err == nil {
			t.Errorf("%s: no error", target)
		}
	}
}
