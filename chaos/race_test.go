//go:build race

package chaos

// raceEnabled: the race detector slows evaluation ~10×, so the short run
// scales its distinct-context count down (see loadSettings).
const raceEnabled = true
