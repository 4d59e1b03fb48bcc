package flagserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// Defaults of Options.
const (
	DefaultDecisionTTL         = 60 * time.Second
	DefaultKeepAlive           = 15 * time.Second
	DefaultStreamWriteTimeout  = 10 * time.Second
	DefaultReplayBuffer        = 1024
	DefaultMaxBodyBytes        = 1 << 20
	DefaultMaxSegmentBodyBytes = 16 << 20
	// DefaultEnvironment is the environment of requests that name none,
	// except GET /v1/flags, which requires one.
	DefaultEnvironment = "prod"
	// DefaultSegmentWarnIDs is the default of Options.SegmentWarnIDs.
	DefaultSegmentWarnIDs = 100_000
	// MaxBatch is the largest number of requests in one POST /v1/evaluate.
	MaxBatch = 1000
)

// Options configures a Server. The zero Options is valid: an open (no
// tokens), in-memory server with no environments.
type Options struct {
	// Configs are the initial configs, one per environment (named by
	// Config.Environment). With DataDir, an environment already stored
	// there is restored instead and its Config here is ignored.
	Configs []*evaluate.Config
	// Tokens are the accepted bearer tokens. If empty, the server runs
	// open (development mode): every request is allowed, as subject
	// "anonymous", without an Authorization header.
	Tokens []Token
	// SigningKey signs GET /v1/bootstrap envelopes. If nil, with DataDir
	// the key kept in DataDir/signing-key.pem is used, created on first
	// start (LoadOrCreateSigningKey); without DataDir a key is generated
	// for this Server only. See Server.PublicKey.
	SigningKey ed25519.PrivateKey
	// DataDir makes the server durable: state (configs, versions, audit)
	// is kept in DataDir/flagwire.db (bbolt), every acknowledged write is
	// committed and fsynced before its response, and New restores it. ""
	// keeps everything in memory.
	DataDir string
	// NewEpoch starts a new store epoch in DataDir (see
	// wire.HeaderConfigEpoch) instead of keeping the one it holds. Use it
	// once after restoring DataDir from a backup: the restored versions are
	// lower than those clients hold, and local-mode clients refuse a lower
	// version of the epoch they know as out of order, but follow a new
	// epoch. Without DataDir every start is a new epoch anyway.
	NewEpoch bool
	// Logger receives one record per request (method, path, status,
	// duration, request id, subject) and operational messages. Tokens and
	// attribute values are never logged. If nil, nothing is logged.
	Logger *slog.Logger
	// Now is the clock for evaluations, expiries, rate limits and audit
	// times. If nil, time.Now is used.
	Now func() time.Time
	// DecisionTTL is the ttlSeconds of decisions. Zero or negative means
	// DefaultDecisionTTL (60s).
	DecisionTTL time.Duration
	// KeepAlive is the interval of SSE keep-alive comments. Zero or
	// negative means DefaultKeepAlive (15s).
	KeepAlive time.Duration
	// StreamWriteTimeout bounds each write to an SSE stream (an event or a
	// keep-alive): a client that stops reading is dropped after it.
	// Streams are exempt from the http.Server's ReadTimeout and
	// WriteTimeout (the handler clears the read deadline and sets a write
	// deadline per write with http.ResponseController). Zero or negative
	// means DefaultStreamWriteTimeout (10s).
	StreamWriteTimeout time.Duration
	// ReplayBuffer is the number of SSE events kept per environment for
	// Last-Event-ID resumption. Zero or negative means 1024.
	ReplayBuffer int
	// ReadLimit and WriteLimit are per-token rate limits for reads (GET,
	// POST /v1/evaluate, OFREP, opening the stream) and writes; a token's
	// own ReadLimit or WriteLimit (Token) takes precedence. The zero
	// ReadLimit means DefaultReadLimit: unlimited, as one read token is
	// commonly shared by a whole fleet. The zero WriteLimit means
	// DefaultWriteLimit (20/s, burst 40). A negative PerSecond means
	// unlimited; a PerSecond that is not finite is an error from New.
	ReadLimit, WriteLimit RateLimit
	// AuthFailureLimit limits failed authentication (unknown or missing
	// token, bad signature) per client address (IPv4 address or IPv6
	// /64: the peer's, or through TrustedProxies the client's): beyond it
	// requests from that address get 429 with Retry-After before their
	// credentials are checked. The zero value means
	// DefaultAuthFailureLimit (2/s, burst 20); a negative PerSecond means
	// unlimited. Unused in open mode.
	AuthFailureLimit RateLimit
	// TrustedProxies are the ranges of the proxies (load balancers,
	// ingress) in front of the server. A request whose peer is in one of
	// them is attributed to the client its ProxyHeader names: read from the
	// right, the first address outside these ranges (the rightmost
	// untrusted hop). From any other peer the header is ignored. Empty
	// (the default) trusts no one: every request is its peer's.
	TrustedProxies []netip.Prefix
	// ProxyHeader is the header trusted proxies write the client address
	// to: HeaderXForwardedFor (the default, "") or HeaderForwarded (RFC
	// 7239). Only this header is read: a proxy that writes the other
	// passes on whatever the client put there. Another value is an error
	// from New.
	ProxyHeader string
	// MaxAuthFailureAddrs bounds the addresses AuthFailureLimit tracks.
	// Zero or negative means DefaultMaxAuthFailureAddrs (65,536).
	MaxAuthFailureAddrs int
	// HMACKeys turns on request signing (see wire.SignRequest): key id →
	// secret. When non-empty every request must be signed. Empty means off.
	HMACKeys map[string][]byte
	// MaxSignatureNonces bounds the replay cache of request signing (one
	// entry per signed request accepted in the last MaxSignatureSkew). Zero
	// or negative means DefaultMaxSignatureNonces (262,144). When full, the
	// oldest entries are evicted and requests signed before them are
	// refused, so the window shrinks rather than admitting a replay.
	MaxSignatureNonces int
	// RequireChangeReason lists the environments whose writes need a
	// changeReason. Nil means {"prod": true}; a non-nil map is used as is.
	// A config with RequireChangeReason set always requires one.
	RequireChangeReason map[string]bool
	// MaxBodyBytes bounds request bodies. Zero or negative means 1 MiB.
	MaxBodyBytes int64
	// SegmentWarnIDs is the number of static ids (Included plus Excluded)
	// above which a segment write succeeds with a warning (log record and
	// X-Flagwire-Warning header): the seed's "segment bloat" advice, as
	// every SDK in local mode downloads and holds the list. Zero or
	// negative means DefaultSegmentWarnIDs (100,000).
	SegmentWarnIDs int
	// MaxSegmentBodyBytes bounds bodies of segment writes (static lists
	// are large). Zero or negative means 16 MiB (or MaxBodyBytes if larger).
	MaxSegmentBodyBytes int64
}

// Server is the reference Flag API: an http.Handler serving /v1. It is safe
// for concurrent use. Create one with New and release it with Close.
type Server struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	handler http.Handler
	signKey ed25519.PrivateKey

	auth     authenticator
	sig      *signatureVerifier
	readLim  *limiter
	writeLim *limiter
	authFail *authFailLimiter
	idem     *idempotencyCache
	audit    auditLog
	hub      *hub
	store    *store
	reason   map[string]bool
	tombs    tombstones // guarded by wmu
	// maxConfigBytes is wire.MaxServedConfigBytes (tests lower it).
	maxConfigBytes int

	envMu sync.RWMutex
	envs  map[string]*envState

	wmu    sync.Mutex // serializes writes and Close
	closed bool
	done   chan struct{}
}

// New builds a Server. It fails on a config that does not compile, a
// duplicate environment, or a DataDir that cannot be opened or read.
func New(opts Options) (*Server, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DecisionTTL <= 0 {
		opts.DecisionTTL = DefaultDecisionTTL
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = DefaultKeepAlive
	}
	if opts.StreamWriteTimeout <= 0 {
		opts.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	if opts.ReplayBuffer <= 0 {
		opts.ReplayBuffer = DefaultReplayBuffer
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxSegmentBodyBytes <= 0 {
		opts.MaxSegmentBodyBytes = max(DefaultMaxSegmentBodyBytes, opts.MaxBodyBytes)
	}
	if opts.SegmentWarnIDs <= 0 {
		opts.SegmentWarnIDs = DefaultSegmentWarnIDs
	}
	if opts.RequireChangeReason == nil {
		opts.RequireChangeReason = map[string]bool{"prod": true}
	}
	tokens, err := resolveRateLimits(&opts)
	if err != nil {
		return nil, err
	}
	if err := resolveProxies(&opts); err != nil {
		return nil, err
	}
	secrets := map[string]bool{}
	for i, t := range tokens {
		if t.Secret == "" {
			return nil, fmt.Errorf("flagserver: token %d (%s) has an empty secret", i, t.Subject)
		}
		if secrets[t.Secret] {
			return nil, fmt.Errorf("flagserver: token %d (%s) repeats another token's secret", i, t.Subject)
		}
		secrets[t.Secret] = true
	}
	if opts.SigningKey == nil && opts.DataDir != "" {
		key, _, err := LoadOrCreateSigningKey(opts.DataDir)
		if err != nil {
			return nil, err
		}
		opts.SigningKey = key
	}
	if opts.SigningKey == nil {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("flagserver: generate signing key: %w", err)
		}
		opts.SigningKey = priv
	} else if len(opts.SigningKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("flagserver: signing key is %d bytes, want %d", len(opts.SigningKey), ed25519.PrivateKeySize)
	}

	s := &Server{
		opts:           opts,
		log:            opts.Logger,
		now:            opts.Now,
		signKey:        opts.SigningKey,
		auth:           authenticator{tokens: tokens},
		readLim:        newLimiter(opts.Now),
		writeLim:       newLimiter(opts.Now),
		authFail:       newAuthFailLimiter(opts.AuthFailureLimit, opts.MaxAuthFailureAddrs, opts.Now),
		idem:           newIdempotencyCache(opts.Now),
		hub:            newHub(opts.ReplayBuffer),
		reason:         maps.Clone(opts.RequireChangeReason),
		maxConfigBytes: wire.MaxServedConfigBytes,
		envs:           map[string]*envState{},
		done:           make(chan struct{}),
	}
	if len(opts.HMACKeys) > 0 {
		s.sig = &signatureVerifier{keys: maps.Clone(opts.HMACKeys), now: opts.Now, maxNonces: opts.MaxSignatureNonces}
	}

	st, err := openStore(opts.DataDir, opts.NewEpoch)
	if err != nil {
		return nil, err
	}
	s.store = st
	if err := s.restore(opts.Configs); err != nil {
		st.close()
		return nil, err
	}
	s.opts.Configs = nil // restore cloned what it serves; the caller's configs and their source positions are garbage
	s.handler = s.routes()
	return s, nil
}

// restore loads persisted environments and seeds the rest from configs.
func (s *Server) restore(configs []*evaluate.Config) error {
	stored, audit, err := s.store.load()
	if err != nil {
		return err
	}
	s.audit.restore(audit)
	seen := map[string]bool{}
	for _, c := range configs {
		if c == nil {
			continue
		}
		if seen[c.Environment] {
			return fmt.Errorf("flagserver: two configs for environment %q", c.Environment)
		}
		seen[c.Environment] = true
		if _, ok := stored[c.Environment]; ok {
			continue
		}
		// Compile the caller's Config itself first: one loaded from files
		// reports findings with file:line positions.
		if _, err := evaluate.Compile(c); err != nil {
			return fmt.Errorf("flagserver: environment %q: %w", c.Environment, err)
		}
		es, err := newEnvState(cloneConfig(c))
		if err != nil {
			return fmt.Errorf("flagserver: environment %q: %w", c.Environment, err)
		}
		if err := s.store.commit(es, nil, nil); err != nil {
			return fmt.Errorf("flagserver: persist environment %q: %w", c.Environment, err)
		}
		s.envs[es.name] = es
	}
	for name, c := range stored {
		c.Environment = name
		es, err := newEnvState(c)
		if err != nil {
			return fmt.Errorf("flagserver: stored environment %q: %w", name, err)
		}
		s.envs[name] = es
	}
	for name, es := range s.envs {
		s.hub.init(name, es.version())
	}
	return nil
}

// ServeHTTP serves the Flag API under /v1.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Close ends every SSE stream (their handlers return) and closes the data
// directory; later writes fail with 503 (ErrClosed programmatically), reads
// keep working from memory. It waits for in-flight writes, not for stream
// handlers to return (http.Server.Shutdown does that). Close is idempotent.
func (s *Server) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.done)
	s.hub.close()
	return s.store.close()
}

// PublicKey returns the public half of the bootstrap signing key.
func (s *Server) PublicKey() ed25519.PublicKey {
	return s.signKey.Public().(ed25519.PublicKey)
}

// KeyID returns the key id of bootstrap envelopes (wire.KeyID of PublicKey).
func (s *Server) KeyID() string { return wire.KeyID(s.PublicKey()) }

// Snapshot returns the current compiled snapshot of env.
func (s *Server) Snapshot(env string) (*evaluate.Snapshot, bool) {
	es := s.env(env)
	if es == nil {
		return nil, false
	}
	return es.snap, true
}

// Environments returns the names of the served environments, sorted.
func (s *Server) Environments() []string {
	s.envMu.RLock()
	defer s.envMu.RUnlock()
	return slices.Sorted(maps.Keys(s.envs))
}

// Streams returns the number of connected SSE subscribers. A subscriber is
// counted once it is registered: every change made after Streams counts it
// reaches it.
func (s *Server) Streams() int { return s.hub.count() }

func (s *Server) env(name string) *envState {
	s.envMu.RLock()
	defer s.envMu.RUnlock()
	return s.envs[name]
}

// envOr404 returns env's state or a 404 error.
func (s *Server) envOr404(name string) (*envState, error) {
	if es := s.env(name); es != nil {
		return es, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownEnvironment, name)
}

// ---- request plumbing ----

type ctxKey struct{}

// requestCtx is per-request state shared by the middleware and handlers.
type requestCtx struct {
	id        string
	principal *principal
	body      []byte
}

func reqCtx(r *http.Request) *requestCtx {
	if rc, ok := r.Context().Value(ctxKey{}).(*requestCtx); ok {
		return rc
	}
	return &requestCtx{principal: &principal{subject: anonymousSubject}}
}

// validRequestID accepts incoming X-Request-Id values of 1–128 characters
// from [A-Za-z0-9._:-].
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newRequestID returns "r-" and 16 random base32 characters.
func newRequestID() string {
	var b [10]byte
	rand.Read(b[:])
	return "r-" + idEncoding.EncodeToString(b[:])
}

// recorder captures the status for logging. It forwards flushing (SSE) and
// exposes the underlying writer through Unwrap.
type recorder struct {
	http.ResponseWriter
	status int
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	return rw.ResponseWriter.Write(b)
}

func (rw *recorder) FlushError() error {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	return http.NewResponseController(rw.ResponseWriter).Flush()
}

func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// middleware assigns the request id, recovers panics and logs the request.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(wire.HeaderRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(wire.HeaderRequestID, id)
		rc := &requestCtx{id: id, principal: &principal{subject: anonymousSubject}}
		rec := &recorder{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, rc))
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("flagserver: handler panic", "requestId", id, "panic", fmt.Sprint(p))
				if rec.status == 0 {
					writeError(rec, errorf(http.StatusInternalServerError, wire.CodeInternal, "internal error"))
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Duration("duration", time.Since(start)),
				slog.String("requestId", id),
				slog.String("subject", rc.principal.subject))
		}()
		next.ServeHTTP(rec, r)
	})
}

// route classes.
type routeClass int

const (
	classRead routeClass = iota
	classWrite
)

type route struct {
	method, pattern string
	class           routeClass
	bodyLimit       int64 // 0: no body expected
	handler         http.HandlerFunc
}

func (s *Server) routes() http.Handler {
	seg := s.opts.MaxSegmentBodyBytes
	body := s.opts.MaxBodyBytes
	rs := []route{
		{"GET", "/v1/flags", classRead, 0, s.handleGetConfig},
		{"POST", "/v1/flags", classWrite, body, bind(s, flagKind, handleCreate)},
		{"GET", "/v1/flags/{key}", classRead, 0, bind(s, flagKind, handleGet)},
		{"PATCH", "/v1/flags/{key}", classWrite, body, bind(s, flagKind, handlePatch)},
		{"DELETE", "/v1/flags/{key}", classWrite, body, bind(s, flagKind, handleDelete)},
		{"POST", "/v1/segments", classWrite, seg, bind(s, segmentKind, handleCreate)},
		{"GET", "/v1/segments/{key}", classRead, 0, bind(s, segmentKind, handleGet)},
		{"PATCH", "/v1/segments/{key}", classWrite, seg, bind(s, segmentKind, handlePatch)},
		{"DELETE", "/v1/segments/{key}", classWrite, body, bind(s, segmentKind, handleDelete)},
		{"POST", "/v1/evaluate", classRead, body, s.handleEvaluate},
		{"GET", "/v1/stream", classRead, 0, s.handleStream},
		{"GET", "/v1/audit", classRead, 0, s.handleAudit},
		{"GET", "/v1/bootstrap", classRead, 0, s.handleBootstrap},
	}
	rs = append(rs, s.ofrepRoutes(body)...) // ofrep.go: POST /ofrep/v1/evaluate/flags[/{key}]
	mux := http.NewServeMux()
	allow := map[string][]string{}
	for _, rt := range rs {
		mux.Handle(rt.method+" "+rt.pattern, s.guard(rt))
		allow[rt.pattern] = append(allow[rt.pattern], rt.method)
	}
	for pattern, methods := range allow {
		if slices.Contains(methods, "GET") {
			methods = append(methods, "HEAD")
		}
		list := strings.Join(methods, ", ")
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", list)
			writeError(w, errorf(http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed, "method %s is not allowed on %s", r.Method, r.URL.Path).
				with(map[string]any{"allow": methods}))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, wire.CodeNotFound, "no such endpoint: %s", r.URL.Path))
	})
	return s.middleware(mux)
}

// guard authenticates, rate-limits, checks content type, reads the body
// and verifies the request signature before calling the route's handler.
func (s *Server) guard(rt route) http.Handler {
	lim, defLimit := s.readLim, s.opts.ReadLimit
	if rt.class == classWrite {
		lim, defLimit = s.writeLim, s.opts.WriteLimit
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := reqCtx(r)
		// Credentials (token, signature) are checked only with a token
		// reserved from the client address's failure bucket; every outcome
		// but a failed check gives it back (authFailLimiter).
		pending := false
		addr := ""
		if !s.auth.open() || s.sig.enabled() {
			addr = s.clientAddr(r)
			if err := s.authFail.reserve(w, addr); err != nil {
				writeError(w, err)
				return
			}
			pending = true
		}
		release := func() {
			if pending {
				pending = false
				s.authFail.refund(addr)
			}
		}
		fail := func(err error) { // not an authentication failure
			release()
			writeError(w, err)
		}
		p, err := s.auth.authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="flagwire"`)
			writeError(w, err)
			return
		}
		rc.principal = p
		if !s.sig.enabled() {
			release()
		}
		if err := lim.allow(w, p.limitKey, p.rateLimit(rt.class, defLimit)); err != nil {
			fail(err)
			return
		}
		if rt.bodyLimit > 0 {
			hasBody := r.ContentLength != 0 || r.Header.Get("Content-Type") != ""
			if r.Method != http.MethodDelete || hasBody {
				if err := requireJSON(r); err != nil {
					fail(err)
					return
				}
			}
			b, err := readBody(w, r, rt.bodyLimit)
			if err != nil {
				fail(err)
				return
			}
			if rt.class == classWrite {
				if err := checkUTF8(b); err != nil {
					fail(err)
					return
				}
			}
			rc.body = b
		}
		if s.sig.enabled() {
			if err := s.sig.verify(r, rc.body); err != nil {
				writeError(w, err)
				return
			}
		}
		release()
		rt.handler(w, r)
	})
}

// environment returns the request's environment: the "environment" query
// parameter, or DefaultEnvironment.
func environment(r *http.Request) string {
	if e := r.URL.Query().Get("environment"); e != "" {
		return e
	}
	return DefaultEnvironment
}
