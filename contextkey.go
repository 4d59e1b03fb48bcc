package flagwire

import (
	"encoding/binary"
	"encoding/json"
	"hash/maphash"
	"math"
	"slices"
	"strconv"

	"github.com/flagwire/flagwire/evaluate"
)

// ctxSeeds key the in-process context hash. Decision cache keys never
// leave the process, so a per-process seed is all they need; two
// independent 64-bit hashes make a 128-bit key.
var ctxSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

// maxContextDepth is the deepest nesting of maps and lists a context may
// have in remote mode: deeper (or cyclic) contexts cannot be keyed
// exactly, so their evaluations are refused with INVALID_CONTEXT instead
// of sharing a key with another context.
const maxContextDepth = 1000

// key returns the context's 128-bit canonical hash, computing it once:
// two independently seeded hashes of the canonical encoding, which is
// built on the stack (no allocation unless it exceeds 256 bytes or a map
// has more than 16 keys). ok is false for a context that cannot be
// encoded (see canonical); it is not cached.
func (ec *evalContext) key() (hi, lo uint64, ok bool) {
	if hi := ec.hi.Load(); hi != 0 {
		return hi, ec.lo.Load(), true
	}
	var stack [256]byte
	var b []byte
	if ec.subject != nil {
		b, ok = appendSubject(stack[:0], ec.subject)
	} else {
		b, ok = canonical(stack[:0], ec.attrs, 0)
	}
	if !ok {
		return 0, 0, false
	}
	hi, lo = hashKey(b)
	ec.lo.Store(lo)
	ec.hi.Store(hi)
	return hi, lo, true
}

// keyOf returns the decision cache key of flag in ec for this client: the
// canonical hash of the attributes as the server receives them (hashed
// identifiers included). ok is false for a context that cannot be keyed
// (see canonical): it is refused with INVALID_CONTEXT.
func (c *Client) keyOf(ec *evalContext, flag string) (cacheKey, bool) {
	if len(c.cfg.hashed) == 0 || ec.attributes() == nil {
		hi, lo, ok := ec.key()
		return cacheKey{flag: flag, hi: hi, lo: lo}, ok
	}
	p := c.prepared(ec)
	return cacheKey{flag: flag, hi: p.hi, lo: p.lo}, p.keyOK
}

// hashKey hashes a canonical encoding into a 128-bit key; hi is never 0
// (0 means "not computed yet").
func hashKey(b []byte) (hi, lo uint64) {
	hi, lo = maphash.Bytes(ctxSeeds[0], b), maphash.Bytes(ctxSeeds[1], b)
	if hi == 0 {
		hi = 1
	}
	return hi, lo
}

func appendStr(b []byte, tag byte, s string) []byte {
	if len(s) < 0x80 { // the one-byte uvarint
		b = append(b, tag, byte(len(s)))
	} else {
		b = binary.AppendUvarint(append(b, tag), uint64(len(s)))
	}
	return append(b, s...)
}

// keyLess is the order of keys in canonical encodings: shorter first,
// then bytewise. Any total order would do (the encoding never leaves the
// process); this one compares most keys by length alone.
func keyLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// maxExactFloat is 2^53: every whole float64 up to it in magnitude is
// written in JSON as its exact integer, so it is keyed as that integer.
// Beyond it, encoding/json writes the shortest decimal that reads back as
// the same float64, which is another number than the float's exact
// value: such floats are keyed by their bits, never as an integer.
const maxExactFloat = 1 << 53

func appendFloat(b []byte, f float64) []byte {
	if f == math.Trunc(f) && f >= -maxExactFloat && f <= maxExactFloat {
		return binary.AppendVarint(append(b, 'i'), int64(f))
	}
	return binary.BigEndian.AppendUint64(append(b, 'n'), math.Float64bits(f))
}

// appendFloat32 keys a float32 as JSON writes it: its own shortest
// decimal, which is not the float64 conversion's (float32(0.1) is written
// 0.1, float64(float32(0.1)) is 0.10000000149011612). Whole values up to
// 2^24 are exact integers.
func appendFloat32(b []byte, f float32) []byte {
	if g := float64(f); g == math.Trunc(g) && g >= -(1<<24) && g <= 1<<24 {
		return binary.AppendVarint(append(b, 'i'), int64(g))
	}
	return binary.BigEndian.AppendUint32(append(b, 'F'), math.Float32bits(f))
}

type mapEntry struct {
	k string
	v any
}

// canonical appends a type-tagged, length-prefixed encoding of v that is
// injective over what the server receives (the JSON the request carries),
// so two contexts share a decision cache key only when the server sees
// the same values: maps in keyLess order, at any depth up to
// maxContextDepth; integers of every Go type, whole floats up to 2^53 and
// JSON number literals that are int64 integers by their exact value (so
// 2, 2.0 and int64(2) agree); larger floats by their bits; other JSON
// number literals by their text, exactly; values of other types by their
// JSON encoding. ok is false for a context that cannot be encoded: nested
// deeper than maxContextDepth (or cyclic), or holding a value that JSON
// cannot encode.
func canonical(b []byte, v any, depth int) (_ []byte, ok bool) {
	if depth > maxContextDepth {
		return b, false
	}
	switch x := v.(type) {
	case nil:
		return append(b, '0'), true
	case string:
		return appendStr(b, 's', x), true
	case bool:
		if x {
			return append(b, 't'), true
		}
		return append(b, 'f'), true
	case float64:
		return appendFloat(b, x), true
	case float32:
		return appendFloat32(b, x), true
	case int:
		return binary.AppendVarint(append(b, 'i'), int64(x)), true
	case int64:
		return binary.AppendVarint(append(b, 'i'), x), true
	case int32:
		return binary.AppendVarint(append(b, 'i'), int64(x)), true
	case uint:
		return canonicalUint(b, uint64(x)), true
	case uint64:
		return canonicalUint(b, x), true
	case uint32:
		return binary.AppendVarint(append(b, 'i'), int64(x)), true
	case json.Number:
		// Written as is: an int64 literal in its plain form is that
		// integer; anything else (beyond int64, a fraction, an exponent)
		// is its exact text.
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil && strconv.FormatInt(i, 10) == string(x) {
			return binary.AppendVarint(append(b, 'i'), i), true
		}
		return appendStr(b, 'N', string(x)), true
	case map[string]any:
		// Keys in keyLess order, sorted on the stack: no allocation
		// unless the map has more than 16 keys.
		var stack [16]mapEntry
		entries := stack[:0]
		for k, v := range x {
			entries = append(entries, mapEntry{k, v})
		}
		if len(entries) <= len(stack) {
			for i := 1; i < len(entries); i++ { // insertion sort: few keys
				for j := i; j > 0 && keyLess(entries[j].k, entries[j-1].k); j-- {
					entries[j], entries[j-1] = entries[j-1], entries[j]
				}
			}
		} else {
			slices.SortFunc(entries, func(a, b mapEntry) int {
				if keyLess(a.k, b.k) {
					return -1
				}
				if a.k == b.k {
					return 0
				}
				return 1
			})
		}
		b = append(b, '{')
		for _, e := range entries {
			if b, ok = canonical(appendStr(b, 'k', e.k), e.v, depth+1); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	case []any:
		b = append(b, '[')
		for _, e := range x {
			if b, ok = canonical(b, e, depth+1); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case []string:
		b = append(b, '[')
		for _, e := range x {
			b = appendStr(b, 's', e)
		}
		return append(b, ']'), true
	default:
		// Other types (time.Time, structs, named types, other slices and
		// maps): what the server receives, their JSON encoding.
		j, err := json.Marshal(v)
		if err != nil {
			return b, false
		}
		return appendStr(b, 'J', string(j)), true
	}
}

func canonicalUint(b []byte, u uint64) []byte {
	if u <= math.MaxInt64 {
		return binary.AppendVarint(append(b, 'i'), int64(u))
	}
	return binary.AppendUvarint(append(b, 'u'), u)
}

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
