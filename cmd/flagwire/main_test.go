package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// envRunMain makes the test binary run the CLI itself (see
// startServeProcess): a server in a process of its own, with its own file
// descriptors and a resident size of its own to measure.
const envRunMain = "FLAGWIRE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}
