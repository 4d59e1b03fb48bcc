package flagwire

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// flightKey is what a request for one decision may be shared under: the
// decision cache key and the flag's invalidation generations when the
// request was made. An evaluation that starts after an invalidation of its
// flag (or of everything) has other generations, so it never joins a
// request sent before the change.
type flightKey struct {
	k           cacheKey
	gen, global uint64
}

// flight is one request for a decision in progress. dec and err are set
// before done is closed.
type flight struct {
	done chan struct{}
	dec  *decision
	err  error
}

// flights coalesces requests for decisions: concurrent misses of one key,
// from single evaluations, batches (Evaluate, Middleware's prefetch) and background
// refreshes alike, make one request. golang.org/x/sync/singleflight shares
// one function call per key; a batch leads many keys with one request,
// which it cannot express.
type flights struct {
	mu sync.Mutex
	m  map[flightKey]*flight
	// joined counts the callers that joined a flight in progress (Stats'
	// Coalesced; tests).
	joined atomic.Int64
}

// join returns the flight of fk, starting one when none is in progress:
// leader is true for the caller that must make the request and end the
// flight with finish.
func (g *flights) join(fk flightKey) (f *flight, leader bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f = g.m[fk]; f != nil {
		g.joined.Add(1)
		return f, false
	}
	if g.m == nil {
		g.m = make(map[flightKey]*flight)
	}
	f = &flight{done: make(chan struct{})}
	g.m[fk] = f
	return f, true
}

// finish ends the flight the leader of fk started, waking every caller
// that joined it.
func (g *flights) finish(fk flightKey, f *flight, dec *decision, err error) {
	f.dec, f.err = dec, err
	g.mu.Lock()
	if g.m[fk] == f {
		delete(g.m, fk)
	}
	g.mu.Unlock()
	close(f.done)
}

// fetchOne fetches one decision, coalescing concurrent misses of the same
// key (flights) into one request. The request is detached from the
// caller's cancellation (it serves every waiting caller) and bounded by
// the client's timeout; each caller waits at most for its own deadline or
// the timeout.
func (c *Client) fetchOne(ctx context.Context, k cacheKey, ec *evalContext) (*decision, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if c.rateLimited(c.cfg.clock.Nanotime()) {
		return nil, errRateLimitedGate
	}
	fk, fs, f, leader := c.joinFlight(k)
	if leader {
		started := c.goTracked(func() {
			// A caller that missed the cache while a request for k was
			// in flight can get here after that request stored its
			// answer: serve that answer instead of asking again.
			now := c.hotNow()
			if d := c.cache.get(k, now); d != nil && c.cache.fresh(d, now) && d.gen == fk.gen && d.global == fk.global {
				c.flights.finish(fk, f, d, nil)
				return
			}
			c.fly(fk, f, fs, ec)
		})
		if !started {
			c.flights.finish(fk, f, nil, ErrClosed)
		}
	}
	timer := time.NewTimer(c.cfg.timeout)
	defer timer.Stop()
	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return f.dec, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, errTimeout
		}
		return nil, ctx.Err()
	case <-timer.C:
		return nil, errTimeout
	}
}

// joinFlight stamps k's flag generations (before any request, so that an
// invalidation racing with it wins) and joins the flight of k at them,
// starting it when none is in progress: leader is then true, and the
// caller must fly it.
func (c *Client) joinFlight(k cacheKey) (fk flightKey, fs *flagState, f *flight, leader bool) {
	fs, gen, global := c.cache.stamp(k.flag)
	fk = flightKey{k: k, gen: gen, global: global}
	f, leader = c.flights.join(fk)
	return fk, fs, f, leader
}

// fly makes the request of a flight this caller leads, caches its answer
// and ends the flight.
func (c *Client) fly(fk flightKey, f *flight, fs *flagState, ec *evalContext) error {
	d, err := c.fetchAndStore(fk.k, ec, fs, fk.gen, fk.global)
	c.flights.finish(fk, f, d, err)
	return err
}

// fetchAndStore asks the API for one decision and caches it, stamped with
// the generations read before the request (stamp), so that an
// invalidation that races with the request wins.
func (c *Client) fetchAndStore(k cacheKey, ec *evalContext, fs *flagState, gen, global uint64) (*decision, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.timeout)
	defer cancel()
	decs, err := c.remoteEvaluate(ctx, []remoteItem{{key: k.flag, ec: ec}})
	if err != nil {
		return nil, err
	}
	d := decs[0]
	if d.err != nil {
		return nil, d.err
	}
	c.stampDecision(d.dec, fs, gen, global)
	c.cache.add(k, d.dec)
	return d.dec, nil
}

func (c *Client) stampDecision(d *decision, fs *flagState, gen, global uint64) {
	d.fs, d.gen, d.global = fs, gen, global
}

type refreshJob struct {
	key cacheKey
	ec  *evalContext
}

func (c *Client) scheduleRefresh(k cacheKey, ec *evalContext, d *decision) {
	select {
	case c.refreshCh <- refreshJob{key: k, ec: ec}:
	default:
		d.refreshing.Store(false) // queue full: a later hit retries
	}
}

// refreshLoop refreshes hot entries close to expiry in the background, so
// hot paths stay on cache hits. A refresh joins a request for the same key
// already in flight instead of making another.
func (c *Client) refreshLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case j := <-c.refreshCh:
			// A request for the key already in flight makes this refresh
			// unnecessary; it did not refresh the entry, so, as after a
			// failure, the current entry stays and a later hit may retry.
			fk, fs, f, leader := c.joinFlight(j.key)
			if !leader || c.fly(fk, f, fs, j.ec) != nil {
				// Keep serving the current entry; allow another attempt.
				if d := c.cache.get(j.key, c.cfg.clock.Nanotime()); d != nil {
					d.refreshing.Store(false)
				}
			}
		}
	}
}
