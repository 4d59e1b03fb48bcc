package flagwire

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/flagwire/flagwire/evaluate"
)

// Attributes is an evaluation context: the targeting attributes of the
// subject being evaluated (userId, accountId, region, plan, appVersion, …).
// Values are strings, bools, numbers, lists or nested maps.
type Attributes = evaluate.Attributes

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

// WithAttributes returns a context carrying attrs as the evaluation context.
// The attributes' canonical hash (the decision cache key) is computed at
// most once per attached context, not per evaluation. attrs must not be
// modified afterwards. It costs one allocation; WithSubject states a
// subject without building the map.
func WithAttributes(ctx context.Context, attrs Attributes) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	c := &attrContext{Context: ctx}
	c.ec.attrs = attrs
	return c
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

// AttributesFrom returns the attributes attached by WithAttributes, or
// those of WithSubject as a map (built once per context), or nil. The map
// must not be modified.
func AttributesFrom(ctx context.Context) Attributes {
	if ctx == nil {
		return nil
	}
	if ec, ok := ctx.Value(ctxKey{}).(*evalContext); ok {
		return ec.attributes()
	}
	return nil
}

type ctxKey struct{}

// evalContext is what WithAttributes and WithSubject attach: the subject,
// as a map or as Attrs, and its canonical hash, computed once.
type evalContext struct {
	attrs   Attributes // the map form, or nil
	subject []Attr     // WithSubject's form, or nil

	// prepared holds the subject as a map (see attributes) and the
	// attributes as a client prepares them (see Client.evalAttributes).
	prepared atomic.Pointer[preparedAttrs]

	// The canonical hash: computed once, on first need (remote-mode cache
	// keys), never per evaluation; local and offline modes never need it.
	// Racing first computations store the same values, lo first: hi != 0
	// means both are stored (a hash with hi == 0 is merely recomputed).
	hi, lo atomic.Uint64
}

var emptyContext = newEvalContext(nil)

// attrContext is the context WithAttributes and WithSubject return: the
// parent and the evaluation context in one allocation. It answers
// Value(ctxKey{}) itself and passes every other key to the parent, so
// context.WithCancel and friends on a child still find the parent's
// cancellation (through Done and Value) without a goroutine.
type attrContext struct {
	context.Context
	ec evalContext
}

// Value returns the evaluation context for the package's key, else asks
// the parent.
func (c *attrContext) Value(key any) any {
	if _, ok := key.(ctxKey); ok {
		return &c.ec
	}
	return c.Context.Value(key)
}

// String names the parent and how many attributes were attached, never
// their values (they may identify a person).
func (c *attrContext) String() string {
	n := len(c.ec.attrs)
	how := "WithAttributes"
	if c.ec.subject != nil {
		n, how = len(c.ec.subject), "WithSubject"
	}
	var parent string
	if s, ok := c.Context.(fmt.Stringer); ok {
		parent = s.String()
	} else {
		parent = fmt.Sprintf("%T", c.Context)
	}
	return parent + "." + how + "(" + strconv.Itoa(n) + " attributes)"
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

func contextOf(ctx context.Context) *evalContext {
	if ctx != nil {
		if ec, ok := ctx.Value(ctxKey{}).(*evalContext); ok {
			return ec
		}
	}
	return emptyContext
}

func newEvalContext(attrs Attributes) *evalContext {
	return &evalContext{attrs: attrs}
}

// attributes returns the subject as a map: the attached map, or the
// subject's Attrs as a map built once (evaluate reads maps).
func (ec *evalContext) attributes() Attributes {
	if ec.subject == nil {
		return ec.attrs
	}
	if p := ec.prepared.Load(); p != nil {
		return p.base
	}
	m := make(Attributes, len(ec.subject))
	for _, a := range ec.subject {
		m[a.Key] = a.Value.Any()
	}
	if !ec.prepared.CompareAndSwap(nil, &preparedAttrs{base: m}) {
		return ec.prepared.Load().base // another goroutine's, equal
	}
	return m
}
