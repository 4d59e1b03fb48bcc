package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// world is one drill's server, client and bookkeeping.
type world struct {
	t        *testing.T
	s        settings
	srv      *flagtest.Server
	clock    *serverClock
	ct       *countingTransport
	client   *flagwire.Client
	hist     *history // the model's record of every flag write
	rec      *recorder
	expect   expect
	subjects []subject
	churns   atomic.Int64
	closed   bool

	fmu    sync.Mutex
	faults []*faultWindow // guarded by fmu
	// downEnd ends the fault window of a world started with the server down.
	downEnd func()

	maxLag  func() time.Duration // worst scheduler lag so far
	stopLag func()

	// closeStartNs and closeEndNs bracket the closed-client drill's Close
	// (UnixNano; zero before).
	closeStartNs, closeEndNs atomic.Int64
}

func (w *world) closeStart() time.Time { return unixNano(w.closeStartNs.Load()) }
func (w *world) closeEnd() time.Time   { return unixNano(w.closeEndNs.Load()) }

func unixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// counts is a point-in-time view of every counter a bound is checked on.
type counts struct {
	at       time.Time
	stats    flagwire.Stats
	client   map[string]int64 // client-side requests by "METHOD /path"
	clientEr int64            // client-side transport errors, all paths
	server   map[string]int64 // server-side requests by "METHOD /path"
	churns   int64
}

func (w *world) counts() counts {
	w.ct.mu.Lock()
	client := make(map[string]int64, len(w.ct.reqs))
	var errs int64
	for k, v := range w.ct.reqs {
		client[k] = v
	}
	for _, v := range w.ct.errs {
		errs += v
	}
	w.ct.mu.Unlock()
	return counts{at: time.Now(), stats: w.client.Stats(), client: client, clientEr: errs, server: w.srv.RequestCounts(), churns: w.churns.Load()}
}

// window is what happened between two counts.
type window struct{ from, to counts }

func (win window) dur() time.Duration { return win.to.at.Sub(win.from.at) }
func (win window) attempts() int64 {
	return int64(win.to.stats.RemoteRequests - win.from.stats.RemoteRequests)
}
func (win window) client(key string) int64 { return win.to.client[key] - win.from.client[key] }
func (win window) server(key string) int64 { return win.to.server[key] - win.from.server[key] }
func (win window) churns() int64           { return win.to.churns - win.from.churns }

// serverPrefix sums the server's requests whose "METHOD /path" starts with
// prefix.
func (win window) serverPrefix(prefix string) int64 {
	var n int64
	for k, v := range win.to.server {
		if strings.HasPrefix(k, prefix) {
			n += v - win.from.server[k]
		}
	}
	return n
}

// cycles is how many periods start within d: d/period rounded up, plus
// the one already running when d began.
func cycles(d, period time.Duration) int64 { return int64(math.Ceil(float64(d)/float64(period))) + 1 }

// fault is one failure of the catalogue.
type fault struct {
	// start begins the failure; the returned func ends it.
	start func(w *world) (end func())
	// hits counts the requests the fault hit during the window.
	hits func(win window) int64
	// remote and local check the calls made during the window against
	// their bound, returning the bound's description and whether it held.
	remote, local func(w *world, win window) (string, bool)
	// codes are the fallback error codes the fault can cause (a fallback
	// with another code needs other evidence, see world.justified).
	codes []flagwire.ErrorCode
	// stampede: run the coalescing stampede while the fault is active.
	stampede bool
	// probe, if set, runs right after start, under load: a check of how
	// the client copes with the fault (such as how fresh it stays).
	probe func(w *world) (string, bool)
}

// drill is one entry of the catalogue, run in each of its modes.
type drill struct {
	name  string
	modes []flagwire.Mode
	fault fault
	// minDur is the drill's shortest load, for faults that need time to
	// show (a stall is noticed after the idle timeout, reconnects wait
	// their backoff).
	minDur time.Duration
}

var (
	localOnly = []flagwire.Mode{flagwire.ModeLocal}
	bothModes = []flagwire.Mode{flagwire.ModeRemote, flagwire.ModeLocal}
)

// inject is a fault of flagtest.Fault f on each path (remote mode's
// evaluate, local mode's config fetch, and the stream if withStream).
func inject(f flagtest.Fault, withStream bool, paths ...string) func(w *world) func() {
	if len(paths) == 0 {
		paths = []string{"/v1/evaluate", "/v1/flags"}
	}
	return func(w *world) func() {
		var removes []func()
		for _, p := range paths {
			g := f
			g.Path = p
			removes = append(removes, w.srv.InjectFault(g))
		}
		if withStream {
			g := f
			g.Path, g.Truncate = "/v1/stream", false
			if g.Body != nil { // a 200 JSON answer is not a stream: refuse it instead
				g.Body, g.Status = nil, http.StatusBadGateway
			}
			removes = append(removes, w.srv.InjectFault(g))
		}
		if withStream {
			w.srv.DropStreams() // the open stream reconnects into the fault
		}
		return func() {
			for _, r := range removes {
				r()
			}
		}
	}
}

// hitPaths counts server requests on the usual fault paths.
func hitPaths(withStream bool) func(win window) int64 {
	return func(win window) int64 {
		n := win.server("POST /v1/evaluate") + win.server("GET /v1/flags")
		if withStream {
			n += win.server("GET /v1/stream")
		}
		return n
	}
}

// breakerBound: while every call fails, the breaker lets through the
// failures that trip it, the calls already in flight, and one half-open
// probe per open period.
func breakerBound(w *world, win window) (string, bool) {
	bound := int64(tripAfter) + 2*int64(w.s.workers) + cycles(win.dur(), openTimeout) + 2
	n := win.attempts()
	return fmt.Sprintf("evaluate attempts %d ≤ %d (breaker)", n, bound), n <= bound
}

// retryAfterBound: after a 429 with Retry-After: 1s, no call for a second
// but those already in flight (callers and the refresher).
func retryAfterBound(w *world, win window) (string, bool) {
	bound := cycles(win.dur(), time.Second) * int64(w.s.workers+2)
	n := win.attempts()
	return fmt.Sprintf("evaluate attempts %d ≤ %d (Retry-After)", n, bound), n <= bound
}

// syncBound: local mode fetches the config once per change event (bursts
// coalesce), once per stream reconnect, and once per poll while the stream
// is down — no retry storm.
func syncBound(w *world, win window) (string, bool) {
	polls := int64(float64(win.dur())/float64(pollInterval)/0.9) + 1
	bound := 2 + win.churns() + win.client("GET /v1/stream") + polls
	n := win.client("GET /v1/flags")
	return fmt.Sprintf("config fetches %d ≤ %d", n, bound), n <= bound
}

// retryAfterSyncBound: local mode's config fetches under 429 with
// Retry-After: 1s should wait the server out like remote mode does.
func retryAfterSyncBound(w *world, win window) (string, bool) {
	bound := cycles(win.dur(), time.Second) + 1
	n := win.client("GET /v1/flags")
	return fmt.Sprintf("config fetches %d ≤ %d (Retry-After)", n, bound), n <= bound
}

// streamBound: stream reconnects wait at least the 500 ms backoff base.
func streamBound(w *world, win window) (string, bool) {
	bound := int64(win.dur()/(500*time.Millisecond)) + 3
	n := win.client("GET /v1/stream")
	return fmt.Sprintf("stream connects %d ≤ %d", n, bound), n <= bound
}

// both checks two bounds.
func both(a, b func(w *world, win window) (string, bool)) func(w *world, win window) (string, bool) {
	return func(w *world, win window) (string, bool) {
		da, oka := a(w, win)
		db, okb := b(w, win)
		return da + "; " + db, oka && okb
	}
}

func noBound(*world, window) (string, bool) { return "", true }

// note is a bound that only describes the window.
func note(desc string) func(*world, window) (string, bool) {
	return func(*world, window) (string, bool) { return desc, true }
}

// Fallback codes each kind of fault can cause.
var (
	codesDown    = []flagwire.ErrorCode{flagwire.CodeUnavailable, flagwire.CodeTimeout, flagwire.CodeCircuitOpen}
	codesGarbage = []flagwire.ErrorCode{flagwire.CodeBadResponse, flagwire.CodeUnavailable, flagwire.CodeTimeout, flagwire.CodeCircuitOpen}
	// 401/403 are not counted by the breaker: never CIRCUIT_OPEN.
	codesAuth = []flagwire.ErrorCode{flagwire.CodeUnauthorized, flagwire.CodeTimeout}
	// A decision for another flag is a per-item failure of a 200 answer:
	// the breaker sees a success.
	codesOtherFlag = []flagwire.ErrorCode{flagwire.CodeBadResponse, flagwire.CodeTimeout}
)

// catalogue is the seed's failure catalogue, as drills.
func catalogue(t *testing.T) []drill {
	malformedEval := []byte(`{"requestId":"x","decisions":[{"flagKey":"bench-flag","variant":tru`)
	badCfg := initialConfig()
	badCfg.Version = 1 << 40
	badCfg.Flags[0].Rules[0].When = "plan == 'enterprise' and" // does not compile
	badCfg.Flags[0].State = "off"
	uncompilable, err := json.Marshal(badCfg)
	if err != nil {
		t.Fatal(err)
	}
	oldCfg := initialConfig() // version 1, and the benchmark flag off: wrong if used
	oldCfg.Flags[0].State = "off"
	older, err := json.Marshal(oldCfg)
	if err != nil {
		t.Fatal(err)
	}
	// oversized is a well-formed answer one KiB over the SDK's 4 MiB bound.
	oversized := []byte(`{"requestId":"x","decisions":[{"flagKey":"bench-flag","variant":true,"ttlSeconds":1,"variantKey":"` +
		strings.Repeat("x", 4<<20+1024) + `"}]}`)
	// otherFlag answers every request with a decision for another flag.
	otherFlag := []byte(`{"requestId":"x","decisions":[{"flagKey":"someone-elses-flag","variant":true,"variantKey":"true","ttlSeconds":1}]}`)
	// streamFault is a fault of the SSE streams alone, started by start:
	// the drill counts stream requests, and the answers stay within the
	// stream's bound (remote) and the sync's and the stream's (local).
	streamFault := func(start func(*world) func()) fault {
		return fault{
			start:  start,
			hits:   func(win window) int64 { return win.server("GET /v1/stream") },
			remote: func(w *world, win window) (string, bool) { return streamBound(w, win) },
			local:  both(syncBound, streamBound),
		}
	}
	// authFault answers every request with status (a refused credential).
	authFault := func(status int) fault {
		return fault{
			start:    inject(flagtest.Fault{Status: status}, true),
			hits:     hitPaths(true),
			codes:    codesAuth,
			remote:   authStreamBound,
			local:    both(syncBound, authStreamBound),
			stampede: true,
			probe:    notRetried,
		}
	}
	return []drill{
		{name: "baseline", modes: bothModes, fault: fault{
			start:    func(*world) func() { return func() {} },
			hits:     func(window) int64 { return 0 },
			remote:   noBound,
			local:    both(syncBound, streamBound),
			stampede: true,
		}},
		{name: "server down", modes: bothModes, fault: fault{
			start: func(w *world) func() {
				w.srv.Down()
				return func() {
					if err := w.srv.Up(); err != nil {
						w.rec.problem("server did not come back", "%v", err)
					}
				}
			},
			hits:     func(win window) int64 { return win.to.clientEr - win.from.clientEr },
			codes:    codesDown,
			remote:   breakerBound,
			local:    both(syncBound, streamBound),
			stampede: true,
		}},
		{name: "slow (2× timeout)", modes: bothModes, fault: fault{
			start:    inject(flagtest.Fault{Latency: 2 * callTimeout}, false),
			hits:     hitPaths(false),
			codes:    codesDown,
			remote:   breakerBound,
			local:    syncBound,
			stampede: true,
		}},
		{name: "5xx storm", modes: bothModes, fault: fault{
			start:    inject(flagtest.Fault{Status: http.StatusServiceUnavailable}, true),
			hits:     hitPaths(true),
			codes:    codesDown,
			remote:   both(breakerBound, streamBound),
			local:    both(syncBound, streamBound),
			stampede: true,
		}},
		{name: "429 + Retry-After", modes: bothModes, fault: fault{
			start:    inject(flagtest.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Second}, true),
			hits:     hitPaths(true),
			codes:    []flagwire.ErrorCode{flagwire.CodeRateLimited, flagwire.CodeTimeout, flagwire.CodeCircuitOpen},
			remote:   both(retryAfterBound, streamBound),
			local:    both(retryAfterSyncBound, streamBound),
			stampede: true,
		}},
		{name: "401 Unauthorized", modes: bothModes, fault: authFault(http.StatusUnauthorized)},
		{name: "403 Forbidden", modes: bothModes, fault: authFault(http.StatusForbidden)},
		{name: "reset mid-body", modes: bothModes, fault: fault{
			start:    inject(flagtest.Fault{Reset: true, Truncate: true}, true),
			hits:     hitPaths(true),
			codes:    codesGarbage,
			remote:   both(breakerBound, streamBound),
			local:    both(syncBound, streamBound),
			stampede: true,
		}},
		{name: "truncated JSON", modes: bothModes, fault: fault{
			start:    inject(flagtest.Fault{Truncate: true}, false),
			hits:     hitPaths(false),
			codes:    codesGarbage,
			remote:   breakerBound,
			local:    syncBound,
			stampede: true,
		}},
		{name: "malformed JSON", modes: bothModes, fault: fault{
			start: func(w *world) func() {
				a := inject(flagtest.Fault{Body: malformedEval}, false, "/v1/evaluate")(w)
				b := inject(flagtest.Fault{Method: http.MethodGet, Body: []byte(`{"version":99,"flags":[{"key":`)}, false, "/v1/flags")(w)
				return func() { a(); b() }
			},
			hits:     hitPaths(false),
			codes:    codesGarbage,
			remote:   breakerBound,
			local:    syncBound,
			stampede: true,
		}},
		{name: "oversized response", modes: remoteOnly, fault: fault{
			start:    inject(flagtest.Fault{Body: oversized}, false, "/v1/evaluate"),
			hits:     func(win window) int64 { return win.server("POST /v1/evaluate") },
			codes:    codesGarbage,
			remote:   breakerBound,
			stampede: true,
		}},
		{name: "decision for another flag", modes: remoteOnly, fault: fault{
			start:    inject(flagtest.Fault{Body: otherFlag}, false, "/v1/evaluate"),
			hits:     func(win window) int64 { return win.server("POST /v1/evaluate") },
			codes:    codesOtherFlag,
			remote:   note("every decision is for another flag: per-item BAD_RESPONSE, nothing cached"),
			stampede: true,
		}},
		{name: "SSE stall", modes: bothModes, fault: streamFault(func(w *world) func() {
			w.srv.StallStreams(true)
			return func() { w.srv.StallStreams(false) }
		}), minDur: 1500 * time.Millisecond},
		{name: "SSE drop", modes: bothModes, fault: streamFault(func(w *world) func() {
			return every(150*time.Millisecond, w.srv.DropStreams)
		}), minDur: 1500 * time.Millisecond},
		{name: "SSE refused", modes: bothModes, fault: fault{
			start: func(w *world) func() {
				end := inject(flagtest.Fault{Status: http.StatusServiceUnavailable}, false, "/v1/stream")(w)
				w.srv.DropStreams()
				testkit.CheckWithin(w.t, 5*time.Second, "the stream to drop", func() bool { return !w.client.Status().StreamConnected })
				return end
			},
			hits:   func(win window) int64 { return win.server("GET /v1/stream") },
			remote: streamBound,
			local:  both(syncBound, streamBound),
			probe:  freshness,
		}, minDur: 1500 * time.Millisecond},
		{name: "config fails to compile", modes: localOnly, fault: fault{
			start:  inject(flagtest.Fault{Method: http.MethodGet, Body: uncompilable}, false, "/v1/flags"),
			hits:   func(win window) int64 { return win.server("GET /v1/flags") },
			local:  syncBound,
			remote: noBound,
		}},
		{name: "older config version", modes: localOnly, fault: fault{
			start: func(w *world) func() {
				// Older than what the client holds only once it synced a
				// write: the served config is version 1, the start's.
				testkit.CheckWithin(w.t, 10*time.Second, "local mode to sync a config newer than version 1", func() bool { return w.client.Status().ConfigVersion > 1 })
				return inject(flagtest.Fault{Method: http.MethodGet, Body: older}, false, "/v1/flags")(w)
			},
			hits:   func(win window) int64 { return win.server("GET /v1/flags") },
			local:  syncBound,
			remote: noBound,
		}},
		{name: "server clock jumps", modes: bothModes, fault: fault{
			start: func(w *world) func() {
				jumps := []time.Duration{time.Hour, -time.Hour, -8 * 24 * time.Hour, 30 * time.Second, 24 * time.Hour, 0}
				var i atomic.Int64
				stop := every(100*time.Millisecond, func() {
					w.clock.offset.Store(int64(jumps[int(i.Add(1))%len(jumps)]))
				})
				return func() { stop(); w.clock.offset.Store(0) }
			},
			hits:   func(win window) int64 { return win.serverPrefix("") },
			remote: note("server clock jumping by ±1 h, -8 d, +30 s, +1 d every 100 ms"),
			local:  both(note("server clock jumping by ±1 h, -8 d, +30 s, +1 d every 100 ms; envelopes it signs off the client's clock are refused"), syncBound),
		}},
	}
}

var remoteOnly = []flagwire.Mode{flagwire.ModeRemote}

// authStreamBound: after a 401/403 the stream stops instead of hammering:
// the drop that moves it into the fault, one refused reconnect, and no
// more (README: "the stream stops").
func authStreamBound(w *world, win window) (string, bool) {
	n := win.client("GET /v1/stream")
	return fmt.Sprintf("stream connects %d ≤ 2 (stops on 401/403)", n), n <= 2
}

// notRetried: a 401/403 is not retried: a cold call makes exactly one
// request. (A breaker opened by load-induced timeouts, or a call that
// times out on a starved CPU, tells nothing: the probe then tries again
// with another cold context.)
func notRetried(w *world) (string, bool) {
	if w.expect.mode != flagwire.ModeRemote {
		return "", true
	}
	var n int64
	var d flagwire.Detail
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		attrs := flagwire.Attributes{"userId": fmt.Sprintf("auth-probe-%d", i), "plan": "pro"}
		_, d = w.client.BoolDetail(flagwire.WithAttributes(context.Background(), attrs), flagBench, false)
		n = w.ct.keyCount(boolKey(flagBench, attrs))
		if d.ErrorCode != flagwire.CodeCircuitOpen && d.ErrorCode != flagwire.CodeTimeout {
			break
		}
		pace(openTimeout / 5)
	}
	return fmt.Sprintf("a cold call during the fault: %d request(s), %s %s (want 1, UNAUTHORIZED: not retried)", n, d.Source, d.ErrorCode),
		n == 1 && d.ErrorCode == flagwire.CodeUnauthorized
}

// knownIssues are bound violations found by this suite in code under
// repair, keyed "drill/mode": they are logged (and marked in the summary)
// rather than failed, unless FLAGWIRE_CHAOS_STRICT=1. Remove an entry with
// its fix.
var knownIssues = map[string]string{}

func strictMode() bool { return os.Getenv("FLAGWIRE_CHAOS_STRICT") == "1" }

// freshness measures how long a change takes to reach the client while
// the stream is gone: local mode must fall back to polling
// (pollInterval, jittered ±10%), remote mode to its decisions' TTL, each
// plus the scheduling slack (world.slack).
func freshness(w *world) (string, bool) {
	limit := pollInterval*11/10 + w.slack()
	if w.expect.mode == flagwire.ModeRemote {
		limit = decisionTTL + w.slack()
	}
	n := w.setChurn()
	start := time.Now()
	var took time.Duration
	testkit.CheckWithin(w.t, 10*time.Second, "a change to arrive without the stream", func() bool {
		v, _ := w.client.StringDetail(w.subjects[1].ctx, flagChurn, defString)
		got, _ := churnN(v)
		took = time.Since(start)
		return got >= n
	})
	return fmt.Sprintf("a change arrived %v after it was made, with the stream down (≤ %v)", took.Round(time.Millisecond), limit), took <= limit
}

// every runs f every interval on a goroutine until the returned func is
// called (which waits for it to stop).
func every(interval time.Duration, f func()) (stop func()) {
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				f()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}

// row is one drill's line of the summary, printed after every test has
// run (see TestMain).
type row struct {
	drill, mode string
	calls       int64
	faults      int64
	sources     [6]int64
	codes       map[flagwire.ErrorCode]int64
	bound       string
	maxLat      time.Duration
	lag         time.Duration // worst scheduler lag during the drill
	late        int           // calls late beyond grace + lag (tolerated: maxLateCalls)
	ok          bool
}

var rows testkit.Rows[row]

// TestChaos runs the catalogue, each drill in each of its modes, under
// concurrent load.
func TestChaos(t *testing.T) {
	s := loadSettings()
	for _, d := range catalogue(t) {
		for _, m := range d.modes {
			t.Run(d.name+"/"+string(m), func(t *testing.T) { runDrill(t, s, d, m) })
		}
	}
}

// worldOptions vary newWorld's defaults.
type worldOptions struct {
	// bootstrap replaces the trusted bootstrap of remote mode (nil: the
	// chaos config, signed); noBootstrap leaves it out.
	bootstrap   []byte
	noBootstrap bool
	// lastKnown, when set, is written to the last-known file first.
	lastKnown []byte
	// down starts the server down; the client does not wait for it.
	down  bool
	extra []flagwire.Option
}

// newWorld starts a server and a client in mode m: a trusted bootstrap in
// remote mode, a last-known file in local mode (which waits for its first
// config unless the server is down).
func newWorld(t *testing.T, s settings, m flagwire.Mode, wo ...worldOptions) *world {
	var o worldOptions
	if len(wo) > 0 {
		o = wo[0]
	}
	w := &world{t: t, s: s, clock: &serverClock{}, ct: newCountingTransport(), hist: newHistory(), rec: newRecorder(), subjects: warmSubjects()}
	w.maxLag, w.stopLag = lagMonitor()
	w.srv = newServer(t, w.clock)
	w.hist.srv = w.srv
	if o.down {
		w.downEnd = w.beginFault("server down from the start", codesDown...)
		w.srv.Down()
	}
	opts := []flagwire.Option{
		flagwire.WithMode(m), flagwire.WithEnvironment(env), flagwire.WithLogger(quiet),
		flagwire.WithHTTPClient(&http.Client{Transport: w.ct}),
		flagwire.WithTrustedKeys(signer.Pub, w.srv.Flagserver().PublicKey()),
	}
	// Options that apply to some modes only (New refuses them elsewhere).
	if m != flagwire.ModeOffline {
		opts = append(opts, flagwire.WithEndpoint(w.srv.URL), flagwire.WithToken(w.srv.Token()),
			flagwire.WithTimeout(callTimeout),
			flagwire.WithBreaker(flagwire.BreakerSettings{ConsecutiveFailures: tripAfter, OpenTimeout: openTimeout}),
			flagwire.WithRetry(flagwire.RetrySettings{MaxAttempts: maxAttempts}),
			flagwire.WithStreamIdleTimeout(streamIdle))
	}
	switch m {
	case flagwire.ModeLocal:
		opts = append(opts, flagwire.WithPollInterval(pollInterval))
	case flagwire.ModeRemote:
		opts = append(opts, flagwire.WithCache(flagwire.CacheSettings{MaxStale: maxStale}))
	}
	w.expect = expect{mode: m}
	if (m == flagwire.ModeRemote || m == flagwire.ModeOffline) && !o.noBootstrap {
		b := o.bootstrap
		if b == nil {
			b = signer.Envelope(t, initialConfig(), time.Now(), time.Hour)
		}
		opts = append(opts, flagwire.WithBootstrap(b))
		w.expect.bootstrap = o.bootstrap == nil
	}
	if m != flagwire.ModeOffline {
		path := filepath.Join(t.TempDir(), "last-known.json")
		if o.lastKnown != nil {
			if err := os.WriteFile(path, o.lastKnown, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		opts = append(opts, flagwire.WithLastKnownFile(path))
	}
	if m == flagwire.ModeLocal {
		w.expect.ready, w.expect.monotonic = !o.down, true
	}
	c, err := flagwire.New(context.Background(), append(opts, o.extra...)...)
	if err != nil {
		w.srv.Close()
		w.stopLag()
		t.Fatal(err)
	}
	w.client = c
	if m == flagwire.ModeLocal && !o.down {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.WaitReady(ctx); err != nil {
			w.close()
			t.Fatal(err)
		}
	}
	return w
}

// close closes the client (bounded), its connections and the server.
func (w *world) close() {
	if w.closed {
		return
	}
	w.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := w.client.Close(ctx); err != nil {
		w.t.Errorf("Close: %v after %v", err, time.Since(start))
	}
	w.ct.base.CloseIdleConnections()
	w.srv.Close()
	w.stopLag()
}

// up ends a world started with the server down.
func (w *world) up() error {
	err := w.srv.Up()
	if w.downEnd != nil {
		w.downEnd()
	}
	return err
}

func runDrill(t *testing.T, s settings, d drill, m flagwire.Mode) {
	ignore := goleak.IgnoreCurrent()
	w := newWorld(t, s, m)
	defer func() {
		w.close()
		if err := goleak.Find(ignore); err != nil {
			t.Errorf("goroutines not back to baseline after Close: %v", err)
		}
	}()
	bound := d.fault.local
	if m == flagwire.ModeRemote {
		bound = d.fault.remote
	}

	maxLag := w.maxLag
	var stampedeNote string
	if m == flagwire.ModeRemote && d.fault.stampede {
		endWindow := w.beginFault(d.name+" (stampede)", d.fault.codes...)
		end := d.fault.start(w)
		stampedeNote = w.stampede()
		end()
		endWindow()
	}

	stop := make(chan struct{})
	waitChurn := w.churner(stop, 50*time.Millisecond)
	waitLoad := w.runLoad(stop)
	dur := max(s.dur, d.minDur)
	pace(dur / 4)
	from := w.counts()
	endWindow := w.beginFault(d.name, d.fault.codes...)
	end := d.fault.start(w)
	var probeNote string
	if d.fault.probe != nil {
		note, ok := d.fault.probe(w)
		probeNote = note
		if !ok {
			if issue, known := knownIssues[d.name+"/"+string(m)]; known && !strictMode() {
				t.Logf("KNOWN ISSUE (FLAGWIRE_CHAOS_STRICT=1 fails on it): %s\n\t%s", note, issue)
				probeNote = "KNOWN ISSUE: " + note
			} else {
				t.Errorf("%s", note)
			}
		}
	}
	if rest := dur/2 - time.Since(from.at); rest > 0 {
		pace(rest)
	}
	to := w.counts()
	end()
	endWindow()
	pace(dur / 4)
	close(stop)
	waitLoad()
	waitChurn()

	win := window{from, to}
	desc, ok := bound(w, win)
	if !ok {
		if issue, known := knownIssues[d.name+"/"+string(m)]; known && !strictMode() {
			t.Logf("KNOWN ISSUE (FLAGWIRE_CHAOS_STRICT=1 fails on it): server calls not bounded: %s\n\t%s", desc, issue)
			desc = "KNOWN ISSUE: " + desc
		} else {
			t.Errorf("server calls not bounded: %s", desc)
		}
	}
	w.recover()
	if m == flagwire.ModeRemote {
		stampedeNote = strings.TrimPrefix(stampedeNote+"; "+w.checkCoalescing(), "; ")
	}
	for _, note := range []string{probeNote, stampedeNote} {
		if note != "" {
			desc = strings.TrimPrefix(desc+"; "+note, "; ")
		}
	}
	w.rec.failIfProblems(t)
	late := w.rec.checkTimeouts(t, maxLag())
	r := row{drill: d.name, mode: string(m), calls: w.rec.calls.Load(), faults: d.fault.hits(win), codes: w.rec.codes(),
		bound: desc, maxLat: time.Duration(w.rec.maxLat.Load()), lag: maxLag(), late: late, ok: !t.Failed()}
	for i := range r.sources {
		r.sources[i] = w.rec.bySource[i].Load()
	}
	rows.Add(r)
}

// stampede makes 64 concurrent cold misses of one key (while the drill's
// fault, if any, is active) and checks their answers; the requests they
// cost are checked with every other key's by checkCoalescing.
func (w *world) stampede() string {
	const n = 64
	attrs := flagwire.Attributes{"userId": "stampede", "plan": "pro", "region": "US", "appVersion": "2.3.1"}
	ctx := flagwire.WithAttributes(context.Background(), attrs)
	key := boolKey(flagBench, attrs)
	var worst callInfo
	for _, c := range w.coldMisses(ctx, attrs, n) {
		if c.lat > worst.lat {
			worst = c
		}
	}
	// The callers wait on one request: they are one event for the latency
	// check, whose lateness is the slowest caller's.
	w.rec.overLimit(worst.lat-callTimeout, fmt.Sprintf("stampede calls took up to %v (source %v, code %s)", worst.lat, worst.d.Source, worst.d.ErrorCode))
	return fmt.Sprintf("%d concurrent cold misses → %d requests", n, w.ct.keyCount(key))
}

// coldMisses makes n concurrent Bool evaluations of flagBench in ctx
// (whose attributes are attrs), released at once, checks each answer, and
// returns the calls.
func (w *world) coldMisses(ctx context.Context, attrs flagwire.Attributes, n int) []callInfo {
	calls := make([]callInfo, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			<-gate
			c := callInfo{kind: callRight, key: flagBench, as: "bool", fi: -1, si: -1, attrs: attrs, limit: callTimeout}
			c.start = time.Now()
			c.got, c.def, c.d = evalAs(w.client, ctx, flagBench, "bool")
			c.end = time.Now()
			c.lat = c.end.Sub(c.start)
			w.checkAnswer(&caller{fresh: map[[2]int]time.Time{}}, &c)
			calls[i] = c
		})
	}
	close(gate)
	wg.Wait()
	return calls
}

// checkCoalescing checks every (flag, context) key's evaluate requests over
// the whole drill (see countingTransport.coalescing): requests of one key
// overlap only across an invalidation (fails the drill); a refetch needs a reason (a violation
// is the known issue "coalescing" unless FLAGWIRE_CHAOS_STRICT=1).
func (w *world) checkCoalescing() string {
	overlaps, unjustified, nUnjust, keys, reqs := w.ct.coalescing(w.hist.count, w.ct.total("GET /v1/stream"))
	for _, o := range overlaps {
		w.t.Errorf("coalescing: requests of one key in flight at once: %s", o)
	}
	note := fmt.Sprintf("%d requests for %d keys, none overlapping", reqs, keys)
	if nUnjust > 0 {
		msg := fmt.Sprintf("coalescing: %d refetches without a reason, e.g.\n\t%s", nUnjust, strings.Join(unjustified, "\n\t"))
		if issue, known := knownIssues["coalescing"]; known && !strictMode() {
			w.t.Logf("KNOWN ISSUE (FLAGWIRE_CHAOS_STRICT=1 fails on it): %s\n\t%s", msg, issue)
			note += fmt.Sprintf("; KNOWN ISSUE: %d unjustified refetches", nUnjust)
		} else {
			w.t.Error(msg)
		}
	}
	return note
}

// recover checks the client heals once the faults are gone: remote mode
// answers fresh again, and both modes pick up a new change.
func (w *world) recover() {
	t := w.t
	final := w.setChurn()
	want := fmt.Sprintf("v%d", final)
	probe := w.subjects[1].ctx
	switch w.expect.mode {
	case flagwire.ModeRemote:
		i := 0
		testkit.CheckWithin(t, 5*time.Second, "a fresh remote answer after the faults", func() bool {
			i++
			ctx := flagwire.WithAttributes(context.Background(), flagwire.Attributes{"userId": fmt.Sprintf("recover-%d", i)})
			_, d := w.client.BoolDetail(ctx, flagBench, false)
			return d.Source == flagwire.SourceRemote
		})
		testkit.CheckWithin(t, 5*time.Second, "the last change ("+want+") to reach a cached context", func() bool {
			v, d := w.client.StringDetail(probe, flagChurn, defString)
			return v == want && (d.Source == flagwire.SourceRemote || d.Source == flagwire.SourceCache)
		})
	case flagwire.ModeLocal:
		testkit.CheckWithin(t, 5*time.Second, "the last change ("+want+") to reach local mode", func() bool {
			v, d := w.client.StringDetail(probe, flagChurn, defString)
			return v == want && d.Source == flagwire.SourceLocal
		})
		testkit.CheckWithin(t, 5*time.Second, "status valid", func() bool { return w.client.Status().State == flagwire.StateReady })
	}
}

func printSummary(s settings) {
	all := rows.All()
	if len(all) == 0 {
		return
	}
	var b strings.Builder
	kind := "short"
	if s.long {
		kind = "long"
	}
	fmt.Fprintf(&b, "\nCHAOS SUMMARY (%s: %d callers × %v per drill; client timeout %v, caller deadline %v on 1 call in 4)\n", kind, s.workers, s.dur, callTimeout, callerDL)
	fmt.Fprintf(&b, "%-24s %-8s %9s %7s | %8s %8s %7s %8s %9s %7s | %-8s %-8s | %s\n",
		"drill", "mode", "calls", "faults", "REMOTE", "CACHE", "STALE", "LOCAL", "BOOTSTRAP", "DEFAULT", "max call", "sched lag", "errors by code; server calls")
	var total row
	total.codes = map[flagwire.ErrorCode]int64{}
	for _, r := range all {
		status := ""
		if !r.ok {
			status = "FAILED "
		}
		fmt.Fprintf(&b, "%-24s %-8s %9d %7d | %8d %8d %7d %8d %9d %7d | %-8s %-9s | %s%s; %s\n",
			r.drill, r.mode, r.calls, r.faults,
			r.sources[srcIdx(flagwire.SourceRemote)], r.sources[srcIdx(flagwire.SourceCache)], r.sources[srcIdx(flagwire.SourceStale)],
			r.sources[srcIdx(flagwire.SourceLocal)], r.sources[srcIdx(flagwire.SourceBootstrap)], r.sources[srcIdx(flagwire.SourceCallerDefault)],
			r.maxLat.Round(100*time.Microsecond), r.lag.Round(100*time.Microsecond), status, formatCodes(r.codes), lateNote(r.late)+r.bound)
		total.calls += r.calls
		total.faults += r.faults
		for i, n := range r.sources {
			total.sources[i] += n
		}
		for k, v := range r.codes {
			total.codes[k] += v
		}
		total.maxLat = max(total.maxLat, r.maxLat)
		total.lag = max(total.lag, r.lag)
	}
	fmt.Fprintf(&b, "%-24s %-8s %9d %7d | %8d %8d %7d %8d %9d %7d | %-8s %-9s | %s\n",
		"TOTAL", "", total.calls, total.faults,
		total.sources[srcIdx(flagwire.SourceRemote)], total.sources[srcIdx(flagwire.SourceCache)], total.sources[srcIdx(flagwire.SourceStale)],
		total.sources[srcIdx(flagwire.SourceLocal)], total.sources[srcIdx(flagwire.SourceBootstrap)], total.sources[srcIdx(flagwire.SourceCallerDefault)],
		total.maxLat.Round(100*time.Microsecond), total.lag.Round(100*time.Microsecond), formatCodes(total.codes))
	fmt.Print(b.String())
}

func lateNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d late call(s) (scheduling noise, tolerated ≤ %d); ", n, maxLateCalls)
}

func formatCodes(m map[flagwire.ErrorCode]int64) string {
	if len(m) == 0 {
		return "no errors"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[flagwire.ErrorCode(k)])
	}
	return strings.Join(parts, " ")
}
