//go:build flagwire_openfeature

package bench

import (
	"testing"

	"github.com/flagwire/flagwire"
	flagwireof "github.com/flagwire/flagwire/openfeature"
)

// openFeatureFlagwire is the OpenFeature go-sdk evaluating the benchmark
// flag through the Flagwire provider, over a local-mode client (the
// provider owns the client and closes it on Shutdown). Built with
// -tags flagwire_openfeature, which cmd/table sets when ../openfeature
// exists.
func openFeatureFlagwire(tb testing.TB) evalFunc {
	c := fwClient(tb, FlagwireConfig(0), flagwire.ModeLocal)
	return ofEval(tb, ofClient(tb, flagwireof.NewProvider(c)), FlagKey)
}
