package pgstore

import (
	"testing"

	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/flagserver/storetest"
)

// TestMintedTokens runs the minted token store tests on PostgreSQL.
func TestMintedTokens(t *testing.T) {
	schemas := map[flagserver.Store]string{}
	storetest.RunMinted(t, storetest.Harness{
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
	})
}

// TestMintedTokensAcrossReplicas: three servers on one database mint,
// verify and revoke each other's tokens, across a key rotation.
func TestMintedTokensAcrossReplicas(t *testing.T) {
	storetest.RunMintedReplicas(t, storetest.ServerHarness{
		Shared: true,
		NewStore: func(t testing.TB) func(t testing.TB) flagserver.Store {
			s := newSchema(t)
			return func(t testing.TB) flagserver.Store { return openSchema(t, s) }
		},
	})
}
