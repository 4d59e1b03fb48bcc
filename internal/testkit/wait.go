package testkit

import (
	"testing"
	"time"
)

// pollEvery is how often a condition is checked while waiting for it.
const pollEvery = 2 * time.Millisecond

// Eventually reports whether cond holds within timeout, checking it every
// 2 ms and once more when the time is up: a wait on a condition, never a
// fixed sleep for an outcome.
func Eventually(timeout time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return true
			}
		case <-deadline.C:
			return cond()
		}
	}
}

// WaitFor fails t and stops the test (t.Fatalf, so call it from the test's
// goroutine) unless cond holds within timeout; what names the condition
// in the failure.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Eventually(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// CheckWithin is WaitFor for a test that must go on after a timeout (to
// stop its load and record its figures): it marks t failed with t.Errorf
// and returns false.
func CheckWithin(t testing.TB, timeout time.Duration, what string, cond func() bool) bool {
	t.Helper()
	if !Eventually(timeout, cond) {
		t.Errorf("timed out after %v waiting for %s", timeout, what)
		return false
	}
	return true
}
