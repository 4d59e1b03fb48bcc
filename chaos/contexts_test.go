package chaos

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/internal/testkit"
)

// distinctAttrs is the i-th distinct evaluation context.
func distinctAttrs(i int) flagwire.Attributes {
	plans := [...]string{"pro", "enterprise", "free"}
	regions := [...]string{"US", "EU"}
	return flagwire.Attributes{
		"userId": "ctx-" + strconv.Itoa(i), "plan": plans[i%3], "region": regions[i/3%2],
		"country": "DE", "appVersion": "2.3.1",
	}
}

// maxHeapGrowth bounds what a million distinct contexts may leave behind.
const maxHeapGrowth = 64 << 20

// TestChaosDistinctContexts evaluates up to a million distinct contexts:
// in local mode through Bool (every answer checked against the model),
// and in remote mode through batch Evaluate into a decision cache of
// 1,000 entries, whose LRU bound must hold after every batch while the
// most recent contexts stay cached. The live heap must not grow with the
// number of contexts.
func TestChaosDistinctContexts(t *testing.T) {
	s := loadSettings()

	t.Run("local", func(t *testing.T) {
		ignore := goleak.IgnoreCurrent()
		w := newWorld(t, s, flagwire.ModeLocal)
		before := testkit.GCMemStats().HeapInuse
		n := s.localContexts
		workers := 2
		var wg sync.WaitGroup
		start := time.Now()
		for g := 0; g < workers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < n; i += workers {
					attrs := distinctAttrs(i)
					v, d := w.client.BoolDetail(flagwire.WithAttributes(context.Background(), attrs), flagBench, false)
					w.rec.observe(d, 0)
					if d.Source != flagwire.SourceLocal {
						w.rec.problem("local mode fell back after its first config", "%+v", d)
					} else if _, msg := checkValue(flagBench, attrs, v, d); msg != "" {
						w.rec.problem("wrong answer", "%v: %s", attrs["userId"], msg)
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		growth := int64(testkit.GCMemStats().HeapInuse) - int64(before)
		w.close()
		if growth > maxHeapGrowth {
			t.Errorf("live heap grew by %d MiB over %d contexts", growth>>20, n)
		}
		w.rec.failIfProblems(t)
		if err := goleak.Find(ignore); err != nil {
			t.Errorf("goroutines not back to baseline after Close: %v", err)
		}
		t.Logf("%d distinct contexts in %v (%.0f ns each); live heap %+d KiB", n, elapsed, float64(elapsed)/float64(n), growth>>10)
		addSummary(t, w, 0, fmt.Sprintf("%s contexts", humanCount(n)), "local", 0,
			fmt.Sprintf("live heap %+d KiB (≤ %d MiB); %.0f ns/context", growth>>10, maxHeapGrowth>>20, float64(elapsed)/float64(n)))
	})

	t.Run("remote LRU bound", func(t *testing.T) {
		ignore := goleak.IgnoreCurrent()
		const cacheSize = 1000
		w := newWorld(t, s, flagwire.ModeRemote, worldOptions{extra: []flagwire.Option{
			flagwire.WithCache(flagwire.CacheSettings{Size: cacheSize}), flagwire.WithBatch(500, 2), flagwire.WithTimeout(10 * time.Second),
		}})
		before := testkit.GCMemStats().HeapInuse
		n := s.remoteContexts
		const batch = 1000
		reqs := make([]flagwire.Request, batch)
		attrs := make([]flagwire.Attributes, batch)
		maxEntries := 0
		start := time.Now()
		for base := 0; base < n; base += batch {
			m := min(batch, n-base)
			for j := 0; j < m; j++ {
				attrs[j] = distinctAttrs(base + j)
				reqs[j] = flagwire.Request{FlagKey: flagBench, Default: false, Attributes: attrs[j]}
			}
			for j, r := range w.client.Evaluate(context.Background(), reqs[:m]) {
				w.rec.observe(r.Detail, 0)
				if r.Detail.Source != flagwire.SourceRemote {
					w.rec.problem("batch item not answered by the server", "%+v", r.Detail)
				} else if _, msg := checkValue(flagBench, attrs[j], r.Value, r.Detail); msg != "" {
					w.rec.problem("wrong answer", "%v: %s", attrs[j]["userId"], msg)
				}
			}
			if e := w.client.Stats().CacheEntries; e > maxEntries {
				maxEntries = e
			}
		}
		elapsed := time.Since(start)
		// The most recent contexts are still cached: LRU, not random eviction.
		hits := 0
		for i := n - cacheSize/2; i < n; i++ {
			_, d := w.client.BoolDetail(flagwire.WithAttributes(context.Background(), distinctAttrs(i)), flagBench, false)
			if d.Source == flagwire.SourceCache {
				hits++
			}
		}
		growth := int64(testkit.GCMemStats().HeapInuse) - int64(before)
		st := w.client.Stats()
		w.close()
		if maxEntries > cacheSize {
			t.Errorf("decision cache held %d entries; bound %d", maxEntries, cacheSize)
		}
		if hits != cacheSize/2 {
			t.Errorf("%d of the %d most recent contexts still cached", hits, cacheSize/2)
		}
		if growth > maxHeapGrowth {
			t.Errorf("live heap grew by %d MiB over %d contexts", growth>>20, n)
		}
		w.rec.failIfProblems(t)
		if err := goleak.Find(ignore); err != nil {
			t.Errorf("goroutines not back to baseline after Close: %v", err)
		}
		t.Logf("%d distinct contexts in %v: %d evaluate requests, cache ≤ %d entries, live heap %+d KiB", n, elapsed, st.RemoteRequests, maxEntries, growth>>10)
		addSummary(t, w, 0, fmt.Sprintf("%s contexts", humanCount(n)), "remote", 0,
			fmt.Sprintf("cache entries ≤ %d (bound %d); %d evaluate requests; live heap %+d KiB", maxEntries, cacheSize, st.RemoteRequests, growth>>10))
	})
}

func humanCount(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}
