package loadtest

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagwire/flagwire/flagfile"
	"github.com/flagwire/flagwire/internal/testkit"
)

var (
	flagServe     = flag.String("load.serve", "", "measure OFREP against a `flagwire serve` process: the path of a flagwire binary, or \"build\" to build ../cmd/flagwire (also FLAGWIRE_LOAD_SERVE)")
	flagTarget    = flag.String("load.target", "", "measure OFREP against a server already running at this base URL (another OFREP server serving the benchmark flags); -load.pid gives its process for CPU and memory")
	flagPID       = flag.Int("load.pid", 0, "with -load.target: the server's process id (CPU per answer, RSS)")
	flagOFREPFlag = flag.String("load.ofrep-flag", "bench-flag", "the flag of the single-flag OFREP workload")
	flagHeader    = flag.String("load.header", "", "with -load.target: a header to send, \"Name: value\" (an API key)")
	flagConc      = flag.String("load.concurrency", "", "OFREP client concurrencies, comma-separated (default 16; with -load.serve or -load.target 1,16,64)")
)

// ofrepTarget is a server under OFREP load: its base URL, headers to send
// and, when known, its process (for CPU time and RSS).
type ofrepTarget struct {
	name    string
	url     string
	headers http.Header
	pid     int
}

// procStat is a process's CPU time (user + system) and resident size.
type procStat struct {
	cpu time.Duration
	rss int64
}

// readProc reads /proc/PID/stat (utime and stime, in clock ticks of 1/100
// s, Linux's USER_HZ) and /proc/PID/status (VmRSS).
func readProc(pid int) (procStat, error) {
	var st procStat
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return st, err
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return st, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)  // field 14: utime
	stt, _ := strconv.ParseInt(f[12], 10, 64) // field 15: stime
	st.cpu = time.Duration(ut+stt) * 10 * time.Millisecond
	b, err = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return st, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			st.rss = kb << 10
		}
	}
	return st, nil
}

// ofrepBodies are OFREP request bodies, one per distinct subject.
func ofrepBodies(count int) [][]byte {
	plans := []string{"pro", "enterprise", "free"}
	out := make([][]byte, count)
	for i := range out {
		b, _ := json.Marshal(map[string]any{"context": map[string]any{
			"targetingKey": fmt.Sprintf("user-%d", i), "userId": fmt.Sprintf("user-%d", i),
			"plan": plans[i%3], "region": "EU", "appVersion": "2.3.1",
		}})
		out[i] = b
	}
	return out
}

// ofrepResult is one OFREP workload's figures.
type ofrepResult struct {
	result
	answers  int           // flag answers (1 per single request, every flag per bulk one)
	cpu      time.Duration // the server's CPU time over the run, when known
	rssMax   int64         // the server's largest RSS seen during the run
	bodySize int           // bytes of one answer (the last checked)
}

func (r ofrepResult) String() string {
	secs := r.elapsed.Seconds()
	s := fmt.Sprintf("%d requests in %v: **%.0f answers/s** (%.0f req/s); p50 %v, **p99 %v**",
		r.requests, r.elapsed.Round(time.Millisecond), float64(r.answers)/secs, float64(r.requests)/secs,
		r.quantile(0.5).Round(time.Microsecond), r.quantile(0.99).Round(time.Microsecond))
	if r.cpu > 0 {
		s += fmt.Sprintf("; server CPU **%.1f µs/answer**", float64(r.cpu.Microseconds())/float64(r.answers))
	}
	if r.rssMax > 0 {
		s += fmt.Sprintf(", RSS under load %.1f MiB", float64(r.rssMax)/(1<<20))
	}
	return s + fmt.Sprintf("; answer %d B", r.bodySize)
}

// runOFREP posts bodies round-robin to path from concurrency goroutines
// until maxReq requests were made or maxDur passed (drive). check
// validates a sample answer and returns its number of flag answers. With
// a server process, it samples its RSS and takes its CPU time.
func runOFREP(t *testing.T, tg ofrepTarget, path string, bodies [][]byte, concurrency int, maxDur time.Duration, maxReq int, check func([]byte) (int, error)) ofrepResult {
	t.Helper()
	var before procStat
	var rssMax atomic.Int64
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	if tg.pid > 0 {
		var err error
		if before, err = readProc(tg.pid); err != nil {
			t.Fatal(err)
		}
		sampler.Add(1)
		go func() {
			defer sampler.Done()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stopSampling:
					return
				case <-tick.C:
					if st, err := readProc(tg.pid); err == nil && st.rss > rssMax.Load() {
						rssMax.Store(st.rss)
					}
				}
			}
		}()
	}
	newReq := func(i int) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, tg.url+path, bytes.NewReader(bodies[i%len(bodies)]))
		for k, v := range tg.headers {
			req.Header[k] = v
		}
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	res, perAnswer, size := drive(t, concurrency, maxDur, maxReq, newReq, check)
	close(stopSampling)
	sampler.Wait()
	r := ofrepResult{result: res}
	r.answers = r.requests * perAnswer
	r.decisions = r.answers
	r.bodySize = size
	r.rssMax = rssMax.Load()
	if tg.pid > 0 {
		if after, err := readProc(tg.pid); err == nil {
			r.cpu = after.cpu - before.cpu
		}
	}
	return r
}

// checkOFREPSingle accepts an OFREP success answer for the flag.
func checkOFREPSingle(key string) func([]byte) (int, error) {
	return func(b []byte) (int, error) {
		var a struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		}
		if err := json.Unmarshal(b, &a); err != nil {
			return 0, err
		}
		if a.Key != key || a.Value == nil {
			return 0, fmt.Errorf("not an answer for %s", key)
		}
		return 1, nil
	}
}

// checkOFREPBulk accepts an OFREP bulk answer with at least one flag and
// returns its number of flags.
func checkOFREPBulk(b []byte) (int, error) {
	var a struct {
		Flags []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"flags"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return 0, err
	}
	if len(a.Flags) == 0 || a.Flags[0].Value == nil {
		return 0, fmt.Errorf("no flag answers")
	}
	return len(a.Flags), nil
}

// startServeProcess runs `flagwire serve` (bin, or built from
// ../cmd/flagwire with CGO_ENABLED=0 when bin is "build") on the benchmark config, with rate
// limits off, and returns it as a target. It is stopped at cleanup.
func startServeProcess(t *testing.T, bin string) ofrepTarget {
	t.Helper()
	dir := t.TempDir()
	if bin == "build" {
		bin = filepath.Join(dir, "flagwire")
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Dir = filepath.Join("..", "cmd", "flagwire")
		build.Env = append(os.Environ(), "CGO_ENABLED=0") // as the README installs it
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/flagwire: %v\n%s", err, out)
		}
	}
	flags := filepath.Join(dir, "flags")
	os.Mkdir(flags, 0o700)
	y, err := flagfile.MarshalConfigYAML(benchConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(flags, env+".yaml"), y, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--log", "off", "--flags", flags, "--dev-token", token)
	cmd.Stderr = os.Stderr
	p := testkit.StartServe(t, cmd, os.Interrupt, 30*time.Second)
	return ofrepTarget{name: "flagwire serve", pid: p.Cmd.Process.Pid, url: p.URL,
		headers: http.Header{"Authorization": {"Bearer " + token}}}
}

// loopback reports whether host is a loopback address or "localhost".
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// TestLoadOFREP measures OFREP single-flag and bulk answers per second.
// By default against the in-process server, from 16 clients; with
// -load.serve against a `flagwire serve` process (embedded store), and
// with -load.target against any OFREP server, from 1, 16 and 64 clients,
// with the server's CPU time per answer and RSS (idle and under load):
//
//	go test -v -run TestLoadOFREP ./loadtest/ -load.serve=build
//	go test -v -run TestLoadOFREP ./loadtest/ -load.target=http://127.0.0.1:8016 -load.pid=PID
func TestLoadOFREP(t *testing.T) {
	s := loadSettings()
	serve := *flagServe
	if serve == "" {
		serve = os.Getenv("FLAGWIRE_LOAD_SERVE")
	}
	concs := []int{16}
	var tg ofrepTarget
	switch {
	case serve != "":
		tg = startServeProcess(t, serve)
		concs = []int{1, 16, 64}
	case *flagTarget != "":
		u, err := url.Parse(*flagTarget)
		if err != nil || u.Scheme != "http" || !loopback(u.Hostname()) {
			t.Fatalf("-load.target %q: want http://127.0.0.1:PORT (load goes to loopback only)", *flagTarget)
		}
		tg = ofrepTarget{name: *flagTarget, url: strings.TrimSuffix(*flagTarget, "/"), pid: *flagPID, headers: http.Header{}}
		if *flagHeader != "" {
			name, value, ok := strings.Cut(*flagHeader, ":")
			if !ok {
				t.Fatalf("-load.header %q: want \"Name: value\"", *flagHeader)
			}
			tg.headers.Set(strings.TrimSpace(name), strings.TrimSpace(value))
		}
		concs = []int{1, 16, 64}
	default:
		_, hs := startServer(t)
		tg = ofrepTarget{name: "in-process", url: hs.URL, headers: http.Header{"Authorization": {"Bearer " + token}}}
	}
	if *flagConc != "" {
		concs = nil
		for f := range strings.SplitSeq(*flagConc, ",") {
			c, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || c <= 0 {
				t.Fatalf("-load.concurrency %q", *flagConc)
			}
			concs = append(concs, c)
		}
	}
	if tg.pid > 0 {
		if st, err := readProc(tg.pid); err == nil {
			line := fmt.Sprintf("%s: idle RSS **%.1f MiB**", tg.name, float64(st.rss)/(1<<20))
			t.Log(line)
			report.Add(fmt.Sprintf("| OFREP, %s idle | %s |", tg.name, line))
		}
	}
	bodies := ofrepBodies(1000)
	key := *flagOFREPFlag
	for _, c := range concs {
		for _, w := range []struct {
			name, path string
			check      func([]byte) (int, error)
		}{
			{"single", "/ofrep/v1/evaluate/flags/" + key, checkOFREPSingle(key)},
			{"bulk", "/ofrep/v1/evaluate/flags", checkOFREPBulk},
		} {
			name := fmt.Sprintf("%s, %d clients", w.name, c)
			t.Run(name, func(t *testing.T) {
				r := runOFREP(t, tg, w.path, bodies, c, s.dur, s.requests, w.check)
				if r.requests == 0 {
					t.Fatal("no request completed")
				}
				t.Log(r)
				report.Add(fmt.Sprintf("| OFREP %s (%s) | %s |", name, tg.name, r))
				// A sanity bound, not a target (shared machine, -race in CI).
				if p99 := r.quantile(0.99); p99 > 2*time.Second {
					t.Errorf("p99 %v", p99)
				}
			})
		}
	}
}
