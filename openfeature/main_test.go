package flagwireof_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: the provider's
// pump and status watcher, the Flagwire client's and the OpenFeature SDK's
// event goroutines all end with openfeature.ShutdownWithContext.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
