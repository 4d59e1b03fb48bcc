package evaluate

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"unsafe"
)

// Attr is one attribute of a subject stated as a list (see
// Snapshot.EvaluateAttrs): a key and a Value, the way log/slog states its
// attributes. In a list, the last of a repeated key counts.
type Attr struct {
	Key   string
	Value Value
}

// Value is an attribute value that holds a string, bool or number without
// boxing it in an interface (no allocation), as slog.Value does; any other
// value (lists, nested maps, other number types) is held as given. The
// zero Value is null, which the engine treats as a missing attribute.
type Value struct {
	// num is a string's length, a bool (0/1), an int64 or float64 bits.
	num uint64
	// any is a stringptr (a string's bytes), a Kind for the other kinds
	// above, the value itself for KindAny, or nil for null.
	any any
}

// Kind is the kind of a Value.
type Kind uint8

// The kinds of Value.
const (
	KindNull Kind = iota
	KindString
	KindBool
	KindInt64
	KindFloat64
	// KindAny is any other value, as given to AnyValue: a list, a nested
	// map, a number of another Go type, a named string or bool type…
	KindAny
)

type stringptr *byte

// StringValue returns a Value holding s.
func StringValue(s string) Value {
	return Value{num: uint64(len(s)), any: stringptr(unsafe.StringData(s))}
}

// BoolValue returns a Value holding b.
func BoolValue(b bool) Value {
	var n uint64
	if b {
		n = 1
	}
	return Value{num: n, any: KindBool}
}

// Int64Value returns a Value holding i.
func Int64Value(i int64) Value { return Value{num: uint64(i), any: KindInt64} }

// Float64Value returns a Value holding f.
func Float64Value(f float64) Value { return Value{num: math.Float64bits(f), any: KindFloat64} }

// AnyValue returns a Value holding v as an Attributes map would: a string,
// bool, int, int64 or float64 is held unboxed (StringValue, …), nil is
// null, and anything else (lists, nested maps, json.Number, other number
// types, named types) is held as given.
func AnyValue(v any) Value {
	switch x := v.(type) {
	case string:
		return StringValue(x)
	case bool:
		return BoolValue(x)
	case int64:
		return Int64Value(x)
	case int:
		return Int64Value(int64(x))
	case float64:
		return Float64Value(x)
	case Value:
		return x
	}
	return Value{any: v}
}

// null reports whether v counts as a missing attribute: null, or a
// number that is not finite (NaN, +Inf, -Inf). JSON cannot carry such a
// number: a context sent to a server carries null in its place, so local
// evaluation treats it as null too, and every mode agrees.
func (v Value) null() bool {
	switch v.Kind() {
	case KindNull:
		return true
	case KindFloat64:
		return nonFinite(v.Float64())
	case KindAny:
		switch x := v.any.(type) {
		case float32:
			return nonFinite(float64(x))
		case map[string]any, []any, []string, json.Number:
			return false
		}
		if rv := reflect.ValueOf(v.any); rv.Kind() == reflect.Float32 || rv.Kind() == reflect.Float64 {
			return nonFinite(rv.Float())
		}
	}
	return false
}

// nonFinite reports whether f is NaN or an infinity.
func nonFinite(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }

// Kind returns the kind of v.
func (v Value) Kind() Kind {
	switch x := v.any.(type) {
	case nil:
		return KindNull
	case stringptr:
		return KindString
	case Kind:
		return x
	}
	return KindAny
}

// String returns the string v holds; for other kinds, their text (as
// strconv formats them; "<nil>" for null; fmt.Sprint of the value for
// KindAny).
func (v Value) String() string {
	if sp, ok := v.any.(stringptr); ok {
		return unsafe.String((*byte)(sp), int(v.num))
	}
	return v.format()
}

// format is String for the kinds other than KindString.
func (v Value) format() string {
	switch v.Kind() {
	case KindBool:
		return strconv.FormatBool(v.num == 1)
	case KindInt64:
		return strconv.FormatInt(int64(v.num), 10)
	case KindFloat64:
		return strconv.FormatFloat(math.Float64frombits(v.num), 'g', -1, 64)
	case KindNull:
		return "<nil>"
	}
	return fmt.Sprint(v.any)
}

// Bool returns the bool v holds (false for other kinds).
func (v Value) Bool() bool { return v.any == any(KindBool) && v.num == 1 }

// Int64 returns the int64 v holds (0 for other kinds).
func (v Value) Int64() int64 {
	if v.any == any(KindInt64) {
		return int64(v.num)
	}
	return 0
}

// Float64 returns the float64 v holds (0 for other kinds).
func (v Value) Float64() float64 {
	if v.any == any(KindFloat64) {
		return math.Float64frombits(v.num)
	}
	return 0
}

// Any returns the value as an Attributes map holds it: a string, bool,
// int64, float64, nil, or the value given to AnyValue. It allocates for
// strings and numbers.
func (v Value) Any() any {
	switch x := v.any.(type) {
	case stringptr:
		return v.str(x)
	case Kind:
		switch x {
		case KindBool:
			return v.num == 1
		case KindInt64:
			return int64(v.num)
		case KindFloat64:
			return math.Float64frombits(v.num)
		}
		return nil
	}
	return v.any
}

// str returns the string of a Value holding sp.
func (v Value) str(sp stringptr) string {
	return unsafe.String((*byte)(sp), int(v.num))
}

// asString returns v as a string: a string, or a value of a named string
// type (but not json.Number, which is a number).
func (v Value) asString() (string, bool) {
	if sp, ok := v.any.(stringptr); ok {
		return unsafe.String((*byte)(sp), int(v.num)), true
	}
	return v.asOtherString()
}

// asOtherString is asString for the kinds other than KindString.
func (v Value) asOtherString() (string, bool) {
	if v.Kind() != KindAny {
		return "", false
	}
	return rlAsString(v.any)
}

// asBool returns v as a bool: a bool or a value of a named bool type.
func (v Value) asBool() (bool, bool) {
	switch x := v.any.(type) {
	case Kind:
		return v.num == 1, x == KindBool
	case stringptr, nil:
		return false, false
	}
	return rlAsBool(v.any)
}

// asNumber returns v as a number: any Go integer or float type, or
// json.Number. NaN is not a number.
func (v Value) asNumber() (rlNumber, bool) {
	switch x := v.any.(type) {
	case Kind:
		switch x {
		case KindInt64:
			return rlExact(int64(v.num)), true
		case KindFloat64:
			return rlFloat(math.Float64frombits(v.num))
		}
		return rlNumber{}, false
	case stringptr, nil:
		return rlNumber{}, false
	}
	return rlToNumber(v.any)
}

// appendID appends the canonical id form of v (see Bucket) to b; ok is
// false when v counts as missing.
func (v Value) appendID(b []byte) (_ []byte, ok bool) {
	switch x := v.any.(type) {
	case stringptr:
		return append(b, v.str(x)...), v.num != 0
	case Kind:
		switch x {
		case KindBool:
			return strconv.AppendBool(b, v.num == 1), true
		case KindInt64:
			return strconv.AppendInt(b, int64(v.num), 10), true
		case KindFloat64:
			return appendFloatID(b, math.Float64frombits(v.num))
		}
		return b, false
	case nil:
		return b, false
	}
	return appendID(b, v.any)
}
