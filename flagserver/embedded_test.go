package flagserver_test

import (
	"testing"

	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/flagserver/storetest"
)

// openEmbedded opens the embedded store on dir ("" for memory only).
func openEmbedded(t testing.TB, dir string) flagserver.Store {
	st, err := flagserver.OpenEmbeddedStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// onEmbeddedStores runs a store suite on the embedded store with a data
// directory (bbolt; reopened on the same directory) and in memory.
func onEmbeddedStores(t *testing.T, run func(*testing.T, storetest.Harness)) {
	t.Run("bbolt", func(t *testing.T) {
		dirs := map[flagserver.Store]string{}
		open := func(t testing.TB, dir string) flagserver.Store {
			st := openEmbedded(t, dir)
			dirs[st] = dir
			return st
		}
		run(t, storetest.Harness{
			Open: func(t testing.TB) flagserver.Store { return open(t, t.TempDir()) },
			Reopen: func(t testing.TB, st flagserver.Store) flagserver.Store {
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
				return open(t, dirs[st])
			},
		})
	})
	t.Run("memory", func(t *testing.T) {
		run(t, storetest.Harness{Open: func(t testing.TB) flagserver.Store { return openEmbedded(t, "") }})
	})
}

// TestEmbeddedStore runs the store suite against the embedded store, with
// a data directory (bbolt) and in memory.
func TestEmbeddedStore(t *testing.T) {
	onEmbeddedStores(t, storetest.Run)
}

// TestEmbeddedStoreServers runs the server scenarios (retries and
// tombstones across a restart, audit pages) on a data directory.
func TestEmbeddedStoreServers(t *testing.T) {
	storetest.RunServers(t, storetest.ServerHarness{
		NewStore: func(t testing.TB) func(t testing.TB) flagserver.Store {
			dir := t.TempDir()
			return func(t testing.TB) flagserver.Store { return openEmbedded(t, dir) }
		},
	})
}
