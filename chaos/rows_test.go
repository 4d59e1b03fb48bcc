package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flagwire/flagwire"
)

// TestChaosCoalescing drills README's "concurrent misses of one key make
// one request" with a healthy server: rounds of 64 concurrent cold misses
// of one fresh key each. Over the whole drill, per key, requests must never
// overlap and a key may be fetched again only for a documented reason (see
// countingTransport.coalescing) — neither depends on how the goroutines are
// scheduled. (The flake "64 concurrent cold misses made 2 attempts" was
// this: every caller had missed the cache while the first request was in
// flight, and one reached singleflight after that request had finished and
// cached its answer, so it asked again; fetchOne now re-checks the cache
// inside the singleflight call.)
func TestChaosCoalescing(t *testing.T) {
	s := loadSettings()
	ignore := goleak.IgnoreCurrent()
	w := newWorld(t, s, flagwire.ModeRemote)
	rounds := 300
	if s.long {
		rounds = 3000
	}
	const n = 64
	start := time.Now()
	for round := 0; round < rounds; round++ {
		attrs := flagwire.Attributes{"userId": fmt.Sprintf("coalesce-%d", round), "plan": "pro", "region": "US", "appVersion": "2.3.1"}
		ctx := flagwire.WithAttributes(context.Background(), attrs)
		for _, c := range w.coldMisses(ctx, attrs, n) {
			w.rec.observe(c.d, c.lat)
		}
	}
	elapsed := time.Since(start)
	overlaps, unjustified, nUnjust, keys, reqs := w.ct.coalescing(w.hist.count, w.ct.total("GET /v1/stream"))
	lag := w.maxLag()
	w.close()
	for _, o := range overlaps {
		t.Errorf("requests of one key in flight at once: %s", o)
	}
	if nUnjust > 0 {
		t.Errorf("%d requests in %d rounds of %d concurrent cold misses refetched a cached decision without a reason (want exactly one request per key), e.g.\n\t%v",
			nUnjust, rounds, n, unjustified)
	}
	w.rec.failIfProblems(t)
	if err := goleak.Find(ignore); err != nil {
		t.Errorf("goroutines not back to baseline after Close: %v", err)
	}
	t.Logf("%d rounds × %d concurrent cold misses in %v: %d requests for %d keys, %d unjustified", rounds, n, elapsed, reqs, keys, nUnjust)
	addSummary(t, w, lag, "coalescing", "remote", 0, fmt.Sprintf("%d×%d concurrent cold misses → %d requests for %d keys (%d unjustified)", rounds, n, reqs, keys, nUnjust))
}

// TestChaosWrongTypeDoesNotPoison: README's "value of another type → the
// default, DEFAULT + TYPE_MISMATCH", and that answer must not change what a
// later call of the right type gets. For each wrong-typed call, on a fresh
// context: the wrong-typed call first (a cold miss in remote mode), then
// the right-typed call, which must be the model's answer.
func TestChaosWrongTypeDoesNotPoison(t *testing.T) {
	s := loadSettings()
	for _, m := range []flagwire.Mode{flagwire.ModeRemote, flagwire.ModeLocal, flagwire.ModeOffline} {
		t.Run(string(m), func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			w := newWorld(t, s, m)
			for i, wc := range wrongCalls {
				attrs := flagwire.Attributes{"userId": fmt.Sprintf("typed-%d", i), "plan": plans[i%3], "region": "EU", "appVersion": "2.3.1"}
				ctx := flagwire.WithAttributes(context.Background(), attrs)
				got, def, d := evalAs(w.client, ctx, wc.key, wc.as)
				if got != def || d.Source != flagwire.SourceCallerDefault || d.ErrorCode != flagwire.CodeTypeMismatch {
					t.Errorf("%s as %s: %v %+v; want the default %v, DEFAULT, TYPE_MISMATCH", wc.key, wc.as, got, d, def)
				}
				for j := 0; j < 2; j++ { // the miss, then the cached answer
					right := flagType[wc.key]
					got, _, d = evalAs(w.client, ctx, wc.key, right)
					if d.Source == flagwire.SourceCallerDefault {
						t.Errorf("%s as %s after a call as %s: %v %+v; a wrong-typed call poisoned the right-typed answer", wc.key, right, wc.as, got, d)
						continue
					}
					if _, msg := checkValue(wc.key, attrs, got, d); msg != "" {
						t.Errorf("%s as %s after a call as %s: %s", wc.key, right, wc.as, msg)
					}
				}
			}
			lag := w.maxLag()
			w.close()
			if err := goleak.Find(ignore); err != nil {
				t.Errorf("goroutines not back to baseline after Close: %v", err)
			}
			addSummary(t, w, lag, "type mismatch, no poison", string(m), int64(len(wrongCalls)), "wrong-typed call, then the right type: the model's answer")
		})
	}
}

// TestChaosClosedClient closes the client in the middle of the load, in
// every mode: calls that began after Close returned get the default with
// CLIENT_CLOSED, calls racing with Close get either a checked answer or
// that, nothing blocks or panics, and the goroutines go back to their
// baseline. A nil *Client answers the default with CLIENT_CLOSED.
func TestChaosClosedClient(t *testing.T) {
	s := loadSettings()
	for _, m := range []flagwire.Mode{flagwire.ModeRemote, flagwire.ModeLocal, flagwire.ModeOffline} {
		t.Run(string(m), func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			w := newWorld(t, s, m)
			stop := make(chan struct{})
			waitChurn := func() {}
			if m != flagwire.ModeOffline {
				waitChurn = w.churner(stop, 50*time.Millisecond)
			}
			waitLoad := w.runLoad(stop)
			pace(s.dur / 2)
			before := w.rec.bySource[srcIdx(flagwire.SourceCallerDefault)].Load()
			w.closeStartNs.Store(time.Now().UnixNano())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := w.client.Close(ctx)
			cancel()
			w.closeEndNs.Store(time.Now().UnixNano())
			if err != nil {
				t.Errorf("Close under load: %v", err)
			}
			pace(s.dur / 4)
			close(stop)
			waitLoad()
			waitChurn()
			after := w.rec.bySource[srcIdx(flagwire.SourceCallerDefault)].Load() - before
			if n := w.rec.codes()[flagwire.CodeClosed]; n == 0 {
				t.Errorf("no call after Close answered CLIENT_CLOSED (%d defaults after Close)", after)
			}
			var nilClient *flagwire.Client
			for _, k := range flagKeys {
				got, def, d := evalAs(nilClient, context.Background(), k, flagType[k])
				if got != def || d.Source != flagwire.SourceCallerDefault || d.ErrorCode != flagwire.CodeClosed {
					t.Errorf("nil client, %s: %v %+v; want the default, DEFAULT, CLIENT_CLOSED", k, got, d)
				}
			}
			lag := w.maxLag()
			w.close()
			w.rec.failIfProblems(t)
			w.rec.checkTimeouts(t, lag)
			if err := goleak.Find(ignore); err != nil {
				t.Errorf("goroutines not back to baseline after Close: %v", err)
			}
			addSummary(t, w, lag, "client closed under load", string(m), 1, "after Close: default + CLIENT_CLOSED; nil client too")
		})
	}
}
