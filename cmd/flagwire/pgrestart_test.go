package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// TestPostgresDownWhileServing: with PostgreSQL killed under a running
// `flagwire serve --store`, reads keep being answered from the last
// version, writes get 503 with Retry-After, /readyz 503 names the
// failure; once PostgreSQL is back, /readyz is 200 and writes go on, and
// the write refused meanwhile was not applied.
func TestPostgresDownWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a PostgreSQL cluster")
	}
	pgDSN(t)
	pg := startCluster(t)
	bin := filepath.Join(t.TempDir(), "flagwire")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	r := &replica{t: t, bin: bin, dsn: pg.dsn, addr: freeAddr(t), log: filepath.Join(t.TempDir(), "replica.log")}
	r.start()
	t.Cleanup(r.kill)
	r.waitReady()
	flag := r.url() + "/v1/flags/x?environment=prod"
	if c := httpDo(r.url()+"/v1/flags?environment=prod", "POST", `{"key":"x","changeReason":"t"}`, nil); c.status != 201 {
		t.Fatalf("create: %d %s", c.status, c.body)
	}
	before := httpDo(flag, "GET", "", nil)

	pg.kill(t)
	read := httpDo(flag, "GET", "", nil)
	if read.status != 200 || read.header.Get("ETag") != before.header.Get("ETag") {
		t.Fatalf("a read with PostgreSQL down: %d %s, want 200 with ETag %s", read.status, read.body, before.header.Get("ETag"))
	}
	w := httpDo(flag, "PATCH", `{"state":"off","changeReason":"t"}`, map[string]string{"If-Match": before.header.Get("ETag"), "Content-Type": "application/json"})
	if w.status != 503 || w.header.Get("Retry-After") == "" {
		t.Fatalf("a write with PostgreSQL down: %d %v %s, want 503 with Retry-After", w.status, w.header, w.body)
	}
	ready := httpDo(r.url()+"/readyz", "GET", "", nil)
	if ready.status != 503 || !strings.Contains(string(ready.body), "unavailable") {
		t.Fatalf("/readyz with PostgreSQL down: %d %s", ready.status, ready.body)
	}

	pg.restart(t)
	testkit.WaitFor(t, 30*time.Second, "/readyz 200 after PostgreSQL restarted", func() bool {
		return httpDo(r.url()+"/readyz", "GET", "", nil).status == 200
	})
	var a wire.AuditResponse
	json.Unmarshal(httpDo(r.url()+"/v1/audit?entity=flag:x", "GET", "", nil).body, &a)
	if len(a.Entries) != 1 {
		t.Fatalf("%d audit entries for x: the refused write was applied", len(a.Entries))
	}
	var ok bool
	testkit.WaitFor(t, 30*time.Second, "a write to succeed after PostgreSQL restarted", func() bool {
		w = httpDo(flag, "PATCH", `{"state":"off","changeReason":"t"}`, map[string]string{"If-Match": before.header.Get("ETag"), "Content-Type": "application/json"})
		ok = w.status == 200
		return ok || w.status != 503 // a pooled connection may still be the dead one's
	})
	if !ok {
		t.Fatalf("write after the restart: %d %s", w.status, w.body)
	}
}
