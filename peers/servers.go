package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one OFREP server process on loopback, started and owned by the
// harness: stop ends it.
type server struct {
	name   string // flagwire, flagd, relay
	label  string // as printed in the tables
	base   string // OFREP base URL: http://127.0.0.1:PORT
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	err    error         // the process's exit status, once done is closed
	logf   *os.File
	tokens []string // bearer tokens the load generator rotates through (flagwire serve only)
	idle   int64    // resident KiB once it first answered
	// withDB adds the CPU time of every PostgreSQL process on the machine
	// to the server's (flagwire serve on PostgreSQL): the database's work
	// per answer is part of the answer's cost.
	withDB bool
}

// checkClient makes the harness's own requests (readiness, the checks'
// direct requests): a peer that stops answering fails a check instead of
// hanging the run.
var checkClient = &http.Client{Timeout: 10 * time.Second}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs bin with args, its output in logPath.
func start(name, label, base, logPath string, bin string, args ...string) (*server, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s := &server{name: name, label: label, base: base, cmd: cmd, done: make(chan struct{}), logf: f}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// startReady is start, then waitReady on the flag bool-static; a process
// that does not become ready is stopped.
func startReady(ctx context.Context, name, label, base, logPath string, bin string, args ...string) (*server, error) {
	s, err := start(name, label, base, logPath, bin, args...)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, "bool-static"); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// stop ends the process: SIGTERM, then SIGKILL after 5 s.
func (s *server) stop() {
	if s == nil {
		return
	}
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	s.logf.Close()
}

// waitReady polls a single evaluation of probeFlag until it answers 200,
// the process exits or the deadline passes.
func (s *server) waitReady(ctx context.Context, probeFlag string) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		status, _, _, err := s.post(ctx, hc, "/ofrep/v1/evaluate/flags/"+probeFlag, `{"context":{"targetingKey":"probe"}}`, "")
		if err == nil && status == http.StatusOK {
			s.idle, err = s.rssKiB()
			return err
		}
		if err != nil {
			last = err.Error()
		} else {
			last = "HTTP " + strconv.Itoa(status)
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited (%v) before it answered; its log: %s", s.name, s.err, s.logf.Name())
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer POST %s within 90 s (last: %s); its log: %s", s.name, probeFlag, last, s.logf.Name())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// post sends one OFREP POST and returns the status, headers and body.
func (s *server) post(ctx context.Context, hc *http.Client, path, body, token string) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Flagwire-Environment", "prod")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data, err
}

// cpuTicks is the process's utime+stime in clock ticks (/proc/PID/stat),
// plus every PostgreSQL process's when withDB is set.
func (s *server) cpuTicks() (int64, error) {
	t, err := procTicks(s.cmd.Process.Pid)
	if err != nil || !s.withDB {
		return t, err
	}
	db, err := postgresTicks()
	return t + db, err
}

// postgresTicks sums utime+stime over the processes named postgres (the
// postmaster and its backends); a process that exits while it is read is
// skipped.
func postgresTicks() (int64, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		if t, err := procTicks(pid); err == nil {
			sum += t
		}
	}
	return sum, nil
}

// procTicks is a process's utime+stime in clock ticks (/proc/PID/stat).
func procTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after its closing parenthesis.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/PID/stat")
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return ut + st, nil
}

// rssKiB is the process's resident set (VmRSS of /proc/PID/status).
func (s *server) rssKiB() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// startFlagwire runs `flagwire serve` on the flags directory. When the
// server rate-limits reads by default (X-RateLimit-Limit on an answer),
// it is restarted with a tokens file of loadTokens read tokens, which the
// load generator rotates through, so that no token's bucket throttles
// the run; the harness says so.
//
// It runs on the embedded store with a data directory in work or, when
// dsn is set, on that PostgreSQL database (which must be empty: the
// flags directory seeds it), plus extra arguments (for example
// rate-limit flags). name names its files and label its rows.
func startFlagwire(ctx context.Context, bin, flagsDir, work, dsn, name, label string, loadTokens int, extra []string) (*server, string, error) {
	store := []string{"--data", filepath.Join(work, name+"-data")}
	if dsn != "" {
		store = []string{"--store", dsn}
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	args := append(append([]string{"serve", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--flags", flagsDir, "--log", "off"}, store...), extra...)
	s, err := startReady(ctx, name, label, base, filepath.Join(work, name+".log"), bin, args...)
	if err != nil {
		return nil, "", err
	}
	_, h, _, err := s.post(ctx, checkClient, "/ofrep/v1/evaluate/flags/bool-static", `{"context":{"targetingKey":"probe"}}`, "")
	if err != nil {
		s.stop()
		return nil, "", err
	}
	if h.Get("X-RateLimit-Limit") == "" {
		return s, fmt.Sprintf("flagwire serve %s: open mode (no tokens); its answers carry no X-RateLimit-Limit, so reads are not rate-limited", strings.Join(args[1:], " ")), nil
	}
	limit := h.Get("X-RateLimit-Limit")
	s.stop()
	// Rate-limited reads: one bucket per token, so the load rotates
	// through many tokens.
	var b strings.Builder
	toks := make([]string, loadTokens)
	for i := range toks {
		toks[i] = fmt.Sprintf("peers-load-%03d", i)
		fmt.Fprintf(&b, "- {secret: %s, subject: load-%03d, scopes: [\"flags:read\"]}\n", toks[i], i)
	}
	tokFile := filepath.Join(work, name+"-tokens.yaml")
	if err := os.WriteFile(tokFile, []byte(b.String()), 0o600); err != nil {
		return nil, "", err
	}
	port, err = freePort()
	if err != nil {
		return nil, "", err
	}
	base = fmt.Sprintf("http://127.0.0.1:%d", port)
	args = append(append([]string{"serve", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--flags", flagsDir, "--log", "off", "--tokens", tokFile}, store...), extra...)
	s, err = start(name, label, base, filepath.Join(work, name+".log"), bin, args...)
	if err != nil {
		return nil, "", err
	}
	s.tokens = toks
	if err := s.waitReadyToken(ctx); err != nil {
		s.stop()
		return nil, "", err
	}
	note := fmt.Sprintf("flagwire serve %s: reads are rate-limited per token by default (burst %s), "+
		"so it runs with a tokens file of %d read tokens and the load generator rotates through them request by request", strings.Join(args[1:], " "), limit, loadTokens)
	return s, note, nil
}

// waitReadyToken is waitReady with the first load token.
func (s *server) waitReadyToken(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		status, _, _, err := s.post(ctx, checkClient, "/ofrep/v1/evaluate/flags/bool-static", `{"context":{"targetingKey":"probe"}}`, s.tokens[0])
		if err == nil && status == http.StatusOK {
			s.idle, err = s.rssKiB()
			return err
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited (%v) before it answered; its log: %s", s.name, s.err, s.logf.Name())
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within 90 s; its log: %s", s.name, s.logf.Name())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// token returns the bearer token for the correctness checks ("" in open mode).
func (s *server) token() string {
	if len(s.tokens) == 0 {
		return ""
	}
	return s.tokens[0]
}

// startFlagd runs flagd with the flags file; its four listeners get free
// ports (it binds every interface: run the harness in a network namespace
// that has only loopback, as run.sh does).
func startFlagd(ctx context.Context, bin, flagsFile, work string) (*server, error) {
	var ports [4]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", ports[3])
	return startReady(ctx, "flagd", "flagd", base, filepath.Join(work, "flagd.log"), bin, "start",
		"--uri", "file:"+flagsFile,
		"--port", strconv.Itoa(ports[0]), "--management-port", strconv.Itoa(ports[1]),
		"--sync-port", strconv.Itoa(ports[2]), "--ofrep-port", strconv.Itoa(ports[3]))
}

// startRelay runs the GO Feature Flag relay proxy on 127.0.0.1 with a file
// retriever on the flags file and no exporter.
func startRelay(ctx context.Context, bin, flagsFile, work string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`server:
  mode: http
  host: 127.0.0.1
  port: %d
pollingInterval: 600000
startWithRetrieverError: false
retriever:
  kind: file
  path: %s
loglevel: error
`, port, flagsFile)
	cfgPath := filepath.Join(work, "relay.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	return startReady(ctx, "relay", "GOFF relay", base, filepath.Join(work, "relay.log"), bin, "--config", cfgPath)
}
