package flagwire

import (
	"sync"
	"sync/atomic"
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
