package flagwire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flagwire/flagwire/internal/retry"
)

// Mode selects how a Client decides flags.
type Mode uint8

// The modes.
const (
	// ModeRemote (the default) asks POST /v1/evaluate on a cache miss and
	// caches decisions for their ttlSeconds.
	ModeRemote Mode = iota
	// ModeLocal syncs the environment's config (GET /v1/flags with ETag,
	// SSE invalidations, polling) and evaluates in-process.
	ModeLocal
	// ModeOffline evaluates a signed bootstrap file and never touches the
	// network.
	ModeOffline
)

// String returns "remote", "local" or "offline".
func (m Mode) String() string {
	switch m {
	case ModeRemote:
		return "remote"
	case ModeLocal:
		return "local"
	case ModeOffline:
		return "offline"
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// BreakerSettings configures the circuit breaker around every API call. A
// zero field means its documented default.
type BreakerSettings struct {
	// ConsecutiveFailures opens the breaker after this many failures in a
	// row. Default 5.
	ConsecutiveFailures uint32
	// FailureRatio opens the breaker when at least MinRequests were made in
	// the current window and this share of them failed. Default 0.5.
	FailureRatio float64
	// MinRequests is the minimum window size for FailureRatio. Default 20.
	MinRequests uint32
	// Window is the rolling window over which failures are counted.
	// Default 30 s.
	Window time.Duration
	// OpenTimeout is how long the breaker stays open before letting a
	// half-open probe through. Default 10 s.
	OpenTimeout time.Duration
	// HalfOpenRequests is how many probes may run while half-open; that
	// many successes close the breaker. Default 1.
	HalfOpenRequests uint32
}

// RetrySettings configures retries of API calls with decorrelated jitter:
// sleep = min(Cap, random_between(Base, previous*3)). Retries never outlive
// the call's timeout. A zero field means its documented default.
type RetrySettings struct {
	// MaxRetryAfter caps the wait a server's Retry-After header imposes
	// (both forms: delay-seconds and HTTP date), for remote evaluations
	// (the rate-limit gate after a 429), local-mode config syncs and event
	// stream reconnects alike. Zero or negative means the default, 5
	// minutes: a "Retry-After: 999999999" costs at most that long.
	MaxRetryAfter time.Duration

	// MaxAttempts is the number of attempts, including the first. Default 3.
	// A negative value disables retries.
	MaxAttempts int
	// Base is the smallest wait. Default 20 ms.
	Base time.Duration
	// Cap is the largest wait. Default 2 s.
	Cap time.Duration
}

// Hook observes evaluations, OpenFeature-style. Any field may be nil.
// Hooks run synchronously on the evaluating goroutine; a panicking hook is
// recovered and logged. With no hooks registered, evaluation pays nothing.
type Hook struct {
	// Before runs before the evaluation.
	Before func(ctx context.Context, key string)
	// After runs after a successful evaluation: no error code, or
	// MISSING_BUCKETING_ATTRIBUTE, which comes with the flag's answer.
	After func(ctx context.Context, key string, d Detail)
	// Error runs when the evaluation fell back with an error code.
	Error func(ctx context.Context, key string, d Detail)
	// Finally runs after every evaluation.
	Finally func(ctx context.Context, key string, d Detail)
}

type config struct {
	endpoints      []*url.URL // WithEndpoint: primary first
	token          string
	httpClient     *http.Client
	ownHTTPClient  bool
	environment    string
	mode           Mode
	timeout        time.Duration
	cacheSize      int
	minTTL, maxTTL time.Duration
	maxStale       time.Duration
	refreshAhead   float64
	logger         *slog.Logger
	logInterval    time.Duration
	breaker        BreakerSettings
	retry          RetrySettings
	hooks          []Hook
	private        map[string]bool
	hashed         map[string]bool
	hashSalt       string
	maxResponse    int64
	batchChunk     int
	batchParallel  int
	hmacKeyID      string
	hmacSecret     []byte
	ofrep          bool
	clock          clock
	localOptions   localConfig
	configErrs     []string
	// modeBound lists the options given that apply to some modes only;
	// New refuses them in the others.
	modeBound []modeBoundOption
}

// modes is a set of Modes.
type modes uint8

const (
	remoteOnly   = modes(1 << ModeRemote)
	localOnly    = modes(1 << ModeLocal)
	networkModes = remoteOnly | localOnly
	allModes     = networkModes | modes(1<<ModeOffline)
)

type modeBoundOption struct {
	name  string
	modes modes
}

// boundTo wraps an option that applies in the given modes only: New fails
// with ErrInvalidConfig when the client's mode is another (an option that
// silently does nothing hides a misconfiguration).
func boundTo(name string, m modes, f func(*config)) Option {
	return func(c *config) {
		c.modeBound = append(c.modeBound, modeBoundOption{name, m})
		f(c)
	}
}

// checkModes reports the options given that do not apply to c.mode.
func (c *config) checkModes() {
	for _, o := range c.modeBound {
		if o.modes&(1<<c.mode) == 0 {
			var in []string
			for _, m := range []Mode{ModeRemote, ModeLocal, ModeOffline} {
				if o.modes&(1<<m) != 0 {
					in = append(in, m.String())
				}
			}
			c.errorf("%s does not apply in %s mode (only in %s)", o.name, c.mode, strings.Join(in, " and "))
		}
	}
}

// Option configures a Client. Options are applied in order.
type Option func(*config)

func defaultConfig() *config {
	return &config{
		timeout:       200 * time.Millisecond,
		cacheSize:     10000,
		minTTL:        time.Second,
		maxTTL:        time.Hour,
		maxStale:      time.Hour,
		refreshAhead:  0.8,
		logInterval:   time.Minute,
		maxResponse:   4 << 20,
		batchChunk:    100,
		batchParallel: 4,
		environment:   "prod",
		clock:         newRealClock(),
		localOptions:  defaultLocalConfig(),
	}
}

func (c *config) errorf(format string, args ...any) {
	c.configErrs = append(c.configErrs, fmt.Sprintf(format, args...))
}

// WithToken sets the bearer token sent as "Authorization: Bearer …". The
// token never appears in logs or errors. For OAuth 2.0 client credentials
// or mTLS, use WithHTTPClient instead (see the package example).
func WithToken(token string) Option {
	return boundTo("WithToken", networkModes, func(c *config) { c.token = token })
}

// WithHTTPClient sets the HTTP client for every API call. Its Transport is
// the seam for TLS, mTLS, proxies and OAuth 2.0 (for example
// golang.org/x/oauth2/clientcredentials Config.Client). If nil, a client
// with a dedicated transport is used. The client's own Timeout, if any,
// applies on top of WithTimeout.
//
// Redirects: API calls never follow a redirect to another origin (scheme,
// host and port differ from the request's): the token, the attributes and
// the request signature never reach it. Such a redirect is an error —
// BAD_RESPONSE in Detail.ErrorCode, and Status().LastError names the
// origin refused. Redirects within the endpoint's origin are followed, at
// most 10 in a row (the caller's CheckRedirect, if any, is consulted for
// them instead of that limit). hc itself is not modified: the SDK uses a
// shallow copy with its own CheckRedirect, sharing hc's Transport, Jar and
// Timeout.
func WithHTTPClient(hc *http.Client) Option {
	return boundTo("WithHTTPClient", allModes, func(c *config) { c.httpClient = hc })
}

// WithEnvironment sets the environment evaluated, such as "prod". Default
// "prod".
func WithEnvironment(env string) Option {
	return func(c *config) {
		if env == "" {
			c.errorf("environment is empty")
			return
		}
		c.environment = env
	}
}

// WithMode selects the evaluation mode. Default ModeRemote.
func WithMode(m Mode) Option {
	return func(c *config) {
		if m > ModeOffline {
			c.errorf("unknown mode %d", m)
			return
		}
		c.mode = m
	}
}

// WithTimeout bounds every evaluation that has to wait for the network,
// retries included. Zero or negative means the default, 200 ms.
func WithTimeout(d time.Duration) Option {
	return boundTo("WithTimeout", networkModes, func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	})
}

// CacheSettings configures remote mode's decision cache. A zero field
// keeps its documented default.
type CacheSettings struct {
	// Size bounds the cache, in entries (one per flag and distinct
	// evaluation context). Zero or negative means the default, 10,000.
	Size int
	// MinTTL and MaxTTL clamp each decision's ttlSeconds, its freshness
	// limit. Defaults: 1 s and 1 h; MaxTTL below MinTTL is an error.
	MinTTL, MaxTTL time.Duration
	// MaxStale is how long past its TTL a decision may still be served,
	// as SourceStale, while the API cannot answer. Default 1 h; negative
	// disables stale serving.
	MaxStale time.Duration
}

// WithCache configures remote mode's decision cache (see CacheSettings).
func WithCache(s CacheSettings) Option {
	return boundTo("WithCache", remoteOnly, func(c *config) {
		if s.Size > 0 {
			c.cacheSize = s.Size
		}
		if s.MinTTL > 0 {
			c.minTTL = s.MinTTL
		}
		if s.MaxTTL > 0 {
			c.maxTTL = s.MaxTTL
		}
		if c.maxTTL < c.minTTL {
			c.errorf("cache TTL bounds: MaxTTL %v < MinTTL %v", c.maxTTL, c.minTTL)
		}
		switch {
		case s.MaxStale < 0:
			c.maxStale = 0
		case s.MaxStale > 0:
			c.maxStale = s.MaxStale
		}
	})
}

// WithLogger sets the logger. Default slog.Default(). Errors are logged
// once per interval per kind (WithLogInterval), never per call, and never
// include tokens or attribute values.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithLogInterval sets how often one kind of error may be logged. Default
// one minute.
func WithLogInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.logInterval = d
		}
	}
}

// WithBreaker configures the circuit breaker.
func WithBreaker(s BreakerSettings) Option {
	return boundTo("WithBreaker", networkModes, func(c *config) {
		if s.FailureRatio < 0 || s.FailureRatio > 1 {
			c.errorf("breaker failure ratio %v not in [0, 1]", s.FailureRatio)
			return
		}
		c.breaker = s
	})
}

// WithRetry configures retries.
func WithRetry(s RetrySettings) Option {
	return boundTo("WithRetry", networkModes, func(c *config) { c.retry = s })
}

// WithHooks registers evaluation hooks, run in order.
func WithHooks(hooks ...Hook) Option {
	return func(c *config) { c.hooks = append(c.hooks, hooks...) }
}

// WithPrivateAttributes names attributes that never leave the process: they
// are removed from every request to the API (top-level names).
func WithPrivateAttributes(names ...string) Option {
	return func(c *config) {
		if c.private == nil {
			c.private = make(map[string]bool)
		}
		for _, n := range names {
			c.private[n] = true
		}
	}
}

// WithRequestSigning signs every API request with HMAC-SHA256 (the
// X-Flagwire-Signature and X-Flagwire-Timestamp headers) for tamper
// detection between trusted services.
func WithRequestSigning(keyID string, secret []byte) Option {
	return boundTo("WithRequestSigning", networkModes, func(c *config) {
		if keyID == "" || len(secret) == 0 {
			c.errorf("request signing needs a key id and a secret")
			return
		}
		c.hmacKeyID, c.hmacSecret = keyID, secret
	})
}

// WithBatch tunes batch evaluation: requests per POST /v1/evaluate (default
// 100) and concurrent requests (default 4).
func WithBatch(chunk, parallel int) Option {
	return boundTo("WithBatch", remoteOnly, func(c *config) {
		if chunk > 0 {
			c.batchChunk = chunk
		}
		if parallel > 0 {
			c.batchParallel = parallel
		}
	})
}

// WithOFREP makes remote mode ask the OpenFeature Remote Evaluation
// Protocol endpoints (POST /ofrep/v1/evaluate/flags/{key}, and the bulk
// POST /ofrep/v1/evaluate/flags for batches) instead of POST /v1/evaluate,
// so any OFREP server can be the backend. The decision cache, coalescing,
// circuit breaker, retries, Retry-After handling and fallbacks are the
// same. The SSE invalidation stream (WithStreaming) is Flagwire's own
// GET /v1/stream: turn it off for an OFREP server that is not Flagwire's.
// Default off; WithOFREP(false) keeps Flagwire's own API.
func WithOFREP(on bool) Option {
	return boundTo("WithOFREP", remoteOnly, func(c *config) { c.ofrep = on })
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

// maxRedirects bounds a chain of same-origin redirects, as net/http's
// default policy does.
const maxRedirects = 10

// withRedirectPolicy returns a shallow copy of hc (never modified) that
// refuses redirects to another origin than the original request's: the
// 3xx answer is returned as is (http.ErrUseLastResponse), so no request,
// header or body reaches the other origin, and statusError turns it into
// BAD_RESPONSE. Same-origin redirects go through hc's own CheckRedirect,
// or net/http's limit of 10.
func withRedirectPolicy(hc *http.Client) *http.Client {
	cp := *hc
	next := hc.CheckRedirect
	cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !sameOrigin(req.URL, via[0].URL) {
			return http.ErrUseLastResponse
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
	return &cp
}

// sameOrigin reports whether a and b have the same scheme, host and port
// (a missing port is the scheme's default).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && portOf(a) == portOf(b)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// redirectMessage describes a redirect answer the SDK did not follow. It
// names the other origin only, never the Location's path or query.
func redirectMessage(resp *http.Response) string {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default: // 300, 304, 305…: not a redirect the API may answer
		return fmt.Sprintf("unexpected HTTP %d (%s)", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	loc, err := resp.Location()
	switch {
	case err != nil:
		return fmt.Sprintf("redirect (HTTP %d) without a usable Location: not followed", resp.StatusCode)
	case resp.Request != nil && !sameOrigin(loc, resp.Request.URL):
		return fmt.Sprintf("redirect to another origin (%s://%s) refused: API calls only follow redirects within the endpoint's origin", loc.Scheme, loc.Host)
	}
	return fmt.Sprintf("redirect (HTTP %d) not followed", resp.StatusCode)
}

// withClock injects a clock (tests).
func withClock(cl clock) Option {
	return func(c *config) { c.clock = cl }
}
