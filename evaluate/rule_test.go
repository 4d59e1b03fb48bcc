package evaluate

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand"
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

func TestRuleSemverPrecedence(t *testing.T) {
	// SemVer 2.0.0 §11 example, in increasing precedence.
	order := []string{
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.10.0", "2.0.0-0", "2.0.0",
		"10.0.0",
	}
	for i, a := range order {
		for j, b := range order {
			for _, op := range []string{"<", "<=", "==", "!=", ">=", ">"} {
				rule := fmt.Sprintf("semver(v) %s '%s'", op, b)
				t.Run(a+" "+op+" "+b, func(t *testing.T) {
					c, err := ParseCondition(rule)
					if err != nil {
						t.Fatal(err)
					}
					want := map[string]bool{
						"<": i < j, "<=": i <= j, "==": i == j, "!=": i != j, ">=": i >= j, ">": i > j,
					}[op]
					if got := c.Match(Attributes{"v": a}, nil, ruleNow); got != want {
						t.Errorf("v=%s: %s = %v, want %v", a, rule, got, want)
					}
				})
			}
		}
	}
}

func TestRuleParseVersion(t *testing.T) {
	tests := []struct {
		in   string
		want rlVersion
		ok   bool
	}{
		{"1.2.3", rlVersion{1, 2, 3, ""}, true},
		{"v1.2.3", rlVersion{1, 2, 3, ""}, true},
		{"V1", rlVersion{1, 0, 0, ""}, true},
		{"2.1", rlVersion{2, 1, 0, ""}, true},
		{"2.1-beta", rlVersion{2, 1, 0, "beta"}, true},
		{"1.0.0-x-y.0.a+b.c-d", rlVersion{1, 0, 0, "x-y.0.a"}, true},
		{"1.0.0+build", rlVersion{1, 0, 0, ""}, true},
		{"0.0.0", rlVersion{}, true},
		{"18446744073709551615.0.0", rlVersion{major: math.MaxUint64}, true},
		{"18446744073709551616.0.0", rlVersion{}, false},
		{"", rlVersion{}, false},
		{"v", rlVersion{}, false},
		{"1.", rlVersion{}, false},
		{"1..2", rlVersion{}, false},
		{"1.2.3.4", rlVersion{}, false},
		{"01.2.3", rlVersion{}, false},
		{"1.02.3", rlVersion{}, false},
		{"1.2.3-", rlVersion{}, false},
		{"1.2.3-a..b", rlVersion{}, false},
		{"1.2.3-01", rlVersion{}, false},
		{"1.2.3-a_b", rlVersion{}, false},
		{"1.2.3+", rlVersion{}, false},
		{"1.2.3+a+b", rlVersion{}, false},
		{" 1.2.3", rlVersion{}, false},
		{"1.2.x", rlVersion{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := rlParseVersion(tt.in)
			if ok != tt.ok || ok && got != tt.want {
				t.Errorf("rlParseVersion(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestRuleParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-01-15", time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), true},
		{"2024-02-29", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), true},
		{"2026-01-15T10:20:30Z", time.Date(2026, 1, 15, 10, 20, 30, 0, time.UTC), true},
		{"2026-01-15t10:20:30z", time.Date(2026, 1, 15, 10, 20, 30, 0, time.UTC), true},
		{"2026-01-15 10:20:30Z", time.Date(2026, 1, 15, 10, 20, 30, 0, time.UTC), true},
		{"2026-01-15T10:20:30.5Z", time.Date(2026, 1, 15, 10, 20, 30, 5e8, time.UTC), true},
		{"2026-01-15T10:20:30.123456789123Z", time.Date(2026, 1, 15, 10, 20, 30, 123456789, time.UTC), true},
		{"2026-01-15T10:20:30+05:30", time.Date(2026, 1, 15, 4, 50, 30, 0, time.UTC), true},
		{"2026-01-15T00:00:00-01:00", time.Date(2026, 1, 15, 1, 0, 0, 0, time.UTC), true},
		{"2025-02-29", time.Time{}, false},
		{"2026-13-01", time.Time{}, false},
		{"2026-00-01", time.Time{}, false},
		{"2026-04-31", time.Time{}, false},
		{"2026-1-5", time.Time{}, false},
		{"26-01-15", time.Time{}, false},
		{"2026-01-15T", time.Time{}, false},
		{"2026-01-15T10:20:30", time.Time{}, false},
		{"2026-01-15T24:00:00Z", time.Time{}, false},
		{"2026-01-15T10:60:00Z", time.Time{}, false},
		{"2026-01-15T10:20:60Z", time.Time{}, false},
		{"2026-01-15T10:20:30.Z", time.Time{}, false},
		{"2026-01-15T10:20:30+0530", time.Time{}, false},
		{"2026-01-15T10:20:30+24:00", time.Time{}, false},
		{"2026-01-15T10:20:30ZZ", time.Time{}, false},
		{"2026-01-15X", time.Time{}, false},
		{"tomorrow", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := rlParseDate(tt.in)
			if ok != tt.ok || ok && !got.Equal(tt.want) {
				t.Errorf("rlParseDate(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			if ok {
				ref, err := time.Parse(time.RFC3339Nano, strings.Replace(tt.in, " ", "T", 1))
				if len(tt.in) > 10 && err == nil && !ref.Equal(got) {
					t.Errorf("rlParseDate(%q) = %v, time.Parse says %v", tt.in, got, ref)
				}
			}
		})
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

func TestRuleSyntaxErrors(t *testing.T) {
	const valueMsg = "expected a value (a string, number, true or false)"
	const opMsg = "expected an operator (==, !=, <, <=, >, >=, in, not in, contains, startsWith, endsWith, matches) after "
	tests := []struct {
		name      string
		src       string
		line, col int
		token     string
		msg       string // exact Msg
	}{
		{"empty", "", 1, 1, "", "expected a condition"},
		{"blank", "  \n ", 2, 2, "", "expected a condition"},
		{"missing value at end", "plan == ", 1, 9, "", valueMsg},
		{"keyword as value", "region == and plan == 'x'", 1, 11, "and", valueMsg},
		{"unquoted string", "plan == pro", 1, 9, "pro", valueMsg + "; strings need quotes: 'pro'"},
		{"list as value", "tags contains [1]", 1, 15, "[", valueMsg + `; lists are only allowed after "in" and "not in"`},
		{"single equals", "plan = 'pro'", 1, 6, "=", `expected "==" ("=" alone is not an operator)`},
		{"single ampersand", "a & b", 1, 3, "&", `expected "&&"`},
		{"single bar", "a | b", 1, 3, "|", `expected "||"`},
		{"dangling and", "plan == 'pro' and", 1, 18, "", "expected a condition"},
		{"dangling not", "not", 1, 4, "", "expected a condition"},
		{"dangling or symbol", "a ||", 1, 5, "", "expected a condition"},
		{"unterminated string", "plan == 'pro", 1, 9, "'pro", "unterminated string (a string ends with its opening quote, on the same line)"},
		{"string across lines", "plan == 'pro\n' or x", 1, 9, "'pro", "unterminated string (a string ends with its opening quote, on the same line)"},
		{"trailing backslash", `plan == 'pro\`, 1, 9, `'pro\`, "unterminated string (a string ends with its opening quote, on the same line)"},
		{"unknown escape", `email matches '^\d+$'`, 1, 17, `\d`, `unknown escape sequence: write \\ for a backslash (a regexp digit class is written '\\d')`},
		{"bad unicode escape", `x == 'a\u12'`, 1, 8, `\u12`, `invalid \u escape: want exactly 4 hex digits, e.g. \u00e9`},
		{"unclosed paren", "(plan == 'pro'", 1, 15, "", `expected "and", "or" or ")" to close the "(" at 1:1`},
		{"extra paren", "plan == 'pro')", 1, 14, ")", `expected "and", "or" or end of rule (this ")" has no matching "(")`},
		{"missing operator", "plan 'pro'", 1, 6, "'pro'", opMsg + `"plan"`},
		{"two comparisons", "x == 1 y == 2", 1, 8, "y", `expected "and", "or" or end of rule`},
		{"uppercase AND", "plan == 'a' AND x == 1", 1, 13, "AND", `expected "and", "or" or end of rule (keywords are case-sensitive: write "and")`},
		{"camel case keyword", "email startswith 'a'", 1, 7, "startswith", opMsg + `"email" (keywords are case-sensitive: write "startsWith")`},
		{"in without list", "plan in 'pro'", 1, 9, "'pro'", "expected a list, e.g. ['US', 'CA']"},
		{"list missing comma", "plan in ['a' 'b']", 1, 14, "'b'", `expected "," or "]"`},
		{"list unclosed", "plan in ['a',", 1, 14, "", `expected a value (a string, number, true or false) or "]"`},
		{"list of paths", "plan in [other]", 1, 10, "other", `expected a value (a string, number, true or false) or "]"; strings need quotes: 'other'`},
		{"not without in", "x not y", 1, 7, "y", `expected "in" after "not"`},
		{"bool ordering", "plan < true", 1, 8, "true", "a bool can only be compared with == or !=, not <"},
		{"startsWith number", "x startsWith 5", 1, 14, "5", "expected a string after startsWith"},
		{"matches path", "x matches y", 1, 11, "y", "expected a string after matches"},
		{"bad regexp", "email matches 'a(['", 1, 15, "'a(['", "invalid regular expression: missing closing ]: `[`"},
		{"bad regexp repeat", "email matches 'a{2000}'", 1, 15, "'a{2000}'", "invalid regular expression: invalid repeat count: `{2000}`"},
		{"literal first", "'pro' == plan", 1, 1, "'pro'", "expected a condition (a test starts with the attribute, e.g. plan == 'pro')"},
		{"keyword first", "in == 1", 1, 1, "in", "expected a condition"},
		{"operator first", "== 1", 1, 1, "==", "expected a condition"},
		{"bad version", "semver(v) < 'x.y'", 1, 13, "'x.y'", "not a valid semantic version: want [v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], e.g. '2.1.0' or '2.1.0-beta.1'"},
		{"version leading zero", "semver(v) < '1.02'", 1, 13, "'1.02'", "not a valid semantic version: want [v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], e.g. '2.1.0' or '2.1.0-beta.1'"},
		{"unquoted version", "semver(v) < 2", 1, 13, "2", "expected a version in quotes, e.g. '2.0.0'"},
		{"semver in", "semver(v) in ['1']", 1, 11, "in", "expected a comparison operator (==, !=, <, <=, >, >=) after semver(...)"},
		{"semver no path", "semver('1.0') < '2'", 1, 8, "'1.0'", "expected an attribute path in semver(...)"},
		{"semver unclosed", "semver(v < '2'", 1, 10, "<", `expected ")" to close semver(`},
		{"bad date", "date(d) > '2026-13-01'", 1, 11, "'2026-13-01'", "not a valid RFC 3339 date or date-time: want 'YYYY-MM-DD' or 'YYYY-MM-DDTHH:MM:SS[.frac]' with Z or a ±HH:MM offset"},
		{"date without zone", "date(d) > '2026-01-01T10:00:00'", 1, 11, "'2026-01-01T10:00:00'", "not a valid RFC 3339 date or date-time: want 'YYYY-MM-DD' or 'YYYY-MM-DDTHH:MM:SS[.frac]' with Z or a ±HH:MM offset"},
		{"date number", "date(d) > 5", 1, 11, "5", "expected a date in quotes, e.g. '2026-01-01' or '2026-01-01T09:00:00Z'"},
		{"date contains", "date(d) contains '2026'", 1, 9, "contains", "expected a comparison operator (==, !=, <, <=, >, >=) after date(...)"},
		{"now alone", "now", 1, 4, "", `expected a comparison operator (==, !=, <, <=, >, >=) after "now"`},
		{"now number", "now > 5", 1, 7, "5", "expected a date in quotes, e.g. '2026-01-01' or '2026-01-01T09:00:00Z'"},
		{"now date unclosed", "now > date(x", 1, 13, "", `expected ")" to close date(`},
		{"segment unquoted", "segment(beta)", 1, 9, "beta", "expected a segment name in quotes, e.g. segment('beta_testers')"},
		{"segment empty", "segment('')", 1, 9, "''", "segment name is empty"},
		{"segment unclosed", "segment('a' or x", 1, 13, "or", `expected ")" to close segment(`},
		{"has literal", "has('x')", 1, 5, "'x'", "expected an attribute path in has(...)"},
		{"has unclosed", "has(x", 1, 6, "", `expected ")" to close has(`},
		{"has compared", "has(x) == true", 1, 8, "==", `expected "and", "or" or end of rule`},
		{"dangling dot", "account. plan == 1", 1, 1, "account.", `expected an attribute name after "."`},
		{"dot digit", "account.1 == 1", 1, 1, "account.", `expected an attribute name after "."`},
		{"bad number", "x == 5abc", 1, 6, "5abc", "invalid number"},
		{"bad number dot", "x == 1.", 1, 6, "1.", "invalid number"},
		{"number overflow", "x == 1e999", 1, 6, "1e999", "number out of range"},
		{"unexpected character", "x @ 1", 1, 3, "@", "unexpected character"},
		{"unicode character", "x == 1 ∧ y == 2", 1, 8, "∧", "unexpected character"},
		{"columns count code points", "name == 'héllo' and x ==", 1, 25, "", valueMsg},
		{"lexical error after parse error", "x == and 'unterminated", 1, 6, "and", valueMsg},
		{"multi-line", "plan == 'pro'\nand (\n  region in ['US', 'CA'\n  or beta\n)", 4, 3, "or", `expected "," or "]"`},
		{"multi-line crlf", "plan == 'pro'\r\n  and region ==\r\n", 3, 1, "", valueMsg},
		{"multi-line tab", "a\n\tand b ==\t=", 2, 11, "=", `expected "==" ("=" alone is not an operator)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCondition(tt.src)
			if err == nil {
				t.Fatalf("ParseCondition(%q) = %v, want an error", tt.src, c)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a *SyntaxError", err, err)
			}
			want := SyntaxError{Line: tt.line, Col: tt.col, Token: tt.token, Msg: tt.msg}
			if *se != want {
				t.Errorf("ParseCondition(%q) error\n got %d:%d %q %q\nwant %d:%d %q %q",
					tt.src, se.Line, se.Col, se.Token, se.Msg, want.Line, want.Col, want.Token, want.Msg)
			}
			if !strings.Contains(se.Error(), fmt.Sprintf("line %d:%d: ", tt.line, tt.col)) {
				t.Errorf("Error() = %q lacks the position", se.Error())
			}
			if tt.token != "" && !strings.Contains(se.Error(), strconv.Quote(tt.token)) {
				t.Errorf("Error() = %q lacks the token", se.Error())
			}
		})
	}
}

func TestRuleSyntaxErrorString(t *testing.T) {
	tests := []struct {
		src, want string
	}{
		{"region == and", `line 1:11: unexpected token "and": expected a value (a string, number, true or false)`},
		{"plan ==", `line 1:8: unexpected end of input: expected a value (a string, number, true or false)`},
		{"semver(v) < '2.x'", `line 1:13: at "'2.x'": not a valid semantic version: want [v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], e.g. '2.1.0' or '2.1.0-beta.1'`},
		{strings.Repeat("x", ruleMaxSourceLen+1), `line 1:65537: rule is too long (65537 bytes; the limit is 65536 bytes): put long lists in a static segment and use segment('name')`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := ParseCondition(tt.src)
			if err == nil || err.Error() != tt.want {
				t.Errorf("ParseCondition error = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestRuleLimits(t *testing.T) {
	list := func(n int) string { return "x in [" + strings.Repeat("1,", n) + "]" }
	chain := func(n int) string { return "x == 1" + strings.Repeat(" or x == 1", n-1) }
	tests := []struct {
		name      string
		src       string
		ok        bool
		line, col int
		token     string
		msg       string // substring
	}{
		{"10 MB rule", "plan == '" + strings.Repeat("x", 10<<20-10) + "'", false, 1, 65537, "", "rule is too long (10485760 bytes; the limit is 65536 bytes)"},
		{"1,000,000-element list", list(1_000_000), false, 1, 65537, "", "rule is too long (2000007 bytes; the limit is 65536 bytes)"},
		{"64 KiB rule", "x == '" + strings.Repeat("a", ruleMaxSourceLen-8) + "'", true, 0, 0, "", ""},
		{"10,000-element list", list(10_000), true, 0, 0, "", ""},
		{"10,001-element list", list(10_001), false, 1, 20007, "1", "list has more than 10000 elements; put long lists in a static segment and use segment('name')"},
		{"depth 64", strings.Repeat("(", 64) + "x" + strings.Repeat(")", 64), true, 0, 0, "", ""},
		{"depth 65", strings.Repeat("(", 65) + "x" + strings.Repeat(")", 65), false, 1, 65, "(", "nesting is deeper than 64 levels"},
		{"not depth 65", strings.Repeat("not ", 65) + "x", false, 1, 257, "not", "nesting is deeper than 64 levels"},
		{"mixed depth 65", strings.Repeat("(not ", 33) + "x" + strings.Repeat(")", 33), false, 1, 161, "(", "nesting is deeper than 64 levels"},
		{"1,000 nodes", "not " + chain(500), true, 0, 0, "", ""},
		{"1,001 nodes", chain(501), false, 1, 5001, "x", "rule has more than 1000 comparisons and operators"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			c, err := ParseCondition(tt.src)
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("ParseCondition took %v", elapsed)
			}
			if tt.ok {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				c.Match(Attributes{"x": 1}, nil, ruleNow)
				return
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error = %v, want a *SyntaxError", err)
			}
			if se.Line != tt.line || se.Col != tt.col || se.Token != tt.token || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("error = %d:%d %q %q\nwant %d:%d %q containing %q", se.Line, se.Col, se.Token, se.Msg, tt.line, tt.col, tt.token, tt.msg)
			}
		})
	}
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

// TestSemverPlainFastPathMatchesParser: the fast path for plain versions
// decides exactly as the general parser and comparison would.
func TestSemverPlainFastPathMatchesParser(t *testing.T) {
	alpha := "0123456789012345678901234567890123456789..-+vVa"
	r := rand.New(rand.NewSource(2))
	fixed := []string{"18446744073709551615", "999999999999999999", "1000000000000000000", "1.2.3", "01.2.3", "1.02",
		"v1", "1.", "1..2", "1.2.3.4", "0", "00", "2.3.1", "2.3", "2", "V2.0.0", "", "v", "2.0.0-rc.1", "2.0.0+build"}
	taken := 0
	for _, ls := range []string{"2.0.0", "2", "2.3", "2.3.1", "2.3.1-rc.1", "0.0.0", "1.2.3-alpha", "v18446744073709551615.0.0", "99999999999999999.1.2"} {
		lit, ok := rlParseVersion(ls)
		if !ok {
			t.Fatalf("literal %q does not parse", ls)
		}
		for i := 0; i < 50000; i++ {
			s := ""
			if i < len(fixed) {
				s = fixed[i]
			} else {
				b := make([]byte, r.Intn(30))
				for j := range b {
					b[j] = alpha[r.Intn(len(alpha))]
				}
				s = string(b)
			}
			c, ok := rlCmpPlainVersion(s, &lit)
			if !ok {
				continue
			}
			taken++
			v, valid := rlParseVersion(s)
			if !valid || rlCmpVersion(v, lit) != c {
				t.Fatalf("%q vs %q: fast path %d, parser valid %v cmp %d", s, ls, c, valid, rlCmpVersion(v, lit))
			}
		}
	}
	if taken < 1000 {
		t.Fatalf("fast path taken only %d times", taken)
	}
}
