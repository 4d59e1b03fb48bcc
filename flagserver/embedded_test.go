package flagserver_test

import (
	"testing"

	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/flagserver/storetest"
)

// TestEmbeddedStore runs the store suite against the embedded store, with
// a data directory (bbolt) and in memory.
func TestEmbeddedStore(t *testing.T) {
	t.Run("bbolt", func(t *testing.T) {
		dirs := map[flagserver.Store]string{}
		storetest.Run(t, storetest.Harness{
			Open: func(t testing.TB) flagserver.Store {
				dir := t.TempDir()
				st, err := flagserver.OpenEmbeddedStore(dir, false)
				if err != nil {
					t.Fatal(err)
				}
				dirs[st] = dir
				return st
			},
			Reopen: func(t testing.TB, st flagserver.Store) flagserver.Store {
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
				st2, err := flagserver.OpenEmbeddedStore(dirs[st], false)
				if err != nil {
					t.Fatal(err)
				}
				dirs[st2] = dirs[st]
				return st2
			},
		})
	})
	t.Run("memory", func(t *testing.T) {
		storetest.Run(t, storetest.Harness{
			Open: func(t testing.TB) flagserver.Store {
				st, err := flagserver.OpenEmbeddedStore("", false)
				if err != nil {
					t.Fatal(err)
				}
				return st
			},
		})
	})
}

// TestEmbeddedStoreServers runs the server scenarios (retries and
// tombstones across a restart, audit pages) on a data directory.
func TestEmbeddedStoreServers(t *testing.T) {
	storetest.RunServers(t, storetest.ServerHarness{
		NewStore: func(t testing.TB) func(t testing.TB) flagserver.Store {
			dir := t.TempDir()
			return func(t testing.TB) flagserver.Store {
				st, err := flagserver.OpenEmbeddedStore(dir, false)
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
		},
	})
}
