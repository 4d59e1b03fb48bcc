package flagwire

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// cacheKey identifies a decision: the flag and the canonical hash of the
// evaluation context. Building it allocates nothing.
type cacheKey struct {
	flag   string
	hi, lo uint64
}

// String is the key's singleflight form (miss path only: it allocates).
func (k cacheKey) String() string {
	return fmt.Sprintf("%s\x00%016x%016x", k.flag, k.hi, k.lo)
}

// decision is one cached remote answer. Immutable once cached, except for
// the refreshing flag.
type decision struct {
	value       any             // bool, string, float64; nil for JSON objects/arrays and errors
	raw         json.RawMessage // the value as JSON
	variant     string
	reason      Reason
	payload     json.RawMessage
	flagVersion int64
	meta        map[string]any // the flag's metadata, read-only; nil when none
	errCode     ErrorCode      // e.g. FLAG_NOT_FOUND: a cached negative answer
	// answerCode is a code that comes with the answer itself:
	// MISSING_BUCKETING_ATTRIBUTE (the reason's errorCode).
	answerCode ErrorCode
	// codeDefault marks an OFREP answer without a value: serve the
	// caller's default, as a success, with this variant and reason.
	codeDefault bool

	fetchedAt  int64 // clock nanoseconds
	refreshAt  int64
	expiresAt  int64
	staleUntil int64

	fs     *flagState
	gen    uint64 // fs.gen when fetched
	global uint64 // cache generation when fetched

	refreshing atomic.Bool
	// promotedAt is when the entry was last moved to the front of the LRU
	// list (clock nanoseconds). Hits promote at most once per
	// promoteEvery, so the hot path takes the cache's read lock only.
	promotedAt atomic.Int64
}

// promoteEvery bounds how often a hit moves an entry to the front of the
// LRU list. Recency is thus tracked to within a second: an entry hit in the
// last second is never the one evicted while older ones remain.
const promoteEvery = int64(time.Second)

// flagState carries a flag's invalidation generation: bumping it
// invalidates every cached decision of the flag in O(1).
type flagState struct {
	gen atomic.Uint64
}

// decisionCache is the LRU decision cache: bounded by entries, per-entry
// TTL, O(1) invalidation of one flag (per-flag generation) or of everything
// (global generation). Safe for concurrent use.
type decisionCache struct {
	lru    *lru.Cache[cacheKey, *decision]
	flags  sync.Map // flag key → *flagState
	global atomic.Uint64
	// expiredBefore (clock nanoseconds): decisions fetched before it are
	// expired (asked again) but, unlike invalidated ones, may still be
	// served as stale. See expireAll.
	expiredBefore atomic.Int64

	// deps records prerequisites learned from decisions (a
	// PREREQUISITE_FAILED reason names one): prerequisite key → the set
	// of flags depending on it. Bounded by the number of flags.
	depMu sync.Mutex
	deps  map[string]map[string]struct{}
}

func newDecisionCache(size int) *decisionCache {
	c, err := lru.New[cacheKey, *decision](size)
	if err != nil { // only for size <= 0, which options prevent
		c, _ = lru.New[cacheKey, *decision](1)
	}
	return &decisionCache{lru: c}
}

func (c *decisionCache) flagState(key string) *flagState {
	if fs, ok := c.flags.Load(key); ok {
		return fs.(*flagState)
	}
	fs, _ := c.flags.LoadOrStore(key, &flagState{})
	return fs.(*flagState)
}

// get returns the cached decision, or nil. An invalidated decision is
// gone: it is never returned, not even to be served as stale. Expiry is
// the caller's business.
func (c *decisionCache) get(k cacheKey, now int64) *decision {
	d, ok := c.lru.Peek(k) // read lock only
	if !ok || d.gen != d.fs.gen.Load() || d.global != c.global.Load() {
		return nil
	}
	if p := d.promotedAt.Load(); now-p >= promoteEvery && d.promotedAt.CompareAndSwap(p, now) {
		c.lru.Get(k) // move to front
	}
	return d
}

// stamp prepares d for insertion: it records the generations current now,
// before the fetch result is used, so an invalidation that races with the
// fetch wins.
func (c *decisionCache) stamp(flag string) (fs *flagState, gen, global uint64) {
	fs = c.flagState(flag)
	return fs, fs.gen.Load(), c.global.Load()
}

func (c *decisionCache) add(k cacheKey, d *decision) {
	d.promotedAt.Store(d.fetchedAt)
	c.lru.Add(k, d)
}

// invalidate drops every decision of one flag, in O(1).
func (c *decisionCache) invalidate(flag string) {
	c.flagState(flag).gen.Add(1)
}

// fresh reports whether d, returned by get, may be served as a fresh
// cache hit at now.
func (c *decisionCache) fresh(d *decision, now int64) bool {
	return now < d.expiresAt && d.fetchedAt >= c.expiredBefore.Load()
}

// expireAll marks every decision fetched before now as expired, in O(1):
// each is asked again, and served as stale if the API cannot answer. It is
// for a stream reconnect that cannot resume: events may have been missed,
// but nothing is known to have changed.
func (c *decisionCache) expireAll(now int64) {
	c.expiredBefore.Store(now)
}

// invalidateAll drops every decision, in O(1).
func (c *decisionCache) invalidateAll() {
	c.global.Add(1)
}

// learnDependent records that flag depends on prerequisite prereq.
func (c *decisionCache) learnDependent(prereq, flag string) {
	c.depMu.Lock()
	defer c.depMu.Unlock()
	if c.deps == nil {
		c.deps = make(map[string]map[string]struct{})
	}
	set := c.deps[prereq]
	if set == nil {
		set = make(map[string]struct{})
		c.deps[prereq] = set
	}
	set[flag] = struct{}{}
}

// dependentsOf calls add (outside the lock) for every flag known to
// depend on prereq directly.
func (c *decisionCache) dependentsOf(prereq string, add func(string)) {
	c.depMu.Lock()
	var out []string
	for f := range c.deps[prereq] {
		out = append(out, f)
	}
	c.depMu.Unlock()
	for _, f := range out {
		add(f)
	}
}

func (c *decisionCache) len() int { return c.lru.Len() }

// oldestFetch returns the fetch time of the least recently used entry.
func (c *decisionCache) oldestFetch() (int64, bool) {
	_, d, ok := c.lru.GetOldest()
	if !ok {
		return 0, false
	}
	return d.fetchedAt, true
}
