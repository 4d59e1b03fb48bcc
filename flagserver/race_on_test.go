//go:build race

package flagserver

// raceEnabled: the race detector slows each of the 200,000 deliveries of
// TestSSEAndWebSocketSameSequence about tenfold, so under it that test
// runs with fewer clients (the same 1,000 events).
const raceEnabled = true
