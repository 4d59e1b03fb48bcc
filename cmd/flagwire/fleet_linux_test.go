package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flagwire/flagwire/internal/testkit"
)

// serveProcess is `flagwire serve` in a child process (the test binary
// running main, see TestMain).
type serveProcess struct{ *testkit.Process }

// startServeProcess starts `flagwire serve args…` in a child process and
// waits for its address. It is stopped with SIGTERM at cleanup.
func startServeProcess(t *testing.T, args ...string) *serveProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--addr", "127.0.0.1:0", "--log", "off"}, args...)...)
	cmd.Env = append(os.Environ(), envRunMain+"=1")
	cmd.Stderr = os.Stderr
	return &serveProcess{testkit.StartServe(t, cmd, syscall.SIGTERM, 20*time.Second)}
}

// rss is the process's resident set size in bytes (VmRSS).
func (p *serveProcess) rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Cmd.Process.Pid) + "/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q", v)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// fleetSubscribers is the number of SSE subscribers of
// TestServeFleetBehindProxy: 10,000, or FLAGWIRE_FLEET_SUBSCRIBERS; 2,000
// under the race detector (its limit of 8,128 live goroutines, which
// server and client each pass with 10,000 streams).
func fleetSubscribers(t *testing.T) int {
	n := 10_000
	if raceEnabled {
		n = 2000
	}
	if v := os.Getenv("FLAGWIRE_FLEET_SUBSCRIBERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("FLAGWIRE_FLEET_SUBSCRIBERS=%q", v)
		}
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < uint64(n)+256 {
		// Go raises the soft limit to the hard one at start; try anyway.
		rl.Cur = min(rl.Max, uint64(n)+256)
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		if rl.Cur < uint64(n)+256 {
			t.Logf("file descriptor limit %d: %d subscribers instead of %d", rl.Cur, rl.Cur-256, n)
			n = int(rl.Cur - 256)
		}
	}
	return n
}

// TestServeFleetBehindProxy: a fleet of SDKs streaming through one load
// balancer. n SSE subscribers (10,000; 2,000 under -race) connect from
// one address, listed in --trusted-proxies, each a different client in
// X-Forwarded-For; every other limit is at its default. All must be
// served. The server runs in a child process: the figures are its
// resident memory per subscriber (RSS after the subscribers connected,
// less RSS before, over n) and how long one change takes to reach every
// subscriber (p50, p99, max, from just before the write is sent to each
// subscriber's reading the event; client and server share the machine's
// cores). Figures are logged, not asserted:
//
//	cd cmd/flagwire && go test -run TestServeFleetBehindProxy -v .
func TestServeFleetBehindProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 connections")
	}
	n := fleetSubscribers(t)
	srv := startServeProcess(t, "--env", "prod", "--dev-token", "dev", "--trusted-proxies", "127.0.0.1")
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rssBefore := srv.rss(t)

	const marker = `"flagKey":"fleet-flag"`
	conns := make([]net.Conn, 0, n)
	var closeOnce sync.Once
	closeAll := func() {
		closeOnce.Do(func() {
			for _, c := range conns {
				c.Close()
			}
		})
	}
	defer closeAll()
	fan := testkit.NewFanOut(n, marker, 3*time.Minute)
	connStart := time.Now()
	for i := range n {
		c, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /v1/stream?environment=prod HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer dev\r\n"+
			"Accept: text/event-stream\r\nX-Forwarded-For: 10.%d.%d.%d\r\n\r\n", addr, i>>16, (i>>8)&255, i&255)
		fan.Watch(i, c)
	}
	refused, failed := fan.Ready()
	connected := time.Since(connStart)
	if refused > 0 {
		t.Fatalf("%d of %d subscribers behind one trusted proxy were refused", refused, n)
	}
	if failed > 0 {
		t.Fatalf("%d of %d streams ended before the change", failed, n)
	}
	// The server's memory settles as it serves n streams.
	rssAfter := srv.rss(t)

	fan.Mark()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/flags?environment=prod",
		strings.NewReader(`{"key":"fleet-flag","changeReason":"fleet test"}`))
	req.Header.Set("Authorization", "Bearer dev")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("write: %d", res.StatusCode)
	}
	got, missed := fan.Wait()
	closeAll()
	http.DefaultClient.CloseIdleConnections()
	if missed > 0 {
		t.Fatalf("%d of %d subscribers did not get the change", missed, n)
	}
	q := func(p float64) time.Duration { return testkit.Quantile(got, p).Round(time.Microsecond) }
	t.Logf("%d SSE subscribers through one trusted proxy address (default limits): all served; connecting took %v; "+
		"server RSS %.1f MiB idle, %.1f MiB with them: %.1f KiB per subscriber; one change reached them all in %v (p50 %v, p99 %v)",
		n, connected.Round(time.Millisecond), float64(rssBefore)/(1<<20), float64(rssAfter)/(1<<20),
		float64(rssAfter-rssBefore)/float64(n)/1024, q(1), q(0.5), q(0.99))
}
