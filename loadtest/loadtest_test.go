package loadtest

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

var (
	flagDuration    = flag.Duration("load.duration", 0, "time bound per evaluate workload (default 2s; long 20s)")
	flagRequests    = flag.Int("load.requests", 0, "request bound per evaluate workload (default 20,000; long 500,000)")
	flagSubscribers = flag.Int("load.subscribers", 0, "SSE subscribers of the fan-out test (default 1,000; long 5,000)")
)

// settings bound the run: short by default, long with FLAGWIRE_LOAD=long.
type settings struct {
	long        bool
	dur         time.Duration
	requests    int
	subscribers int
}

func loadSettings() settings {
	s := settings{dur: 2 * time.Second, requests: 20_000, subscribers: 1000}
	if os.Getenv("FLAGWIRE_LOAD") == "long" {
		s = settings{long: true, dur: 20 * time.Second, requests: 500_000, subscribers: 5000}
	}
	if *flagDuration > 0 {
		s.dur = *flagDuration
	}
	if *flagRequests > 0 {
		s.requests = *flagRequests
	}
	if *flagSubscribers > 0 {
		s.subscribers = *flagSubscribers
	}
	return s
}

func TestMain(m *testing.M) {
	flag.Parse()
	goleak.VerifyTestMain(testkit.RunThen(m, printReport))
}

// report is the figures' lines, printed after the tests as a Markdown table.
var report testkit.Rows[string]

func printReport() {
	lines := report.All()
	if len(lines) == 0 {
		return
	}
	fmt.Printf("\nLOAD (reference server over loopback, %d cores shared by client and server, %s)\n\n", runtime.NumCPU(), runtime.Version())
	fmt.Println("| workload | result |\n|---|---|")
	for _, l := range lines {
		fmt.Println(l)
	}
}

const (
	env   = "prod"
	token = "load-token"
)

// benchConfig is the design's benchmark flag and 99 more flags like it
// (for batches of 100), with the 1,000-id segment.
func benchConfig() *evaluate.Config {
	cfg := &evaluate.Config{Environment: env, Salt: "load-salt", Segments: []evaluate.Segment{testkit.BetaSegment(1000)}}
	cfg.Flags = append(cfg.Flags, testkit.BenchFlag("bench-flag"))
	for i := 0; i < 99; i++ {
		cfg.Flags = append(cfg.Flags, testkit.BenchFlag("flag-"+strconv.Itoa(i)))
	}
	return cfg
}

// startServer runs a flagserver on 127.0.0.1 with rate limits off and one
// read/write token.
func startServer(t testing.TB) (*flagserver.Server, *httptest.Server) {
	t.Helper()
	fs, err := flagserver.New(flagserver.Options{
		Configs:             []*evaluate.Config{benchConfig()},
		Tokens:              []flagserver.Token{{Secret: token, Subject: "loadtest", Scopes: []string{wire.ScopeRead, wire.ScopeWrite}}},
		ReadLimit:           flagserver.RateLimit{PerSecond: -1},
		WriteLimit:          flagserver.RateLimit{PerSecond: -1},
		RequireChangeReason: map[string]bool{},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(fs) // listens on 127.0.0.1
	t.Cleanup(func() {
		fs.Close() // ends the streams
		hs.Close()
	})
	return fs, hs
}

// evaluateBodies are request bodies for n decisions each, one per
// distinct subject (the server has no cache to hit, but it is realistic).
func evaluateBodies(n, count int) [][]byte {
	plans := []string{"pro", "enterprise", "free"}
	bodies := make([][]byte, count)
	for i := range bodies {
		req := wire.EvaluateRequest{Environment: env, Options: wire.EvaluateOptions{IncludeReasons: true}}
		for j := 0; j < n; j++ {
			key := "bench-flag"
			if j > 0 {
				key = "flag-" + strconv.Itoa(j-1)
			}
			req.Requests = append(req.Requests, wire.EvaluationInput{
				FlagKey:      key,
				DefaultValue: json.RawMessage("false"),
				Context:      map[string]any{"userId": fmt.Sprintf("user-%d", i), "plan": plans[i%3], "region": "EU", "appVersion": "2.3.1"},
			})
		}
		b, _ := json.Marshal(req)
		bodies[i] = b
	}
	return bodies
}

// result is one workload's figures.
type result struct {
	requests  int
	decisions int
	elapsed   time.Duration
	lat       []time.Duration // sorted
	errors    int64
}

func (r result) quantile(q float64) time.Duration { return testkit.Quantile(r.lat, q) }

func (r result) String() string {
	secs := r.elapsed.Seconds()
	return fmt.Sprintf("%d requests in %v: **%.0f req/s** (%.0f decisions/s); latency p50 %v, p90 %v, **p99 %v**, max %v",
		r.requests, r.elapsed.Round(time.Millisecond), float64(r.requests)/secs, float64(r.decisions)/secs,
		r.quantile(0.5).Round(time.Microsecond), r.quantile(0.9).Round(time.Microsecond),
		r.quantile(0.99).Round(time.Microsecond), r.lat[len(r.lat)-1].Round(time.Microsecond))
}

// runEvaluate posts bodies round-robin to POST /v1/evaluate from
// concurrency goroutines until maxReq requests were made or maxDur passed.
func runEvaluate(t *testing.T, url string, bodies [][]byte, decisions, concurrency int, maxDur time.Duration, maxReq int) result {
	t.Helper()
	newReq := func(i int) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/evaluate", bytes.NewReader(bodies[i%len(bodies)]))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	check := func(body []byte) (int, error) {
		var out wire.EvaluateResponse
		if err := json.Unmarshal(body, &out); err != nil {
			return 0, err
		}
		if len(out.Decisions) != decisions || out.Decisions[0].Error != nil {
			return 0, fmt.Errorf("%d decisions, want %d without errors", len(out.Decisions), decisions)
		}
		return decisions, nil
	}
	r, _, _ := drive(t, concurrency, maxDur, maxReq, newReq, check)
	r.decisions = r.requests * decisions
	return r
}

// drive makes the requests newReq builds (request i for i = 0, 1, …) from
// concurrency goroutines until maxReq were made or maxDur passed, and
// checks every 100th answer with check, which returns the answers it
// holds. It returns the result (latencies sorted, decisions unset) with
// the answers per request and the size of the last checked answer. A
// failed request, a status other than 200 or an answer check refuses is
// an error (reported through t).
func drive(t *testing.T, concurrency int, maxDur time.Duration, maxReq int, newReq func(i int) *http.Request, check func([]byte) (int, error)) (r result, perAnswer, size int) {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: concurrency, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	lat := make([]time.Duration, maxReq)
	var next, errs, answers, lastSize atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(maxDur)
	start := time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= maxReq || time.Now().After(deadline) {
					next.Add(-1)
					return
				}
				req := newReq(i)
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					lat[i] = time.Since(t0)
					continue
				}
				var body []byte
				if i%100 == 0 { // check a sample of the answers
					body, err = io.ReadAll(resp.Body)
				} else {
					_, err = io.Copy(io.Discard, resp.Body)
				}
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if err != nil || resp.StatusCode != http.StatusOK {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("HTTP %d %v", resp.StatusCode, err))
					continue
				}
				if body != nil {
					n, err := check(body)
					if err != nil {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("bad answer (%v): %.200s", err, body))
						continue
					}
					answers.Store(int64(n))
					lastSize.Store(int64(len(body)))
				}
			}
		}()
	}
	wg.Wait()
	n := int(next.Load())
	r = result{requests: n, elapsed: time.Since(start), lat: lat[:n], errors: errs.Load()}
	slices.Sort(r.lat)
	if r.errors > 0 {
		t.Errorf("%d of %d requests failed; first: %v", r.errors, n, firstErr.Load())
	}
	return r, int(answers.Load()), int(lastSize.Load())
}

// TestLoadEvaluate measures POST /v1/evaluate over loopback: one decision
// per request (the SDK's miss path) from 1 and 16 concurrent clients, and
// batches of 100 decisions from 8.
func TestLoadEvaluate(t *testing.T) {
	s := loadSettings()
	_, hs := startServer(t)
	single := evaluateBodies(1, 1000)
	batch := evaluateBodies(100, 50)
	for _, w := range []struct {
		name        string
		bodies      [][]byte
		decisions   int
		concurrency int
	}{
		{"1 decision/request, 1 client", single, 1, 1},
		{"1 decision/request, 16 clients", single, 1, 16},
		{"100 decisions/request, 8 clients", batch, 100, 8},
	} {
		t.Run(w.name, func(t *testing.T) {
			r := runEvaluate(t, hs.URL, w.bodies, w.decisions, w.concurrency, s.dur, s.requests)
			t.Log(r)
			report.Add(fmt.Sprintf("| POST /v1/evaluate, %s | %s |", w.name, r))
			if r.requests == 0 {
				t.Fatal("no request completed")
			}
			// A sanity bound, not a target: loopback on a shared 2-core
			// machine (and -race in CI) varies a lot.
			if p99 := r.quantile(0.99); p99 > 2*time.Second {
				t.Errorf("p99 %v", p99)
			}
		})
	}
}

// memUsage is the live heap plus goroutine stacks after a full collection.
func memUsage() uint64 {
	ms := testkit.GCMemStats()
	return ms.HeapInuse + ms.StackInuse
}

// maxPerSubscriber bounds the server's memory per SSE subscriber.
const maxPerSubscriber = 64 << 10

// TestLoadSSEFanout connects n SSE subscribers over raw TCP (so the
// client side costs only a socket each while memory is measured), measures
// the server's memory per subscriber, then makes one change and measures
// how long it takes to reach every subscriber.
func TestLoadSSEFanout(t *testing.T) {
	s := loadSettings()
	n := s.subscribers
	fs, hs := startServer(t)
	addr := strings.TrimPrefix(hs.URL, "http://")
	before := memUsage()

	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	request := "GET /v1/stream?environment=" + env + " HTTP/1.1\r\nHost: " + addr +
		"\r\nAuthorization: Bearer " + token + "\r\nAccept: text/event-stream\r\n\r\n"
	connStart := time.Now()
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, request); err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
	}
	if !testkit.Eventually(10*time.Second, func() bool { return fs.Streams() == n }) {
		t.Fatalf("%d of %d subscribers registered", fs.Streams(), n)
	}
	connected := time.Since(connStart)
	after := memUsage()
	perSub := (int64(after) - int64(before)) / int64(n)

	// Every subscriber reads its stream; once all have read the stream's
	// opening comment, one change is made.
	const marker = `"flagKey":"fanout-flag"`
	fan := testkit.NewFanOut(n, marker, 30*time.Second)
	for i, c := range conns {
		fan.Watch(i, c)
	}
	fan.Ready()
	fan.Mark()
	if _, err := fs.PutFlag(env, evaluate.Flag{Key: "fanout-flag", Default: &evaluate.Serve{Variant: true}}, "loadtest", "fan-out"); err != nil {
		t.Fatal(err)
	}
	got, missed := fan.Wait()
	if missed > 0 {
		t.Fatalf("%d subscribers did not get the change", missed)
	}
	q := func(p float64) time.Duration { return testkit.Quantile(got, p).Round(time.Microsecond) }
	line := fmt.Sprintf("one change reached all %d subscribers in **%v** (p50 %v, p99 %v); server memory **%.1f KiB per subscriber** (heap + stacks; connecting took %v)",
		n, q(1), q(0.5), q(0.99), float64(perSub)/1024, connected.Round(time.Millisecond))
	t.Log(line)
	report.Add(fmt.Sprintf("| SSE fan-out, %d subscribers | %s |", n, line))
	if perSub > maxPerSubscriber {
		t.Errorf("%d bytes per subscriber; bound %d", perSub, maxPerSubscriber)
	}
}
