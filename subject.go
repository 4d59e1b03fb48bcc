package flagwire

import (
	"context"
	"encoding/binary"
	"math"
	"unsafe"
)

// Attr is one attribute of a subject stated with WithSubject: a key and
// a Value. Build it with String, Bool, Int, Int64, Float64 or Any, the
// way log/slog builds its Attrs.
type Attr struct {
	Key   string
	Value Value
}

// Value is an attribute value that holds a string, bool or number
// without boxing it (no allocation), as slog.Value does. The zero Value
// is null.
type Value struct {
	// num is a string's length, a bool (0/1), an int64 or float64 bits.
	num uint64
	// any is a stringptr (a string's bytes), a valueKind for the other
	// kinds above, the value itself for Any's other values, or nil
	// for null.
	any any
}

type (
	valueKind uint8
	stringptr *byte
)

const (
	kindBool valueKind = iota + 1
	kindInt64
	kindFloat64
)

// stringValue returns a Value holding s.
func stringValue(s string) Value {
	return Value{num: uint64(len(s)), any: stringptr(unsafe.StringData(s))}
}

// boolValue returns a Value holding b.
func boolValue(b bool) Value {
	var n uint64
	if b {
		n = 1
	}
	return Value{num: n, any: kindBool}
}

// int64Value returns a Value holding i.
func int64Value(i int64) Value { return Value{num: uint64(i), any: kindInt64} }

// float64Value returns a Value holding f.
func float64Value(f float64) Value { return Value{num: math.Float64bits(f), any: kindFloat64} }

// anyValue returns a Value holding v as Attributes would: any value an
// Attributes map may hold (lists, nested maps, other numbers, nil).
func anyValue(v any) Value {
	switch x := v.(type) {
	case string:
		return stringValue(x)
	case bool:
		return boolValue(x)
	case int64:
		return int64Value(x)
	case int:
		return int64Value(int64(x))
	case float64:
		return float64Value(x)
	}
	return Value{any: v}
}

// str returns the string of a Value holding sp.
func (v Value) str(sp stringptr) string {
	return unsafe.String((*byte)(sp), int(v.num))
}

// Any returns the value as an Attributes map holds it: a string, bool,
// int64, float64, nil, or the value given to AnyValue. It allocates for
// strings and numbers.
func (v Value) Any() any {
	switch x := v.any.(type) {
	case stringptr:
		return v.str(x)
	case valueKind:
		switch x {
		case kindBool:
			return v.num == 1
		case kindInt64:
			return int64(v.num)
		case kindFloat64:
			return math.Float64frombits(v.num)
		}
		return nil
	}
	return v.any
}

// String returns an Attr for a string value.
func String(key, value string) Attr { return Attr{key, stringValue(value)} }

// Bool returns an Attr for a bool value.
func Bool(key string, value bool) Attr { return Attr{key, boolValue(value)} }

// Int returns an Attr for an int value (held as an int64).
func Int(key string, value int) Attr { return Attr{key, int64Value(int64(value))} }

// Int64 returns an Attr for an int64 value.
func Int64(key string, value int64) Attr { return Attr{key, int64Value(value)} }

// Float64 returns an Attr for a float64 value.
func Float64(key string, value float64) Attr { return Attr{key, float64Value(value)} }

// Any returns an Attr for any value an Attributes map may hold (see
// AnyValue): lists ([]string, []any), nested maps (map[string]any), other
// numbers, nil.
func Any(key string, value any) Attr { return Attr{key, anyValue(value)} }

// appendValue appends v's canonical encoding: the same bytes canonical
// gives v.Any(), so a subject and the equal Attributes map have the same
// decision cache key.
func appendValue(b []byte, v Value, depth int) []byte {
	switch x := v.any.(type) {
	case stringptr:
		return appendStr(b, 's', v.str(x))
	case valueKind:
		switch x {
		case kindBool:
			if v.num == 1 {
				return append(b, 't')
			}
			return append(b, 'f')
		case kindInt64:
			return binary.AppendVarint(append(b, 'i'), int64(v.num))
		case kindFloat64:
			return appendFloat(b, math.Float64frombits(v.num))
		}
		return append(b, '0')
	}
	return canonical(b, v.any, depth)
}

// appendSubject appends the canonical encoding of attrs: the bytes
// canonical gives the equal Attributes map (keys in keyLess order; the
// last of a repeated key counts).
func appendSubject(b []byte, attrs []Attr) []byte {
	// Sort indices, not Attrs, stably (insertion sort: subjects are
	// small), so the last of equal keys is last in its run.
	var stack [8]int
	idx := stack[:0]
	for i := range attrs {
		idx = append(idx, i)
	}
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && keyLess(attrs[idx[j]].Key, attrs[idx[j-1]].Key); j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	b = append(b, '{')
	for n, i := range idx {
		if n+1 < len(idx) && attrs[idx[n+1]].Key == attrs[i].Key {
			continue // a later Attr has the same key
		}
		b = appendValue(appendStr(b, 'k', attrs[i].Key), attrs[i].Value, 1)
	}
	return append(b, '}')
}

// subjectContext4 and subjectContext8 hold up to 4 or 8 Attrs in the
// context's own allocation.
type subjectContext4 struct {
	attrContext
	buf [4]Attr
}

type subjectContext8 struct {
	attrContext
	buf [8]Attr
}

// WithSubject returns a context carrying attrs as the evaluation context,
// as WithAttributes does with a map, but without building one: a subject
// of up to 8 attributes costs one allocation, and evaluations answered
// from the decision cache (remote mode's hot path) never build a map.
// Local and offline evaluation, the API request, hashed identifiers
// (WithHashedAttributes) and AttributesFrom read the attributes as a map,
// built once per context on first need (in local and offline modes that
// costs about what building the map yourself does). When a key appears
// more than once, the last one counts. attrs is copied.
//
//	ctx = flagwire.WithSubject(ctx,
//		flagwire.String("userId", req.UserID),
//		flagwire.String("plan", req.Plan),
//	)
//
// A subject and the equal Attributes map get the same cached decisions.
func WithSubject(ctx context.Context, attrs ...Attr) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	var c *attrContext
	var buf []Attr
	switch n := len(attrs); {
	case n <= 4:
		s := &subjectContext4{}
		c, buf = &s.attrContext, s.buf[:0]
	case n <= 8:
		s := &subjectContext8{}
		c, buf = &s.attrContext, s.buf[:0]
	default:
		c, buf = &attrContext{}, make([]Attr, 0, n)
	}
	c.Context = ctx
	c.ec.subject = append(buf, attrs...)
	return c
}
