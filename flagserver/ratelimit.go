package flagserver

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

// RateLimit is a token bucket: PerSecond tokens are added each second up to
// Burst. The zero RateLimit means the default for its class; a negative
// PerSecond means unlimited; a zero or negative Burst with a positive
// PerSecond means PerSecond rounded up (at least 1).
//
// Its text form (MarshalText, UnmarshalText: flags of `flagwire serve`, the
// tokens file) is "RATE[/s][,BURST]" — "20/s,40", "5000", "0.5/s,3" — or
// "off" for unlimited.
type RateLimit struct {
	PerSecond float64 `json:"perSecond" yaml:"perSecond"`
	Burst     int     `json:"burst,omitempty" yaml:"burst,omitempty"`
}

// Unlimited is the RateLimit that never refuses ("off" in text).
var Unlimited = RateLimit{PerSecond: -1}

// Default rate limits. Reads are not limited: one read token is commonly
// shared by a whole fleet of SDKs (every replica of every service), so
// any per-token figure would throttle some fleet's legitimate reads; the
// server's capacity and the connection limits of `flagwire serve` bound
// them instead. Set Options.ReadLimit, or a token's ReadLimit, to cap a
// token. Writes are people and pipelines, not fleets: 20 per second with
// a burst of 40 per token.
var (
	DefaultReadLimit  = Unlimited
	DefaultWriteLimit = RateLimit{PerSecond: 20, Burst: 40}
)

func (l RateLimit) orDefault(def RateLimit) RateLimit {
	if l.PerSecond == 0 {
		l = def
	}
	if l.PerSecond > 0 && l.Burst <= 0 {
		l.Burst = int(math.Max(1, math.Ceil(math.Min(l.PerSecond, math.MaxInt32))))
	}
	return l
}

func (l RateLimit) unlimited() bool { return l.PerSecond < 0 }

// resolveRateLimits applies the defaults to opts' rate limits and returns
// a copy of opts.Tokens with each token's limits resolved (its own, else
// the server's). A rate that is not a finite number is an error.
func resolveRateLimits(opts *Options) ([]Token, error) {
	opts.ReadLimit = opts.ReadLimit.orDefault(DefaultReadLimit)
	opts.WriteLimit = opts.WriteLimit.orDefault(DefaultWriteLimit)
	opts.AuthFailureLimit = opts.AuthFailureLimit.orDefault(DefaultAuthFailureLimit)
	for _, l := range []struct {
		name  string
		limit RateLimit
	}{{"ReadLimit", opts.ReadLimit}, {"WriteLimit", opts.WriteLimit}, {"AuthFailureLimit", opts.AuthFailureLimit}} {
		if err := l.limit.validate(); err != nil {
			return nil, fmt.Errorf("flagserver: %s: %w", l.name, err)
		}
	}
	tokens := slices.Clone(opts.Tokens)
	for i, t := range tokens {
		if err := t.ReadLimit.validate(); err != nil {
			return nil, fmt.Errorf("flagserver: token %d (%s): readLimit: %w", i, t.Subject, err)
		}
		if err := t.WriteLimit.validate(); err != nil {
			return nil, fmt.Errorf("flagserver: token %d (%s): writeLimit: %w", i, t.Subject, err)
		}
		tokens[i].ReadLimit = t.ReadLimit.orDefault(opts.ReadLimit)
		tokens[i].WriteLimit = t.WriteLimit.orDefault(opts.WriteLimit)
	}
	return tokens, nil
}

// validate refuses a PerSecond that is not a finite number.
func (l RateLimit) validate() error {
	if math.IsNaN(l.PerSecond) || math.IsInf(l.PerSecond, 0) {
		return fmt.Errorf("rate limit %v per second: want a finite number (negative: unlimited)", l.PerSecond)
	}
	return nil
}

// String returns the text form: "off", "RATE/s,BURST", or "default" for
// the zero RateLimit.
func (l RateLimit) String() string {
	switch {
	case l.PerSecond == 0:
		return "default"
	case l.unlimited():
		return "off"
	case l.Burst > 0:
		return strconv.FormatFloat(l.PerSecond, 'g', -1, 64) + "/s," + strconv.Itoa(l.Burst)
	default:
		return strconv.FormatFloat(l.PerSecond, 'g', -1, 64) + "/s"
	}
}

// MarshalText returns the text form (see String).
func (l RateLimit) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText parses "RATE[/s][,BURST]", "off" (or "unlimited") and
// "default" (the zero RateLimit). RATE is a positive number of requests
// per second, BURST a positive integer (omitted: RATE rounded up).
func (l *RateLimit) UnmarshalText(text []byte) error {
	v, err := ParseRateLimit(string(text))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// UnmarshalJSON accepts the text form as a JSON string, or the object
// {"perSecond": N, "burst": N}.
func (l *RateLimit) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return l.UnmarshalText([]byte(s))
	}
	type plain RateLimit // without methods
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*l = RateLimit(v)
	return l.validate()
}

// ParseRateLimit parses a RateLimit's text form (see
// RateLimit.UnmarshalText). Errors name the expected form.
func ParseRateLimit(s string) (RateLimit, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "off", "unlimited":
		return Unlimited, nil
	case "default":
		return RateLimit{}, nil
	}
	bad := func(why string) (RateLimit, error) {
		return RateLimit{}, fmt.Errorf("rate limit %q: %s (want RATE[/s][,BURST], e.g. 20/s,40, or off)", s, why)
	}
	rate, burst, hasBurst := strings.Cut(s, ",")
	rate = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rate), "/s"))
	r, err := strconv.ParseFloat(rate, 64)
	if err != nil || math.IsNaN(r) || math.IsInf(r, 0) {
		return bad("the rate is not a number")
	}
	if r <= 0 {
		return bad("the rate must be positive")
	}
	l := RateLimit{PerSecond: r}
	if hasBurst {
		b, err := strconv.Atoi(strings.TrimSpace(burst))
		if err != nil || b <= 0 {
			return bad("the burst must be a positive integer")
		}
		l.Burst = b
	}
	return l, nil
}

// bucket is one token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// limiter keeps one bucket per key (a token; open mode has a single
// key). Buckets are created on first use; their number is bounded by the
// configured tokens. Each call names its limit, so tokens may have limits
// of their own.
type limiter struct {
	now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, buckets: map[string]*bucket{}}
}

// allow takes one token for key under limit (the same limit for a key
// every time). It sets the X-RateLimit-* headers and, when refused,
// returns a 429 error with Retry-After set. An unlimited limit allows
// everything and sets no header.
func (l *limiter) allow(w http.ResponseWriter, key string, limit RateLimit) error {
	if limit.unlimited() {
		return nil
	}
	now := l.now()
	burst := float64(limit.Burst)
	l.mu.Lock()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: burst, last: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(burst, b.tokens+el*limit.PerSecond)
		b.last = now
	}
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	tokens := b.tokens
	l.mu.Unlock()

	h := w.Header()
	h.Set(wire.HeaderRateLimitLimit, strconv.Itoa(limit.Burst))
	h.Set(wire.HeaderRateLimitRemaining, strconv.Itoa(int(math.Floor(tokens))))
	// Reset: seconds until the bucket is full again.
	h.Set(wire.HeaderRateLimitReset, strconv.Itoa(secondsCeil((burst-tokens)/limit.PerSecond)))
	if allowed {
		return nil
	}
	retry := max(1, secondsCeil((1-tokens)/limit.PerSecond))
	h.Set("Retry-After", strconv.Itoa(retry))
	return errorf(http.StatusTooManyRequests, wire.CodeRateLimited, "rate limit exceeded: %g requests/s, burst %d; retry after %ds",
		limit.PerSecond, limit.Burst, retry).with(map[string]any{"retryAfterSeconds": retry})
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
