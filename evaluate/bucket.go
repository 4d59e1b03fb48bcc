package evaluate

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"reflect"
	"strconv"

	"github.com/flagwire/flagwire/internal/shortsha"
)

// BucketCount is the number of rollout buckets. A percentage p (0–100, up to
// three decimals) covers buckets [0, p*1000).
const BucketCount = 100000

// Bucket is Flagwire's bucketing function, the same in every mode, server and
// region, and specified here so that SDKs in other languages can reproduce it:
//
//	hash   = SHA-256( UTF-8(salt) || ":" || UTF-8(seed) || ":" || id )
//	bucket = uint64(big-endian hash[0:8]) mod 100000
//
// salt is the environment's salt, seed the flag's bucketing seed (the flag
// key unless set), and id the canonical form of the bucketing attribute's
// value (userId by default), defined below. The same canonical form decides
// individual targets and static segment membership (Target.Values and
// Segment.Included/Excluded are compared with it as strings).
//
// # Canonical id
//
//   - A string is its UTF-8 bytes. The empty string is missing.
//   - A boolean is "true" or "false".
//   - A number is canonicalized by its value, not by how it was written, so
//     1, 1.0, 1e3/1000, 12.5/12.50 and -0/0 give the same id:
//     (a) if its value is an integer, the id is that exact integer in decimal:
//     an optional "-", then digits without leading zeros; no exponent, no
//     decimal point; zero (and -0) is "0". This is exact for integer literals
//     of any length up to the limit in (c) (12345678901234567890 stays
//     12345678901234567890, not the binary64 12345678901234567168) and for
//     an integral binary64 value (1e21 is "1000000000000000000000", the
//     binary64 nearest 1e23 is "99999999999999991611392"; JavaScript:
//     BigInt(x).toString(); Python: str(int(x))).
//     (b) otherwise, let x be the IEEE-754 binary64 nearest to the value
//     (round half to even). If x is an integer (the value was so large that
//     its fraction rounded away, or so small that it rounded to zero), the id
//     is x's exact integer as in (a). Else the id is the shortest decimal that
//     rounds back to x, written in plain notation: optional "-", digits, ".",
//     digits; no exponent, no trailing zeros after the point, "0." before a
//     fraction below one (12.5, 0.1, -0.000001, 2251799813685248.5; Go:
//     strconv.FormatFloat(x, 'f', -1, 64); JavaScript: String(x) and
//     Python: repr(x), each expanded out of exponent notation when they use
//     it, as for 1e-7 → "0.0000001").
//     (c) NaN, ±Infinity and a value whose nearest binary64 is infinite
//     (magnitude ≥ 2^1024 − 2^970) are missing.
//   - null, lists and maps are missing.
//
// A missing bucketing attribute is never hashed: the rollout reports
// MISSING_BUCKETING_ATTRIBUTE (see Evaluate).
//
// Implementations whose JSON decoder reads every number as a binary64 (as
// JavaScript's JSON.parse does) agree with this for every non-integral
// number and for integers up to 2^53 in magnitude; larger integers written
// as exact literals must be decoded exactly (Python's json module does for
// literals without a fraction or exponent, and for all of them with
// parse_float=decimal.Decimal; Go's decoder does with UseNumber), or sent
// as strings.
//
// In Go, an id may be any integer type, float32 (converted exactly to
// binary64) or float64, json.Number (a JSON number literal; one that is not
// valid JSON number syntax is missing), a string or bool, or a named type of
// one of those kinds. A value of another type with a String method (such as
// time.Time or a UUID type) is its String() text.
//
// A rollout with weights w1, w2, … (percent) gives variant i the buckets
// [1000·(w1+…+w(i−1)), 1000·(w1+…+wi)). Because thresholds are cumulative
// and a subject's bucket never changes, ramping a percentage up never moves
// a subject out of the treatment, and changing weights moves only subjects
// in the slices that changed. The vectors in testdata/bucketing_vectors.json
// pin this function down ("vectors" for string ids, "numericVectors" for
// numbers).
func Bucket(salt, seed, id string) (hash [32]byte, bucket uint32) {
	var buf [160]byte
	b := append(buf[:0], salt...)
	b = append(b, ':')
	b = append(b, seed...)
	b = append(b, ':')
	b = append(b, id...)
	hash = shortsha.Sum(b)
	return hash, bucketOf(&hash)
}

func bucketOf(hash *[32]byte) uint32 {
	return uint32(binary.BigEndian.Uint64(hash[:8]) % BucketCount)
}

// bucketTo hashes a canonical id for this serve into *hash and returns its
// bucket: Bucket(salt, seed, id), with the "salt:seed:" prefix built at
// compile time.
func (sv *compiledServe) bucketTo(hash *[32]byte, id []byte) uint32 {
	shortsha.SumTo(hash, sv.prefix, id)
	return bucketOf(hash)
}

// CanonicalID returns the canonical id form of an attribute value (see
// Bucket), and false when the value counts as missing.
func CanonicalID(v any) (string, bool) {
	var buf [64]byte
	b, ok := appendID(buf[:0], v)
	if !ok {
		return "", false
	}
	return string(b), true
}

// appendID appends the canonical id form of v (see Bucket) to b. ok is
// false when v counts as missing; b is then unspecified.
func appendID(b []byte, v any) (_ []byte, ok bool) {
	switch x := v.(type) {
	case string:
		return append(b, x...), x != ""
	case bool:
		return strconv.AppendBool(b, x), true
	case int:
		return strconv.AppendInt(b, int64(x), 10), true
	case int64:
		return strconv.AppendInt(b, x, 10), true
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint64:
		return strconv.AppendUint(b, x, 10), true
	case float64:
		return appendFloatID(b, x)
	case float32:
		return appendFloatID(b, float64(x))
	case json.Number:
		return appendNumberID(b, string(x))
	case nil, []any, map[string]any, []string:
		return b, false
	case interface{ String() string }:
		s := x.String()
		return append(b, s...), s != ""
	}
	// The other integer types, and named types of the basic kinds (type
	// UserID int64, …).
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		s := rv.String()
		return append(b, s...), s != ""
	case reflect.Bool:
		return strconv.AppendBool(b, rv.Bool()), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, rv.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.AppendUint(b, rv.Uint(), 10), true
	case reflect.Float32, reflect.Float64:
		return appendFloatID(b, rv.Float())
	}
	return b, false
}

// appendFloatID appends the canonical form of a binary64 value.
func appendFloatID(b []byte, x float64) ([]byte, bool) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return b, false
	}
	if x == math.Trunc(x) {
		switch {
		case x == 0: // and -0
			return append(b, '0'), true
		case x >= -(1<<63) && x < 1<<63:
			return strconv.AppendInt(b, int64(x), 10), true
		}
		// 'f' with precision 0 formats the exact value, and an integral
		// value has no fraction to round.
		return strconv.AppendFloat(b, x, 'f', 0, 64), true
	}
	return strconv.AppendFloat(b, x, 'f', -1, 64), true
}

// maxIntegerDigits is the number of digits of the largest finite binary64
// (≈1.8e308). An integer with more digits is out of range (missing).
const maxIntegerDigits = 309

// appendNumberID appends the canonical form of a JSON number literal s,
// exactly: an integral value keeps every digit, whatever its length or
// notation. It does not allocate unless the result outgrows b.
func appendNumberID(b []byte, s string) ([]byte, bool) {
	// Scan -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
	i, n := 0, len(s)
	neg := n > 0 && s[0] == '-'
	if neg {
		i++
	}
	intStart := i
	switch {
	case i < n && s[i] == '0':
		i++
	case i < n && '1' <= s[i] && s[i] <= '9':
		for i < n && rlIsDigit(s[i]) {
			i++
		}
	default:
		return b, false
	}
	intPart := s[intStart:i]
	var frac string
	if i < n && s[i] == '.' {
		i++
		start := i
		for i < n && rlIsDigit(s[i]) {
			i++
		}
		if i == start {
			return b, false
		}
		frac = s[start:i]
	}
	exp := 0
	hasExp := false
	if i < n && (s[i] == 'e' || s[i] == 'E') {
		hasExp = true
		i++
		expNeg := false
		if i < n && (s[i] == '+' || s[i] == '-') {
			expNeg = s[i] == '-'
			i++
		}
		start := i
		for ; i < n && rlIsDigit(s[i]); i++ {
			if exp < 1<<30 { // saturate: far beyond any finite binary64
				exp = exp*10 + int(s[i]-'0')
			}
		}
		if i == start {
			return b, false
		}
		if expNeg {
			exp = -exp
		}
	}
	if i != n {
		return b, false
	}
	if frac == "" && !hasExp {
		// A plain integer literal is already canonical, except -0.
		if intPart == "0" {
			return append(b, '0'), true
		}
		if len(intPart) >= maxIntegerDigits && !finiteLiteral(s) {
			return b, false
		}
		return append(b, s...), true
	}
	// The value is D × 10^e, D the significant digits of intPart+frac
	// (leading and trailing zeros removed).
	digits := len(intPart) + len(frac)
	digit := func(k int) byte {
		if k < len(intPart) {
			return intPart[k]
		}
		return frac[k-len(intPart)]
	}
	first := 0
	for first < digits && digit(first) == '0' {
		first++
	}
	if first == digits {
		return append(b, '0'), true // zero, however written
	}
	last := digits // exclusive
	for digit(last-1) == '0' {
		last--
	}
	e := exp - len(frac) + (digits - last)
	if e >= 0 {
		// An integer: the digits, then e zeros.
		if width := last - first + e; width > maxIntegerDigits || width == maxIntegerDigits && !finiteLiteral(s) {
			return b, false
		}
		if neg {
			b = append(b, '-')
		}
		for k := first; k < last; k++ {
			b = append(b, digit(k))
		}
		for ; e > 0; e-- {
			b = append(b, '0')
		}
		return b, true
	}
	// Not an integer: round to binary64.
	if last-first+e > maxIntegerDigits {
		return b, false
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil && math.IsInf(x, 0) {
		return b, false
	}
	return appendFloatID(b, x)
}

// finiteLiteral reports whether a valid number literal rounds to a finite
// binary64.
func finiteLiteral(s string) bool {
	x, _ := strconv.ParseFloat(s, 64)
	return !math.IsInf(x, 0)
}

// percentToBuckets converts a percentage (0–100) to a bucket threshold.
func percentToBuckets(p float64) uint32 {
	if p <= 0 {
		return 0
	}
	if p >= 100 {
		return BucketCount
	}
	return uint32(p*1000 + 0.5)
}
