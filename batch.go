package flagwire

import (
	"context"
	"encoding/json"
	"errors"

	"golang.org/x/sync/errgroup"
)

// Request is one item of a batch evaluation.
type Request struct {
	// FlagKey is the flag to evaluate.
	FlagKey string
	// Default is served when the flag cannot be decided. It stays in the
	// process (the API is asked for the flag's answer whatever the type
	// of Default). Nil is allowed.
	Default any
	// Attributes is the evaluation context; nil means the attributes in
	// the batch's ctx (see WithAttributes).
	Attributes Attributes
}

// Result is one item of a batch evaluation's answer.
type Result struct {
	// Value is the decided value (bool, string, float64 or, for JSON flags,
	// json.RawMessage), or the request's Default.
	Value any
	// Detail says where the value came from and why.
	Detail Detail
}

// Evaluate decides many flags with as few round trips as possible: cached
// decisions are served from the cache, and the misses go to the API in
// POST /v1/evaluate batches of up to 100 (WithBatch), a few in parallel.
// Results match reqs by index. Failures are per item, never all-or-nothing:
// an item that cannot be decided gets its fallback (stale, bootstrap,
// Default) with an ErrorCode. The whole call is bounded by the client's
// timeout and ctx. Every item runs the hooks (WithHooks) exactly as a
// single evaluation does: Before, then After or Error, then Finally.
func (c *Client) Evaluate(ctx context.Context, reqs []Request) []Result {
	out := make([]Result, len(reqs))
	if ctx == nil {
		ctx = context.Background()
	}
	base := contextOf(ctx)
	ecs := make([]*evalContext, len(reqs))
	for i, r := range reqs {
		ecs[i] = base
		if r.Attributes != nil {
			ecs[i] = newEvalContext(r.Attributes)
		}
		out[i] = Result{Value: r.Default, Detail: Detail{FlagKey: r.FlagKey, Source: SourceCallerDefault, Reason: Reason{Bucket: -1}}}
	}
	if c == nil {
		for i := range out {
			out[i].Detail.ErrorCode = CodeClosed
		}
		return out
	}
	// Every item goes through the hooks as a single evaluation does:
	// Before now, then After or Error, then Finally, once its result is
	// known.
	if len(c.cfg.hooks) > 0 {
		for _, r := range reqs {
			c.runBeforeHooks(ctx, r.FlagKey)
		}
	}
	if c.closed.Load() {
		for i, r := range reqs {
			c.stats.uncached.Add(1)
			out[i].Detail.ErrorCode = CodeClosed
			c.fallbackDefault(ctx, r.FlagKey, &out[i].Detail)
		}
		return out
	}
	if c.cfg.mode != ModeRemote {
		for i, r := range reqs {
			c.stats.uncached.Add(1)
			det := out[i].Detail
			v := c.lookupLocal(ctx, r.FlagKey, ecs[i], &det)
			out[i] = c.batchResult(ctx, v, det, r.Default)
		}
		return out
	}
	now := c.cfg.clock.Nanotime()
	// Misses: each either leads a flight (sent by this call, in chunks)
	// or joins one in progress (a single evaluation's, a refresh's,
	// another batch's, or an earlier item of this one).
	type miss struct {
		i      int
		fk     flightKey
		fs     *flagState
		f      *flight
		leader bool
	}
	var misses []miss
	var led []int // indexes into misses
	stales := make([]*decision, len(reqs))
	for i, r := range reqs {
		k, keyed := c.keyOf(ecs[i], r.FlagKey) // counted below as a hit or a miss
		if !keyed {
			c.stats.uncached.Add(1)
			det := out[i].Detail
			v := c.fallback(ctx, r.FlagKey, ecs[i], nil, now, errInvalidContext, &det)
			out[i] = c.batchResult(ctx, v, det, r.Default)
			continue
		}
		if d := c.cache.get(k, now); d != nil {
			if c.cache.fresh(d, now) {
				c.stats.hits.Add(1)
				det := out[i].Detail
				v := c.served(ctx, d, SourceCache, &det)
				out[i] = c.batchResult(ctx, v, det, r.Default)
				continue
			}
			stales[i] = d
		}
		c.stats.misses.Add(1)
		misses = append(misses, miss{i: i, fk: flightKey{k: k}})
	}
	if len(misses) == 0 {
		return out
	}
	if c.rateLimited(now) {
		for _, m := range misses {
			i := m.i
			det := out[i].Detail
			v := c.fallback(ctx, reqs[i].FlagKey, ecs[i], stales[i], now, errRateLimitedGate, &det)
			out[i] = c.batchResult(ctx, v, det, reqs[i].Default)
		}
		return out
	}
	done, ok := c.track()
	if !ok { // closed meanwhile
		for _, m := range misses {
			out[m.i].Detail.ErrorCode = CodeClosed
			c.fallbackDefault(ctx, reqs[m.i].FlagKey, &out[m.i].Detail)
		}
		return out
	}
	defer done()
	for j := range misses {
		m := &misses[j]
		if m.fk, m.fs, m.f, m.leader = c.joinFlight(m.fk.k); m.leader {
			led = append(led, j)
		}
	}
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.timeout)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel) // Close cancels the batch
	defer stop()

	g, gctx := errgroup.WithContext(callCtx)
	g.SetLimit(c.cfg.batchParallel)
	for start := 0; start < len(led); start += c.cfg.batchChunk {
		chunk := led[start:min(start+c.cfg.batchChunk, len(led))]
		g.Go(func() error {
			items := make([]remoteItem, len(chunk))
			for j, mi := range chunk {
				m := &misses[mi]
				items[j] = remoteItem{key: reqs[m.i].FlagKey, ec: ecs[m.i]}
			}
			res, err := c.remoteEvaluate(gctx, items)
			for j, mi := range chunk {
				m := &misses[mi]
				switch {
				case err != nil:
					c.flights.finish(m.fk, m.f, nil, err)
				case res[j].err != nil:
					c.flights.finish(m.fk, m.f, nil, res[j].err)
				default:
					c.stampDecision(res[j].dec, m.fs, m.fk.gen, m.fk.global)
					c.cache.add(m.fk.k, res[j].dec)
					c.flights.finish(m.fk, m.f, res[j].dec, nil)
				}
			}
			return nil // per-chunk failures stay per item
		})
	}
	_ = g.Wait()
	for _, m := range misses {
		i := m.i
		var err error
		select {
		case <-m.f.done:
			err = m.f.err
		case <-callCtx.Done():
			err = errTimeout
		}
		if err == nil {
			det := out[i].Detail
			v := c.served(ctx, m.f.dec, SourceRemote, &det)
			out[i] = c.batchResult(ctx, v, det, reqs[i].Default)
			continue
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			err = errTimeout
		}
		det := out[i].Detail
		v := c.fallback(ctx, reqs[i].FlagKey, ecs[i], stales[i], now, err, &det)
		out[i] = c.batchResult(ctx, v, det, reqs[i].Default)
	}
	return out
}

// batchResult makes an item's Result. A fallback (!v.ok) has run its
// hooks already (fallbackDefault); a success runs After and Finally here.
func (c *Client) batchResult(ctx context.Context, v value, det Detail, def any) Result {
	if !v.ok {
		return Result{Value: def, Detail: det}
	}
	c.finish(ctx, det.FlagKey, &det)
	if v.useDefault {
		return Result{Value: def, Detail: det}
	}
	if v.value != nil {
		return Result{Value: v.value, Detail: det}
	}
	return Result{Value: json.RawMessage(v.raw), Detail: det}
}

// prefetch fills the decision cache with the given flags for the
// evaluation context in ctx, in one round trip (or a few, for many keys),
// so that the Bool/String/… calls that follow are cache hits (Middleware's
// prefetch). It returns the number of flags that could not be fetched.
// Each flag runs the hooks as Evaluate's items do.
func (c *Client) prefetch(ctx context.Context, keys ...string) (failed int) {
	reqs := make([]Request, len(keys))
	for i, k := range keys {
		reqs[i] = Request{FlagKey: k}
	}
	for _, r := range c.Evaluate(ctx, reqs) {
		if r.Detail.Source != SourceRemote && r.Detail.Source != SourceCache && r.Detail.Source != SourceLocal {
			failed++
		}
	}
	return failed
}
