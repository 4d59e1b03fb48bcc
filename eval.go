package flagwire

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"time"

	"github.com/flagwire/flagwire/evaluate"
)

// The typed evaluations are the same few lines over the generic paths:
// quick answers a plain call (Bool, String, Float, Int) when it can, and
// evalAs decides every other call (the …Detail forms; slow, for a plain
// call that quick could not answer), filling a Detail in place: Detail is
// large, and copying it through every frame showed in hot-path profiles.
// A plain call calls quick itself: one frame less on the hot path than a
// generic wrapper (generic shape functions are not inlined here).
//
// They are go:noinline so that an application's package calls them, not
// the generic paths inlined into it: a call to a generic function's shape
// instance from another package has no escape summary there, so the
// caller's Detail would be moved to the heap on every evaluation
// (TestCrossPackageBoolNoAlloc).

// Bool returns the value of a boolean flag for the evaluation context in ctx
// (see WithAttributes), or def when it cannot be decided.
//
//go:noinline
func (c *Client) Bool(ctx context.Context, key string, def bool) bool {
	if v, ok := quick(c, ctx, key, asBool); ok {
		return v
	}
	return slow(c, ctx, key, def, asBool)
}

// BoolDetail is Bool with the Detail of the evaluation.
//
//go:noinline
func (c *Client) BoolDetail(ctx context.Context, key string, def bool) (v bool, det Detail) {
	v = evalAs(c, ctx, key, def, &det, asBool)
	return v, det
}

// String returns the value of a string flag, or def.
//
//go:noinline
func (c *Client) String(ctx context.Context, key string, def string) string {
	if v, ok := quick(c, ctx, key, asString); ok {
		return v
	}
	return slow(c, ctx, key, def, asString)
}

// StringDetail is String with the Detail of the evaluation.
//
//go:noinline
func (c *Client) StringDetail(ctx context.Context, key string, def string) (v string, det Detail) {
	v = evalAs(c, ctx, key, def, &det, asString)
	return v, det
}

// Float returns the value of a number flag, or def.
//
//go:noinline
func (c *Client) Float(ctx context.Context, key string, def float64) float64 {
	if v, ok := quick(c, ctx, key, asFloat); ok {
		return v
	}
	return slow(c, ctx, key, def, asFloat)
}

// FloatDetail is Float with the Detail of the evaluation.
//
//go:noinline
func (c *Client) FloatDetail(ctx context.Context, key string, def float64) (v float64, det Detail) {
	v = evalAs(c, ctx, key, def, &det, asFloat)
	return v, det
}

// Int returns the value of a number flag as an integer, or def. A value
// that is not a whole number in int64 range is a TYPE_MISMATCH.
//
//go:noinline
func (c *Client) Int(ctx context.Context, key string, def int64) int64 {
	if v, ok := quick(c, ctx, key, asInt); ok {
		return v
	}
	return slow(c, ctx, key, def, asInt)
}

// IntDetail is Int with the Detail of the evaluation.
//
//go:noinline
func (c *Client) IntDetail(ctx context.Context, key string, def int64) (v int64, det Detail) {
	v = evalAs(c, ctx, key, def, &det, asInt)
	return v, det
}

// slow is the plain typed evaluations' path when quick cannot answer:
// evalAs with a Detail nobody reads.
func slow[T any](c *Client, ctx context.Context, key string, def T, as func(any) (T, bool)) T {
	var det Detail
	return evalAs(c, ctx, key, def, &det, as)
}

// JSON decodes the flag's value into dst: the value of a JSON flag, or,
// for a boolean, string or number flag, the served variant's payload (its
// value when the variant has no payload). Every mode answers the same way
// (remote, local, offline, OFREP). Fill dst with the default first: on
// any failure dst is left as it was and the Detail's ErrorCode says why
// (TYPE_MISMATCH when the JSON does not fit dst). A JSON call never
// changes what other typed calls of the same flag get: the decision cache
// holds the flag's answer, not the answer to one type.
func (c *Client) JSON(ctx context.Context, key string, dst any) Detail {
	var det Detail
	d := c.lookup(ctx, key, &det)
	if !d.ok {
		return det
	}
	if d.useDefault { // an OFREP code-default answer: dst keeps the default
		c.finish(ctx, key, &det)
		return det
	}
	raw := d.raw
	if !d.jsonFlag && d.value != nil && len(det.Payload) > 0 { // a scalar flag: decode its payload
		raw = det.Payload
	}
	if len(raw) == 0 || decodeInto(raw, dst) != nil {
		c.mismatch(ctx, key, &det)
		return det
	}
	c.finish(ctx, key, &det)
	return det
}

// quick answers a plain typed call (Bool, String, Float, Int) when it
// succeeds without a Detail to fill: a fresh cache hit in remote mode, an
// evaluation of the current config in local and offline modes, with no
// hooks. It counts the evaluation as lookup does. ok is false for anything
// else (a miss, a stale or negative answer, an error, a value of another
// type): the caller then takes the full path (evalAs), which decides it
// and counts it. On every path where ok is true, evalAs would serve the
// same value with the same counts (TestPlainCallsAgreeWithDetail and the
// conformance runners, which make both calls).
func quick[T any](c *Client, ctx context.Context, key string, as func(any) (T, bool)) (v T, ok bool) {
	if c == nil || len(c.cfg.hooks) > 0 || c.closed.Load() {
		return v, false
	}
	ec := contextOf(ctx)
	if c.cfg.mode != ModeRemote {
		st := c.snap.Load()
		if st == nil {
			return v, false
		}
		var r evaluate.Result
		c.evalTo(&r, st, key, ec)
		if r.Reason.Kind == evaluate.ReasonError {
			return v, false
		}
		if v, ok = as(r.Value); ok {
			c.stats.uncached.Add(1)
		}
		return v, ok
	}
	k, keyed := c.keyOf(ec, key)
	if !keyed {
		return v, false
	}
	now := c.hotNow()
	d := c.cache.get(k, now)
	if d == nil || !c.cache.fresh(d, now) || d.errCode != "" || d.codeDefault {
		return v, false
	}
	if v, ok = as(d.value); !ok {
		return v, false
	}
	c.hit(k, ec, d, now)
	return v, true
}

// hit counts a fresh cache hit on d and, once d is due, schedules its
// background refresh (one at a time).
func (c *Client) hit(k cacheKey, ec *evalContext, d *decision, now int64) {
	c.stats.hits.Add(1)
	if now >= d.refreshAt && d.refreshing.CompareAndSwap(false, true) {
		c.scheduleRefresh(k, ec, d)
	}
}

// evalAs is the typed evaluations' common path: look the flag up, convert
// its value with as, and serve def with TYPE_MISMATCH when it does not fit.
func evalAs[T any](c *Client, ctx context.Context, key string, def T, det *Detail, as func(any) (T, bool)) T {
	d := c.lookup(ctx, key, det)
	if !d.ok {
		return def
	}
	if d.useDefault { // an OFREP code-default answer: a success
		c.finish(ctx, key, det)
		return def
	}
	v, ok := as(d.value)
	if !ok {
		c.mismatch(ctx, key, det)
		return def
	}
	c.finish(ctx, key, det)
	return v
}

func asBool(v any) (bool, bool) { b, ok := v.(bool); return b, ok }

func asString(v any) (string, bool) { s, ok := v.(string); return s, ok }

func asFloat(v any) (float64, bool) { f, ok := v.(float64); return f, ok }

// asInt accepts whole numbers in int64 range only.
func asInt(v any) (int64, bool) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// decodeInto decodes raw into dst, a non-nil pointer, leaving dst as it
// was on error (the decode goes to a copy first).
func decodeInto(raw []byte, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("destination is not a non-nil pointer")
	}
	tmp := reflect.New(rv.Elem().Type())
	tmp.Elem().Set(rv.Elem())
	if err := json.Unmarshal(raw, tmp.Interface()); err != nil {
		return err
	}
	rv.Elem().Set(tmp.Elem())
	return nil
}

// value is what an evaluation found: the value (bool, string, float64, or
// nil for JSON objects) and its JSON encoding. ok is false when the caller's
// default must be served. It is passed by value: no allocation.
type value struct {
	value any
	raw   []byte
	ok    bool
	// useDefault (with ok) is a successful answer that says "serve the
	// caller's default" (OFREP's code default): no value, no error.
	useDefault bool
	// jsonFlag: the flag is a JSON flag (JSON serves its value, never
	// the payload, even when the value is a scalar).
	jsonFlag bool
}

// lookup finds the decision for key in ctx, following the fallback order:
// fresh (cache, remote or local) > stale cache > bootstrap/last-known >
// default. It fills *det.
func (c *Client) lookup(ctx context.Context, key string, det *Detail) value {
	det.FlagKey, det.Source = key, SourceCallerDefault
	det.Reason.Bucket = -1
	if c == nil {
		det.ErrorCode = CodeClosed
		det.Reason = errorReason
		return value{}
	}
	if len(c.cfg.hooks) > 0 {
		c.runBeforeHooks(ctx, key)
	}
	if c.closed.Load() {
		c.stats.uncached.Add(1)
		det.ErrorCode = CodeClosed
		c.fallbackDefault(ctx, key, det)
		return value{}
	}
	ec := contextOf(ctx)
	if c.cfg.mode != ModeRemote {
		c.stats.uncached.Add(1)
		return c.lookupLocal(ctx, key, ec, det)
	}
	k, keyed := c.keyOf(ec, key) // counted below as a hit or a miss
	now := c.hotNow()
	if !keyed {
		c.stats.uncached.Add(1)
		return c.fallback(ctx, key, ec, nil, now, errInvalidContext, det)
	}
	var stale *decision
	if d := c.cache.get(k, now); d != nil {
		if c.cache.fresh(d, now) {
			c.hit(k, ec, d, now)
			return c.served(ctx, d, SourceCache, det)
		}
		stale = d
	}
	c.stats.misses.Add(1)
	d, err := c.fetchOne(ctx, k, ec)
	if err == nil {
		return c.served(ctx, d, SourceRemote, det)
	}
	return c.fallback(ctx, key, ec, stale, now, err, det)
}

func (c *Client) served(ctx context.Context, d *decision, src Source, det *Detail) value {
	if d.errCode != "" { // a cached negative answer, e.g. FLAG_NOT_FOUND
		det.ErrorCode = d.errCode
		c.fallbackDefault(ctx, det.FlagKey, det)
		return value{}
	}
	det.Variant = d.variant
	det.Reason = d.reason
	det.Source = src
	det.Payload = d.payload
	det.FlagVersion = d.flagVersion
	det.FlagMetadata = d.meta
	det.ErrorCode = d.answerCode
	if d.codeDefault {
		return value{ok: true, useDefault: true}
	}
	return value{value: d.value, raw: d.raw, ok: true, jsonFlag: d.typ == string(evaluate.TypeJSON)}
}

// fallback serves, after a failed fetch, a stale decision, else the
// bootstrap/last-known config, else the default; det carries the error code.
func (c *Client) fallback(ctx context.Context, key string, ec *evalContext, stale *decision, now int64, err error, det *Detail) value {
	code := errorCodeOf(err)
	c.stats.countError(code)
	det.ErrorCode = code
	if stale != nil && now < stale.staleUntil && stale.errCode == "" {
		c.stats.stale.Add(1)
		v := c.served(ctx, stale, SourceStale, det)
		det.ErrorCode = code
		return v
	}
	if v, ok := c.evalSnapshot(key, ec, det); ok {
		det.ErrorCode = code
		return v
	}
	det.ErrorCode = code
	c.fallbackDefault(ctx, key, det)
	return value{}
}

func (c *Client) fallbackDefault(ctx context.Context, key string, det *Detail) {
	det.Source = SourceCallerDefault
	det.Reason, det.Variant, det.Payload, det.FlagVersion, det.FlagMetadata = errorReason, "", nil, 0, nil
	c.stats.defaults.Add(1)
	c.finish(ctx, key, det)
}

func (c *Client) mismatch(ctx context.Context, key string, det *Detail) {
	det.ErrorCode = CodeTypeMismatch
	det.Source = SourceCallerDefault
	det.Reason, det.Variant, det.Payload, det.FlagMetadata = errorReason, "", nil, nil
	c.stats.countError(CodeTypeMismatch)
	c.logs.warn("type-mismatch", "flagwire: flag value has another type than asked; serving the default", "flag", key)
	c.finish(ctx, key, det)
}

func (c *Client) finish(ctx context.Context, key string, det *Detail) {
	if len(c.cfg.hooks) > 0 {
		c.runAfterHooks(ctx, key, *det)
	}
}

// snapshotState is a compiled config and where it came from. Swapped
// atomically; never modified.
type snapshotState struct {
	snap       *evaluate.Snapshot
	source     Source // SourceLocal (synced) or SourceBootstrap
	etag       string
	epoch      string // the server's store epoch (wire.HeaderConfigEpoch), "" if unknown
	receivedAt time.Time
}

// lookupLocal serves local and offline modes from the current snapshot.
func (c *Client) lookupLocal(ctx context.Context, key string, ec *evalContext, det *Detail) value {
	st := c.snap.Load()
	if st == nil {
		det.ErrorCode = CodeNotReady
		c.fallbackDefault(ctx, key, det)
		return value{}
	}
	v, ok := c.evalState(st, key, ec, det)
	if !ok {
		c.stats.countError(det.ErrorCode)
		c.fallbackDefault(ctx, key, det)
		return value{}
	}
	return v
}

// evalSnapshot is the remote mode's fallback to the bootstrap or
// last-known config.
func (c *Client) evalSnapshot(key string, ec *evalContext, det *Detail) (value, bool) {
	st := c.snap.Load()
	if st == nil {
		return value{}, false
	}
	return c.evalState(st, key, ec, det)
}

// evalState evaluates key against a snapshot without allocating.
func (c *Client) evalState(st *snapshotState, key string, ec *evalContext, det *Detail) (value, bool) {
	var r evaluate.Result
	c.evalTo(&r, st, key, ec)
	if r.Reason.Kind == evaluate.ReasonError {
		det.ErrorCode = ErrorCode(r.Reason.ErrorCode)
		return value{}, false
	}
	det.Variant = r.Variant
	det.Reason = Reason{Kind: r.Reason.Kind, RuleID: r.Reason.RuleID, Segment: r.Reason.Segment, Prerequisite: r.Reason.Prerequisite, Bucket: -1}
	if r.HasBucketing {
		det.Reason.Bucket = int(r.Bucketing.Bucket)
	}
	det.Source = st.source
	if r.Reason.ErrorCode == evaluate.ErrorMissingBucketAttr {
		det.ErrorCode = CodeMissingBucketingAttribute // the flag's own answer
	}
	det.Payload = r.PayloadJSON
	det.FlagVersion = r.FlagVersion
	det.FlagMetadata = r.FlagMetadata // the snapshot's, read-only
	v := r.Value
	switch v.(type) {
	case bool, string, float64:
	default:
		v = nil
	}
	return value{value: v, raw: r.ValueJSON, ok: true, jsonFlag: r.Type == evaluate.TypeJSON}, true
}

// evalTo evaluates key for ec against a snapshot into *r (written whole),
// without allocating.
func (c *Client) evalTo(r *evaluate.Result, st *snapshotState, key string, ec *evalContext) {
	if ec.subject != nil && len(c.cfg.hashed) == 0 {
		// A WithSubject subject is read as it is, without a map.
		st.snap.EvaluateAttrsTo(r, key, ec.subject, c.hotWall())
	} else {
		st.snap.EvaluateTo(r, key, c.evalAttributes(ec), c.hotWall())
	}
}
