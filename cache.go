package flagwire

import (
	"encoding/json"
	"math"
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

// decision is one cached remote answer. Immutable once cached, except for
// the refreshing flag.
type decision struct {
	key         cacheKey        // set by add
	value       any             // bool, string, float64; nil for JSON objects/arrays and errors
	raw         json.RawMessage // the value as JSON
	variant     string
	reason      Reason
	payload     json.RawMessage
	flagVersion int64
	// typ is the flag's type as the server said ("json", …); empty when
	// it did not (older servers, OFREP).
	typ     string
	meta    map[string]any // the flag's metadata, read-only; nil when none
	errCode ErrorCode      // FLAG_NOT_FOUND: the one cached negative answer
	// answerCode is a code that comes with the answer itself:
	// MISSING_BUCKETING_ATTRIBUTE (the reason's errorCode).
	answerCode ErrorCode
	// codeDefault marks an OFREP answer without a value: serve the
	// caller's default, as a success, with this variant and reason.
	codeDefault bool

	// configVersion is the environment's config version the server
	// computed the decision at; versioned is false when the server did
	// not say (older servers, OFREP).
	configVersion int64
	versioned     bool

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
	front  []atomic.Pointer[decision] // see frontSlot
	flags  sync.Map                   // flag key → *flagState
	global atomic.Uint64
	// expiredBefore (clock nanoseconds): decisions fetched before it are
	// expired (asked again) but, unlike invalidated ones, may still be
	// served as stale. See expireAll.
	expiredBefore atomic.Int64
	// versionFloor: decisions computed at a config version below it are
	// expired, like expiredBefore's; unversionedBefore does the same for
	// decisions without a version fetched before it. newestVersion is the
	// highest version of any decision cached or stream announced. See
	// expireOlderThan.
	versionFloor      atomic.Int64
	unversionedBefore atomic.Int64
	newestVersion     atomic.Int64

	// between, when set (tests only), runs between reading a decision
	// from the LRU (or adding it) and putting it in the front index, so
	// tests can interleave an eviction or a refresh there
	// deterministically.
	between func(step string, k cacheKey)

	// deps records prerequisites learned from decisions (a
	// PREREQUISITE_FAILED reason names one): prerequisite key → the set
	// of flags depending on it. Bounded by the number of flags.
	depMu sync.Mutex
	deps  map[string]map[string]struct{}
}

func newDecisionCache(size int) *decisionCache {
	dc := &decisionCache{}
	c, err := lru.NewWithEvict(size, dc.evicted)
	if err != nil { // only for size <= 0, which options prevent
		c, _ = lru.NewWithEvict(1, dc.evicted)
	}
	dc.lru = c
	n := 1
	for n < size && n < maxFront {
		n *= 2
	}
	dc.front = make([]atomic.Pointer[decision], n)
	dc.versionFloor.Store(math.MinInt64)
	dc.newestVersion.Store(math.MinInt64)
	return dc
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
	slot := &c.front[c.frontSlot(k)]
	d := slot.Load()
	if d == nil || d.key != k {
		var ok bool
		if d, ok = c.lru.Peek(k); !ok { // read lock only
			return nil
		}
		if c.between != nil {
			c.between("get", k)
		}
		c.index(slot, k, d)
	}
	if d.gen != d.fs.gen.Load() || d.global != c.global.Load() {
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
	// A decision fetched before an invalidation that a newer one already
	// answered (a slow request overtaken by one made after the change)
	// must not replace it: it would be dropped as invalidated at once.
	if cur, ok := c.lru.Peek(k); ok && cur.fs == d.fs && (cur.gen > d.gen || cur.global > d.global) {
		return
	}
	d.key = k
	d.promotedAt.Store(d.fetchedAt)
	if d.versioned {
		c.noteVersion(d.configVersion)
	}
	c.lru.Add(k, d)
	if c.between != nil {
		c.between("add", k)
	}
	c.index(&c.front[c.frontSlot(k)], k, d)
}

// index puts d, read from or added to the LRU under k, in its front slot,
// unless the LRU no longer holds it: a decision evicted, or superseded by
// a newer one for k (a refresh), after it was read and before it reached
// the slot would otherwise stay there, served beyond the LRU's bound or in
// place of the newer decision. Whatever the interleaving, a slot holds
// only what the LRU held for its key at some moment after the slot was
// written: an eviction after the check takes d out of the slot
// (evicted), and an add after it overwrites the slot.
func (c *decisionCache) index(slot *atomic.Pointer[decision], k cacheKey, d *decision) {
	slot.Store(d)
	if cur, ok := c.lru.Peek(k); !ok || cur != d {
		slot.CompareAndSwap(d, nil)
	}
}

// The front index: a direct-mapped array of recently added or read
// decisions in front of the LRU, so that a hit is an atomic load and a
// key comparison, without the LRU's lock (which took about 30 ns of a
// remote-mode evaluation). It is only an index of the LRU: a decision
// leaves it when the LRU evicts it (evicted), every decision it returns
// passes the same checks as one read from the LRU (generations,
// expiry), and nothing else is ever removed from the LRU. A slot that
// two keys share holds the last one read; the other is read from the
// LRU. The slot count is the LRU's size rounded up to a power of two, at
// most maxFront (16,384 slots, 128 KiB, for the default 10,000 entries).
const maxFront = 1 << 14

// frontSlot picks k's slot: the subject hash mixed with the flag key's
// length and last byte (keys of one subject differ there, usually).
func (c *decisionCache) frontSlot(k cacheKey) uint64 {
	h := k.hi ^ k.lo
	if n := len(k.flag); n > 0 {
		h += (uint64(n)<<8 | uint64(k.flag[n-1])) * 0x9e3779b97f4a7c15
	}
	return (h ^ h>>29) & uint64(len(c.front)-1)
}

// evicted takes a decision the LRU evicted out of the front index.
func (c *decisionCache) evicted(k cacheKey, d *decision) {
	c.front[c.frontSlot(k)].CompareAndSwap(d, nil)
}

// noteVersion raises newestVersion to v.
func (c *decisionCache) noteVersion(v int64) {
	for cur := c.newestVersion.Load(); v > cur; cur = c.newestVersion.Load() {
		if c.newestVersion.CompareAndSwap(cur, v) {
			return
		}
	}
}

// invalidate drops every decision of one flag, in O(1).
func (c *decisionCache) invalidate(flag string) {
	c.flagState(flag).gen.Add(1)
}

// fresh reports whether d, returned by get, may be served as a fresh
// cache hit at now.
func (c *decisionCache) fresh(d *decision, now int64) bool {
	if now >= d.expiresAt || d.fetchedAt < c.expiredBefore.Load() {
		return false
	}
	if d.versioned {
		return d.configVersion >= c.versionFloor.Load()
	}
	return d.fetchedAt >= c.unversionedBefore.Load()
}

// expireOlderThan is for a stream connection that starts without
// resuming (or a reset), whose server announced that every change after
// config version v reaches the stream. It marks expired, in O(1), every
// decision computed at a version below v: a change between its
// computation and v may never be announced. Decisions at v or later stay
// fresh: any change after them comes as an event. With unversioned (a
// reconnect or a reset, where events may have been missed), decisions
// without a version fetched before now are expired too, as expireAll
// does; otherwise (the first connection) they are kept, as before
// versions existed.
//
// A v below a version already seen means the versions went back (a
// server that lost its state, or a write that landed while the stream
// connected): nothing can be told from v, so every decision fetched
// before now is expired (expireAll), and v becomes the new reference.
//
// Expired decisions may still be served as stale. Only the stream's
// goroutine calls it.
func (c *decisionCache) expireOlderThan(v, now int64, unversioned bool) {
	if v < c.newestVersion.Load() {
		c.expiredBefore.Store(now)
		c.newestVersion.Store(v)
	} else {
		c.noteVersion(v)
	}
	if unversioned {
		c.unversionedBefore.Store(now)
	}
	c.versionFloor.Store(v)
}

// newEpoch is expireOlderThan for a stream connection to another store
// epoch: every decision fetched before now is expired (the old store's
// versions compare with nothing of the new one's), and the new store's
// version v, if announced, becomes the reference.
func (c *decisionCache) newEpoch(v int64, versioned bool, now int64) {
	c.expiredBefore.Store(now)
	c.unversionedBefore.Store(now)
	if versioned {
		c.newestVersion.Store(v)
		c.versionFloor.Store(v)
	} else {
		c.newestVersion.Store(math.MinInt64)
		c.versionFloor.Store(math.MinInt64)
	}
}

// expireAll marks every decision fetched before now as expired, in O(1):
// each is asked again, and served as stale if the API cannot answer. It is
// for a stream reconnect that cannot resume from a server that announces
// no version (see expireOlderThan): events may have been missed, but
// nothing is known to have changed.
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
