package flagwire

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
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

func TestInvalidateOneFlag(t *testing.T) {
	h := newHarness(t)
	ctx := user("8a7f4c91", "pro", "US")
	h.c.Bool(ctx, "checkout-new-flow", false)
	h.c.String(ctx, "pricing-experiment", "control")
	h.c.Invalidate("checkout-new-flow")
	if _, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); d.Source != SourceRemote {
		t.Fatalf("invalidated flag served from %s", d.Source)
	}
	if _, d := h.c.StringDetail(ctx, "pricing-experiment", "control"); d.Source != SourceCache {
		t.Fatalf("other flag served from %s", d.Source)
	}
	h.c.Invalidate("")
	if _, d := h.c.StringDetail(ctx, "pricing-experiment", "control"); d.Source != SourceRemote {
		t.Fatalf("after Invalidate of every flag: %s", d.Source)
	}
}

// TestInvalidatedDecisionsNeverServedAgain: after Invalidate(""), or
// Invalidate of the flag, a failed fetch does not bring the dropped
// decision back as STALE.
func TestInvalidatedDecisionsNeverServedAgain(t *testing.T) {
	for _, tc := range []struct {
		name       string
		invalidate func(c *Client)
	}{
		{"every flag", func(c *Client) { c.Invalidate("") }},
		{"Invalidate", func(c *Client) { c.Invalidate("checkout-new-flow") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, WithRetry(RetrySettings{MaxAttempts: -1}), WithStreaming(false))
			ctx := user("8a7f4c91", "pro", "US")
			if v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); !v || d.Source != SourceRemote {
				t.Fatalf("first call: %v %+v", v, d)
			}
			tc.invalidate(h.c)
			h.srv.Down()
			v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false)
			if v || d.Source != SourceCallerDefault || d.ErrorCode != CodeUnavailable || d.Variant != "" || d.Reason.Kind != "ERROR" {
				t.Fatalf("after %s with the server down: %v %+v; want the default with UNAVAILABLE", tc.name, v, d)
			}
			if err := h.srv.Up(); err != nil {
				t.Fatal(err)
			}
			if v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); !v || d.Source != SourceRemote {
				t.Fatalf("server back: %v %+v", v, d)
			}
		})
	}
}

// TestTransientDecisionErrorsAreNotCached: a per-decision error other than
// FLAG_NOT_FOUND (here GENERAL, once) serves the fallback for that call
// only: the next evaluation asks again and gets the flag's answer.
// FLAG_NOT_FOUND stays cached for its TTL.
func TestTransientDecisionErrorsAreNotCached(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	c := remoteAt(t, srv)
	ctx := user("8a7f4c91", "pro", "US")
	srv.InjectFault(flagtest.Fault{Method: "POST", Path: "/v1/evaluate", Count: 1,
		Body: []byte(`{"requestId":"r","decisions":[{"flagKey":"checkout-new-flow","variant":null,"ttlSeconds":60,"error":{"code":"GENERAL","message":"store busy"}}]}`)})
	if v, d := c.BoolDetail(ctx, "checkout-new-flow", false); v || d.ErrorCode != CodeGeneral || d.Source != SourceCallerDefault {
		t.Fatalf("during the error: %v %+v", v, d)
	}
	if v, d := c.BoolDetail(ctx, "checkout-new-flow", false); !v || d.ErrorCode != "" || d.Source != SourceRemote || d.Reason.RuleID != "rule-1" {
		t.Fatalf("after the error: %v %+v, want the flag's answer from a new request", v, d)
	}
	before := srv.Requests("POST", "/v1/evaluate")
	for range 2 {
		if _, d := c.BoolDetail(ctx, "no-such-flag", false); d.ErrorCode != CodeFlagNotFound {
			t.Fatalf("missing flag: %+v", d)
		}
	}
	if n := srv.Requests("POST", "/v1/evaluate") - before; n != 1 {
		t.Errorf("FLAG_NOT_FOUND twice: %d requests, want 1 (a cached negative answer)", n)
	}
}

func TestRefreshAhead(t *testing.T) {
	h := newHarness(t)
	ctx := user("8a7f4c91", "pro", "US")
	h.c.Bool(ctx, "checkout-new-flow", false)
	h.clock.Advance(50 * time.Second) // past 80% of the 60s TTL
	if _, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); d.Source != SourceCache {
		t.Fatalf("hot entry near expiry: %s", d.Source)
	}
	// After the background refresh lands, the entry lives on past the
	// original TTL.
	testkit.WaitFor(t, 5*time.Second, "refreshed entry stored", func() bool {
		d := h.c.cache.get(mustKey(t, h.c, ctx, "checkout-new-flow"), h.clock.Nanotime())
		return d != nil && d.fetchedAt > 1
	})
	if n := h.evaluations(); n != 2 {
		t.Fatalf("%d requests, want 2 (fetch + one refresh)", n)
	}
	h.clock.Advance(20 * time.Second)
	if _, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); d.Source != SourceCache {
		t.Fatalf("after refresh: %s", d.Source)
	}
}

// TestDecisionCacheVersionFloor: expireOlderThan, step by step, against
// its documented rules: a decision computed below the announced version
// is expired, one at or above it is fresh; one without a version is kept
// at a first connection and expired (if fetched before) at a reconnect;
// an announced version below one already seen (the server lost its
// state) expires everything fetched before, by time, and becomes the new
// reference. Expired is never dropped: get still returns the decision.
func TestDecisionCacheVersionFloor(t *testing.T) {
	c := newDecisionCache(16)
	put := func(flag string, fetchedAt int64, version int64, versioned bool) cacheKey {
		k := cacheKey{flag: flag}
		d := &decision{fetchedAt: fetchedAt, expiresAt: 1 << 62, configVersion: version, versioned: versioned}
		d.fs, d.gen, d.global = c.stamp(flag)
		c.add(k, d)
		return k
	}
	fresh := func(k cacheKey, now int64) bool {
		t.Helper()
		d := c.get(k, now)
		if d == nil {
			t.Fatalf("%s: dropped; expiry must keep it for stale serving", k.flag)
		}
		return c.fresh(d, now)
	}
	want := func(step string, now int64, keys map[cacheKey]bool) {
		t.Helper()
		for k, w := range keys {
			if got := fresh(k, now); got != w {
				t.Errorf("%s: %s fresh = %v, want %v", step, k.flag, got, w)
			}
		}
	}
	v3 := put("v3", 10, 3, true)
	v5 := put("v5", 10, 5, true)
	none := put("none", 10, 0, false)
	want("before any connection", 11, map[cacheKey]bool{v3: true, v5: true, none: true})

	c.expireOlderThan(5, 20, false) // a first connection at version 5
	want("first connection at 5", 21, map[cacheKey]bool{v3: false, v5: true, none: true})

	c.expireOlderThan(5, 30, true) // a reconnect without resume, nothing changed
	want("reconnect at 5", 31, map[cacheKey]bool{v3: false, v5: true, none: false})
	none2 := put("none2", 32, 0, false) // fetched after the reconnect
	want("reconnect at 5, later fetch", 33, map[cacheKey]bool{none2: true})

	c.expireOlderThan(2, 40, true) // versions went back: a server that lost its state
	v2 := put("v2", 41, 2, true)
	v3b := put("v3b", 42, 3, true)
	want("versions went back to 2", 43, map[cacheKey]bool{v5: false, none2: false, v2: true, v3b: true})

	c.expireOlderThan(3, 50, false) // then a first-style connection at 3: no regression
	want("connection at 3", 51, map[cacheKey]bool{v2: false, v3b: true})
}

// TestHugeTTLSecondsClampsToMax: ttlSeconds of 9223372036854775807 caches
// the decision for the upper TTL bound (1 h by default), not for 1 s as
// the overflowing conversion made it; a negative one for the lower bound.
func TestHugeTTLSecondsClampsToMax(t *testing.T) {
	for _, tc := range []struct {
		ttl        string
		stillFresh time.Duration // the clock advance at which the decision is still cached
		expired    time.Duration // the further advance after which it is not
	}{
		{"9223372036854775807", 30 * time.Minute, 31 * time.Minute}, // at 61 min: past 1 h
		{"3600000", 30 * time.Minute, 31 * time.Minute},
		{"-9223372036854775808", 500 * time.Millisecond, time.Second}, // at 1.5 s: past 1 s
	} {
		t.Run(tc.ttl, func(t *testing.T) {
			var evaluations atomic.Int64
			srv := httptest.NewServer(onlyPath("/v1/evaluate", func(w http.ResponseWriter, r *http.Request) {
				evaluations.Add(1)
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"requestId":"r","decisions":[{"flagKey":"kill-switch","variant":true,"variantKey":"on","reason":{"kind":"STATIC"},"ttlSeconds":%s}]}`, tc.ttl)
			}))
			defer srv.Close()
			clk := testkit.NewClock()
			c, err := New(context.Background(), WithEndpoint(srv.URL), WithLogger(quietLogger()), WithStreaming(false), withClock(clk),
				WithTimeout(patience), WithCache(CacheSettings{MaxStale: -1}))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			check := func(wantSource Source, wantRequests int64) {
				t.Helper()
				v, d := c.BoolDetail(context.Background(), "kill-switch", false)
				if !v || d.Variant != "on" || d.Reason.Kind != "STATIC" || d.ErrorCode != "" || d.Source != wantSource {
					t.Fatalf("%v %+v; want true (on, STATIC) from %s", v, d, wantSource)
				}
				if n := evaluations.Load(); n != wantRequests {
					t.Fatalf("%d evaluate requests, want %d", n, wantRequests)
				}
			}
			check(SourceRemote, 1)
			clk.Advance(tc.stillFresh)
			check(SourceCache, 1)
			clk.Advance(tc.expired)
			check(SourceRemote, 2)
		})
	}
}
