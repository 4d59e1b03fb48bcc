//go:build !flagwire_openfeature

package bench

import "testing"

// openFeatureFlagwire is the Flagwire OpenFeature provider's benchmark. The
// provider (package github.com/flagwire/flagwire/openfeature) is built only
// with -tags flagwire_openfeature, which cmd/table sets when ../openfeature
// exists; without it the benchmark is skipped.
func openFeatureFlagwire(testing.TB) evalFunc { return nil }
