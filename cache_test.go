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
