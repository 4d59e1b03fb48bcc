package flagwire

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/flagwire/flagwire/internal/wire"
)

// BreakerState is the circuit breaker's state.
type BreakerState string

// The breaker states.
const (
	BreakerClosed   BreakerState = "closed"
	BreakerHalfOpen BreakerState = "half-open"
	BreakerOpen     BreakerState = "open"
)

// breaker wraps gobreaker around every API call. While open, calls fail
// at once with gobreaker.ErrOpenState: no network at all. Cancellations and
// 4xx answers other than 429 do not count (IsExcluded). State changes are
// recorded atomically under gobreaker's lock and logged afterwards, outside
// it.
type breaker struct {
	cb      *gobreaker.CircuitBreaker[*wire.EvaluateResponse]
	changed atomic.Bool
	c       *Client
}

func newBreaker(s BreakerSettings, c *Client) *breaker {
	if s.ConsecutiveFailures == 0 {
		s.ConsecutiveFailures = 5
	}
	if s.FailureRatio == 0 {
		s.FailureRatio = 0.5
	}
	if s.MinRequests == 0 {
		s.MinRequests = 20
	}
	if s.Window <= 0 {
		s.Window = 30 * time.Second
	}
	if s.OpenTimeout <= 0 {
		s.OpenTimeout = 10 * time.Second
	}
	if s.HalfOpenRequests == 0 {
		s.HalfOpenRequests = 1
	}
	b := &breaker{c: c}
	b.cb = gobreaker.NewCircuitBreaker[*wire.EvaluateResponse](gobreaker.Settings{
		Name:        "flagwire",
		MaxRequests: s.HalfOpenRequests,
		Interval:    s.Window,
		Timeout:     s.OpenTimeout,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			if n.ConsecutiveFailures >= s.ConsecutiveFailures {
				return true
			}
			return n.Requests >= s.MinRequests && float64(n.TotalFailures)/float64(n.Requests) >= s.FailureRatio
		},
		OnStateChange: func(_ string, _, to gobreaker.State) {
			// Runs under gobreaker's lock: record only.
			b.changed.Store(true)
			c.stats.breakerTransitions.Add(1)
		},
		IsExcluded: func(err error) bool {
			if errors.Is(err, context.Canceled) {
				return true
			}
			var ae *apiError
			if errors.As(err, &ae) && ae.status >= 400 && ae.status < 500 && ae.status != 429 {
				return true
			}
			return false
		},
	})
	return b
}

func (b *breaker) execute(f func() (*wire.EvaluateResponse, error)) (*wire.EvaluateResponse, error) {
	r, err := b.cb.Execute(f)
	if b.changed.Swap(false) {
		st := b.current()
		b.c.cfg.logger.Warn("flagwire: circuit breaker state changed", "state", string(st))
	}
	return r, err
}

// current returns the state, observing an open breaker's timeout expiry.
func (b *breaker) current() BreakerState {
	return BreakerState(b.cb.State().String())
}

func isBreakerOpen(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}
