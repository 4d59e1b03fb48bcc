package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/flagserver/storetest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// newSchema returns a schema of its own for a test (dropped at its end),
// so tests and packages can share one database.
func newSchema(t testing.TB) string {
	t.Helper()
	dsn := testkit.PostgresDSN(t)
	var b [6]byte
	rand.Read(b[:])
	schema := "flagwire_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

func openSchema(t testing.TB, schema string) *Store {
	t.Helper()
	st, err := Open(context.Background(), testkit.PostgresDSN(t), Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestStoreSuite runs the store suite (flagserver/storetest) on
// PostgreSQL: the same tests as the embedded store's.
func TestStoreSuite(t *testing.T) {
	storetest.Run(t, harness())
}

// harness opens each store on a fresh schema and reopens it on the same
// schema.
func harness() storetest.Harness {
	schemas := map[flagserver.Store]string{}
	return storetest.Harness{
		Open: func(t testing.TB) flagserver.Store {
			s := newSchema(t)
			st := openSchema(t, s)
			schemas[st] = s
			return st
		},
		Reopen: func(t testing.TB, st flagserver.Store) flagserver.Store {
			s := schemas[st]
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st2 := openSchema(t, s)
			schemas[st2] = s
			return st2
		},
	}
}

// TestServers runs the whole-server scenarios on PostgreSQL, the replica
// scenarios included: several servers on one database.
func TestServers(t *testing.T) {
	storetest.RunServers(t, serverHarness())
}

// serverHarness runs several servers on one database: each group of
// servers shares a fresh schema.
func serverHarness() storetest.ServerHarness {
	return storetest.ServerHarness{
		Shared: true,
		NewStore: func(t testing.TB) func(t testing.TB) flagserver.Store {
			s := newSchema(t)
			return func(t testing.TB) flagserver.Store { return openSchema(t, s) }
		},
	}
}
