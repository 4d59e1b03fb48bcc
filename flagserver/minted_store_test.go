package flagserver_test

import (
	"testing"

	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/flagserver/storetest"
)

// TestEmbeddedMintedTokens runs the minted token store tests on a data
// directory (with a reopen) and in memory.
func TestEmbeddedMintedTokens(t *testing.T) {
	t.Run("bbolt", func(t *testing.T) {
		dirs := map[flagserver.Store]string{}
		open := func(t testing.TB, dir string) flagserver.Store {
			st, err := flagserver.OpenEmbeddedStore(dir, false)
			if err != nil {
				t.Fatal(err)
			}
			dirs[st] = dir
			return st
		}
		storetest.RunMinted(t, storetest.Harness{
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
		storetest.RunMinted(t, storetest.Harness{Open: func(t testing.TB) flagserver.Store {
			st, err := flagserver.OpenEmbeddedStore("", false)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}})
	})
}
