package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flagwire/flagwire/internal/testkit"
)

// pgDSN returns a DSN of the test database (FLAGWIRE_TEST_POSTGRES) whose
// search_path is a schema of the test's own, dropped at its end. Without
// FLAGWIRE_TEST_POSTGRES the test is skipped, except in CI (CI=true).
func pgDSN(t *testing.T) string {
	t.Helper()
	dsn := testkit.PostgresDSN(t)
	var b [6]byte
	rand.Read(b[:])
	schema := "flagwire_cli_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer conn.Close(context.Background())
		conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestServePostgresReplicas: two `flagwire serve --store postgres://…` on
// one database (the second through FLAGWIRE_STORE) share the signing key,
// the epoch and every write; /readyz says the store answers.
func TestServePostgresReplicas(t *testing.T) {
	dsn := pgDSN(t)
	flags := writeSeedFlags(t)
	a := startServe(t, "--store", dsn, "--flags", flags)
	t.Setenv(storeEnv, dsn)
	b := startServe(t, "--flags", flags)
	if a.bannerLine(t, "bootstrap signing key") != b.bannerLine(t, "bootstrap signing key") {
		t.Fatalf("replicas sign with different keys:\n%s\n%s", a.bannerLine(t, "bootstrap signing key"), b.bannerLine(t, "bootstrap signing key"))
	}
	if line := a.bannerLine(t, "store:"); !strings.Contains(line, "PostgreSQL") || strings.Contains(line, "search_path") {
		t.Errorf("store line %q", line)
	}
	get := call(t, "GET", a.url+"/v1/flags/checkout-new-flow?environment=prod", "")
	if get.status != 200 {
		t.Fatalf("GET on replica A: %d %s", get.status, get.body)
	}
	patch := call(t, "PATCH", a.url+"/v1/flags/checkout-new-flow?environment=prod", `{"state":"off","changeReason":"replicas"}`,
		"If-Match: "+get.header.Get("ETag"), "Content-Type: application/json")
	if patch.status != 200 {
		t.Fatalf("PATCH on replica A: %d %s", patch.status, patch.body)
	}
	onB := call(t, "GET", b.url+"/v1/flags/checkout-new-flow?environment=prod", "")
	if onB.header.Get("ETag") != patch.header.Get("ETag") {
		t.Fatalf("replica B serves ETag %s after replica A's write made %s", onB.header.Get("ETag"), patch.header.Get("ETag"))
	}
	ea := call(t, "GET", a.url+"/v1/flags?environment=prod", "").header.Get("X-Flagwire-Config-Epoch")
	eb := call(t, "GET", b.url+"/v1/flags?environment=prod", "").header.Get("X-Flagwire-Config-Epoch")
	if ea == "" || ea != eb {
		t.Fatalf("epochs %q and %q: one per database", ea, eb)
	}
	if r := call(t, "GET", b.url+"/readyz", ""); r.status != 200 || !strings.Contains(string(r.body), `"ready"`) {
		t.Fatalf("/readyz: %d %s", r.status, r.body)
	}
}

// TestServePostgresDownAtStart: with the database unreachable the server
// keeps trying: /healthz 200 and /readyz 503 name the failure, other
// requests get 503 with Retry-After, the password is never printed, and
// a shutdown while waiting ends it cleanly.
func TestServePostgresDownAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dbAddr := ln2.Addr().String()
	ln2.Close()
	root := newRootCmd()
	var out strings.Builder
	sw := &syncWriter{w: &out}
	root.SetOut(sw)
	root.SetErr(sw)
	root.SetArgs([]string{"serve", "--addr", httpAddr, "--store", "postgres://flagwire:Sekr1t-pw@" + dbAddr + "/db?sslmode=disable&connect_timeout=1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	var health result
	testkit.WaitFor(t, 10*time.Second, "/healthz to name the unreachable store", func() bool {
		c, err := net.DialTimeout("tcp", httpAddr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		health = call(t, "GET", "http://"+httpAddr+"/healthz", "")
		return health.status == 200 && strings.Contains(string(health.body), "unavailable")
	})
	ready := call(t, "GET", "http://"+httpAddr+"/readyz", "")
	other := call(t, "GET", "http://"+httpAddr+"/v1/flags?environment=prod", "")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve stopped while waiting for the database: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	if ready.status != 503 || !strings.Contains(string(ready.body), "connection refused") {
		t.Errorf("/readyz: %d %s", ready.status, ready.body)
	}
	if other.status != 503 || other.header.Get("Retry-After") == "" {
		t.Errorf("a request while starting: %d %v %s", other.status, other.header, other.body)
	}
	for _, s := range []string{string(health.body), string(ready.body), string(other.body), out.String()} {
		if strings.Contains(s, "Sekr1t-pw") {
			t.Fatalf("the password is printed: %s", s)
		}
	}
	if !strings.Contains(out.String(), "retrying") {
		t.Errorf("no retry logged:\n%s", out.String())
	}
}

// TestServePostgresBadStore: a --store that is not a PostgreSQL URL, and
// one with --data, are usage errors that never print the value's password.
func TestServePostgresBadStore(t *testing.T) {
	out, err := runServeOnce(t, "--store", "mysql://u:Sekr1t@h/db")
	if err == nil || strings.Contains(err.Error()+out, "Sekr1t") || !strings.Contains(err.Error(), "PostgreSQL URL") {
		t.Fatalf("--store mysql://…: %v\n%s", err, out)
	}
	_, err = runServeOnce(t, "--store", "postgres://u:Sekr1t@h/db", "--data", t.TempDir())
	if err == nil || strings.Contains(err.Error(), "Sekr1t") || !strings.Contains(err.Error(), "exclude") {
		t.Fatalf("--store with --data: %v", err)
	}
	for _, args := range [][]string{{"--read-staleness", "100ms"}, {"--store", "postgres://u@h/db", "--read-staleness", "-1s"}} {
		if _, err := runServeOnce(t, args...); err == nil || !strings.Contains(err.Error(), "--read-staleness") {
			t.Fatalf("%v: %v", args, err)
		}
	}
}

// syncWriter serializes writes to w (the command's output and its logger
// write from several goroutines).
type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestServeRotateSigningKeyPostgres: --rotate-signing-key makes a new key
// in the database; the banner and GET /v1/keys still list the old one,
// and a replica started afterwards signs with the new one.
func TestServeRotateSigningKeyPostgres(t *testing.T) {
	dsn := pgDSN(t)
	first := startServe(t, "--store", dsn, "--env", "prod")
	oldLine := first.bannerLine(t, "bootstrap signing key")
	first.stop(t)
	oldID := strings.Fields(oldLine)[3]

	rotated := startServe(t, "--store", dsn, "--env", "prod", "--rotate-signing-key")
	if l := rotated.bannerLine(t, "previous signing keys"); !strings.Contains(l, oldID) {
		t.Fatalf("banner after the rotation: %q (old key %s)", l, oldID)
	}
	newID := strings.Fields(rotated.bannerLine(t, "bootstrap signing key"))[3]
	if newID == oldID {
		t.Fatal("the rotation kept the key")
	}
	other := startServe(t, "--store", dsn, "--env", "prod")
	if id := strings.Fields(other.bannerLine(t, "bootstrap signing key"))[3]; id != newID {
		t.Fatalf("a replica started after the rotation signs with %s, want %s", id, newID)
	}
	r := call(t, "GET", other.url+"/v1/keys", "")
	if r.status != 200 || !strings.Contains(string(r.body), oldID) || !strings.Contains(string(r.body), newID) {
		t.Fatalf("GET /v1/keys: %d %s", r.status, r.body)
	}
}
