package flagserver_test

import (
	"testing"

	"github.com/flagwire/flagwire/flagserver/storetest"
)

// TestEmbeddedMintedTokens runs the minted token store tests on a data
// directory (with a reopen) and in memory.
func TestEmbeddedMintedTokens(t *testing.T) {
	onEmbeddedStores(t, storetest.RunMinted)
}
