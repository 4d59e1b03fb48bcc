//go:build race

package main

// raceEnabled: the race detector allows at most 8,128 live goroutines, so
// tests that hold one per connection scale down under it.
const raceEnabled = true
