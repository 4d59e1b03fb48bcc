package flagwire

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Stats is a point-in-time view of a client's counters (see Client.Stats).
type Stats struct {
	// Evaluations counts every evaluation call.
	Evaluations uint64
	// CacheHits and CacheMisses count remote-mode decision cache lookups;
	// HitRatio is hits / (hits + misses), or 0.
	CacheHits, CacheMisses uint64
	HitRatio               float64
	// StaleServed counts stale cached decisions served; DefaultsServed the
	// caller's defaults served.
	StaleServed, DefaultsServed uint64
	// Errors counts evaluations by error code.
	Errors map[ErrorCode]uint64
	// RemoteRequests counts HTTP requests to the evaluate API (attempts,
	// retries included).
	RemoteRequests uint64
	// RemoteLatencyP50/P95/P99 are quantiles of remote evaluate calls
	// (retries included), from a log-scale histogram (±10%).
	RemoteLatencyP50, RemoteLatencyP95, RemoteLatencyP99 time.Duration
	// Breaker is the circuit breaker's state; BreakerTransitions counts its
	// state changes.
	Breaker            BreakerState
	BreakerTransitions uint64
	// CacheEntries is the number of cached decisions; OldestEntryAge the
	// age of the least recently used one.
	CacheEntries   int
	OldestEntryAge time.Duration
}

type stats struct {
	// An evaluation counts once: as a cache hit or miss (remote mode),
	// else as uncached (local and offline modes, a closed client), so
	// the hot path adds to one shared counter, not two.
	uncached, hits, misses, stale, defaults atomic.Uint64
	remoteRequests, breakerTransitions      atomic.Uint64

	errMu  sync.Mutex
	errors map[ErrorCode]uint64

	latency histogram
}

func (s *stats) init() { s.errors = make(map[ErrorCode]uint64) }

func (s *stats) countError(code ErrorCode) {
	if code == "" {
		return
	}
	s.errMu.Lock()
	s.errors[code]++
	s.errMu.Unlock()
}

func (s *stats) observeLatency(d time.Duration) { s.latency.observe(d) }

// histogram is a lock-free log-scale latency histogram: bucket i holds
// durations in [1.2^(i-1), 1.2^i) microseconds.
type histogram struct {
	buckets [100]atomic.Uint64
}

const histBase = 1.2

func (h *histogram) observe(d time.Duration) {
	us := float64(d) / float64(time.Microsecond)
	i := 0
	if us >= 1 {
		i = int(math.Log(us)/math.Log(histBase)) + 1
	}
	if i >= len(h.buckets) {
		i = len(h.buckets) - 1
	}
	h.buckets[i].Add(1)
}

func (h *histogram) quantiles(qs ...float64) []time.Duration {
	var counts [len(h.buckets)]uint64
	var total uint64
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		total += counts[i]
	}
	out := make([]time.Duration, len(qs))
	if total == 0 {
		return out
	}
	for qi, q := range qs {
		rank := uint64(math.Ceil(q * float64(total)))
		var cum uint64
		for i, n := range counts {
			cum += n
			if cum >= rank {
				// upper bound of bucket i
				out[qi] = time.Duration(math.Pow(histBase, float64(i)) * float64(time.Microsecond))
				break
			}
		}
	}
	return out
}

// Stats returns the client's counters. It is cheap enough to call from a
// metrics scrape.
func (c *Client) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	s := &c.stats
	out := Stats{
		CacheHits:          s.hits.Load(),
		CacheMisses:        s.misses.Load(),
		StaleServed:        s.stale.Load(),
		DefaultsServed:     s.defaults.Load(),
		RemoteRequests:     s.remoteRequests.Load(),
		BreakerTransitions: s.breakerTransitions.Load(),
		Breaker:            c.eps[c.lastEndpoint.Load()].br.current(),
		CacheEntries:       c.cache.len(),
		Errors:             make(map[ErrorCode]uint64),
	}
	if n := out.CacheHits + out.CacheMisses; n > 0 {
		out.HitRatio = float64(out.CacheHits) / float64(n)
	}
	out.Evaluations = s.uncached.Load() + out.CacheHits + out.CacheMisses
	s.errMu.Lock()
	for k, v := range s.errors {
		out.Errors[k] = v
	}
	s.errMu.Unlock()
	q := s.latency.quantiles(0.5, 0.95, 0.99)
	out.RemoteLatencyP50, out.RemoteLatencyP95, out.RemoteLatencyP99 = q[0], q[1], q[2]
	if at, ok := c.cache.oldestFetch(); ok {
		out.OldestEntryAge = time.Duration(c.cfg.clock.Nanotime() - at)
	}
	return out
}
