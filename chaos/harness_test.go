package chaos

import (
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

func TestMain(m *testing.M) {
	flag.Parse()
	// The chaos summary is printed after the tests (shown by go test with
	// -v, or when the package fails).
	goleak.VerifyTestMain(testkit.RunThen(m, func() { printSummary(loadSettings()) }))
}

var (
	flagDuration = flag.Duration("chaos.duration", 0, "load per drill (default 1s; 10s with FLAGWIRE_CHAOS=long)")
	flagWorkers  = flag.Int("chaos.workers", 0, "concurrent callers per drill (default 8)")
	flagContexts = flag.Int("chaos.contexts", 0, "distinct contexts of the memory drill (default 1,000,000 local and 20,000 remote (100,000 and 10,000 under -race); long: 1,000,000 each)")
)

// settings are the run's sizes: short by default, long with
// FLAGWIRE_CHAOS=long, each overridable by a -chaos.* flag.
type settings struct {
	long           bool
	dur            time.Duration // load per drill
	workers        int
	localContexts  int // distinct contexts through local mode
	remoteContexts int // distinct contexts through the remote decision cache
}

func loadSettings() settings {
	s := settings{dur: 600 * time.Millisecond, workers: 8, localContexts: 1_000_000, remoteContexts: 20_000}
	if raceEnabled {
		// ~20 µs (local) and ~300 µs (remote) each under -race on a
		// loaded machine; 10⁶ local without it and 10⁶ each in the long run.
		s.localContexts, s.remoteContexts = 100_000, 10_000
	}
	if os.Getenv("FLAGWIRE_CHAOS") == "long" {
		s = settings{long: true, dur: 10 * time.Second, workers: 8, localContexts: 1_000_000, remoteContexts: 1_000_000}
	}
	if *flagDuration > 0 {
		s.dur = *flagDuration
	}
	if *flagWorkers > 0 {
		s.workers = *flagWorkers
	}
	if *flagContexts > 0 {
		s.localContexts, s.remoteContexts = *flagContexts, *flagContexts
	}
	return s
}

// The client's settings in every drill.
const (
	env          = "prod"
	callTimeout  = 100 * time.Millisecond // WithTimeout
	callerDL     = 30 * time.Millisecond  // a quarter of the calls carry this earlier deadline
	grace        = 50 * time.Millisecond  // allowance over a call's limit, on top of the measured scheduler lag
	openTimeout  = 250 * time.Millisecond // breaker: open → half-open
	tripAfter    = 5                      // breaker: consecutive failures
	maxAttempts  = 3                      // retries: attempts per call
	streamIdle   = 400 * time.Millisecond // stream watchdog
	keepAlive    = 100 * time.Millisecond // server keep-alive comments
	pollInterval = 300 * time.Millisecond // local mode polling while the stream is down
	decisionTTL  = time.Second            // server's ttlSeconds (the client's minimum)
	segmentSize  = 1000
	warmCount    = 64               // warm subjects the callers keep coming back to
	burstWork    = time.Millisecond // a caller's busy period between rests
)

// ---- the recorder: what happened, for the assertions and the summary ----

// recorder counts calls by source and error code and keeps the first few
// violations of each kind. Safe for concurrent use.
type recorder struct {
	calls    atomic.Int64
	bySource [6]atomic.Int64
	maxLat   atomic.Int64 // nanoseconds
	// worstOver is the largest amount by which a call outlasted its limit
	// (negative: every call was early); late lists the calls that
	// outlasted it by more than grace.
	worstOver atomic.Int64
	late      []lateCall // guarded by mu
	nLate     int
	mu        sync.Mutex
	byCode    map[flagwire.ErrorCode]int64
	problems  map[string][]string // kind → first examples
	nProbs    map[string]int
}

func newRecorder() *recorder {
	r := &recorder{byCode: map[flagwire.ErrorCode]int64{}, problems: map[string][]string{}, nProbs: map[string]int{}}
	r.worstOver.Store(math.MinInt64)
	return r
}

// sources are the answer sources in the order of the summary's columns;
// srcIdx is a source's index among them (bySource, row.sources), or -1.
var sources = [...]flagwire.Source{flagwire.SourceCallerDefault, flagwire.SourceRemote, flagwire.SourceCache,
	flagwire.SourceStale, flagwire.SourceLocal, flagwire.SourceBootstrap}

func srcIdx(s flagwire.Source) int {
	for i, x := range sources {
		if x == s {
			return i
		}
	}
	return -1
}

func (r *recorder) observe(d flagwire.Detail, lat time.Duration) {
	r.calls.Add(1)
	if i := srcIdx(d.Source); i >= 0 {
		r.bySource[i].Add(1)
	}
	for {
		cur := r.maxLat.Load()
		if int64(lat) <= cur || r.maxLat.CompareAndSwap(cur, int64(lat)) {
			break
		}
	}
	if d.ErrorCode != "" {
		r.mu.Lock()
		r.byCode[d.ErrorCode]++
		r.mu.Unlock()
	}
}

// lateCall is a call that outlasted its limit by more than grace.
type lateCall struct {
	over time.Duration
	desc string
}

// overLimit records how much a call took over its limit (negative when it
// was within it).
func (r *recorder) overLimit(over time.Duration, desc string) {
	for {
		cur := r.worstOver.Load()
		if int64(over) <= cur || r.worstOver.CompareAndSwap(cur, int64(over)) {
			break
		}
	}
	if over <= grace {
		return
	}
	r.mu.Lock()
	r.nLate++
	if len(r.late) < 100 {
		r.late = append(r.late, lateCall{over, desc})
	}
	r.mu.Unlock()
}

// Late calls tolerated per drill: a lock holder preempted on a shared,
// oversubscribed 2-core machine can delay a call without the lag monitor
// seeing it; a call that really blocks (on the network, a lock held across
// I/O) shows up on many calls, and takes longer than maxLateOver.
const (
	maxLateCalls = 3
	maxLateOver  = time.Second
)

// checkTimeouts fails t unless every call returned within its limit plus
// grace plus the worst scheduling lag the process suffered during the
// drill (a call may be late only by as much as the CPU was not there to
// run it), but for at most maxLateCalls calls late by less than
// maxLateOver. It returns how many calls were late.
func (r *recorder) checkTimeouts(t testing.TB, lag time.Duration) int {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var late []string
	for _, c := range r.late {
		if c.over > grace+lag {
			late = append(late, c.desc)
			if c.over > maxLateOver {
				t.Errorf("a call blocked %v past its limit: %s", c.over, c.desc)
			}
		}
	}
	if len(late) > maxLateCalls || r.nLate > len(r.late) {
		t.Errorf("%d calls exceeded their timeout by more than %v + scheduler lag %v, e.g.\n\t%s",
			max(len(late), r.nLate), grace, lag, strings.Join(late[:min(len(late), 5)], "\n\t"))
	}
	return len(late)
}

func (r *recorder) problem(kind, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nProbs[kind]++
	if len(r.problems[kind]) < 3 {
		r.problems[kind] = append(r.problems[kind], fmt.Sprintf(format, args...))
	}
}

// failIfProblems fails t with every kind of violation seen.
func (r *recorder) failIfProblems(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, kind := range slices.Sorted(maps.Keys(r.problems)) {
		t.Errorf("%s: %d times, e.g.\n\t%s", kind, r.nProbs[kind], strings.Join(r.problems[kind], "\n\t"))
	}
}

func (r *recorder) codes() map[flagwire.ErrorCode]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.byCode)
}

// (the counting transport is in transport_test.go)

// signer signs the bootstraps and last-known files: every chaos client
// trusts its key.
var signer = testkit.NewSigner()

// (the load and its checks are in load_test.go)

// lagMonitor measures how late a ticker goroutine runs: the scheduling
// lag any goroutine of the process suffers when the 2 shared cores are
// oversubscribed (by the load itself, -race, or other processes).
func lagMonitor() (maxLag func() time.Duration, stop func()) {
	var worst atomic.Int64
	const period = 5 * time.Millisecond
	stopTick := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		timer := time.NewTimer(period)
		defer timer.Stop()
		for {
			due := time.Now().Add(period)
			timer.Reset(period)
			select {
			case <-stopTick:
				return
			case <-timer.C:
				if late := time.Since(due); int64(late) > worst.Load() {
					worst.Store(int64(late))
				}
			}
		}
	}()
	var once sync.Once
	base := readLatencies()
	return func() time.Duration { return max(time.Duration(worst.Load()), base.worstSince()) },
		func() { once.Do(func() { close(stopTick); <-done }) }
}

// latencyMetrics are the runtime's histograms of how long runnable
// goroutines waited for a CPU and how long the world stopped for GC. A
// single monitor goroutine can be lucky when the run queue is long (under
// -race, with another test binary on the same 2 cores); these see every
// goroutine, the callers included.
var latencyMetrics = []string{"/sched/latencies:seconds", "/sched/pauses/total/gc:seconds"}

type latencySnapshot []metrics.Sample

func readLatencies() latencySnapshot {
	s := make([]metrics.Sample, len(latencyMetrics))
	for i, name := range latencyMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	return s
}

// worstSince returns the upper bound of the highest histogram bucket that
// gained a count since the snapshot (its lower bound for the open-ended
// last bucket).
func (base latencySnapshot) worstSince() time.Duration {
	var worst float64
	for i, now := range readLatencies() {
		if now.Value.Kind() != metrics.KindFloat64Histogram || base[i].Value.Kind() != metrics.KindFloat64Histogram {
			continue
		}
		h, h0 := now.Value.Float64Histogram(), base[i].Value.Float64Histogram()
		for b := len(h.Counts) - 1; b >= 0; b-- {
			if b < len(h0.Counts) && h.Counts[b] > h0.Counts[b] {
				bound := h.Buckets[b+1]
				if math.IsInf(bound, 1) {
					bound = h.Buckets[b]
				}
				worst = max(worst, bound)
				break
			}
		}
	}
	return time.Duration(worst * float64(time.Second))
}

// pace blocks for d: the load schedule's phases, not a wait for an outcome.
func pace(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	<-t.C
}

// quiet discards the client's logs (it logs once per interval per kind).
var quiet = slog.New(slog.DiscardHandler)

// serverClock is the server's clock, which the clock drill jumps.
type serverClock struct{ offset atomic.Int64 }

func (c *serverClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// newServer starts the chaos server.
func newServer(t testing.TB, clock *serverClock) *flagtest.Server {
	t.Helper()
	srv, err := flagtest.Start(
		flagtest.WithConfig(initialConfig()),
		flagtest.WithKeepAlive(keepAlive),
		flagtest.WithClock(clock.now),
		flagtest.WithServerOptions(func(o *flagserver.Options) { o.DecisionTTL = decisionTTL }),
	)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}
