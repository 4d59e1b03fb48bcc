package flagwire

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

// Option configures a Client. Options are applied in order.
type Option func(*config)

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

func defaultConfig() *config {
	return &config{
		mode:          ModeRemote,
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

// modes is a set of Modes.
type modes uint8

const (
	remoteOnly   = modes(1) // ModeRemote.bit()
	localOnly    = modes(2) // ModeLocal.bit()
	networkModes = remoteOnly | localOnly
	allModes     = networkModes | modes(4) // | ModeOffline.bit()
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
		if o.modes&c.mode.bit() == 0 {
			var in []string
			for _, m := range []Mode{ModeRemote, ModeLocal, ModeOffline} {
				if o.modes&m.bit() != 0 {
					in = append(in, string(m))
				}
			}
			c.errorf("%s does not apply in %s mode (only in %s)", o.name, c.mode, strings.Join(in, " and "))
		}
	}
}

// localConfig holds the local/offline mode, stream and bootstrap settings.
type localConfig struct {
	bootstrap     []byte // envelope JSON
	bootstrapName string
	bootstrapErr  error
	keys          map[string]ed25519.PublicKey
	lastKnownPath string
	pollInterval  time.Duration
	streaming     bool
	streamIdle    time.Duration
	// streamPrefer: how often a stream on a less preferred endpoint
	// checks for a more preferred one (streamPreferEvery; tests shorten
	// it).
	streamPrefer time.Duration
	staleAfter   time.Duration
	maxConfig    int64
}

func defaultLocalConfig() localConfig {
	return localConfig{
		pollInterval: 60 * time.Second,
		streaming:    true,
		streamIdle:   defaultStreamIdle,
		streamPrefer: streamPreferEvery,
		staleAfter:   5 * time.Minute,
		maxConfig:    wire.MaxConfigBytes,
	}
}

// Mode selects how a Client decides flags. It prints as its value, such
// as "remote".
type Mode string

// The modes.
const (
	// ModeRemote (the default) asks POST /v1/evaluate on a cache miss and
	// caches decisions for their ttlSeconds.
	ModeRemote Mode = "remote"
	// ModeLocal syncs the environment's config (GET /v1/flags with ETag,
	// SSE invalidations, polling) and evaluates in-process.
	ModeLocal Mode = "local"
	// ModeOffline evaluates a signed bootstrap file and never touches the
	// network.
	ModeOffline Mode = "offline"
)

// bit returns m's bit in a set of modes; 0 for an unknown mode.
func (m Mode) bit() modes {
	switch m {
	case ModeRemote:
		return 1
	case ModeLocal:
		return 2
	case ModeOffline:
		return 4
	}
	return 0
}

// WithMode selects the evaluation mode. Default ModeRemote.
func WithMode(m Mode) Option {
	return func(c *config) {
		if m.bit() == 0 {
			c.errorf("unknown mode %q", m)
			return
		}
		c.mode = m
	}
}

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

// WithRetry configures retries.
func WithRetry(s RetrySettings) Option {
	return boundTo("WithRetry", networkModes, func(c *config) { c.retry = s })
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

// WithStreaming turns the SSE subscription to GET /v1/stream on or off.
// Default on: invalidations reach the cache (remote mode) or trigger a
// refetch (local mode) within milliseconds.
func WithStreaming(on bool) Option {
	return boundTo("WithStreaming", networkModes, func(c *config) { c.localOptions.streaming = on })
}

// WithStreamIdleTimeout sets how long the stream may go without a complete
// event or keep-alive comment before it is considered stalled and
// reconnected; bytes that never complete one (a trickle) do not count.
// Default 45 s (three keep-alives).
func WithStreamIdleTimeout(d time.Duration) Option {
	return boundTo("WithStreamIdleTimeout", networkModes, func(c *config) {
		if d > 0 {
			c.localOptions.streamIdle = d
		}
	})
}

// WithPollInterval sets local mode's polling interval while the event
// stream is down (jittered ±10%). Default 60 s; the seed recommends 60–300 s.
func WithPollInterval(d time.Duration) Option {
	return boundTo("WithPollInterval", localOnly, func(c *config) {
		if d > 0 {
			c.localOptions.pollInterval = d
		}
	})
}

// WithStaleAfter sets the config-age SLO: in local mode, Status reports
// StateStale when the config was last confirmed longer ago than d. Default
// 5 minutes.
func WithStaleAfter(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.localOptions.staleAfter = d
		}
	}
}

// WithBootstrapFile serves the signed bootstrap file at path (as written by
// `flagwire sign` or served by GET /v1/bootstrap) until the first good
// answer from the server, or alone in ModeOffline. It is verified against
// WithTrustedKeys before use; a tampered, expired, unknown-key or
// truncated file is refused with a clear error and never used.
//
// The file must be a regular file (symlinks to one are followed) of at most
// 64 MiB: a FIFO, a device (such as a link to /dev/zero), a directory, a
// socket or a larger file is refused at once with an error naming the path
// and what it is, without blocking or reading it whole. A file that cannot
// be used is handled like an invalid one: in ModeOffline, where the
// bootstrap is the only source, New fails (wrapping ErrInvalidConfig); in
// the other modes the bootstrap is optional, so New succeeds, logs the
// error and reports it in Status().LastError, and the client goes on
// without it.
func WithBootstrapFile(path string) Option {
	return func(c *config) {
		data, err := readConfigFile(path, c.localOptions.maxConfig)
		if err != nil {
			c.localOptions.bootstrapErr = fmt.Errorf("bootstrap file: %w", err)
			return
		}
		c.localOptions.bootstrap, c.localOptions.bootstrapName = data, "bootstrap file "+path
		c.localOptions.bootstrapErr = nil
	}
}

// WithBootstrap is WithBootstrapFile with the envelope's bytes.
func WithBootstrap(envelope []byte) Option {
	return func(c *config) {
		c.localOptions.bootstrap, c.localOptions.bootstrapName = envelope, ""
		c.localOptions.bootstrapErr = nil // the last bootstrap option wins
	}
}

// WithTrustedKeys sets the Ed25519 public keys that may sign bootstrap and
// last-known files, identified by key id (see `flagwire keygen`). Several
// keys allow rotation.
func WithTrustedKeys(keys ...ed25519.PublicKey) Option {
	return func(c *config) {
		if c.localOptions.keys == nil {
			c.localOptions.keys = make(map[string]ed25519.PublicKey)
		}
		for _, k := range keys {
			if len(k) != ed25519.PublicKeySize {
				c.errorf("trusted key has %d bytes, want %d", len(k), ed25519.PublicKeySize)
				continue
			}
			c.localOptions.keys[wire.KeyID(k)] = k
		}
	}
}

// WithLastKnownFile persists, in local mode, the signed config envelope the
// server sent (GET /v1/bootstrap) to path after each change, atomically
// (temp file, fsync, rename), and loads it at start, so a restart while the
// API is down serves the last values. It is verified like a bootstrap file,
// and read like one (a regular file within the size limit; anything else is
// logged, reported in Status().LastError and not used). A write in progress
// when Close is called completes before Close returns, unless Close's ctx
// ends first: a change the client has served survives a restart.
func WithLastKnownFile(path string) Option {
	return func(c *config) { c.localOptions.lastKnownPath = path }
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

// WithHashedAttributes replaces the named top-level attributes (stable
// identifiers such as userId or accountId) by HashIdentifier(salt, id)
// before any evaluation: the raw identifier never leaves the process, and
// because remote (server-side) and local evaluation both see the hashed
// value, they bucket the same hashed value and agree. id is the value's
// canonical id form, the one bucketing uses (evaluate.CanonicalID: so
// int64(1000000) and float64(1e6) hash alike); a value that counts as a
// missing id (nil, "", NaN) is left as it is, so it stays missing instead
// of becoming an id that every such subject would share; a value that has
// no id form (a list, a map) is hashed in its fmt %v form.
func WithHashedAttributes(salt string, names ...string) Option {
	return func(c *config) {
		if salt == "" {
			c.errorf("hashed attributes need a salt")
			return
		}
		if c.hashed == nil {
			c.hashed = make(map[string]bool)
		}
		for _, n := range names {
			c.hashed[n] = true
		}
		c.hashSalt = salt
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

// WithHooks registers evaluation hooks, run in order.
func WithHooks(hooks ...Hook) Option {
	return func(c *config) { c.hooks = append(c.hooks, hooks...) }
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

// withClock injects a clock (tests).
func withClock(cl clock) Option {
	return func(c *config) { c.clock = cl }
}

// withStreamPreferEvery shortens streamPreferEvery (tests).
func withStreamPreferEvery(d time.Duration) Option {
	return func(c *config) { c.localOptions.streamPrefer = d }
}
