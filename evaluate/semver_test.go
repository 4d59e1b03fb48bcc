package evaluate

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

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
