package flagwire

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
)

// TestFrontIndexIsAnIndexOfTheLRU drives a small decision cache with
// random adds, re-adds and reads of many keys and checks every read
// against the LRU itself (the oracle): get returns exactly the decision
// the LRU holds for the key (the newest added), and nothing for a key the
// LRU has evicted, whatever the front index holds.
func TestFrontIndexIsAnIndexOfTheLRU(t *testing.T) {
	for _, size := range []int{1, 3, 16, 100, 5000} {
		c := newDecisionCache(size)
		r := rand.New(rand.NewPCG(uint64(size), 7))
		keys := make([]cacheKey, 3*size+10)
		for i := range keys {
			keys[i] = cacheKey{flag: "flag-" + strconv.Itoa(i%7), hi: r.Uint64(), lo: uint64(i)}
		}
		for step := range 20 * len(keys) {
			k := keys[r.IntN(len(keys))]
			if r.IntN(3) == 0 {
				d := &decision{expiresAt: 1 << 62}
				d.fs, d.gen, d.global = c.stamp(k.flag)
				c.add(k, d)
				continue
			}
			got := c.get(k, 1)
			want, ok := c.lru.Peek(k)
			if !ok {
				want = nil
			}
			if got != want {
				t.Fatalf("size %d, step %d: get(%v) = %p, the LRU holds %p", size, step, k, got, want)
			}
		}
	}
}

// TestFrontIndexConcurrent reads, adds and invalidates from several
// goroutines (run with -race): a read returns nil or a decision of its
// own key, never another key's.
func TestFrontIndexConcurrent(t *testing.T) {
	c := newDecisionCache(64)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for range 20000 {
				k := cacheKey{flag: "f" + strconv.Itoa(r.IntN(5)), hi: uint64(r.IntN(50))}
				switch r.IntN(10) {
				case 0:
					d := &decision{expiresAt: 1 << 62}
					d.fs, d.gen, d.global = c.stamp(k.flag)
					c.add(k, d)
				case 1:
					c.flagState(k.flag).gen.Add(1) // invalidate the flag
				default:
					if d := c.get(k, 1); d != nil && d.key != k {
						t.Errorf("get(%v) returned the decision of %v", k, d.key)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

// frontHolds reports what k's front slot holds.
func frontHolds(c *decisionCache, k cacheKey) *decision {
	return c.front[c.frontSlot(k)].Load()
}

// newTestDecision returns a fresh decision of k's flag, stamped now.
func newTestDecision(c *decisionCache, k cacheKey) *decision {
	d := &decision{expiresAt: 1 << 62}
	d.fs, d.gen, d.global = c.stamp(k.flag)
	return d
}

// TestFrontIndexHoldsOnlyWhatTheLRUHolds interleaves, deterministically
// (the between hook), a refresh or an eviction between a read of the LRU
// and the write of the front slot, in get and in add: afterwards the slot
// holds nothing the LRU does not hold for its key, so neither a
// superseded decision (whose refreshing mark would stop refresh-ahead)
// nor an evicted one (served beyond the LRU's bound) is served.
func TestFrontIndexHoldsOnlyWhatTheLRUHolds(t *testing.T) {
	k := cacheKey{flag: "f", hi: 1, lo: 1}
	other := cacheKey{flag: "g", hi: 2, lo: 2}

	t.Run("refresh between get's read and its slot write", func(t *testing.T) {
		c := newDecisionCache(4)
		old := newTestDecision(c, k)
		c.add(k, old)
		c.front[c.frontSlot(k)].Store(nil) // the next get reads the LRU
		refreshed := newTestDecision(c, k)
		c.between = func(step string, _ cacheKey) {
			if step == "get" {
				c.between = nil
				c.add(k, refreshed)
			}
		}
		c.get(k, 1) // may answer old: it read the LRU before the refresh
		if got := frontHolds(c, k); got == old {
			t.Fatal("the slot kept the superseded decision")
		}
		if got := c.get(k, 1); got != refreshed {
			t.Fatalf("after the refresh: %p, want the refreshed decision %p", got, refreshed)
		}
	})

	t.Run("eviction between get's read and its slot write", func(t *testing.T) {
		c := newDecisionCache(1)
		d := newTestDecision(c, k)
		c.add(k, d)
		c.front[c.frontSlot(k)].Store(nil)
		c.between = func(step string, _ cacheKey) {
			if step == "get" {
				c.between = nil
				c.add(other, newTestDecision(c, other)) // evicts k (size 1)
			}
		}
		c.get(k, 1)
		if _, ok := c.lru.Peek(k); ok {
			t.Fatal("k was not evicted")
		}
		if got := frontHolds(c, k); got == d {
			t.Fatal("the evicted decision stayed in the front index")
		}
		if got := c.get(k, 1); got != nil {
			t.Fatalf("an evicted decision is still served: %p", got)
		}
	})

	t.Run("eviction between add's LRU write and its slot write", func(t *testing.T) {
		c := newDecisionCache(1)
		d := newTestDecision(c, k)
		c.between = func(step string, _ cacheKey) {
			if step == "add" {
				c.between = nil
				c.add(other, newTestDecision(c, other)) // evicts k
			}
		}
		c.add(k, d)
		if got := frontHolds(c, k); got == d {
			t.Fatal("the evicted decision stayed in the front index")
		}
		if got := c.get(k, 1); got != nil {
			t.Fatalf("an evicted decision is still served: %p", got)
		}
	})
}
