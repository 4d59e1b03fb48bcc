package evaluate

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParseCondition checks that ParseCondition never panics, that errors
// are *SyntaxError with a position inside the source, and that a condition
// that parses evaluates without panicking and has a canonical form (see
// ruleFormat) that reparses to an equivalent condition.
func FuzzParseCondition(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "rules", "*.txt"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(src))
	}
	for _, src := range []string{
		"", "plan ==", "plan = 'pro'", "(a == 1", "a == 1)", "semver(v) < '2.x'", "date(d) > '2026-02-30'",
		"x matches '(['", `x == '\q'`, "x == 1e999", "x in [1,", "not", "now", "segment(x)", "a.b. == 1",
		"x == 'é", "\xff == 1", "x == '\xff'", "x == 5abc", "a & b", "has(x", "AND", "x startsWith 5",
	} {
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := ParseCondition(src)
		if err != nil {
			ruleCheckSyntaxError(t, src, err)
			return
		}
		if c.String() != src {
			t.Fatalf("String() = %q, want %q", c.String(), src)
		}
		maps := ruleFuzzAttrs(c)
		canon := ruleFormat(c.root)
		c2, err := ParseCondition(canon)
		if err != nil {
			var se *SyntaxError
			if errors.As(err, &se) && strings.HasPrefix(se.Msg, "rule is too long") {
				return // the canonical form can be longer than the source
			}
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, src, err)
		}
		if again := ruleFormat(c2.root); again != canon {
			t.Fatalf("canonical form is not stable:\n%q\n%q", canon, again)
		}
		if !ruleSameStrings(c.Segments(), c2.Segments()) {
			t.Errorf("Segments: %q vs canonical %q", c.Segments(), c2.Segments())
		}
		segs := ruleSegsFunc(func(name string, _ Attributes) bool { return len(name)%2 == 0 })
		for _, now := range []time.Time{{}, time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)} {
			for _, attrs := range maps {
				got, want := c2.Match(attrs, segs, now), c.Match(attrs, segs, now)
				if got != want {
					t.Fatalf("%q.Match(%v) = %v but canonical %q gives %v", src, attrs, want, canon, got)
				}
				// The list form (EvaluateAttrs) decides as the map does,
				// with a decoy of each key first: the last one counts.
				var list []Attr
				for k, v := range attrs {
					list = append(list, Attr{Key: k, Value: StringValue("decoy")}, Attr{Key: k, Value: AnyValue(v)})
				}
				ext := rlExt{segs: segs, now: now}
				if got := c.match(rlEnv{list: append(list, Attr{Key: "", Value: BoolValue(true)}), ext: &ext}); got != want {
					t.Fatalf("%q: map %v gives %v, the same as a list %v gives %v", src, attrs, want, list, got)
				}
				c.Match(attrs, nil, now)
			}
		}
	})
}

// ruleCheckSyntaxError checks that err is a *SyntaxError positioned inside
// (or just after) src.
func ruleCheckSyntaxError(t *testing.T, src string, err error) {
	t.Helper()
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %T %v is not a *SyntaxError", err, err)
	}
	lines := strings.Split(src, "\n")
	if se.Line < 1 || se.Line > len(lines) || se.Col < 1 {
		t.Fatalf("%q: error position %d:%d outside the source: %v", src, se.Line, se.Col, err)
	}
	if len(src) <= ruleMaxSourceLen {
		line := lines[se.Line-1]
		runes := 0
		for i := range len(line) {
			if line[i]&0xC0 != 0x80 {
				runes++
			}
		}
		if se.Col > runes+1 {
			t.Fatalf("%q: error column %d beyond the line: %v", src, se.Col, err)
		}
		if se.Token != "" && !strings.Contains(line, se.Token) {
			t.Fatalf("%q: error token %q not on line %d: %v", src, se.Token, se.Line, err)
		}
	}
	if se.Msg == "" || !strings.Contains(err.Error(), "line ") {
		t.Fatalf("%q: poor error %v", src, err)
	}
}

func ruleSameStrings(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

// ruleFuzzValues are the values given to every referenced attribute in turn.
var ruleFuzzValues = []any{
	"pro", "", "US", 42, -1.5, 0, true, false, "1.2.3-beta.1", "v2", "2.x",
	"2026-01-15", "2026-01-15T10:00:00+02:00", "2026-02-30", []any{"a", 1, true, nil},
	[]string{"pro", "x"}, []int{1, 42}, json.Number("7"), json.Number("1e400"), uint64(math.MaxUint64),
	int64(math.MinInt64), math.NaN(), math.Inf(1), float32(0.5), time.Unix(1768435200, 0),
	map[string]any{"a": 1}, ruleNamedString("pro"), ruleNamedBool(true), struct{}{},
}

// ruleFuzzAttrs builds attribute maps giving every attribute c references
// each of ruleFuzzValues, plus an empty and a nil map.
func ruleFuzzAttrs(c *Condition) []Attributes {
	maps := []Attributes{nil, {}}
	refs := c.AttributeRefs()
	for _, v := range ruleFuzzValues {
		m := Attributes{}
		for _, r := range refs {
			ruleSetPath(m, r.Path, v)
		}
		maps = append(maps, m)
	}
	return maps
}

// ruleSetPath sets the dotted path in m, creating nested maps.
func ruleSetPath(m Attributes, path string, v any) {
	names := strings.Split(path, ".")
	for _, name := range names[:len(names)-1] {
		next, ok := m[name].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[name] = next
		}
		m = next
	}
	m[names[len(names)-1]] = v
}
