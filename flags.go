// Package flagwire is the Go client SDK for an API-first feature-flag
// service: hot-path flag decisions answered from an in-process decision
// cache, backed by the remote evaluate API, with circuit breaking,
// decorrelated-jitter retries and safe fallbacks.
//
//	client, err := flagwire.New(ctx,
//		flagwire.WithEndpoint("https://flags.example.com"),
//		flagwire.WithToken(os.Getenv("FLAG_TOKEN")),
//		flagwire.WithEnvironment("prod"),
//	)
//	if err != nil { … } // invalid configuration only: New never blocks on the network
//	defer client.Close(context.Background())
//
//	ctx = flagwire.WithAttributes(ctx, flagwire.Attributes{"userId": "8a7f4c91", "plan": "pro"})
//	if client.Bool(ctx, "checkout-new-flow", false) { … }
//
// Per request, WithSubject states the subject without building a map:
//
//	ctx = flagwire.WithSubject(ctx, flagwire.StringAttr("userId", id), flagwire.StringAttr("plan", plan))
//
// Lifecycle: New → (optionally WaitReady) → Bool/String/… → Close.
//
// A Client is safe for concurrent use. Evaluation methods never panic, never
// block longer than the caller's context or the configured timeout (200 ms by
// default), and always return a value: a fresh decision, else a stale cached
// one, else the bootstrap or last-known config, else the caller's default.
// The …Detail forms say which (Detail.Source) and why (Detail.Reason,
// Detail.ErrorCode). A nil or closed Client returns the default.
package flagwire

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/flagwire/flagwire/evaluate"
)

// Attributes is an evaluation context: the targeting attributes of the
// subject being evaluated (userId, accountId, region, plan, appVersion, …).
// Values are strings, bools, numbers, lists or nested maps.
type Attributes = evaluate.Attributes

// Source says where a value came from, in the order of preference.
type Source uint8

// The sources.
const (
	// SourceCallerDefault is the default value the caller passed (printed
	// CALLER_DEFAULT, so it is never confused with the reason kind
	// DEFAULT, the flag's own default rule).
	SourceCallerDefault Source = iota
	// SourceRemote is a fresh answer from the remote evaluate API.
	SourceRemote
	// SourceCache is a fresh answer from the decision cache.
	SourceCache
	// SourceStale is an expired cached decision served because the API
	// could not be asked.
	SourceStale
	// SourceLocal is an in-process evaluation of the synced config.
	SourceLocal
	// SourceBootstrap is an evaluation of the bootstrap file or the
	// persisted last-known config.
	SourceBootstrap
)

var sourceNames = [...]string{"CALLER_DEFAULT", "REMOTE", "CACHE", "STALE", "LOCAL", "BOOTSTRAP"}

// String returns the source's name, such as "CACHE".
func (s Source) String() string {
	if int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return "Source(" + strconv.Itoa(int(s)) + ")"
}

// ErrorCode says why an evaluation fell back. The empty code means no error.
type ErrorCode string

// The error codes.
const (
	CodeFlagNotFound ErrorCode = "FLAG_NOT_FOUND"
	CodeTypeMismatch ErrorCode = "TYPE_MISMATCH"
	CodeTimeout      ErrorCode = "TIMEOUT"
	CodeUnavailable  ErrorCode = "UNAVAILABLE"
	CodeRateLimited  ErrorCode = "RATE_LIMITED"
	CodeCircuitOpen  ErrorCode = "CIRCUIT_OPEN"
	CodeUnauthorized ErrorCode = "UNAUTHORIZED"
	CodeBadResponse  ErrorCode = "BAD_RESPONSE"
	CodeClosed       ErrorCode = "CLIENT_CLOSED"
	CodeNotReady     ErrorCode = "NOT_READY"
	CodeGeneral      ErrorCode = "GENERAL"
	// CodeUnknownEnvironment: the server has no such environment
	// (WithEnvironment names one it does not serve). Every flag gets the
	// caller's default (or a bootstrap), and Status().LastError names the
	// environment.
	CodeUnknownEnvironment ErrorCode = "UNKNOWN_ENVIRONMENT"
	// CodeMissingBucketingAttribute: a rollout needed the subject's
	// bucketing attribute (userId unless the flag's bucketing.by says
	// otherwise) and the evaluation context has none. Unlike the other
	// codes it comes with the flag's own answer, not a fallback: the
	// variant the flag serves then (the off variant, for the default
	// rollout), with the Source of that answer. Through OFREP, a server's
	// TARGETING_KEY_MISSING error maps to it, and the caller's default is
	// served, as OFREP gives no value.
	CodeMissingBucketingAttribute ErrorCode = "MISSING_BUCKETING_ATTRIBUTE"
	// CodeInvalidContext: in remote mode, the evaluation context cannot
	// be sent exactly: nested more than 1,000 levels deep (or cyclic), or
	// holding a value that JSON cannot encode (a channel, a func). No
	// request is made, and the evaluation falls back as when the API
	// cannot answer: to the bootstrap or last-known config, else to the
	// caller's default.
	CodeInvalidContext ErrorCode = "INVALID_CONTEXT"
)

// isFallback reports whether code means the caller was given a fallback
// rather than the flag's own answer.
func (code ErrorCode) isFallback() bool {
	return code != "" && code != CodeMissingBucketingAttribute
}

// Reason explains a decision.
type Reason struct {
	// Kind is one of the rules engine's typed reason kinds, compared
	// with its constants: evaluate.ReasonOff, ReasonTargetMatch,
	// ReasonRuleMatch, ReasonSegmentMatch, ReasonRollout,
	// ReasonPrerequisiteFailed, ReasonDefault (the flag's default rule:
	// no rule or target matched), ReasonStatic (the flag has no
	// targeting: everyone gets the same variant) or ReasonError. ERROR
	// means the caller's default was served because of an error
	// (Detail.ErrorCode says which; Detail.Source is
	// SourceCallerDefault): no variant was chosen, so RuleID, Segment and
	// Bucket are empty. Through OFREP (WithOFREP), OpenFeature's
	// TARGETING_MATCH, SPLIT and DISABLED become RULE_MATCH, ROLLOUT and
	// OFF, and any other OpenFeature reason a server sends (such as
	// CACHED, UNKNOWN or a vendor's TARGETING_MATCH_SPLIT) is kept as it
	// is.
	Kind evaluate.ReasonKind
	// RuleID names the rule that matched, with RULE_MATCH and
	// SEGMENT_MATCH (and ROLLOUT by a rule); empty otherwise.
	RuleID string
	// Segment names the segment that matched, with SEGMENT_MATCH.
	Segment string
	// Prerequisite names the prerequisite flag that failed, with Kind
	// PREREQUISITE_FAILED; empty otherwise.
	Prerequisite string
	// Bucket is the subject's rollout bucket in [0, 100000), or -1.
	Bucket int
}

// Detail describes one evaluation: which variant was served, why, and from
// where. It is returned by value and does not allocate.
type Detail struct {
	// FlagKey is the evaluated flag.
	FlagKey string
	// Variant names the served variant; empty when the caller's default
	// was served as a fallback (an OFREP code-default answer keeps the
	// server's variant, see Source).
	Variant string
	// Reason says why the variant was chosen.
	Reason Reason
	// Source says where the value came from. An OFREP answer without a
	// value (OFREP's "use the code default") serves the caller's default
	// as a success: Source is where that answer came from (REMOTE or
	// CACHE), with the server's Variant and Reason and no ErrorCode.
	Source Source
	// ErrorCode says why the value is a fallback; empty on success. A
	// stale or bootstrap value may carry the code of the failure that
	// caused it to be served. MISSING_BUCKETING_ATTRIBUTE is the one code
	// that comes with the flag's own answer (see its doc).
	ErrorCode ErrorCode
	// Payload is the variant's JSON payload, or nil.
	Payload []byte
	// FlagVersion is the flag's version, when known.
	FlagVersion int64
	// FlagMetadata is the flag's user-defined metadata (flagMetadata in
	// flags as code and in the Flag API), served with the flag's answer in
	// every mode: key → string, bool or float64 (every number is a
	// float64). Nil when the flag has none and when the caller's default
	// is served as a fallback. It is shared with the client's cache or
	// config: read it, never modify it (copy it first with maps.Clone).
	FlagMetadata map[string]any
}

// Errors returned by New, WaitReady and Close. Evaluation methods never
// return errors: they return the default with a Detail.ErrorCode.
var (
	ErrInvalidConfig = errors.New("flagwire: invalid configuration")
	ErrClosed        = errors.New("flagwire: client closed")
	ErrNotReady      = errors.New("flagwire: no configuration received yet")
)

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
