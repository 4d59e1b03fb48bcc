// Package retry holds Flagwire's retry policy: decorrelated-jitter backoff
// as a backoff.BackOff for github.com/cenkalti/backoff/v4, and Retry-After
// parsing.
package retry

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// DecorrelatedJitter is the "decorrelated jitter" backoff:
//
//	sleep = min(Cap, random_between(Base, prev*3))
//
// starting from prev = Base. It never stops by itself (NextBackOff never
// returns backoff.Stop); bound the loop with a context or MaxElapsed. Not
// safe for concurrent use: use one instance per retry loop.
type DecorrelatedJitter struct {
	Base time.Duration
	Cap  time.Duration
	// Rand returns a uniform value in [0, n). Nil uses math/rand/v2.
	Rand func(n int64) int64

	prev time.Duration
}

var _ backoff.BackOff = (*DecorrelatedJitter)(nil)

// NewDecorrelatedJitter returns a backoff with the given base and cap.
// A non-positive base means 50 ms, a cap below base means 30 s.
func NewDecorrelatedJitter(base, cap time.Duration) *DecorrelatedJitter {
	if base <= 0 {
		base = 50 * time.Millisecond
	}
	if cap < base {
		cap = 30 * time.Second
	}
	return &DecorrelatedJitter{Base: base, Cap: cap}
}

// NextBackOff returns the next wait.
func (d *DecorrelatedJitter) NextBackOff() time.Duration {
	if d.prev < d.Base {
		d.prev = d.Base
	}
	hi := d.prev * 3
	if hi > d.Cap || hi <= 0 { // overflow guard
		hi = d.Cap
	}
	span := int64(hi - d.Base)
	next := d.Base
	if span > 0 {
		r := d.Rand
		if r == nil {
			r = rand.Int64N
		}
		next += time.Duration(r(span + 1))
	}
	if next > d.Cap {
		next = d.Cap
	}
	d.prev = next
	return next
}

// Reset starts over from Base.
func (d *DecorrelatedJitter) Reset() { d.prev = 0 }

// DefaultMaxRetryAfter is the longest wait a Retry-After header imposes
// unless the caller chooses another bound: a server (or anything between
// it and the client) answering "Retry-After: 999999999" must not silence a
// client for days.
const DefaultMaxRetryAfter = 5 * time.Minute

// ParseRetryAfter reads a Retry-After header value, in either of its forms
// (RFC 9110, section 10.2.3): delay-seconds or an HTTP date, relative to
// now. The result is capped at DefaultMaxRetryAfter. It reports false when
// the header is absent or malformed (a negative number is malformed); a
// date in the past means zero.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	return ParseRetryAfterMax(v, now, DefaultMaxRetryAfter)
}

// ParseRetryAfterMax is ParseRetryAfter with the cap limit instead of
// DefaultMaxRetryAfter; a limit of zero or less means no cap but the largest
// time.Duration. It never overflows: a delay-seconds of any length (even
// beyond int64) or a date centuries ahead is capped, not wrapped.
func ParseRetryAfterMax(v string, now time.Time, limit time.Duration) (time.Duration, bool) {
	if limit <= 0 {
		limit = math.MaxInt64
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(limit/time.Second) { // out of range: beyond any cap
			return limit, true
		}
		return min(time.Duration(secs)*time.Second, limit), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now) // saturates at the Duration range
	return min(max(d, 0), limit), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
