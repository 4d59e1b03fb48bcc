package pgstore

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/internal/testkit"
)

// TestReplicasMigrateAtOnce: replicas opening a new schema at the same
// time all succeed and agree on one epoch and one signing key (the
// migrations run once, under the advisory lock).
func TestReplicasMigrateAtOnce(t *testing.T) {
	schema := newSchema(t)
	const n = 6
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = Open(context.Background(), testkit.PostgresDSN(t), Options{Schema: schema})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	k0, err := stores[0].SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range stores {
		k, err := st.SigningKeys(context.Background())
		if st.Epoch() != stores[0].Epoch() || err != nil || len(k) != 1 || !k[0].Equal(k0[0]) {
			t.Fatalf("replica %d: epoch %s, %d keys (%v); replica 0: epoch %s", i, st.Epoch(), len(k), err, stores[0].Epoch())
		}
	}
	var versions int
	conn, err := pgx.Connect(context.Background(), testkit.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{schema, "flagwire_schema"}.Sanitize()).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if versions != len(migrations)-1 {
		t.Fatalf("%d migrations recorded, want %d", versions, len(migrations)-1)
	}
}

// TestUnreachableDatabase: a database nobody listens on is a quick error
// wrapping ErrStoreUnavailable (callers retry), naming the address and
// not the password.
func TestUnreachableDatabase(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	start := time.Now()
	_, err = Open(context.Background(), "postgres://flagwire:s3cret-pw@"+addr+"/db?sslmode=disable&connect_timeout=2", Options{})
	if err == nil {
		t.Fatal("Open of an unreachable database succeeded")
	}
	if !errors.Is(err, flagserver.ErrStoreUnavailable) {
		t.Errorf("error %v does not wrap ErrStoreUnavailable", err)
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error prints the password: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open took %v", d)
	}
}

// TestWrongPassword: a wrong password is a clear error that does not
// print it (or the right one), and is not "unavailable" (retrying will
// not help). It needs a server that checks passwords on 127.0.0.1 for
// role flagwire_pw (.ci/postgres.sh configures one); elsewhere it skips.
func TestWrongPassword(t *testing.T) {
	dsn := testkit.PostgresDSN(t)
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	conn.Exec(context.Background(), `DO $$ BEGIN CREATE ROLE flagwire_pw LOGIN PASSWORD 'the-right-one'; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("flagwire_pw", "Wr0ng-Passw0rd")
	if c, err := pgx.Connect(context.Background(), u.String()); err == nil {
		c.Close(context.Background())
		t.Skip("the test server does not check passwords for flagwire_pw (.ci/postgres.sh's cluster does)")
	}
	_, err = Open(context.Background(), u.String(), Options{Schema: "public"})
	if err == nil {
		t.Fatal("Open with a wrong password succeeded")
	}
	if errors.Is(err, flagserver.ErrStoreUnavailable) {
		t.Errorf("a wrong password is not a passing unavailability: %v", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "Wr0ng-Passw0rd") || strings.Contains(msg, "the-right-one") {
		t.Fatalf("error prints a password: %v", err)
	}
	if !strings.Contains(msg, "password authentication failed") || !strings.Contains(msg, "flagwire_pw") {
		t.Fatalf("error does not say the password was refused: %v", err)
	}
	t.Logf("the error: %s", msg)
}

// TestRedact: passwords in URL and key=value DSNs are removed from
// messages.
func TestRedact(t *testing.T) {
	for _, c := range []struct{ dsn, msg string }{
		{"postgres://u:p%40ss@h/db", "failed for p@ss and p%40ss"},
		{"host=h user=u password=hunter2 dbname=d", "cannot parse `host=h user=u password=hunter2`"},
		{"host=h password='a b c'", "bad: password='a b c'"},
	} {
		got := redact(c.msg, c.dsn)
		for _, pw := range []string{"p@ss", "p%40ss", "hunter2", "a b c"} {
			if strings.Contains(got, pw) {
				t.Errorf("redact(%q) = %q: still has %q", c.msg, got, pw)
			}
		}
	}
}
