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
	"errors"
	"fmt"
	"hash/fnv"
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
	// SourceDefault is the caller's default value.
	SourceDefault Source = iota
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

var sourceNames = [...]string{"DEFAULT", "REMOTE", "CACHE", "STALE", "LOCAL", "BOOTSTRAP"}

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
	ErrorNone         ErrorCode = ""
	ErrorFlagNotFound ErrorCode = "FLAG_NOT_FOUND"
	ErrorTypeMismatch ErrorCode = "TYPE_MISMATCH"
	ErrorTimeout      ErrorCode = "TIMEOUT"
	ErrorUnavailable  ErrorCode = "UNAVAILABLE"
	ErrorRateLimited  ErrorCode = "RATE_LIMITED"
	ErrorCircuitOpen  ErrorCode = "CIRCUIT_OPEN"
	ErrorUnauthorized ErrorCode = "UNAUTHORIZED"
	ErrorBadResponse  ErrorCode = "BAD_RESPONSE"
	ErrorClosed       ErrorCode = "CLIENT_CLOSED"
	ErrorNotReady     ErrorCode = "NOT_READY"
	ErrorGeneral      ErrorCode = "GENERAL"
)

// Reason explains a decision. Kind is one of the evaluate.Reason kinds:
// OFF, TARGET_MATCH, RULE_MATCH, SEGMENT_MATCH, ROLLOUT,
// PREREQUISITE_FAILED, DEFAULT or ERROR.
type Reason struct {
	Kind    string
	RuleID  string
	Segment string
	// Bucket is the subject's rollout bucket in [0, 100000), or -1.
	Bucket int
}

// Detail describes one evaluation: which variant was served, why, and from
// where. It is returned by value and does not allocate.
type Detail struct {
	// FlagKey is the evaluated flag.
	FlagKey string
	// Variant names the served variant; empty when the default was served.
	Variant string
	// Reason says why the variant was chosen.
	Reason Reason
	// Source says where the value came from.
	Source Source
	// ErrorCode says why the value is a fallback; empty on success. A
	// stale or bootstrap value may carry the code of the failure that
	// caused it to be served.
	ErrorCode ErrorCode
	// Payload is the variant's JSON payload, or nil.
	Payload []byte
	// FlagVersion is the flag's version, when known.
	FlagVersion int64
}

// Errors returned by New, WaitReady and Close. Evaluation methods never
// return errors: they return the default with a Detail.ErrorCode.
var (
	ErrInvalidConfig = errors.New("flagwire: invalid configuration")
	ErrClosed        = errors.New("flagwire: client closed")
	ErrNotReady      = errors.New("flagwire: no configuration received yet")
)

type ctxKey struct{}

// evalContext is what WithAttributes stores: the attributes and their
// canonical hash, computed once.
type evalContext struct {
	attrs    Attributes
	hi, lo   uint64
	prepared atomic.Pointer[preparedAttrs] // see Client.evalAttributes
}

var emptyContext = newEvalContext(nil)

// WithAttributes returns a context carrying attrs as the evaluation context.
// The attributes' canonical hash (the decision cache key) is computed here,
// once, not per evaluation. attrs must not be modified afterwards.
func WithAttributes(ctx context.Context, attrs Attributes) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithValue(ctx, ctxKey{}, newEvalContext(attrs))
}

// AttributesFrom returns the attributes attached by WithAttributes, or nil.
func AttributesFrom(ctx context.Context) Attributes {
	if ctx == nil {
		return nil
	}
	if ec, ok := ctx.Value(ctxKey{}).(*evalContext); ok {
		return ec.attrs
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
	h := fnv.New128a()
	hashValue(h, attrs, 0)
	var sum [16]byte
	h.Sum(sum[:0])
	return &evalContext{attrs: attrs, hi: binary.BigEndian.Uint64(sum[:8]), lo: binary.BigEndian.Uint64(sum[8:])}
}

type hashWriter interface{ Write([]byte) (int, error) }

// hashValue writes a canonical, type-tagged encoding of v: maps in sorted
// key order, numbers by their float64 value, so that equal contexts hash
// equal whatever Go types carried them.
func hashValue(h hashWriter, v any, depth int) {
	var buf [16]byte
	if depth > 32 {
		h.Write([]byte{'!'})
		return
	}
	str := func(tag byte, s string) {
		h.Write([]byte{tag})
		binary.BigEndian.PutUint64(buf[:8], uint64(len(s)))
		h.Write(buf[:8])
		h.Write([]byte(s))
	}
	num := func(f float64) {
		h.Write([]byte{'n'})
		binary.BigEndian.PutUint64(buf[:8], math.Float64bits(f))
		h.Write(buf[:8])
	}
	switch x := v.(type) {
	case nil:
		h.Write([]byte{'0'})
	case string:
		str('s', x)
	case bool:
		if x {
			h.Write([]byte{'t'})
		} else {
			h.Write([]byte{'f'})
		}
	case float64:
		num(x)
	case float32:
		num(float64(x))
	case int:
		num(float64(x))
	case int64:
		num(float64(x))
	case int32:
		num(float64(x))
	case uint:
		num(float64(x))
	case uint64:
		num(float64(x))
	case uint32:
		num(float64(x))
	case interface{ Float64() (float64, error) }: // json.Number
		if f, err := x.Float64(); err == nil {
			num(f)
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		h.Write([]byte{'{'})
		for _, k := range keys {
			str('k', k)
			hashValue(h, x[k], depth+1)
		}
		h.Write([]byte{'}'})
	case []any:
		h.Write([]byte{'['})
		for _, e := range x {
			hashValue(h, e, depth+1)
		}
		h.Write([]byte{']'})
	case []string:
		h.Write([]byte{'['})
		for _, e := range x {
			str('s', e)
		}
		h.Write([]byte{']'})
	default:
		// Other types (time.Time, structs): hash their printed form.
		str('T', fmt.Sprintf("%T %v", v, v))
	}
}
