package flagserver

import (
	"math"
	"net/http"
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
