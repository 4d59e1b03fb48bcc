package evaluate

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ruleNow is the evaluation time of the tests.
var ruleNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// ruleFakeSegs is a SegmentMatcher holding a fixed set of segment names.
type ruleFakeSegs map[string]bool

func (s ruleFakeSegs) MatchSegment(name string, _ Attributes) bool { return s[name] }

type (
	ruleNamedString string
	ruleNamedInt    int
	ruleNamedBool   bool
)

func ruleTestAttrs() Attributes {
	signup := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	return Attributes{
		"plan":        "pro",
		"region":      "US",
		"country":     "NZ",
		"age":         30,
		"score":       7.5,
		"beta":        true,
		"off":         false,
		"count64":     int64(1 << 40),
		"bigint":      int64(9007199254740993), // 2^53+1: not a float64
		"f32":         float32(2.5),
		"u":           uint(7),
		"u64":         uint64(math.MaxUint64),
		"i8":          int8(-3),
		"jn":          json.Number("42"),
		"jf":          json.Number("4.25"),
		"jmax":        json.Number("9223372036854775807"),
		"jhuge":       json.Number("92233720368547758070"),
		"jbad":        json.Number("12abc"),
		"tags":        []any{"a", 1, true},
		"names":       []string{"ann", "bob"},
		"ints":        []int{1, 2, 3},
		"email":       "jane@example.com",
		"appVersion":  "1.4.2",
		"pre":         "2.0.0-rc.1",
		"vVer":        "v2",
		"badVer":      "2.x",
		"signup":      "2026-01-15",
		"signupTS":    "2026-01-15T10:00:00+02:00",
		"signupTime":  signup.Add(time.Hour),
		"signupUnix":  signup.Unix(),
		"signupFloat": float64(signup.Unix()) + 0.5,
		"badDate":     "2026-02-30",
		"nilval":      nil,
		"planName":    ruleNamedString("pro"),
		"tier":        ruleNamedInt(3),
		"vip":         ruleNamedBool(true),
		"empty":       "",
		"account": map[string]any{
			"tier":  "gold",
			"seats": 12,
			"owner": Attributes{"email": "owner@example.com"},
		},
		"with-dash": "yes",
		"date":      "attribute named date",
	}
}

// ruleCountries is a 100-element list literal body; 'US' is the 100th.
func ruleCountries() string {
	var parts []string
	for i := range 99 {
		parts = append(parts, fmt.Sprintf("'C%02d'", i))
	}
	parts = append(parts, "'US'")
	return strings.Join(parts, ", ")
}

func ruleNumbers(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, strconv.Itoa(i*3))
	}
	return strings.Join(parts, ", ")
}

func TestRuleMatch(t *testing.T) {
	segs := ruleFakeSegs{"beta_testers": true}
	tests := []struct {
		name string
		rule string
		want bool
	}{
		// strings and every comparison operator
		{"eq", "plan == 'pro'", true},
		{"eq double quotes", `plan == "pro"`, true},
		{"eq other", "plan == 'free'", false},
		{"ne", "plan != 'free'", true},
		{"ne same", "plan != 'pro'", false},
		{"lt", "plan < 'q'", true},
		{"le", "plan <= 'pro'", true},
		{"gt", "plan > 'pro'", false},
		{"ge", "plan >= 'pra'", true},
		{"empty string", "empty == ''", true},
		{"escapes", `email != 'it\'s \\ "x"\n\t\u00e9'`, true},
		{"named string type", "planName == 'pro'", true},
		{"dashed identifier", "with-dash == 'yes'", true},
		{"builtin name as attribute", "date startsWith 'attribute'", true},

		// missing attributes: every test is false, including != and not in
		{"missing eq", "nope == 'x'", false},
		{"missing ne", "nope != 'x'", false},
		{"missing lt", "nope < 1", false},
		{"missing in", "nope in ['x']", false},
		{"missing not in", "nope not in ['x']", false},
		{"missing contains", "nope contains 'a'", false},
		{"missing startsWith", "nope startsWith 'a'", false},
		{"missing matches", "nope matches '.*'", false},
		{"missing bare", "nope", false},
		{"missing semver", "semver(nope) != '1.0.0'", false},
		{"missing date", "date(nope) != '2026-01-01'", false},
		{"missing date now", "date(nope) < now", false},
		{"not missing eq", "not nope == 'x'", true},
		{"nil value is missing", "nilval != 'x'", false},
		{"has", "has(plan)", true},
		{"has missing", "has(nope)", false},
		{"has nil", "has(nilval)", false},
		{"has nested", "has(account.owner.email)", true},
		{"has nested missing", "has(account.owner.phone)", false},

		// mismatched kinds are unequal and unordered
		{"string attr number lit eq", "plan == 5", false},
		{"string attr number lit ne", "plan != 5", true},
		{"string attr number lit lt", "plan < 5", false},
		{"number attr string lit eq", "age == '30'", false},
		{"number attr string lit ne", "age != '30'", true},
		{"number attr string lit ge", "age >= '0'", false},
		{"bool attr string lit", "beta == 'true'", false},
		{"string attr bool lit ne", "plan != true", true},
		{"list attr eq", "names == 'ann'", false},

		// numbers
		{"int eq", "age == 30", true},
		{"int eq float lit", "age == 30.0", true},
		{"int gt float", "age > 29.5", true},
		{"int lt negative", "age < -1", false},
		{"float eq", "score == 7.5", true},
		{"float gt", "score > 7", true},
		{"exponent", "score < 1e1", true},
		{"int64", "count64 == 1099511627776", true},
		{"int64 exact", "bigint == 9007199254740992", false},
		{"int64 exact eq", "bigint == 9007199254740993", true},
		{"int64 exact gt", "bigint > 9007199254740992", true},
		{"float32", "f32 == 2.5", true},
		{"uint", "u == 7", true},
		{"uint64 max gt", "u64 > 9223372036854775807", true},
		{"uint64 max eq", "u64 == 18446744073709551615", true},
		{"int8 negative", "i8 < 0", true},
		{"json.Number int", "jn == 42", true},
		{"json.Number ge", "jn >= 42.0", true},
		{"json.Number float", "jf == 4.25", true},
		{"json.Number max int64", "jmax == 9223372036854775807", true},
		{"json.Number max int64 exact", "jmax > 9223372036854775806", true},
		{"json.Number beyond int64", "jhuge > 9223372036854775807", true},
		{"json.Number invalid", "jbad == 1", false},
		{"json.Number invalid ne", "jbad != 1", true},
		{"json.Number lt", "jf < 4.5", true},
		{"named int type", "tier == 3", true},

		// bools
		{"bool eq true", "beta == true", true},
		{"bool eq false", "beta == false", false},
		{"bool ne", "beta != false", true},
		{"bare true", "beta", true},
		{"bare false", "off", false},
		{"bare string", "plan", false},
		{"bare named bool", "vip", true},
		{"not bare", "not off", true},
		{"bang bare", "!off", true},
		{"true", "true", true},
		{"false", "false", false},

		// in / not in
		{"in", "region in ['US', 'CA']", true},
		{"in no", `region in ["EU"]`, false},
		{"in trailing comma", "region in ['CA', 'US',]", true},
		{"not in", "region not in ['EU']", true},
		{"not in no", "region not in ['US']", false},
		{"in empty", "region in []", false},
		{"not in empty", "region not in []", true},
		{"in numbers", "age in [1, 30]", true},
		{"in numbers float", "age in [30.0]", true},
		{"in bools", "beta in [true]", true},
		{"in bools no", "beta in [false]", false},
		{"in mixed", "age in ['a', true, 30]", true},
		{"in kind mismatch", "age in ['30']", false},
		{"not in kind mismatch", "age not in ['30']", true},
		{"in list attr", "names in ['ann']", false},
		{"in 100 strings", "region in [" + ruleCountries() + "]", true},
		{"in 100 strings no", "country in [" + ruleCountries() + "]", false},
		{"not in 100 strings", "country not in [" + ruleCountries() + "]", true},
		{"in 50 numbers", "age in [" + ruleNumbers(50) + "]", true},
		{"in 50 numbers json", "jn in [" + ruleNumbers(50) + "]", true},
		{"in 50 numbers float", "score in [" + ruleNumbers(50) + ", 7.5]", true},
		{"in 50 numbers no", "count64 in [" + ruleNumbers(50) + "]", false},
		{"in nested", "account.tier in ['gold', 'platinum']", true},

		// contains, startsWith, endsWith, matches
		{"contains substring", "email contains '@example'", true},
		{"contains substring no", "email contains '@other'", false},
		{"contains []string", "names contains 'bob'", true},
		{"contains []string no", "names contains 'carl'", false},
		{"contains []any number", "tags contains 1", true},
		{"contains []any bool", "tags contains true", true},
		{"contains []any string", "tags contains 'a'", true},
		{"contains []any no", "tags contains 'b'", false},
		{"contains []int", "ints contains 2", true},
		{"contains []int float", "ints contains 2.0", true},
		{"contains []int no", "ints contains 4", false},
		{"contains number attr", "age contains 3", false},
		{"contains named string", "planName contains 'r'", true},
		{"startsWith", "email startsWith 'jane'", true},
		{"startsWith no", "email startsWith 'bob'", false},
		{"startsWith number attr", "age startsWith '3'", false},
		{"endsWith", "email endsWith '.com'", true},
		{"endsWith no", "email endsWith '.org'", false},
		{"matches", `email matches '^[a-z]+@example\\.com$'`, true},
		{"matches unanchored", "email matches 'example'", true},
		{"matches no", "email matches 'EXAMPLE'", false},
		{"matches flags", "email matches '(?i)EXAMPLE'", true},
		{"matches number attr", "age matches '3'", false},

		// nested paths
		{"nested", "account.tier == 'gold'", true},
		{"nested number", "account.seats >= 10", true},
		{"nested Attributes", "account.owner.email endsWith '@example.com'", true},
		{"nested missing", "account.nope == 1", false},
		{"nested through string", "plan.x == 1", false},
		{"nested through missing", "nope.x.y == 1", false},

		// precedence: not > comparison > and > or
		{"and binds tighter than or", "plan == 'free' and region == 'US' or beta", true},
		{"parens", "plan == 'free' and (region == 'US' or beta)", false},
		{"or then and", "plan == 'pro' or beta and off", true},
		{"parens or then and", "(plan == 'pro' or beta) and off", false},
		{"not binds tighter than and", "not plan == 'free' and region == 'US'", true},
		{"not binds tighter than or", "not plan == 'pro' or beta", true},
		{"not group", "not (plan == 'pro' or beta)", false},
		{"not not", "not not beta", true},
		{"symbols", "plan == 'pro' && !off || nope", true},
		{"symbols and", "plan == 'pro' && off", false},
		{"and chain", "plan == 'pro' and region == 'US' and age == 30 and beta", true},
		{"or chain", "off or nope or plan == 'x' or age == 30", true},
		{"true and false", "true and false", false},
		{"false or true", "false or true", true},
		{"multi-line", "plan == 'pro'\n  and (region in ['US', 'CA']\n       or beta)\n", true},

		// semantic versions
		{"semver lt", "semver(appVersion) < '2.0.0'", true},
		{"semver ge partial", "semver(appVersion) >= '1.4'", true},
		{"semver gt partial", "semver(appVersion) > '1.4'", true},
		{"semver eq v", "semver(appVersion) == 'v1.4.2'", true},
		{"semver build ignored", "semver(appVersion) == '1.4.2+build.5'", true},
		{"semver le", "semver(appVersion) <= '1.4.2'", true},
		{"semver ne", "semver(appVersion) != '1.4.3'", true},
		{"semver prerelease lt release", "semver(pre) < '2.0.0'", true},
		{"semver prerelease gt", "semver(pre) > '2.0.0-beta.11'", true},
		{"semver prerelease eq", "semver(pre) == '2.0.0-rc.1'", true},
		{"semver prerelease gt self", "semver(pre) > '2.0.0-rc.1'", false},
		{"semver attr v major only", "semver(vVer) == '2.0.0'", true},
		{"semver invalid attr ne", "semver(badVer) != '1.0.0'", false},
		{"semver invalid attr lt", "semver(badVer) < '3'", false},
		{"semver number attr", "semver(age) > '1'", false},

		// dates and now
		{"date eq", "date(signup) == '2026-01-15'", true},
		{"date lt datetime", "date(signup) < '2026-01-15T00:00:01Z'", true},
		{"date offset", "date(signupTS) == '2026-01-15T08:00:00Z'", true},
		{"date offset literal", "date(signupTS) == '2026-01-15T09:00:00+01:00'", true},
		{"date fraction", "date(signupFloat) == '2026-01-15T00:00:00.5Z'", true},
		{"date time.Time", "date(signupTime) > '2026-01-15'", true},
		{"date unix", "date(signupUnix) == '2026-01-15'", true},
		{"date unix float", "date(signupFloat) > '2026-01-15'", true},
		{"date ge", "date(signup) >= '2026-01-01'", true},
		{"date lt now", "date(signup) < now", true},
		{"now gt date", "now > date(signup)", true},
		{"now lt date", "now < date(signup)", false},
		{"now ge", "now >= '2026-06-01T12:00:00Z'", true},
		{"now lt nanos", "now < '2026-06-01T12:00:00.000000001Z'", true},
		{"now eq offset", "now == '2026-06-01T14:00:00+02:00'", true},
		{"now lt date only", "now < '2026-06-01'", false},
		{"date of string attr", "date(plan) > '2020-01-01'", false},
		{"date invalid attr", "date(badDate) != '2020-01-01'", false},
		{"date of bool attr", "date(beta) > '2020-01-01'", false},

		// segments
		{"segment", "segment('beta_testers')", true},
		{"segment double quotes", `segment("beta_testers")`, true},
		{"segment no", "segment('other')", false},
		{"not segment", "not segment('other')", true},
	}
	attrs := ruleTestAttrs()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCondition(tt.rule)
			if err != nil {
				t.Fatalf("ParseCondition(%q): %v", tt.rule, err)
			}
			if got := c.Match(attrs, segs, ruleNow); got != tt.want {
				t.Errorf("%q.Match = %v, want %v", tt.rule, got, tt.want)
			}
			// The canonical form must mean the same.
			canon := ruleFormat(c.root)
			c2, err := ParseCondition(canon)
			if err != nil {
				t.Fatalf("canonical form %q does not parse: %v", canon, err)
			}
			if got := c2.Match(attrs, segs, ruleNow); got != tt.want {
				t.Errorf("canonical %q.Match = %v, want %v", canon, got, tt.want)
			}
		})
	}
}

func TestRuleNumericTypes(t *testing.T) {
	values := map[string]any{
		"int": 42, "int8": int8(42), "int16": int16(42), "int32": int32(42), "int64": int64(42),
		"uint": uint(42), "uint8": uint8(42), "uint16": uint16(42), "uint32": uint32(42), "uint64": uint64(42),
		"uintptr": uintptr(42), "float32": float32(42), "float64": float64(42), "json.Number": json.Number("42"),
		"json.Number float": json.Number("42.0"), "json.Number exp": json.Number("4.2e1"), "named": ruleNamedInt(42),
	}
	rules := map[string]bool{
		"n == 42":                           true,
		"n == 42.0":                         true,
		"n != 42":                           false,
		"n != 41":                           true,
		"n > 41.5":                          true,
		"n >= 42":                           true,
		"n < 43":                            true,
		"n <= 41":                           false,
		"n in [1, 42]":                      true,
		"n not in [1, 42]":                  false,
		"n in [" + ruleNumbers(20) + "]":    true, // 42 = 14*3, through the set
		"n in [" + ruleNumbers(10) + "]":    false,
		"n == '42'":                         false,
		"date(n) == '1970-01-01T00:00:42Z'": true,
	}
	for tname, v := range values {
		for rule, want := range rules {
			t.Run(tname+"/"+rule, func(t *testing.T) {
				c, err := ParseCondition(rule)
				if err != nil {
					t.Fatal(err)
				}
				if got := c.Match(Attributes{"n": v}, nil, ruleNow); got != want {
					t.Errorf("%q with n=%T(%v): got %v, want %v", rule, v, v, got, want)
				}
			})
		}
	}
}

func TestRuleSegmentMatcher(t *testing.T) {
	c, err := ParseCondition("segment('beta_testers') or segment('staff') and segment('beta_testers')")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Segments(), []string{"beta_testers", "staff"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Segments() = %q, want %q", got, want)
	}
	if !c.Match(nil, ruleFakeSegs{"beta_testers": true}, ruleNow) {
		t.Error("member of beta_testers: want true")
	}
	if c.Match(nil, ruleFakeSegs{"staff": true}, ruleNow) {
		t.Error("member of staff only: want false")
	}
	if c.Match(Attributes{"x": 1}, nil, ruleNow) {
		t.Error("nil SegmentMatcher: want false")
	}
	// The matcher receives the attributes.
	var seen Attributes
	attrs := Attributes{"id": "u1"}
	c.Match(attrs, ruleSegsFunc(func(name string, a Attributes) bool { seen = a; return false }), ruleNow)
	if seen["id"] != "u1" {
		t.Errorf("MatchSegment got attrs %v", seen)
	}
}

type ruleSegsFunc func(string, Attributes) bool

func (f ruleSegsFunc) MatchSegment(name string, attrs Attributes) bool { return f(name, attrs) }

func TestRuleNilAndEmpty(t *testing.T) {
	var c *Condition
	if c.Match(Attributes{"a": 1}, nil, ruleNow) || c.String() != "" || c.Segments() != nil || c.AttributeRefs() != nil {
		t.Error("nil *Condition should match nothing and report nothing")
	}
	c, err := ParseCondition("plan == 'pro'")
	if err != nil {
		t.Fatal(err)
	}
	if c.Match(nil, nil, time.Time{}) {
		t.Error("nil attrs should not match")
	}
}

func TestRuleStringAndRefs(t *testing.T) {
	src := "plan == 'pro'\n  and semver(app.version) >= '2.1'\n  and (account.tier in ['gold', 'platinum'] or has(plan))\n" +
		"  and date(signup) < now and tags contains 3 and plan != 5 and email contains 'x' and beta and age in [1, 'a']"
	c, err := ParseCondition(src)
	if err != nil {
		t.Fatal(err)
	}
	if c.String() != src {
		t.Errorf("String() = %q, want the source", c.String())
	}
	want := []AttributeRef{
		ruleRefAt(src, "plan", ""), // a string, then a number: mixed
		ruleRefAt(src, "app.version", "semver"),
		ruleRefAt(src, "account.tier", "string"),
		ruleRefAt(src, "signup", "date"),
		ruleRefAt(src, "tags", "list"),
		ruleRefAt(src, "email", ""),
		ruleRefAt(src, "beta", "bool"),
		ruleRefAt(src, "age", ""),
	}
	if want[1].Line != 2 || want[1].Col != 14 || want[2].Line != 3 || want[2].Col != 8 {
		t.Fatalf("ruleRefAt is broken: %+v", want)
	}
	if got := c.AttributeRefs(); !reflect.DeepEqual(got, want) {
		t.Errorf("AttributeRefs() =\n%+v\nwant\n%+v", got, want)
	}
	// The returned slices are copies.
	c.AttributeRefs()[0].Path = "mutated"
	if c.AttributeRefs()[0].Path != "plan" {
		t.Error("AttributeRefs returned internal state")
	}

	c, err = ParseCondition("has(x) and x > 1 and has(y) and y == 'a' and y startsWith 'b' and z in [] and z")
	if err != nil {
		t.Fatal(err)
	}
	want = []AttributeRef{
		{Path: "x", Kind: "number", Line: 1, Col: 5},
		{Path: "y", Kind: "string", Line: 1, Col: 26},
		{Path: "z", Kind: "bool", Line: 1, Col: 67},
	}
	if got := c.AttributeRefs(); !reflect.DeepEqual(got, want) {
		t.Errorf("AttributeRefs() =\n%+v\nwant\n%+v", got, want)
	}
	if c.Segments() != nil {
		t.Errorf("Segments() = %q, want nil", c.Segments())
	}
}

// ruleRefAt returns the AttributeRef of the first occurrence of path in src.
func ruleRefAt(src, path, kind string) AttributeRef {
	line, col := rlPosAt(src, strings.Index(src, path))
	return AttributeRef{Path: path, Kind: kind, Line: line, Col: col}
}

func TestRuleConcurrentMatch(t *testing.T) {
	c, err := ParseCondition("plan == 'pro' and region in [" + ruleCountries() + "] and email matches '@example' and semver(appVersion) < '2' and segment('beta_testers')")
	if err != nil {
		t.Fatal(err)
	}
	attrs := ruleTestAttrs()
	segs := ruleFakeSegs{"beta_testers": true}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if !c.Match(attrs, segs, ruleNow) {
					t.Error("Match = false, want true")
					return
				}
			}
		})
	}
	wg.Wait()
}

// ruleAllocRules are the "usual cases" Match must evaluate without allocating.
var ruleAllocRules = []string{
	"plan == 'pro' and region == 'US'",
	"plan != 'free' or region < 'A'",
	"age >= 18 and score < 10.5 and jn == 42 and u64 > 1 and f32 == 2.5",
	"beta == true and not off and !vip",
	"region in ['US', 'CA'] and country not in ['US', 'CA']",
	"region in [" + ruleCountries() + "]",
	"age in [" + ruleNumbers(50) + "]",
	"email startsWith 'jane' and email endsWith '.com' and email contains '@'",
	"names contains 'bob' and tags contains 1 and ints contains 3",
	`email matches '^[a-z]+@example\\.com$'`,
	"semver(appVersion) < '2.0.0' and semver(pre) >= '2.0.0-beta.2'",
	"date(signup) >= '2026-01-01' and date(signupTS) < now and date(signupUnix) > '2020-01-01T00:00:00+01:00'",
	"date(signupTime) < now and now >= '2026-01-01'",
	"segment('beta_testers') or segment('other')",
	"account.owner.email endsWith 'example.com' and has(account.tier)",
	"planName == 'pro' and tier == 3",
}

func TestRuleMatchDoesNotAllocate(t *testing.T) {
	attrs := ruleTestAttrs()
	segs := ruleFakeSegs{"beta_testers": true}
	for _, rule := range ruleAllocRules {
		t.Run(rule, func(t *testing.T) {
			c, err := ParseCondition(rule)
			if err != nil {
				t.Fatal(err)
			}
			if n := testing.AllocsPerRun(200, func() { c.Match(attrs, segs, ruleNow) }); n != 0 {
				t.Errorf("Match allocates %v times per run", n)
			}
		})
	}
}

func TestRuleCorpusParses(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "rules", "*.txt"))
	if err != nil || len(files) < 20 {
		t.Fatalf("corpus: %d files, %v", len(files), err)
	}
	attrs := ruleTestAttrs()
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseCondition(string(src))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			c.Match(attrs, ruleFakeSegs{}, ruleNow)
		})
	}
}

// ruleFormat prints a compiled condition in canonical form: single-quoted
// strings, keyword operators, parentheses only around nested and/or groups.
// Parsing the result yields an equivalent condition.
func ruleFormat(n rlNode) string {
	var b strings.Builder
	ruleFormatTo(&b, n)
	return b.String()
}

func ruleFormatTo(b *strings.Builder, n rlNode) {
	group := func(k rlNode) {
		switch k.(type) {
		case *rlAnd, *rlOr:
			b.WriteString("(")
			ruleFormatTo(b, k)
			b.WriteString(")")
		default:
			ruleFormatTo(b, k)
		}
	}
	join := func(kids []rlNode, op string) {
		for i, k := range kids {
			if i > 0 {
				b.WriteString(op)
			}
			group(k)
		}
	}
	switch n := n.(type) {
	case *rlOr:
		join(n.kids, " or ")
	case *rlAnd:
		join(n.kids, " and ")
	case *rlNot:
		b.WriteString("not ")
		group(n.kid)
	case *rlConst:
		b.WriteString(strconv.FormatBool(n.v))
	case *rlHas:
		fmt.Fprintf(b, "has(%s)", n.path.text)
	case *rlTruthy:
		b.WriteString(n.path.text)
	case *rlSegment:
		fmt.Fprintf(b, "segment(%s)", ruleQuote(n.name))
	case *rlStrCmp:
		fmt.Fprintf(b, "%s %s %s", n.path.text, n.op, ruleQuote(n.lit))
	case *rlNumCmp:
		fmt.Fprintf(b, "%s %s %s", n.path.text, n.op, ruleFormatNumber(n.lit))
	case *rlBoolCmp:
		op := "=="
		if n.neg {
			op = "!="
		}
		fmt.Fprintf(b, "%s %s %t", n.path.text, op, n.lit)
	case *rlIn:
		b.WriteString(n.path.text)
		if n.neg {
			b.WriteString(" not")
		}
		b.WriteString(" in [")
		for i := range n.elems {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(ruleFormatLit(&n.elems[i]))
		}
		b.WriteString("]")
	case *rlContains:
		fmt.Fprintf(b, "%s contains %s", n.path.text, ruleFormatLit(&n.lit))
	case *rlPrefix:
		fmt.Fprintf(b, "%s startsWith %s", n.path.text, ruleQuote(n.lit))
	case *rlSuffix:
		fmt.Fprintf(b, "%s endsWith %s", n.path.text, ruleQuote(n.lit))
	case *rlMatches:
		fmt.Fprintf(b, "%s matches %s", n.path.text, ruleQuote(n.re.String()))
	case *rlSemverCmp:
		fmt.Fprintf(b, "semver(%s) %s %s", n.path.text, n.op, ruleQuote(n.text))
	case *rlDateCmp:
		fmt.Fprintf(b, "date(%s) %s %s", n.path.text, n.op, ruleQuote(n.text))
	case *rlDateNowCmp:
		fmt.Fprintf(b, "date(%s) %s now", n.path.text, n.op)
	case *rlNowCmp:
		fmt.Fprintf(b, "now %s %s", n.op, ruleQuote(n.text))
	default:
		panic(fmt.Sprintf("ruleFormat: unknown node %T", n))
	}
}

func ruleFormatLit(l *rlLit) string {
	switch l.kind {
	case rlLitString:
		return ruleQuote(l.str)
	case rlLitNumber:
		return ruleFormatNumber(l.num)
	default:
		return strconv.FormatBool(l.b)
	}
}

func ruleFormatNumber(n rlNumber) string {
	if n.exact {
		return strconv.FormatInt(n.i, 10)
	}
	return strconv.FormatFloat(n.f, 'g', -1, 64)
}

func ruleQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return "'" + r.Replace(s) + "'"
}

func BenchmarkRuleMatchStrings(b *testing.B) {
	ruleBench(b, "plan == 'enterprise' and region == 'EU'", Attributes{"plan": "enterprise", "region": "EU"})
}

func BenchmarkRuleMatchSemver(b *testing.B) {
	ruleBench(b, "semver(appVersion) < '2.0.0'", Attributes{"appVersion": "1.9.3-beta.2"})
}

func BenchmarkRuleMatchIn100(b *testing.B) {
	ruleBench(b, "region in ["+ruleCountries()+"]", Attributes{"region": "US"})
}

func BenchmarkRuleMatchIn8(b *testing.B) {
	ruleBench(b, "region in ['AU', 'BR', 'CA', 'DE', 'FR', 'GB', 'JP', 'US']", Attributes{"region": "US"})
}

func BenchmarkRuleMatchRegex(b *testing.B) {
	ruleBench(b, `email matches '^[a-z0-9._%+-]+@example\\.com$'`, Attributes{"email": "jane.doe@example.com"})
}

func BenchmarkRuleMatchDate(b *testing.B) {
	ruleBench(b, "date(signup) >= '2026-01-01' and now < '2027-01-01'", Attributes{"signup": "2026-03-04T05:06:07Z"})
}

func BenchmarkRuleMatchSegment(b *testing.B) {
	ruleBench(b, "segment('beta_testers') and account.plan == 'pro'", Attributes{"account": Attributes{"plan": "pro"}})
}

func BenchmarkRuleMatchNumbers(b *testing.B) {
	ruleBench(b, "age >= 18 and score < 99.5", Attributes{"age": json.Number("42"), "score": 12.5})
}

func ruleBench(b *testing.B, rule string, attrs Attributes) {
	b.Helper()
	c, err := ParseCondition(rule)
	if err != nil {
		b.Fatal(err)
	}
	segs := ruleFakeSegs{"beta_testers": true}
	if !c.Match(attrs, segs, ruleNow) {
		b.Fatalf("%q does not match %v", rule, attrs)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Match(attrs, segs, ruleNow)
	}
}

func BenchmarkRuleParse(b *testing.B) {
	rule := "plan == 'pro' and (region in [" + ruleCountries() + "] or semver(appVersion) >= '2.1') and not segment('blocked')"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCondition(rule); err != nil {
			b.Fatal(err)
		}
	}
}
