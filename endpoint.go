package flagwire

import (
	"errors"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// WithEndpoint sets the Flag API's base URL, such as
// "https://flags.example.com" (the SDK appends /v1/...). Required in remote
// and local modes. A URL ending in the API's own prefix /v1, such as
// "https://flags.example.com/v1", means the base URL without it: New
// drops that suffix, so requests never go to /v1/v1/.... API calls never
// follow a redirect off this URL's origin (see WithHTTPClient).
//
// others are more base URLs of the same API (replicas or regions), in
// order of preference after primary (the nearest region or replica),
// each read as primary is. Every API call (evaluations, config syncs, the
// event stream) goes to the first endpoint that is usable: not failing
// (its circuit breaker is not open, and it answered the last config fetch
// or stream connect), and not asking the client to wait (Retry-After). A
// call that fails on one endpoint is retried on the next within the same
// call, so a region outage costs a caller one failed attempt, not a
// fallback. The client returns to a more preferred endpoint as soon as it
// is usable again: its breaker lets a probe through after
// BreakerSettings.OpenTimeout (10 s by default), and a stream connected to
// another endpoint moves back within 30 s. The stream resumes with
// Last-Event-ID on whichever endpoint it reaches (replicas of one store
// share event ids; another store is a new epoch, which the client
// follows). Each endpoint has its own breaker and Retry-After.
// Status().Endpoint names the endpoint in use. At most 16 endpoints.
func WithEndpoint(primary string, others ...string) Option {
	return boundTo("WithEndpoint", networkModes, func(c *config) {
		c.endpoints = c.endpoints[:0]
		for _, raw := range append([]string{primary}, others...) {
			u, err := url.Parse(strings.TrimRight(raw, "/"))
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				c.errorf("endpoint %q is not an absolute http(s) URL", raw)
				continue
			}
			c.endpoints = append(c.endpoints, u)
		}
		if len(c.endpoints) > maxEndpoints {
			c.errorf("%d endpoints: at most %d", len(c.endpoints), maxEndpoints)
		}
	})
}

// withStreamPreferEvery shortens streamPreferEvery (tests).
func withStreamPreferEvery(d time.Duration) Option {
	return func(c *config) { c.localOptions.streamPrefer = d }
}

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
