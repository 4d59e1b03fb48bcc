package evaluate

import (
	"encoding/json"
	"testing"
)

// TestValueKinds checks each constructor's Kind, accessors and Any, and
// that AnyValue holds the common types unboxed as the constructors do.
func TestValueKinds(t *testing.T) {
	type named string
	for _, c := range []struct {
		v    Value
		kind Kind
		any  any
		str  string
	}{
		{StringValue("pro"), KindString, "pro", "pro"},
		{StringValue(""), KindString, "", ""},
		{BoolValue(true), KindBool, true, "true"},
		{BoolValue(false), KindBool, false, "false"},
		{Int64Value(-42), KindInt64, int64(-42), "-42"},
		{Float64Value(2.5), KindFloat64, 2.5, "2.5"},
		{Value{}, KindNull, nil, "<nil>"},
		{AnyValue(nil), KindNull, nil, "<nil>"},
		{AnyValue("x"), KindString, "x", "x"},
		{AnyValue(7), KindInt64, int64(7), "7"},
		{AnyValue(json.Number("12")), KindAny, json.Number("12"), "12"},
		{AnyValue(named("n")), KindAny, named("n"), "n"},
		{AnyValue(AnyValue(true)), KindBool, true, "true"},
	} {
		if got := c.v.Kind(); got != c.kind {
			t.Errorf("%#v: Kind = %v, want %v", c.any, got, c.kind)
		}
		if got := c.v.Any(); got != c.any {
			t.Errorf("%#v: Any = %#v", c.any, got)
		}
		if got := c.v.String(); got != c.str {
			t.Errorf("%#v: String = %q, want %q", c.any, got, c.str)
		}
	}
	if !BoolValue(true).Bool() || BoolValue(false).Bool() || StringValue("true").Bool() {
		t.Error("Bool")
	}
	if Int64Value(3).Int64() != 3 || Float64Value(3).Int64() != 0 || Float64Value(0.5).Float64() != 0.5 || Int64Value(3).Float64() != 0 {
		t.Error("Int64/Float64")
	}
}
