package flagwire

import (
	"context"
	"encoding/binary"

	"github.com/flagwire/flagwire/evaluate"
)

// Attr is one attribute of a subject stated with WithSubject: a key and
// a value. Build it with StringAttr, BoolAttr, IntAttr, FloatAttr or
// AnyAttr, the way log/slog builds its Attrs (the names end in Attr so
// they never read like the Client's Bool, String, Int and Float, which
// evaluate flags). It is the rules engine's evaluate.Attr, so local and
// offline evaluation read a subject's Attrs as they are; its Value holds
// a string, bool or number without boxing it (no allocation).
type Attr = evaluate.Attr

// StringAttr returns an Attr for a string value.
func StringAttr(key, value string) Attr { return Attr{Key: key, Value: evaluate.StringValue(value)} }

// BoolAttr returns an Attr for a bool value.
func BoolAttr(key string, value bool) Attr { return Attr{Key: key, Value: evaluate.BoolValue(value)} }

// IntAttr returns an Attr for an integer value: int64, as Client.Int
// returns (pass an int as int64(n)).
func IntAttr(key string, value int64) Attr {
	return Attr{Key: key, Value: evaluate.Int64Value(value)}
}

// FloatAttr returns an Attr for a float64 value, as Client.Float returns.
func FloatAttr(key string, value float64) Attr {
	return Attr{Key: key, Value: evaluate.Float64Value(value)}
}

// AnyAttr returns an Attr for any value an Attributes map may hold (see
// evaluate.AnyValue): lists ([]string, []any), nested maps
// (map[string]any), other numbers, nil.
func AnyAttr(key string, value any) Attr { return Attr{Key: key, Value: evaluate.AnyValue(value)} }

// appendValue appends v's canonical encoding: the same bytes canonical
// gives v.Any(), so a subject and the equal Attributes map have the same
// decision cache key.
func appendValue(b []byte, v evaluate.Value, depth int) ([]byte, bool) {
	switch v.Kind() {
	case evaluate.KindString:
		return appendStr(b, 's', v.String()), true
	case evaluate.KindBool:
		if v.Bool() {
			return append(b, 't'), true
		}
		return append(b, 'f'), true
	case evaluate.KindInt64:
		return binary.AppendVarint(append(b, 'i'), v.Int64()), true
	case evaluate.KindFloat64:
		return appendFloat(b, v.Float64()), true
	case evaluate.KindNull:
		return append(b, '0'), true
	}
	return canonical(b, v.Any(), depth)
}

// appendSubject appends the canonical encoding of attrs: the bytes
// canonical gives the equal Attributes map (keys in keyLess order; the
// last of a repeated key counts).
func appendSubject(b []byte, attrs []Attr) (_ []byte, ok bool) {
	// Sort positions, not Attrs, stably (insertion sort: subjects are
	// small), so the last of equal keys is last in its run.
	var stack [8]uint16
	var order []uint16
	if len(attrs) <= len(stack) {
		order = stack[:len(attrs)]
	} else if len(attrs) <= 1<<16 {
		order = make([]uint16, len(attrs))
	} else {
		return appendSubjectMap(b, attrs)
	}
	for i := range order {
		order[i] = uint16(i)
	}
	for i := 1; i < len(order); i++ {
		x := order[i]
		kx := attrs[x].Key
		j := i
		for ; j > 0; j-- {
			ky := attrs[order[j-1]].Key
			// keyLess(kx, ky), with the length test inline.
			if len(kx) > len(ky) || len(kx) == len(ky) && kx >= ky {
				break
			}
			order[j] = order[j-1]
		}
		order[j] = x
	}
	b = append(b, '{')
	for p, i := range order {
		a := &attrs[i]
		if p+1 < len(order) {
			if next := attrs[order[p+1]].Key; len(next) == len(a.Key) && next == a.Key {
				continue // a later Attr has the same key
			}
		}
		b = appendStr(b, 'k', a.Key)
		if a.Value.Kind() == evaluate.KindString {
			b = appendStr(b, 's', a.Value.String())
		} else if b, ok = appendValue(b, a.Value, 1); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// appendSubjectMap encodes a subject too long to sort in place through
// the map it is equal to.
func appendSubjectMap(b []byte, attrs []Attr) ([]byte, bool) {
	m := make(map[string]any, len(attrs))
	for _, a := range attrs {
		m[a.Key] = a.Value.Any()
	}
	return canonical(b, m, 0)
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
// of up to 8 attributes costs one allocation, and evaluating never builds
// a map or allocates, neither from the decision cache (remote mode's hot
// path) nor in local and offline modes, where the rules engine reads the
// Attrs as they are (evaluate.Snapshot.EvaluateAttrs). The API request of
// a cache miss, hashed identifiers (WithHashedAttributes) and
// AttributesFrom read the attributes as a map, built once per context on
// first need. When a key appears more than once, the last one counts.
// attrs is copied.
//
//	ctx = flagwire.WithSubject(ctx,
//		flagwire.StringAttr("userId", req.UserID),
//		flagwire.StringAttr("plan", req.Plan),
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
