package flagwire

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"

	"github.com/flagwire/flagwire/evaluate"
)

// HashIdentifier returns hex(SHA-256(salt ":" id)): the form in which
// WithHashedAttributes sends identifiers. Use the environment's salt so the
// hashed ids of one environment cannot be joined with another's.
func HashIdentifier(salt, id string) string {
	sum := sha256.Sum256([]byte(salt + ":" + id))
	return hex.EncodeToString(sum[:])
}

// preparedAttrs caches, per evaluation context, its attributes as one
// client prepares them (hashed identifiers), and their decision cache key.
type preparedAttrs struct {
	base  Attributes // what evalContext.attributes returns
	cfg   *config    // nil until a client prepared attrs
	attrs Attributes
	// hi, lo and keyOK are the canonical hash of attrs (see
	// evalContext.key): the key of what the server receives.
	hi, lo uint64
	keyOK  bool
}

// hashedValue is v as WithHashedAttributes sends it.
func hashedValue(salt string, v any) any {
	if id, ok := evaluate.CanonicalID(v); ok {
		return HashIdentifier(salt, id)
	}
	switch v.(type) {
	case []any, []string, map[string]any:
		return HashIdentifier(salt, fmt.Sprint(v))
	}
	return v // a missing id stays missing
}

// prepared returns ec's attributes as this client prepares them, computed
// once per context (and client configuration).
func (c *Client) prepared(ec *evalContext) *preparedAttrs {
	if p := ec.prepared.Load(); p != nil && p.cfg == c.cfg {
		return p
	}
	attrs := ec.attributes()
	out := make(Attributes, len(attrs))
	for k, v := range attrs {
		if c.cfg.hashed[k] && v != nil {
			v = hashedValue(c.cfg.hashSalt, v)
		}
		out[k] = v
	}
	p := &preparedAttrs{base: attrs, cfg: c.cfg, attrs: out}
	var stack [256]byte
	if b, ok := canonical(stack[:0], out, 0); ok {
		p.hi, p.lo = hashKey(b)
		p.keyOK = true
	}
	ec.prepared.Store(p)
	return p
}

// evalAttributes returns the attributes evaluation sees: hashed
// identifiers replaced. Private attributes stay (they never leave the
// process, but local rules may use them). Computed once per context.
func (c *Client) evalAttributes(ec *evalContext) Attributes {
	if len(c.cfg.hashed) == 0 {
		return ec.attributes()
	}
	if ec.attributes() == nil {
		return nil
	}
	return c.prepared(ec).attrs
}

// outgoingAttributes is what leaves the process: hashed identifiers, no
// private attributes, and numbers in the form that makes the server see
// what local evaluation sees (wireNumber).
func (c *Client) outgoingAttributes(ec *evalContext) map[string]any {
	attrs := c.evalAttributes(ec)
	if len(c.cfg.private) > 0 && attrs != nil {
		out := make(map[string]any, len(attrs))
		for k, v := range attrs {
			if !c.cfg.private[k] {
				out[k] = v
			}
		}
		attrs = out
	}
	if f, changed := wireForm(attrs, 0); changed {
		attrs = f.(map[string]any)
	}
	return attrs
}

// wireNumber returns the form of a float that JSON carries as the number
// local evaluation sees: nil for a number that is not finite (NaN, ±Inf:
// JSON cannot carry one, and every mode treats it as null), the exact
// integer for a whole float beyond 2^53 (encoding/json would write the
// shortest decimal that reads back as the same float, another integer:
// 2^62 as 4611686018427388000), and a float32 as the float64 it equals
// (encoding/json writes float32(0.1) as 0.1, while evaluation reads
// 0.10000000149011612). ok is false when f needs no change (as float64).
func wireNumber(f float64, isFloat32 bool) (_ any, changed bool) {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return nil, true
	case f == math.Trunc(f) && (f > maxExactFloat || f < -maxExactFloat):
		return json.Number(strconv.FormatFloat(f, 'f', 0, 64)), true
	case isFloat32:
		return f, true
	}
	return f, false
}

// wireForm returns v with every float in its wire form (wireNumber), at
// any depth (up to maxContextDepth), and whether it changed any; v itself,
// not a copy, when none changes.
func wireForm(v any, depth int) (any, bool) {
	if depth > maxContextDepth {
		return v, false
	}
	switch x := v.(type) {
	case nil, string, bool, int, int64:
		return v, false
	case float64:
		if w, changed := wireNumber(x, false); changed {
			return w, true
		}
		return v, false
	case float32:
		return wireNumber(float64(x), true)
	case map[string]any:
		var out map[string]any
		for k, e := range x {
			if f, changed := wireForm(e, depth+1); changed {
				if out == nil {
					out = maps.Clone(x)
				}
				out[k] = f
			}
		}
		if out == nil {
			return v, false
		}
		return out, true
	case []any:
		var out []any
		for i, e := range x {
			if f, changed := wireForm(e, depth+1); changed {
				if out == nil {
					out = slices.Clone(x)
				}
				out[i] = f
			}
		}
		if out == nil {
			return v, false
		}
		return out, true
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Float32 || rv.Kind() == reflect.Float64 {
		if w, changed := wireNumber(rv.Float(), rv.Kind() == reflect.Float32); changed {
			return w, true
		}
	}
	return v, false
}
