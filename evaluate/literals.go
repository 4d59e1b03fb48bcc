package evaluate

import (
	"cmp"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
)

// Literal values of the rule language and the conversions of attribute
// values to them: strings, numbers (exact integers beside floats) and bools.

type rlLitKind uint8

const (
	rlLitString rlLitKind = iota + 1
	rlLitNumber
	rlLitBool
)

// rlLit is a scalar literal.
type rlLit struct {
	kind rlLitKind
	str  string
	num  rlNumber
	b    bool
}

func (l *rlLit) kindName() string {
	switch l.kind {
	case rlLitString:
		return "string"
	case rlLitNumber:
		return "number"
	default:
		return "bool"
	}
}

// equal reports whether attribute value v equals the literal (same kind).
func (l *rlLit) equal(v any) bool {
	switch l.kind {
	case rlLitString:
		s, ok := rlAsString(v)
		return ok && s == l.str
	case rlLitNumber:
		x, ok := rlToNumber(v)
		return ok && rlCmpNum(x, l.num) == 0
	default:
		b, ok := rlAsBool(v)
		return ok && b == l.b
	}
}

// equalValue is equal for an element of a slice of some other type, read
// without boxing it into an interface (which could allocate).
func (l *rlLit) equalValue(rv reflect.Value) bool {
	if rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return false
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.String:
		return l.kind == rlLitString && rv.String() == l.str
	case reflect.Bool:
		return l.kind == rlLitBool && rv.Bool() == l.b
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return l.kind == rlLitNumber && rlCmpNum(rlExact(rv.Int()), l.num) == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return l.kind == rlLitNumber && rlCmpNum(rlUint(rv.Uint()), l.num) == 0
	case reflect.Float32, reflect.Float64:
		x, ok := rlFloat(rv.Float())
		return ok && l.kind == rlLitNumber && rlCmpNum(x, l.num) == 0
	}
	return false
}

// rlAsString returns v as a string: a string or a value of a named string
// type (but not json.Number, which is a number).
func rlAsString(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case json.Number, bool, int, int64, float64, []any, map[string]any:
		return "", false
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.String {
		return rv.String(), true
	}
	return "", false
}

// rlAsBool returns v as a bool: a bool or a value of a named bool type.
func rlAsBool(v any) (bool, bool) {
	switch b := v.(type) {
	case bool:
		return b, true
	case string, json.Number, int, int64, float64, []any, map[string]any:
		return false, false
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Bool {
		return rv.Bool(), true
	}
	return false, false
}

// rlNumber is a number; exact numbers are integers that fit an int64, held
// in i (and approximately in f). Other numbers are in f only.
type rlNumber struct {
	f     float64
	i     int64
	exact bool
}

func rlExact(i int64) rlNumber { return rlNumber{f: float64(i), i: i, exact: true} }

func rlUint(u uint64) rlNumber {
	if u > math.MaxInt64 {
		return rlNumber{f: float64(u)}
	}
	return rlExact(int64(u))
}

// rlFloat converts f, rejecting NaN.
func rlFloat(f float64) (rlNumber, bool) {
	if f != f {
		return rlNumber{}, false
	}
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
		return rlExact(int64(f)), true
	}
	return rlNumber{f: f}, true
}

// rlCmpNum compares two numbers: exactly when both are int64s, otherwise as
// float64s.
func rlCmpNum(a, b rlNumber) int {
	if a.exact && b.exact {
		return cmp.Compare(a.i, b.i)
	}
	if c := cmp.Compare(a.f, b.f); c != 0 || a.exact == b.exact {
		return c
	}
	// Equal as float64s, but exactly one is an int64: the other one lies
	// outside the int64 range, so the sign of the other one decides.
	if a.exact {
		if b.f > 0 {
			return -1
		}
		return 1
	}
	if a.f > 0 {
		return 1
	}
	return -1
}

// rlParseNumber parses a decimal number (a literal, or a json.Number) without
// allocating for valid input.
func rlParseNumber(s string) (rlNumber, bool) {
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	// Only call ParseInt when it cannot fail: its errors allocate.
	isInt := len(digits) > 0 && (len(digits) < 19 || len(digits) == 19 && digits <= "9223372036854775807")
	for i := 0; isInt && i < len(digits); i++ {
		isInt = rlIsDigit(digits[i])
	}
	if isInt {
		i, err := strconv.ParseInt(s, 10, 64)
		if err == nil {
			return rlExact(i), true
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) || math.IsInf(f, 0) {
		return rlNumber{}, false // syntax error or overflow; underflow rounds to 0
	}
	return rlFloat(f)
}

// rlToNumber returns v as a number: any Go integer or float type (or named
// type of one), or a json.Number.
func rlToNumber(v any) (rlNumber, bool) {
	switch x := v.(type) {
	case int:
		return rlExact(int64(x)), true
	case int64:
		return rlExact(x), true
	case float64:
		return rlFloat(x)
	case uint:
		return rlUint(uint64(x)), true
	case uint64:
		return rlUint(x), true
	case float32:
		return rlFloat(float64(x))
	case json.Number:
		return rlParseNumber(string(x))
	case string, bool, []any, map[string]any:
		return rlNumber{}, false
	}
	rv := reflect.ValueOf(v) // the other integer types, and named types
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rlExact(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return rlUint(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rlFloat(rv.Float())
	}
	return rlNumber{}, false
}
