package pgstore

import (
	"testing"

	"github.com/flagwire/flagwire/flagserver/storetest"
)

// TestMintedTokens runs the minted token store tests on PostgreSQL.
func TestMintedTokens(t *testing.T) {
	storetest.RunMinted(t, harness())
}

// TestMintedTokensAcrossReplicas: three servers on one database mint,
// verify and revoke each other's tokens, across a key rotation.
func TestMintedTokensAcrossReplicas(t *testing.T) {
	storetest.RunMintedReplicas(t, serverHarness())
}
