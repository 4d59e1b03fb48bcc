package flagwire

import (
	"errors"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/flagwire/flagwire/internal/retry"
)

// maxEndpoints bounds WithEndpoint (a call's tried set is a bit mask).
const maxEndpoints = 16

// streamPreferEvery is how often a stream connected to a less preferred
// endpoint checks whether a more preferred one is usable again.
const streamPreferEvery = 30 * time.Second

// endpoint is one base URL of the API with its own health: a circuit
// breaker (evaluations), a Retry-After gate and a down mark (a failed
// config fetch or stream connect).
type endpoint struct {
	url *url.URL
	br  *breaker
	// rateLimitedUntil is the clock time before which no call is made to
	// this endpoint after a 429 with Retry-After.
	rateLimitedUntil atomic.Int64
	// downUntil is the clock time before which this endpoint is skipped
	// after a failed config fetch or stream connect (the breaker's open
	// timeout), unless no endpoint is usable.
	downUntil atomic.Int64
}

func (ep *endpoint) gated(now int64) bool {
	until := ep.rateLimitedUntil.Load()
	return until != 0 && now < until
}

// usable reports whether ep may be given a call at now.
func (ep *endpoint) usable(now int64) bool {
	return !ep.gated(now) && now >= ep.downUntil.Load() && ep.br.current() != BreakerOpen
}

// pickEndpoint returns the most preferred usable endpoint that is not in
// skip (a bit per endpoint index), or -1 when none is.
func (c *Client) pickEndpoint(skip uint32, now int64) int {
	for i, ep := range c.eps {
		if skip&(1<<i) == 0 && ep.usable(now) {
			return i
		}
	}
	return -1
}

// endpointFor returns the endpoint a call that may not wait should use at
// now: the most preferred usable one not in skip, else the most preferred
// one not in skip (which fails the call with its own reason), else the
// primary.
func (c *Client) endpointFor(skip uint32, now int64) int {
	if i := c.pickEndpoint(skip, now); i >= 0 {
		return i
	}
	for i := range c.eps {
		if skip&(1<<i) == 0 {
			return i
		}
	}
	return 0
}

// rateLimited reports whether every endpoint asks the client to wait.
func (c *Client) rateLimited(now int64) bool {
	for _, ep := range c.eps {
		if !ep.gated(now) {
			return false
		}
	}
	return true
}

// markDown skips endpoint i for the breaker's open timeout after a failed
// config fetch or stream connect.
func (c *Client) markDown(i int) {
	c.eps[i].downUntil.Store(c.cfg.clock.Nanotime() + int64(c.openTimeout()))
}

// markUp clears endpoint i's down mark after an answer.
func (c *Client) markUp(i int) {
	if c.eps[i].downUntil.Load() != 0 {
		c.eps[i].downUntil.Store(0)
	}
	c.lastEndpoint.Store(int32(i))
}

func (c *Client) openTimeout() time.Duration {
	if d := c.cfg.breaker.OpenTimeout; d > 0 {
		return d
	}
	return 10 * time.Second
}

// failsOver reports whether err, from one endpoint, makes the call try the
// next one: the endpoint is unreachable, failing or asks to wait; not an
// answer about the request itself (401/403, 404, 4xx).
func failsOver(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		switch ae.code {
		case CodeUnavailable, CodeTimeout, CodeBadResponse, CodeRateLimited, CodeCircuitOpen:
			return true
		}
		return false
	}
	return isBreakerOpen(err)
}

// retryAfter returns the Retry-After wait err carries (an *apiError from
// a response with the header), capped at RetrySettings.MaxRetryAfter; zero
// when there is none. Every consumer of a Retry-After goes through it.
func (c *Client) retryAfter(err error) time.Duration {
	var ae *apiError
	if !errors.As(err, &ae) || ae.retryAfter <= 0 {
		return 0
	}
	limit := c.cfg.retry.MaxRetryAfter
	if limit <= 0 {
		limit = retry.DefaultMaxRetryAfter
	}
	return min(ae.retryAfter, limit)
}
