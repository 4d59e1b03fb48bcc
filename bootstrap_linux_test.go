//go:build linux

package flagwire

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flagwire/flagwire/internal/testkit"
)

// configFileChildEnv tells a re-executed test binary to check one bad
// file ("kind|path") under an address-space limit.
const configFileChildEnv = "FLAGWIRE_TEST_CONFIG_FILE_CHILD"

// childAddressSpace is how much the child may map beyond what it has at
// start: a bounded read of a bad file fits many times over; an unbounded
// one (the 500 MB file, /dev/zero) does not, and fails the child instead
// of exhausting the machine.
const childAddressSpace = 256 << 20

// TestConfigFilesOpenedSafely: the bootstrap and last-known files are
// opened as regular files only, within the size limit, and New returns at
// once with an error naming the path and what it is, for a FIFO without a
// writer (opening must not hang), a directory, a symlink to /dev/zero and a
// 500 MB sparse file. The last two run in a child process under an
// address-space limit, so a regression fails instead of eating the
// machine's memory.
func TestConfigFilesOpenedSafely(t *testing.T) {
	dir := t.TempDir()
	t.Run("FIFO", func(t *testing.T) {
		p := filepath.Join(dir, "bootstrap.fifo")
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		checkBadConfigFile(t, p, "a FIFO")
	})
	t.Run("directory", func(t *testing.T) {
		p := filepath.Join(dir, "bootstrap.d")
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		checkBadConfigFile(t, p, "a directory")
	})
	t.Run("symlink to /dev/zero", func(t *testing.T) {
		p := filepath.Join(dir, "zero.json")
		if err := os.Symlink("/dev/zero", p); err != nil {
			t.Fatal(err)
		}
		runConfigFileChild(t, p, "a character device")
	})
	t.Run("500 MB sparse file", func(t *testing.T) {
		p := filepath.Join(dir, "huge.json")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(500 << 20); err != nil { // sparse: no disk used
			t.Fatal(err)
		}
		f.Close()
		runConfigFileChild(t, p, "over the 67108864-byte limit")
	})
}

// TestConfigFileChild is the child side of TestConfigFilesOpenedSafely.
func TestConfigFileChild(t *testing.T) {
	spec := os.Getenv(configFileChildEnv)
	if spec == "" {
		t.Skip("run by TestConfigFilesOpenedSafely in a child process")
	}
	kind, path, _ := strings.Cut(spec, "|")
	vm, err := vmSize()
	if err != nil {
		t.Fatal(err)
	}
	lim := &syscall.Rlimit{Cur: vm + childAddressSpace, Max: vm + childAddressSpace}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, lim); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
	t.Logf("address space limited to %d MiB (%d MiB mapped at start + %d MiB)", lim.Cur>>20, vm>>20, childAddressSpace>>20)
	checkBadConfigFile(t, path, kind)
}

// runConfigFileChild re-executes the test binary to check path under the
// address-space limit.
func runConfigFileChild(t *testing.T, path, kind string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestConfigFileChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), configFileChildEnv+"="+kind+"|"+path)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			t.Logf("child: max RSS %d MiB", ru.Maxrss>>10)
		}
	}
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestConfigFileChild")) {
		t.Fatalf("child process failed (%v):\n%s", err, head(out, 30))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "New returned") || strings.Contains(line, "address space") {
			t.Log("child:", strings.TrimSpace(line))
		}
	}
}

// checkBadConfigFile checks the three ways a file reaches the SDK: the
// bootstrap of offline mode (New fails, in either option order), the
// optional bootstrap of remote mode and the last-known file (New succeeds;
// the error is in Status().LastError).
func checkBadConfigFile(t *testing.T, path, kind string) {
	t.Helper()
	s := testkit.NewSigner()
	cases := []struct {
		name    string
		opts    []Option
		wantErr bool
	}{
		{"offline bootstrap", []Option{WithMode(ModeOffline), WithBootstrapFile(path), WithTrustedKeys(s.Pub)}, true},
		{"offline bootstrap, mode set last", []Option{WithBootstrapFile(path), WithTrustedKeys(s.Pub), WithMode(ModeOffline)}, true},
		{"remote bootstrap", []Option{WithEndpoint("http://127.0.0.1:1"), WithStreaming(false), WithBootstrapFile(path), WithTrustedKeys(s.Pub)}, false},
		{"last-known file", []Option{WithEndpoint("http://127.0.0.1:1"), WithStreaming(false), WithLastKnownFile(path), WithTrustedKeys(s.Pub)}, false},
	}
	for _, tc := range cases {
		type result struct {
			c   *Client
			err error
			d   time.Duration
		}
		done := make(chan result, 1)
		go func() {
			start := time.Now()
			// The options run inside New: build them here so a blocking
			// open is inside the guarded call.
			c, err := New(context.Background(), append(tc.opts[:len(tc.opts):len(tc.opts)], WithLogger(quietLogger()))...)
			done <- result{c, err, time.Since(start)}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second): // a hang, not a latency bound
			t.Errorf("%s: New still blocked after 10 s on %s", tc.name, path)
			unblockFIFO(path)
			r = <-done
		}
		t.Logf("%s: New returned in %v", tc.name, r.d)
		if r.c != nil {
			r.c.Close(context.Background())
		}
		var msg string
		if tc.wantErr {
			if r.err == nil || !errors.Is(r.err, ErrInvalidConfig) {
				t.Errorf("%s: New = %v; want an ErrInvalidConfig", tc.name, r.err)
				continue
			}
			msg = r.err.Error()
		} else {
			if r.err != nil {
				t.Errorf("%s: New = %v; want a client without the file", tc.name, r.err)
				continue
			}
			msg = r.c.Status().LastError
		}
		if !strings.Contains(msg, path) || !strings.Contains(msg, kind) {
			t.Errorf("%s: error %q does not name %s and say it is %s", tc.name, msg, path, kind)
		}
	}
}

// unblockFIFO opens path for writing and closes it, so a reader blocked
// opening it (the defect under test) gets EOF and the test can end.
func unblockFIFO(path string) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 100; i++ {
		f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			f.Close()
			return
		}
		if !errors.Is(err, syscall.ENXIO) { // not a FIFO, or gone
			return
		}
		<-tick.C // no reader in open yet: retry, bounded
	}
}

// vmSize returns the process's mapped address space (VmSize).
func vmSize() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmSize:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmSize in /proc/self/status")
}

func head(b []byte, lines int) string {
	ls := strings.Split(string(b), "\n")
	if len(ls) > lines {
		ls = ls[:lines]
	}
	return strings.Join(ls, "\n")
}

// TestReadConfigFileLimit: the size limit holds while reading, not only
// by the size the file reports (procfs files report 0), and symlinks to a
// regular file are followed.
func TestReadConfigFileLimit(t *testing.T) {
	dir := t.TempDir()
	exact := filepath.Join(dir, "exact")
	os.WriteFile(exact, bytes.Repeat([]byte("x"), 100), 0o600)
	if b, err := readConfigFile(exact, 100); err != nil || len(b) != 100 {
		t.Fatalf("a file of exactly the limit: %d bytes, %v", len(b), err)
	}
	if _, err := readConfigFile(exact, 99); err == nil || !strings.Contains(err.Error(), exact) {
		t.Fatalf("a file one byte over the limit: %v", err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(exact, link)
	if b, err := readConfigFile(link, 100); err != nil || len(b) != 100 {
		t.Fatalf("a symlink to a regular file: %d bytes, %v", len(b), err)
	}
	// /proc/self/maps is a regular file that reports size 0 and has more
	// than 16 bytes.
	if _, err := readConfigFile("/proc/self/maps", 16); err == nil || !strings.Contains(err.Error(), fmt.Sprint(16)) {
		t.Fatalf("a file larger than it says: %v", err)
	}
	if _, err := readConfigFile(filepath.Join(dir, "missing"), 100); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
