package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/internal/testkit"
)

// TestAuditMemory measures a server's memory after FLAGWIRE_AUDIT_MEMORY
// audited writes (100000 for the README's figure; unset: skipped, as the
// writes take minutes): the writes are made through flagserver (each one
// committed, fsynced and audited in the data dir), then `flagwire serve
// --data` is started on that dir and on an empty one, and their resident
// memory (VmRSS, after answering a page of the audit log) compared. The
// audit log is read from the file page by page, so the ratio must stay
// within 2.
func TestAuditMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FLAGWIRE_AUDIT_MEMORY"))
	if n <= 0 {
		t.Skip("set FLAGWIRE_AUDIT_MEMORY=100000 to measure (minutes of writes)")
	}
	full, empty := t.TempDir(), t.TempDir()
	cfg := &evaluate.Config{Environment: "prod", Salt: "s", Flags: []evaluate.Flag{{Key: "f"}}}
	s, err := flagserver.New(flagserver.Options{DataDir: full, Configs: []*evaluate.Config{cfg}, RequireChangeReason: map[string]bool{}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	owners := make([]string, 40) // ~1 KB per flag document, before and after in each entry
	for i := range n {
		for j := range owners {
			owners[j] = fmt.Sprintf("team-%d-%d", i, j)
		}
		if _, err := s.PutFlag("prod", evaluate.Flag{Key: "f", Owners: owners}, "t", "memory"); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	writes := time.Since(start)
	info, _ := os.Stat(filepath.Join(full, "flagwire.db"))
	bin := filepath.Join(t.TempDir(), "flagwire")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	vmRSS := func(pid int) int64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				return kb
			}
		}
		t.Fatal("no VmRSS")
		return 0
	}
	// rss returns the server's RSS once it answers, and after it served
	// three pages of 1,000 audit entries.
	rss := func(dir string) (started, paged int64) {
		addr := freeAddr(t)
		cmd := exec.Command(bin, "serve", "--addr", addr, "--data", dir, "--env", "prod", "--log", "off")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		url := "http://" + addr
		testkit.WaitFor(t, 60*time.Second, "the server to answer", func() bool { return httpDo(url+"/readyz", "GET", "", nil).status == 200 })
		started = vmRSS(cmd.Process.Pid)
		for range 3 {
			if r := httpDo(url+"/v1/audit?limit=1000", "GET", "", nil); r.status != 200 {
				t.Fatalf("audit: %d %s", r.status, r.body)
			}
		}
		return started, vmRSS(cmd.Process.Pid)
	}
	e, ep := rss(empty)
	f, fp := rss(full)
	t.Logf("audit memory: %d audited writes in %v (data file %d MiB); RSS after a restart: %d KiB with them, %d KiB empty (ratio %.2f); after serving 3 audit pages of 1,000 entries: %d KiB and %d KiB",
		n, writes.Round(time.Second), info.Size()>>20, f, e, float64(f)/float64(e), fp, ep)
	if f > 2*e {
		t.Errorf("RSS %d KiB after a restart with %d audited writes is more than twice an empty server's %d KiB", f, n, e)
	}
}
