package evaluate

import (
	"cmp"
	"math"
	"strings"
)

// rlVersion is a parsed semantic version; pre is the pre-release part
// (without "-"), a substring of the parsed text. Build metadata is dropped.
type rlVersion struct {
	major, minor, patch uint64
	pre                 string
}

// rlParseVersion parses [v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD]
// (SemVer 2.0.0, with an optional "v" and optional minor and patch) without
// allocating.
func rlParseVersion(s string) (rlVersion, bool) {
	var v rlVersion
	if len(s) > 0 && (s[0] == 'v' || s[0] == 'V') {
		s = s[1:]
	}
	i := 0
	for part := 0; part < 3; part++ {
		start := i
		var x uint64
		for i < len(s) && rlIsDigit(s[i]) {
			d := uint64(s[i] - '0')
			if x > (math.MaxUint64-d)/10 {
				return v, false
			}
			x = x*10 + d
			i++
		}
		if i == start || s[start] == '0' && i-start > 1 {
			return v, false
		}
		switch part {
		case 0:
			v.major = x
		case 1:
			v.minor = x
		default:
			v.patch = x
		}
		if part == 2 || i >= len(s) || s[i] != '.' {
			break
		}
		i++
	}
	if i < len(s) && s[i] == '-' {
		start := i + 1
		for i < len(s) && s[i] != '+' {
			i++
		}
		v.pre = s[start:i]
		if !rlValidIdents(v.pre, true) {
			return v, false
		}
	}
	if i < len(s) && s[i] == '+' {
		if !rlValidIdents(s[i+1:], false) {
			return v, false
		}
		i = len(s)
	}
	return v, i == len(s)
}

// rlValidIdents reports whether s is a dot-separated list of non-empty
// [0-9A-Za-z-] identifiers; pre-release numeric identifiers have no leading
// zeros.
func rlValidIdents(s string, pre bool) bool {
	for id := range strings.SplitSeq(s, ".") {
		if id == "" {
			return false
		}
		numeric := true
		for j := 0; j < len(id); j++ {
			c := id[j]
			if !rlIsDigit(c) && c != '-' && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return false
			}
			numeric = numeric && rlIsDigit(c)
		}
		if pre && numeric && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

// rlCmpVersion compares versions by SemVer 2.0.0 precedence.
func rlCmpVersion(a, b rlVersion) int {
	if c := cmp.Compare(a.major, b.major); c != 0 {
		return c
	}
	if c := cmp.Compare(a.minor, b.minor); c != 0 {
		return c
	}
	if c := cmp.Compare(a.patch, b.patch); c != 0 {
		return c
	}
	switch {
	case a.pre == b.pre:
		return 0
	case a.pre == "":
		return 1 // a release follows its pre-releases
	case b.pre == "":
		return -1
	}
	x, y := a.pre, b.pre
	for {
		var xi, yi string
		xi, x, _ = strings.Cut(x, ".")
		yi, y, _ = strings.Cut(y, ".")
		if c := rlCmpIdent(xi, yi); c != 0 {
			return c
		}
		switch {
		case x == "" && y == "":
			return 0
		case x == "":
			return -1 // fewer identifiers sort first
		case y == "":
			return 1
		}
	}
}

// rlCmpIdent compares pre-release identifiers: numeric ones numerically and
// before alphanumeric ones, which compare in ASCII order.
func rlCmpIdent(a, b string) int {
	an, bn := rlAllDigits(a), rlAllDigits(b)
	switch {
	case an && bn:
		if c := cmp.Compare(len(a), len(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	case an:
		return -1
	case bn:
		return 1
	}
	return strings.Compare(a, b)
}

func rlAllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !rlIsDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// rlCmpPlainVersion is rlCmpVersion(rlParseVersion(s), *lit) for the common
// plain form [v]MAJOR[.MINOR[.PATCH]] with parts of at most 18 digits
// (which cannot overflow); ok is false for anything else, which the general
// parser then decides.
func rlCmpPlainVersion(s string, lit *rlVersion) (c int, ok bool) {
	if len(s) > 0 && (s[0] == 'v' || s[0] == 'V') {
		s = s[1:]
	}
	var part [3]uint64
	i := 0
	for p := 0; p < 3; p++ {
		start := i
		var x uint64
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			x = x*10 + uint64(s[i]-'0')
			i++
		}
		if n := i - start; n == 0 || n > 18 || n > 1 && s[start] == '0' {
			return 0, false
		}
		part[p] = x
		if i == len(s) {
			break
		}
		if p == 2 || s[i] != '.' {
			return 0, false
		}
		i++
	}
	if c = cmp.Compare(part[0], lit.major); c == 0 {
		if c = cmp.Compare(part[1], lit.minor); c == 0 {
			c = cmp.Compare(part[2], lit.patch)
		}
	}
	if c == 0 && lit.pre != "" {
		c = 1 // a release follows its pre-releases
	}
	return c, true
}
