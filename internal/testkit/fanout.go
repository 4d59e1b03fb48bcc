package testkit

import (
	"bufio"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FanOut watches many SSE subscribers, each a raw connection whose GET
// of /v1/stream is written, for one change: a subscriber is ready once
// its answer's status is 200 and the stream's opening comment
// (": flagwire stream") arrived; from Mark on, it notes how long it took
// to read a line holding the change's marker.
type FanOut struct {
	marker      string
	timeout     time.Duration
	got         []time.Duration
	t0          atomic.Int64
	ready, done sync.WaitGroup
	refused     atomic.Int64 // answered other than 200
	failed      atomic.Int64 // stream ended or timed out before the marker
}

// NewFanOut watches n subscribers (see Watch) for a line holding marker,
// each reading for at most timeout.
func NewFanOut(n int, marker string, timeout time.Duration) *FanOut {
	return &FanOut{marker: marker, timeout: timeout, got: make([]time.Duration, n)}
}

// Watch reads subscriber i's answer on c in a goroutine of its own, which
// ends at the marker, at the stream's end or after the timeout.
func (f *FanOut) Watch(i int, c net.Conn) {
	f.ready.Add(1)
	f.done.Add(1)
	go func() {
		defer f.done.Done()
		isReady := false
		defer func() {
			if !isReady {
				f.ready.Done()
			}
		}()
		c.SetReadDeadline(time.Now().Add(f.timeout))
		br := bufio.NewReaderSize(c, 4096)
		status, err := br.ReadString('\n')
		if err != nil || !strings.Contains(status, " 200 ") {
			f.refused.Add(1)
			return
		}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				f.failed.Add(1)
				return
			}
			if !isReady && strings.HasPrefix(line, ": flagwire stream") {
				isReady = true
				f.ready.Done()
			}
			if strings.Contains(line, f.marker) {
				f.got[i] = time.Duration(time.Now().UnixNano() - f.t0.Load())
				return
			}
		}
	}()
}

// Ready waits until every subscriber is ready or has ended, and returns
// how many were refused and how many streams ended so far.
func (f *FanOut) Ready() (refused, failed int64) {
	f.ready.Wait()
	return f.refused.Load(), f.failed.Load()
}

// Mark notes the time the change is made, just before it is.
func (f *FanOut) Mark() { f.t0.Store(time.Now().UnixNano()) }

// Wait waits for every subscriber and returns the latencies from Mark to
// the marker, sorted (0 for a subscriber that missed it), and how many
// missed it (refused, or their stream ended first).
func (f *FanOut) Wait() (latencies []time.Duration, missed int64) {
	f.done.Wait()
	got := slices.Clone(f.got)
	slices.Sort(got)
	return got, f.refused.Load() + f.failed.Load()
}
