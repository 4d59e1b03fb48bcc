//go:build !race

package flagserver

// raceEnabled: see race_on_test.go.
const raceEnabled = false
