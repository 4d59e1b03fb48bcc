package testkit

import (
	"sync"
	"time"
)

// Clock is an injected clock: time moves only when a test calls Advance
// (or sets it with Set). It serves both a wall clock (Now, for
// flagserver.Options.Now and flagtest.WithClock) and a monotonic reading
// (Nanotime, for the client's clock). Safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
	ns  int64
}

// NewClock returns a Clock at 2026-11-24 12:00 UTC, whose Nanotime reads 1.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), ns: 1}
}

// Now returns the clock's wall time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Nanotime returns the clock's monotonic reading in nanoseconds.
func (c *Clock) Nanotime() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ns
}

// Advance moves the wall time and the monotonic reading on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.ns += int64(d)
	c.mu.Unlock()
}

// Set puts the wall time at t; the monotonic reading does not move.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}
