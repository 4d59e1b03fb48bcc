package flagserver

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

// RateLimit is a token bucket: PerSecond tokens are added each second up to
// Burst. The zero RateLimit means the default for its class; a negative
// PerSecond means unlimited.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// Default rate limits, per token.
var (
	DefaultReadLimit  = RateLimit{PerSecond: 1000, Burst: 2000}
	DefaultWriteLimit = RateLimit{PerSecond: 20, Burst: 40}
)

func (l RateLimit) orDefault(def RateLimit) RateLimit {
	if l.PerSecond == 0 {
		return def
	}
	if l.PerSecond > 0 && l.Burst <= 0 {
		l.Burst = int(math.Max(1, math.Ceil(l.PerSecond)))
	}
	return l
}

func (l RateLimit) unlimited() bool { return l.PerSecond < 0 }

// bucket is one token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// limiter keeps one bucket per (class, subject). Buckets are created on
// first use; the number of subjects is bounded by the configured tokens
// (open mode has a single subject).
type limiter struct {
	limit RateLimit
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

func newLimiter(l RateLimit, now func() time.Time) *limiter {
	return &limiter{limit: l, now: now, buckets: map[string]*bucket{}}
}

// allow takes one token for key. It sets the X-RateLimit-* headers and,
// when refused, returns a 429 error with Retry-After set.
func (l *limiter) allow(w http.ResponseWriter, key string) error {
	if l.limit.unlimited() {
		return nil
	}
	now := l.now()
	burst := float64(l.limit.Burst)
	l.mu.Lock()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: burst, last: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(burst, b.tokens+el*l.limit.PerSecond)
		b.last = now
	}
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	tokens := b.tokens
	l.mu.Unlock()

	h := w.Header()
	h.Set(wire.HeaderRateLimitLimit, strconv.Itoa(l.limit.Burst))
	h.Set(wire.HeaderRateLimitRemaining, strconv.Itoa(int(math.Floor(tokens))))
	// Reset: seconds until the bucket is full again.
	h.Set(wire.HeaderRateLimitReset, strconv.Itoa(secondsCeil((burst-tokens)/l.limit.PerSecond)))
	if allowed {
		return nil
	}
	retry := max(1, secondsCeil((1-tokens)/l.limit.PerSecond))
	h.Set("Retry-After", strconv.Itoa(retry))
	return errorf(http.StatusTooManyRequests, wire.CodeRateLimited, "rate limit exceeded: %g requests/s, burst %d; retry after %ds",
		l.limit.PerSecond, l.limit.Burst, retry).with(map[string]any{"retryAfterSeconds": retry})
}

func secondsCeil(s float64) int {
	if s <= 0 || math.IsNaN(s) {
		return 0
	}
	if s > 1e9 {
		return 1e9
	}
	return int(math.Ceil(s))
}

// DefaultAuthFailureLimit limits failed authentication per client address
// (Options.AuthFailureLimit): 2 per second, burst 20.
var DefaultAuthFailureLimit = RateLimit{PerSecond: 2, Burst: 20}

// DefaultMaxAuthFailureAddrs bounds the addresses the failure limiter
// tracks (about 100 bytes each).
const DefaultMaxAuthFailureAddrs = 1 << 16

// authFailLimiter is a token bucket per client address (an IPv4 address,
// or an IPv6 /64) that failed authentication costs a token from. Every
// authenticated request reserves a token before its credentials are
// checked and gets it back when they are good, so no more than the bucket
// holds are ever tested at once: an address with an empty bucket gets 429
// without its token or signature being looked at (else a right guess would
// still be told apart from a wrong one). Valid tokens from other addresses
// are unaffected; a valid token from the same address (say, behind the
// same NAT as the guesser) waits for the bucket like everyone there.
//
// Memory is bounded by maxAddrs: at the cap, buckets that have refilled
// (indistinguishable from new ones) are dropped; if that is not enough, a
// quarter of the addresses, chosen at random, are forgotten.
type authFailLimiter struct {
	limit    RateLimit
	now      func() time.Time
	maxAddrs int

	mu      sync.Mutex
	buckets map[string]*bucket
}

func newAuthFailLimiter(l RateLimit, maxAddrs int, now func() time.Time) *authFailLimiter {
	if maxAddrs <= 0 {
		maxAddrs = DefaultMaxAuthFailureAddrs
	}
	return &authFailLimiter{limit: l, now: now, maxAddrs: maxAddrs, buckets: map[string]*bucket{}}
}

// reserve takes a token for addr; when there is none it returns a 429
// with Retry-After set.
func (l *authFailLimiter) reserve(w http.ResponseWriter, addr string) error {
	if l.limit.unlimited() {
		return nil
	}
	now := l.now()
	burst := float64(l.limit.Burst)
	l.mu.Lock()
	b, ok := l.buckets[addr]
	if !ok {
		if len(l.buckets) >= l.maxAddrs {
			l.shrinkLocked(now)
		}
		b = &bucket{tokens: burst, last: now}
		l.buckets[addr] = b
	}
	l.refillLocked(b, now)
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	tokens := b.tokens
	l.mu.Unlock()
	if allowed {
		return nil
	}
	retry := max(1, secondsCeil((1-tokens)/l.limit.PerSecond))
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	return errorf(http.StatusTooManyRequests, wire.CodeRateLimited,
		"too many failed authentications from this address (%g/s, burst %d); retry after %ds", l.limit.PerSecond, l.limit.Burst, retry).
		with(map[string]any{"retryAfterSeconds": retry})
}

// refund returns the token reserve took (the credentials were good).
func (l *authFailLimiter) refund(addr string) {
	if l.limit.unlimited() {
		return
	}
	l.mu.Lock()
	if b, ok := l.buckets[addr]; ok {
		b.tokens = math.Min(float64(l.limit.Burst), b.tokens+1)
	}
	l.mu.Unlock()
}

func (l *authFailLimiter) refillLocked(b *bucket, now time.Time) {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(float64(l.limit.Burst), b.tokens+el*l.limit.PerSecond)
		b.last = now
	}
}

func (l *authFailLimiter) shrinkLocked(now time.Time) {
	for k, b := range l.buckets {
		l.refillLocked(b, now)
		if b.tokens >= float64(l.limit.Burst) {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets { // random order
		if len(l.buckets) < l.maxAddrs*3/4 {
			break
		}
		delete(l.buckets, k)
	}
}

func (l *authFailLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// clientAddr is the rate-limit key of a request's peer: its IP address, or
// for IPv6 its /64 (one host usually holds a whole /64). Forwarding headers
// are not trusted: behind a proxy every client shares the proxy's address.
func clientAddr(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}
