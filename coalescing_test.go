package flagwire

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

func TestCoalescing1000Misses(t *testing.T) {
	// A generous timeout: this test counts requests, and under -race with
	// 1,000 goroutines on 2 cores the default 200 ms is tight.
	h := newHarness(t, WithTimeout(10*time.Second))
	remove := h.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Latency: 50 * time.Millisecond})
	defer remove()
	ctx := user("8a7f4c91", "pro", "US")
	var wg sync.WaitGroup
	var wrong atomic.Int64
	start := make(chan struct{})
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if !h.c.Bool(ctx, "checkout-new-flow", false) {
				wrong.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := h.evaluations(); n != 1 {
		t.Fatalf("1000 concurrent misses made %d requests, want exactly 1", n)
	}
	if wrong.Load() != 0 {
		t.Fatalf("%d callers got the wrong value", wrong.Load())
	}
}

// heldTransport passes requests to the server; the first one whose path
// is path is answered by the server at once, but its response is held
// (answered is closed) until release is closed or the request's context
// ends.
type heldTransport struct {
	path     string
	taken    atomic.Bool
	answered chan struct{}
	release  chan struct{}
	requests atomic.Int64
}

func newHeldTransport(path string) *heldTransport {
	return &heldTransport{path: path, answered: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == h.path {
		h.requests.Add(1)
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.URL.Path != h.path || !h.taken.CompareAndSwap(false, true) {
		return resp, err
	}
	close(h.answered)
	select {
	case <-h.release:
	case <-r.Context().Done():
	}
	return resp, nil
}

// TestARequestIsNotSharedAcrossAnInvalidation: an evaluation that starts
// after the client received an invalidation of its flag does not join a
// request sent before the change (which carries the old answer): it makes
// its own and serves the new value.
func TestARequestIsNotSharedAcrossAnInvalidation(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(killConfig(true)))
	ht := newHeldTransport("/v1/evaluate")
	defer close(ht.release)
	c := remoteAt(t, srv, WithHTTPClient(&http.Client{Transport: ht}))
	ctx := WithSubject(context.Background(), StringAttr("userId", "u1"))

	type answer struct {
		v bool
		d Detail
	}
	first := make(chan answer, 1)
	go func() { v, d := c.BoolDetail(ctx, "kill", false); first <- answer{v, d} }()
	<-ht.answered // the server answered "on"; the response is on its way
	if _, err := srv.SetFlag("prod", evaluate.Flag{Key: "kill", Default: &evaluate.Serve{Variant: false}}); err != nil {
		t.Fatal(err)
	}
	c.Invalidate("kill") // what the stream's event does

	second := make(chan answer, 1)
	go func() { v, d := c.BoolDetail(ctx, "kill", true); second <- answer{v, d} }()
	select {
	case a := <-second:
		if a.v || a.d.Source != SourceRemote || a.d.ErrorCode != "" {
			t.Fatalf("after the invalidation: %v %+v, want the new value false from a request of its own", a.v, a.d)
		}
	case <-time.After(patience):
		t.Fatal("the evaluation after the invalidation waited for the request sent before it")
	}
	ht.release <- struct{}{}
	if a := <-first; !a.v {
		t.Fatalf("the first evaluation (before the change): %v %+v", a.v, a.d)
	}
	// The first request's old answer was not cached over the new one.
	if v, d := c.BoolDetail(ctx, "kill", true); v || d.Source != SourceCache {
		t.Fatalf("after both: %v %+v, want the new value from the cache", v, d)
	}
}

// TestConcurrentPrefetchesOfOneSubjectShareRequests: batch evaluations
// (Evaluate and the prefetch) of one subject coalesce with each other and with
// single evaluations: while a request for a key is in flight, every other
// miss of that key waits for it instead of asking again.
func TestConcurrentPrefetchesOfOneSubjectShareRequests(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	ht := newHeldTransport("/v1/evaluate")
	c := remoteAt(t, srv, WithHTTPClient(&http.Client{Transport: ht}))
	ctx := user("8a7f4c91", "pro", "US")
	keys := []string{"checkout-new-flow", "max-items", "theme"}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.prefetch(ctx, keys...) }()
	<-ht.answered // the first prefetch's request is in flight (held)
	results := make(chan int, 8)
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); results <- c.prefetch(ctx, keys...) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, d := c.BoolDetail(ctx, "checkout-new-flow", false); d.ErrorCode != "" {
			t.Errorf("single evaluation: %+v", d)
		}
	}()
	// Every later caller joins the held request (4 prefetches of 3 keys,
	// one single evaluation) instead of sending its own.
	testkit.WaitFor(t, patience, "every caller to join the request in flight", func() bool {
		return c.flights.joined.Load() >= 13 || ht.requests.Load() > 1
	})
	close(ht.release)
	wg.Wait()
	close(results)
	for failed := range results {
		if failed != 0 {
			t.Errorf("a prefetch failed %d flags", failed)
		}
	}
	if n := ht.requests.Load(); n != 1 {
		t.Errorf("%d evaluate requests for one subject's 3 flags, want 1", n)
	}
}
