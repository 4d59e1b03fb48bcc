package chaos

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/wire"
)

func TestMain(m *testing.M) {
	flag.Parse()
	goleak.VerifyTestMain(summaryAfter{m})
}

// summaryAfter runs the tests, then prints the chaos summary (shown by go
// test with -v, or when the package fails).
type summaryAfter struct{ m *testing.M }

func (s summaryAfter) Run() int {
	code := s.m.Run()
	printSummary(loadSettings())
	return code
}

var (
	flagDuration = flag.Duration("chaos.duration", 0, "load per drill (default 1s; 10s with FLAGWIRE_CHAOS=long)")
	flagWorkers  = flag.Int("chaos.workers", 0, "concurrent callers per drill (default 8)")
	flagContexts = flag.Int("chaos.contexts", 0, "distinct contexts of the memory drill (default 1,000,000 local (200,000 under -race) and 20,000 remote; long: 1,000,000 each)")
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
	s := settings{dur: 700 * time.Millisecond, workers: 8, localContexts: 1_000_000, remoteContexts: 20_000}
	if raceEnabled {
		s.localContexts = 200_000 // ~10 µs each under -race; 10⁶ without it and in the long run
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
	burstWork    = time.Millisecond // a caller's busy period between rests
)

// Flags of the chaos config. Defaults passed by callers are sentinels no
// flag ever serves, so a served default is unambiguous.
const (
	flagBench   = "bench-flag"
	flagPricing = "pricing"
	flagItems   = "max-items"
	flagChurn   = "churn" // its only variant is "v<N>", N the churn counter
	defPricing  = "<default>"
	defItems    = -1.0
	defChurn    = "<default>"
)

var flagKeys = []string{flagBench, flagPricing, flagItems, flagChurn}

// chaosConfig is the environment: the design's benchmark flag (3 rules, a
// 1,000-id segment, a 25% rollout), a string experiment with a weighted
// rollout, a number flag, and the churn flag the drills keep changing.
func chaosConfig(churn int64) *evaluate.Config {
	ids := make([]string, segmentSize)
	for i := range ids {
		ids[i] = fmt.Sprintf("beta-%04d", i)
	}
	return &evaluate.Config{
		Environment: env,
		Salt:        "chaos-salt",
		Version:     1,
		Segments:    []evaluate.Segment{{Key: "beta_testers", Included: ids}},
		Flags: []evaluate.Flag{
			{
				Key: flagBench,
				Rules: []evaluate.Rule{
					{ID: "enterprise-eu", When: "plan == 'enterprise' and region == 'EU'", Serve: evaluate.Serve{Variant: true}},
					{ID: "beta", Segment: "beta_testers", Serve: evaluate.Serve{Variant: true}},
					{ID: "old-app", When: "semver(appVersion) < '2.0.0'", Serve: evaluate.Serve{Variant: false}},
				},
				Default: &evaluate.Serve{Rollout: []evaluate.WeightedVariant{{Variant: true, Weight: 25}, {Variant: false, Weight: 75}}},
			},
			{
				Key:      flagPricing,
				Type:     evaluate.TypeString,
				Variants: []evaluate.Variant{{Name: "control"}, {Name: "A"}, {Name: "B"}},
				Rules: []evaluate.Rule{{ID: "eu", When: "country in ['DE', 'FR']", Serve: evaluate.Serve{Rollout: []evaluate.WeightedVariant{
					{Variant: "control", Weight: 34}, {Variant: "A", Weight: 33}, {Variant: "B", Weight: 33}}}}},
				Default: &evaluate.Serve{Variant: "control"},
			},
			{
				Key:      flagItems,
				Type:     evaluate.TypeNumber,
				Variants: []evaluate.Variant{{Name: "small", Value: 10}, {Name: "large", Value: 100}},
				Rules:    []evaluate.Rule{{ID: "big", When: "plan == 'enterprise'", Serve: evaluate.Serve{Variant: "large"}}},
				Default:  &evaluate.Serve{Variant: "small"},
			},
			churnFlag(churn),
		},
	}
}

func churnFlag(n int64) evaluate.Flag {
	v := "v" + strconv.FormatInt(n, 10)
	return evaluate.Flag{Key: flagChurn, Type: evaluate.TypeString, Variants: []evaluate.Variant{{Name: v}}, Default: &evaluate.Serve{Variant: v}}
}

// ---- the oracle: what the server would decide ----

// oracle decides every flag but churn with the chaos config compiled by
// the test, and accepts churn values "vN" for 1 ≤ N ≤ the latest N set.
type oracle struct {
	snap     *evaluate.Snapshot
	churnMax atomic.Int64 // raised before the server is changed
}

func newOracle(t testing.TB) *oracle {
	snap, err := evaluate.Compile(chaosConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	o := &oracle{snap: snap}
	o.churnMax.Store(1)
	return o
}

// check returns "" if got is an answer the server could give for key and
// attrs, else what is wrong with it.
func (o *oracle) check(key string, attrs flagwire.Attributes, got any) string {
	if key == flagChurn {
		n, ok := churnN(got)
		if !ok || n < 1 || n > o.churnMax.Load() {
			return fmt.Sprintf("churn value %v never served (latest v%d)", got, o.churnMax.Load())
		}
		return ""
	}
	want := o.snap.Evaluate(key, attrs, time.Now()).Value
	if f, ok := want.(int); ok {
		want = float64(f)
	}
	if got != want {
		return fmt.Sprintf("%v, the server decides %v", got, want)
	}
	return ""
}

func churnN(v any) (int64, bool) {
	s, ok := v.(string)
	if !ok || !strings.HasPrefix(s, "v") {
		return 0, false
	}
	n, err := strconv.ParseInt(s[1:], 10, 64)
	return n, err == nil
}

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

func (r *recorder) observe(d flagwire.Detail, lat time.Duration) {
	r.calls.Add(1)
	if int(d.Source) < len(r.bySource) {
		r.bySource[d.Source].Add(1)
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

// ---- counting transport: the client's HTTP traffic, seen from its side ----

// countingTransport counts the client's requests and transport errors by
// "METHOD /path". It also lets a drill close idle connections after the
// client closed (the client leaves a caller's transport alone).
type countingTransport struct {
	base *http.Transport
	mu   sync.Mutex
	reqs map[string]int64
	errs map[string]int64
}

func newCountingTransport() *countingTransport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &countingTransport{base: tr, reqs: map[string]int64{}, errs: map[string]int64{}}
}

func (ct *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	key := r.Method + " " + r.URL.Path
	resp, err := ct.base.RoundTrip(r)
	ct.mu.Lock()
	ct.reqs[key]++
	if err != nil {
		ct.errs[key]++
	}
	ct.mu.Unlock()
	return resp, err
}

// ---- signing ----

// signer signs bootstrap and last-known envelopes with a key the chaos
// clients trust.
type signer struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

func newSigner() signer {
	seed := sha256.Sum256([]byte("flagwire chaos signing key"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	return signer{pub: priv.Public().(ed25519.PublicKey), priv: priv}
}

// envelope signs cfg, valid from issued for ttl.
func (s signer) envelope(t testing.TB, cfg *evaluate.Config, issued time.Time, ttl time.Duration) []byte {
	t.Helper()
	payload, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := wire.BootstrapEnvelope{Environment: cfg.Environment, IssuedAt: issued, ExpiresAt: issued.Add(ttl), Version: cfg.Version, Payload: payload}
	e.Sign(s.priv)
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---- the load ----

// subject is one evaluation context of the warm set.
type subject struct {
	ctx   context.Context
	attrs flagwire.Attributes
}

// warmSubjects are the contexts the callers keep coming back to (so the
// cache has something to serve stale), covering every rule.
func warmSubjects(n int) []subject {
	plans := []string{"pro", "enterprise", "free"}
	regions := []string{"US", "EU"}
	countries := []string{"DE", "US", "FR"}
	versions := []string{"2.3.1", "1.9.0", "2.0.0"}
	out := make([]subject, n)
	for i := range out {
		id := "user-" + strconv.Itoa(i)
		if i%5 == 0 {
			id = fmt.Sprintf("beta-%04d", i*7%segmentSize)
		}
		attrs := flagwire.Attributes{
			"userId": id, "plan": plans[i%3], "region": regions[i/3%2],
			"country": countries[i%len(countries)], "appVersion": versions[i/2%3],
		}
		out[i] = subject{ctx: flagwire.WithAttributes(context.Background(), attrs), attrs: attrs}
	}
	return out
}

// expect says which answers a drill allows.
type expect struct {
	mode flagwire.Mode
	// bootstrap: a trusted bootstrap holding every flag is loaded, so a
	// remote-mode failure never comes down to the caller's default.
	bootstrap bool
	// ready: local mode had its first config before the load began, so
	// every answer is LOCAL.
	ready bool
	// monotonic: local mode never goes back to an older churn version.
	monotonic bool
}

// caller is one load goroutine's state.
type caller struct {
	id    int
	rng   *rand.Rand
	fresh map[[2]int]bool // (flag index, warm subject) answered fresh by this caller
	churn int64           // highest churn version seen (local mode)
	cold  int
}

// call makes one evaluation and checks it.
func (w *world) call(cl *caller) {
	fi := cl.rng.IntN(len(flagKeys))
	key := flagKeys[fi]
	si := -1
	var ctx context.Context
	var attrs flagwire.Attributes
	if cl.rng.IntN(16) == 0 { // a cold context: a guaranteed miss in remote mode
		cl.cold++
		attrs = flagwire.Attributes{"userId": fmt.Sprintf("cold-%d-%d", cl.id, cl.cold), "plan": "pro", "region": "EU", "country": "DE", "appVersion": "2.3.1"}
		ctx = flagwire.WithAttributes(context.Background(), attrs)
	} else {
		si = cl.rng.IntN(len(w.subjects))
		ctx, attrs = w.subjects[si].ctx, w.subjects[si].attrs
	}
	limit := callTimeout
	if cl.rng.IntN(4) == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, callerDL)
		defer cancel()
		limit = callerDL
	}
	var (
		got, def any
		d        flagwire.Detail
	)
	start := time.Now()
	switch key {
	case flagBench:
		got, d = w.client.BoolDetail(ctx, key, false)
		def = false
	case flagPricing:
		got, d = w.client.StringDetail(ctx, key, defPricing)
		def = defPricing
	case flagItems:
		got, d = w.client.FloatDetail(ctx, key, defItems)
		def = defItems
	case flagChurn:
		got, d = w.client.StringDetail(ctx, key, defChurn)
		def = defChurn
	}
	lat := time.Since(start)
	w.rec.observe(d, lat)
	w.rec.overLimit(lat-limit, fmt.Sprintf("%s took %v (limit %v, source %v, code %s)", key, lat, limit, d.Source, d.ErrorCode))
	w.checkAnswer(cl, fi, si, key, attrs, got, def, d)
}

// checkAnswer applies the drill's expectations to one answer.
func (w *world) checkAnswer(cl *caller, fi, si int, key string, attrs flagwire.Attributes, got, def any, d flagwire.Detail) {
	r, e := w.rec, w.expect
	if d.Source == flagwire.SourceDefault {
		if got != def {
			r.problem("default source with a non-default value", "%s: %v (default %v)", key, got, def)
		}
		if d.ErrorCode == "" {
			r.problem("default served without an error code", "%s: %+v", key, d)
		}
	} else if msg := w.oracle.check(key, attrs, got); msg != "" {
		r.problem("wrong answer", "%s for %v from %v: %s", key, attrs["userId"], d.Source, msg)
	}
	switch e.mode {
	case flagwire.ModeRemote:
		switch d.Source {
		case flagwire.SourceRemote, flagwire.SourceCache:
			if d.ErrorCode != "" {
				r.problem("fresh answer with an error code", "%s: %+v", key, d)
			}
			// The churn flag changes every 50 ms, and a change drops its
			// cached decisions for good (never served again, not even
			// stale), so falling back past them is the right order.
			if si >= 0 && key != flagChurn {
				cl.fresh[[2]int{fi, si}] = true
			}
		case flagwire.SourceStale, flagwire.SourceBootstrap:
			if d.ErrorCode == "" {
				r.problem("fallback without an error code", "%s: %+v", key, d)
			}
		case flagwire.SourceDefault:
			if e.bootstrap && d.ErrorCode != flagwire.ErrorClosed {
				r.problem("fallback order: default served though the bootstrap holds the flag", "%s: %+v", key, d)
			}
		default:
			r.problem("source not possible in remote mode", "%s: %v", key, d.Source)
		}
		if si >= 0 && cl.fresh[[2]int{fi, si}] && (d.Source == flagwire.SourceBootstrap || d.Source == flagwire.SourceDefault) {
			r.problem("fallback order: a cached decision was skipped", "%s for %v: %v %s after a fresh answer", key, attrs["userId"], d.Source, d.ErrorCode)
		}
	case flagwire.ModeOffline:
		if d.Source != flagwire.SourceBootstrap || d.ErrorCode != "" {
			r.problem("offline mode served something else than its bootstrap", "%s: %+v", key, d)
		}
	default: // local
		switch d.Source {
		case flagwire.SourceLocal:
			if d.ErrorCode != "" {
				r.problem("local answer with an error code", "%s: %+v", key, d)
			}
		case flagwire.SourceBootstrap, flagwire.SourceDefault:
			if e.ready {
				r.problem("local mode fell back after its first config", "%s: %+v", key, d)
			}
			if e.bootstrap && d.Source == flagwire.SourceDefault {
				r.problem("fallback order: default served though the bootstrap holds the flag", "%s: %+v", key, d)
			}
		default:
			r.problem("source not possible in local mode", "%s: %v", key, d.Source)
		}
		if e.monotonic && key == flagChurn && d.Source == flagwire.SourceLocal {
			if n, _ := churnN(got); n < cl.churn {
				r.problem("local config went back to an older version", "churn v%d after v%d", n, cl.churn)
			} else {
				cl.churn = n
			}
		}
	}
}

// runLoad runs the workers until stop is closed.
func (w *world) runLoad(stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	for i := 0; i < w.s.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					w.rec.problem("panic", "%v", p)
				}
			}()
			cl := &caller{id: i, rng: rand.New(rand.NewPCG(uint64(i), 42)), fresh: map[[2]int]bool{}}
			// Each caller works in bursts of burstWork and rests
			// (workers-1)×burstWork between them, so the callers together
			// use about one of the two cores and the server and the
			// client's own goroutines get the other.
			rest := time.NewTimer(0)
			defer rest.Stop()
			<-rest.C
			for {
				burst := time.Now()
				for time.Since(burst) < burstWork {
					select {
					case <-stop:
						return
					default:
					}
					w.call(cl)
				}
				rest.Reset(time.Duration(w.s.workers-1) * burstWork)
				select {
				case <-stop:
					return
				case <-rest.C:
				}
			}
		}()
	}
	return wg.Wait
}

// churner changes the churn flag every interval until stop is closed, and
// counts the changes.
func (w *world) churner(stop <-chan struct{}, interval time.Duration) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				w.setChurn()
			}
		}
	}()
	return func() { <-done }
}

// setChurn sets the next churn version: the oracle first, then the server.
func (w *world) setChurn() int64 {
	n := w.oracle.churnMax.Add(1)
	if _, err := w.srv.SetFlag(env, churnFlag(n)); err != nil {
		w.rec.problem("server write failed", "%v", err)
	}
	w.churns.Add(1)
	return n
}

// waitFor polls cond every few milliseconds until it holds or timeout
// passes: waiting on a condition, never on a fixed sleep.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) bool {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Errorf("timed out after %v waiting for %s", timeout, what)
			return false
		}
	}
	return true
}

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
	return func() time.Duration { return time.Duration(worst.Load()) },
		func() { once.Do(func() { close(stopTick); <-done }) }
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
		flagtest.WithConfig(chaosConfig(1)),
		flagtest.WithKeepAlive(keepAlive),
		flagtest.WithClock(clock.now),
		flagtest.WithServerOptions(func(o *flagserver.Options) { o.DecisionTTL = decisionTTL }),
	)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}
