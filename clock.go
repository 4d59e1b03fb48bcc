package flagwire

import (
	"context"
	"sync/atomic"
	"time"
)

// clock is the client's time source, injected in tests. Nanotime is a
// monotonic reading used on the hot path (cheaper than Now).
type clock interface {
	Now() time.Time
	Nanotime() int64
}

type realClock struct{ base time.Time }

func newRealClock() realClock { return realClock{base: time.Now()} }

func (c realClock) Now() time.Time { return time.Now() }

func (c realClock) Nanotime() int64 { return int64(time.Since(c.base)) }

// coarseTick is the resolution of the hot path's clock. Decision TTLs are
// whole seconds, so 10 ms is ample; reading an atomic costs ~1 ns where a
// clock read costs ~30–60 ns on common cloud VMs.
const coarseTick = 10 * time.Millisecond

// coarseIdleTicks is how many ticks without a reading park the clock's
// goroutine (half a second): an idle client costs no CPU.
const coarseIdleTicks = 50

// coarseClock is a monotonic reading refreshed by a ticker goroutine the
// client owns (stopped by Close), while it is read: after coarseIdleTicks
// ticks without a reading the goroutine parks, and the next reading
// refreshes the clock itself and wakes it. Only the decision cache's hot
// path uses it; latency measurements and timeouts use the precise clock.
type coarseClock struct {
	precise realClock
	now     atomic.Int64
	// wall is the wall clock (Unix nanoseconds) read at the same tick:
	// read again, not derived from now, so that it follows adjustments
	// of the system clock as time.Now does.
	wall atomic.Int64
	// read is set by readings since the last tick; parked while the
	// goroutine waits for wake (readings then refresh the clock).
	read, parked atomic.Bool
	wake         chan struct{}
}

func newCoarseClock(precise realClock) *coarseClock {
	c := &coarseClock{precise: precise, wake: make(chan struct{}, 1)}
	c.tick()
	return c
}

func (c *coarseClock) tick() {
	c.now.Store(c.precise.Nanotime())
	c.wall.Store(time.Now().UnixNano())
}

// touch marks a reading and, when the clock is parked, refreshes it and
// wakes its goroutine. Call it before reading now or wall.
func (c *coarseClock) touch() {
	if c.parked.Load() {
		c.tick() // before unparking: whoever sees it unparked reads a fresh clock
		if c.parked.CompareAndSwap(true, false) {
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
	}
	if !c.read.Load() {
		c.read.Store(true)
	}
}

func (c *coarseClock) run(ctx context.Context) {
	t := time.NewTicker(coarseTick)
	defer t.Stop()
	idle := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.tick()
		if c.read.Swap(false) {
			idle = 0
			continue
		}
		if idle++; idle < coarseIdleTicks {
			continue
		}
		// Park: readings refresh the clock themselves until one wakes us.
		t.Stop()
		c.parked.Store(true)
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		idle = 0
		c.tick()
		t.Reset(coarseTick)
	}
}

// hotNow returns the clock reading for the cache hot path.
func (c *Client) hotNow() int64 {
	if c.coarse != nil {
		c.coarse.touch()
		return c.coarse.now.Load()
	}
	return c.cfg.clock.Nanotime()
}

// hotWall returns the wall-clock time for evaluations on the hot path
// (progressive rollouts and date rules need it; 10 ms resolution), or
// the clock a module-internal test injected through clockhook.
func (c *Client) hotWall() time.Time {
	if c.evalWall != nil {
		return c.evalWall()
	}
	if c.coarse != nil {
		c.coarse.touch()
		return time.Unix(0, c.coarse.wall.Load())
	}
	return c.cfg.clock.Now()
}
