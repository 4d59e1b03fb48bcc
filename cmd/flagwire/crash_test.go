package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// TestCrashReplicasAndPostgres is the crash test: 4 clients make
// acknowledged writes (PATCH with If-Match and an Idempotency-Key, retried
// with the same key on any replica until answered 200 or 412) through 3
// `flagwire serve --store postgres://…` processes, while replicas and
// PostgreSQL itself are killed with SIGKILL at random and restarted.
// Afterwards every acknowledged write is in the audit log at the version
// its answer gave, versions strictly increase, the history is one chain
// (each entry's "before" is the previous entry's "after", so no ETag had
// two winners) and no two acknowledged writes used one If-Match ETag.
//
// It runs its own PostgreSQL cluster (.ci/postgres.sh) and FLAGWIRE_CRASH_WRITES
// acknowledged writes (default 150, CI-sized; the figures in the README
// come from FLAGWIRE_CRASH_WRITES=2000).
func TestCrashReplicasAndPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the crash test starts a PostgreSQL cluster")
	}
	pgDSN(t) // the PostgreSQL tests' gate: skip without FLAGWIRE_TEST_POSTGRES outside CI
	want := 150
	if s := os.Getenv("FLAGWIRE_CRASH_WRITES"); s != "" {
		var err error
		if want, err = strconv.Atoi(s); err != nil || want <= 0 {
			t.Fatalf("FLAGWIRE_CRASH_WRITES=%q: want a positive integer", s)
		}
	}
	pg := startCluster(t)
	bin := filepath.Join(t.TempDir(), "flagwire")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	reps := make([]*replica, 3)
	for i := range reps {
		reps[i] = &replica{t: t, bin: bin, dsn: pg.dsn, addr: freeAddr(t), log: filepath.Join(t.TempDir(), "replica.log")}
		reps[i].start()
	}
	t.Cleanup(func() {
		for _, r := range reps {
			r.kill()
		}
	})
	for _, r := range reps {
		r.waitReady()
	}
	r := httpDo(reps[0].url()+"/v1/flags?environment=prod", "POST", `{"key":"hot","changeReason":"crash test"}`, nil)
	if r.status != 201 {
		t.Fatalf("create the flag: %d %s", r.status, r.body)
	}

	type ack struct {
		marker, ifMatch, etag string
		version               int64
	}
	var (
		mu                    sync.Mutex
		acks                  []ack
		lost, unknown, tries  atomic.Int64
		replicaKills, pgKills atomic.Int64
		done                  = make(chan struct{})
		stopOnce              sync.Once
	)
	stop := func() { stopOnce.Do(func() { close(done) }) }
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for seq := 0; ; seq++ {
				mu.Lock()
				n := len(acks)
				mu.Unlock()
				// Done after want acknowledged writes, and not before
				// both a replica and PostgreSQL were killed once.
				if n >= want && replicaKills.Load() > 0 && pgKills.Load() > 0 {
					stop()
					return
				}
				select {
				case <-done:
					return
				default:
				}
				marker := fmt.Sprintf("w%d-%d", w, seq)
				// The ETag to write on, from any replica that answers.
				var etag string
				for deadline := time.Now().Add(60 * time.Second); etag == "" && time.Now().Before(deadline); {
					g := httpDo(reps[mrand.IntN(3)].url()+"/v1/flags/hot?environment=prod", "GET", "", nil)
					if g.status == 200 {
						etag = g.header.Get("ETag")
					} else {
						pause()
					}
				}
				if etag == "" {
					t.Error("no replica answered a GET for 60s")
					stop()
					return
				}
				key := randomKey()
				body := fmt.Sprintf(`{"owners":[%q],"changeReason":"crash test"}`, marker)
				outcome := 0
				for deadline := time.Now().Add(60 * time.Second); outcome == 0 && time.Now().Before(deadline); {
					tries.Add(1)
					p := httpDo(reps[mrand.IntN(3)].url()+"/v1/flags/hot?environment=prod", "PATCH", body,
						map[string]string{"If-Match": etag, wire.HeaderIdempotency: key, "Content-Type": "application/json"})
					switch p.status {
					case 200:
						var f evaluate.Flag
						if err := json.Unmarshal(p.body, &f); err != nil || len(f.Owners) != 1 || f.Owners[0] != marker {
							t.Errorf("acknowledged write %s answered %s", marker, p.body)
						}
						mu.Lock()
						acks = append(acks, ack{marker, etag, p.header.Get("ETag"), f.Version})
						mu.Unlock()
						outcome = 200
					case 412:
						lost.Add(1)
						outcome = 412
					case 0, 429, 500, 502, 503:
						pause() // down, restarting or throttled: the same request again
					default:
						t.Errorf("write %s: unexpected %d %s", marker, p.status, p.body)
						outcome = p.status
					}
				}
				if outcome == 0 {
					unknown.Add(1)
				}
			}
		})
	}
	// The chaos: every 150–600 ms, SIGKILL a replica (restarted at once)
	// or, every third kill (the second first), PostgreSQL (restarted,
	// recovering).
	started := time.Now()
	chaos := time.NewTimer(time.Duration(150+mrand.IntN(450)) * time.Millisecond)
loop:
	for {
		select {
		case <-done:
			break loop
		case <-chaos.C:
			if (replicaKills.Load()+pgKills.Load())%3 == 1 {
				pg.crash(t)
				pgKills.Add(1)
			} else {
				r := reps[mrand.IntN(3)]
				r.kill()
				r.start()
				replicaKills.Add(1)
			}
			chaos.Reset(time.Duration(150+mrand.IntN(450)) * time.Millisecond)
		}
	}
	chaos.Stop()
	wg.Wait()
	elapsed := time.Since(started)
	for _, r := range reps {
		r.waitReady()
	}

	// The history, from the audit log (pages by cursor).
	type entry struct{ before, after json.RawMessage }
	var history []entry
	url := reps[0].url() + "/v1/audit?entity=flag:hot&limit=1000"
	var ids []int64
	for {
		a := httpDo(url, "GET", "", nil)
		if a.status != 200 {
			t.Fatalf("audit: %d %s", a.status, a.body)
		}
		var page wire.AuditResponse
		if err := json.Unmarshal(a.body, &page); err != nil {
			t.Fatal(err)
		}
		var es []entry
		for _, e := range page.Entries {
			es = append(es, entry{e.Before, e.After})
			ids = append(ids, e.ID)
		}
		history = append(es, history...)
		if page.NextBefore == 0 {
			break
		}
		url = fmt.Sprintf("%s/v1/audit?entity=flag:hot&limit=1000&before=%d", reps[0].url(), page.NextBefore)
	}
	versionOf := map[string]int64{}
	var prev int64
	for i, e := range history {
		var f evaluate.Flag
		if err := json.Unmarshal(e.after, &f); err != nil {
			t.Fatalf("audit entry %d: %v", i, err)
		}
		if f.Version <= prev {
			t.Fatalf("audit entry %d: version %d after %d: versions must strictly increase", i, f.Version, prev)
		}
		prev = f.Version
		if len(f.Owners) == 1 {
			if _, dup := versionOf[f.Owners[0]]; dup {
				t.Fatalf("write %s applied twice", f.Owners[0])
			}
			versionOf[f.Owners[0]] = f.Version
		}
		if i > 0 && !jsonSame(e.before, history[i-1].after) {
			t.Fatalf("audit entry %d was written on\n%s\nbut the entry before it left\n%s\n(two winners on one ETag)", i, e.before, history[i-1].after)
		}
	}
	usedETag := map[string]string{}
	for _, a := range acks {
		v, ok := versionOf[a.marker]
		if !ok {
			t.Fatalf("acknowledged write %s (version %d) is not in the history", a.marker, a.version)
		}
		if v != a.version {
			t.Fatalf("acknowledged write %s: answered version %d, stored %d", a.marker, a.version, v)
		}
		if other, dup := usedETag[a.ifMatch]; dup {
			t.Fatalf("writes %s and %s both won with If-Match %s", other, a.marker, a.ifMatch)
		}
		usedETag[a.ifMatch] = a.marker
	}
	final := httpDo(reps[1].url()+"/v1/flags/hot?environment=prod", "GET", "", nil)
	var f evaluate.Flag
	json.Unmarshal(final.body, &f)
	if f.Version != prev {
		t.Fatalf("the flag is at version %d, its history ends at %d", f.Version, prev)
	}
	t.Logf("crash test: %d acknowledged writes (all present, versions strictly increasing, one winner per ETag), %d lost to a concurrent write (412), %d with no answer within 60s; %d PATCH attempts; %d replica kills, %d PostgreSQL kills; %d history entries in %v",
		len(acks), lost.Load(), unknown.Load(), tries.Load(), replicaKills.Load(), pgKills.Load(), len(history), elapsed.Round(time.Millisecond))
}

func jsonSame(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// pause paces a retry of a request that got no answer.
func pause() { time.Sleep(time.Duration(20+mrand.IntN(30)) * time.Millisecond) }

func randomKey() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type httpResult struct {
	status int
	header http.Header
	body   []byte
}

var crashClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// httpDo sends a request; status 0 means no answer (refused, reset, timeout).
func httpDo(url, method, body string, headers map[string]string) httpResult {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return httpResult{}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := crashClient.Do(req)
	if err != nil {
		return httpResult{}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return httpResult{}
	}
	return httpResult{res.StatusCode, res.Header, b}
}

// replica is one `flagwire serve` process.
type replica struct {
	t              *testing.T
	bin, dsn, addr string
	log            string
	mu             sync.Mutex
	cmd            *exec.Cmd
	exited         chan struct{}
}

func (r *replica) url() string { return "http://" + r.addr }

func (r *replica) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	logf, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(r.bin, "serve", "--addr", r.addr, "--env", "prod", "--log", "off")
	cmd.Env = append(os.Environ(), storeEnv+"="+r.dsn)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.cmd = cmd
	r.exited = make(chan struct{})
	go func(c *exec.Cmd, ch chan struct{}) { c.Wait(); close(ch) }(cmd, r.exited)
}

// kill sends SIGKILL and waits for the process to be gone.
func (r *replica) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.exited
	r.cmd = nil
}

func (r *replica) waitReady() {
	r.t.Helper()
	ok := testkit.Eventually(60*time.Second, func() bool {
		return httpDo(r.url()+"/readyz", "GET", "", nil).status == 200
	})
	if !ok {
		b, _ := os.ReadFile(r.log)
		r.t.Fatalf("replica %s not ready within 60s; its log:\n%s", r.addr, tail(b, 3000))
	}
}

func tail(b []byte, n int) []byte { return b[max(0, len(b)-n):] }

// cluster is a PostgreSQL cluster of .ci/postgres.sh.
type cluster struct {
	dir, dsn string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	script, err := filepath.Abs("../../.ci/postgres.sh")
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(script, "start")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s start: %v\n%s", script, err, stderr.String())
	}
	c := &cluster{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimPrefix(sc.Text(), "export ")
		k, v, _ := strings.Cut(line, "=")
		v = strings.Trim(v, "'")
		switch k {
		case "FLAGWIRE_TEST_POSTGRES":
			c.dsn = v
		case "FLAGWIRE_PG_DIR":
			c.dir = v
		}
	}
	if c.dsn == "" || c.dir == "" {
		t.Fatalf("%s start printed no DSN:\n%s", script, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(script, "stop", c.dir).CombinedOutput(); err != nil {
			t.Errorf("%s stop: %v\n%s", script, err, out)
		}
	})
	return c
}

// crash kills every process of the cluster with SIGKILL (the postmaster
// and its children) and starts it again (crash recovery).
func (c *cluster) crash(t *testing.T) {
	t.Helper()
	c.kill(t)
	c.restart(t)
}

// kill kills every process of the cluster with SIGKILL.
func (c *cluster) kill(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "data", "postmaster.pid"))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatal(err)
	}
	pids := append(children(pid), pid)
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGKILL)
	}
	if !testkit.Eventually(10*time.Second, func() bool {
		for _, p := range pids {
			if syscall.Kill(p, 0) == nil {
				return false
			}
		}
		return true
	}) {
		t.Fatal("PostgreSQL processes survived SIGKILL")
	}
}

// restart starts the cluster again (after kill: crash recovery).
func (c *cluster) restart(t *testing.T) {
	t.Helper()
	script, _ := filepath.Abs("../../.ci/postgres.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, script, "restart", c.dir).CombinedOutput(); err != nil {
		t.Fatalf("restart PostgreSQL: %v\n%s", err, out)
	}
}

// children returns the pids whose parent is pid.
func children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			f := strings.Fields(s[i+1:])
			if len(f) > 1 && f[1] == strconv.Itoa(pid) {
				out = append(out, p)
			}
		}
	}
	return out
}
