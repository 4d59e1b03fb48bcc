package flagserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	// Tokens are the accepted bearer tokens (and client certificate
	// subjects). If empty and Verifier is nil, the server runs open
	// (development mode): every request is allowed, as subject
	// "anonymous", without an Authorization header.
	Tokens []Token
	// Verifier, when set, checks JWT bearer tokens that are neither a
	// static token nor one the server minted: OAuth 2.0 access tokens of
	// an external issuer (see TokenVerifier; auth.go).
	Verifier TokenVerifier
	// SigningKey signs GET /v1/bootstrap envelopes. If nil, the store's
	// current key is used (Store.SigningKeys): with DataDir the key kept in
	// DataDir/signing-key.pem, created on first start
	// (LoadOrCreateSigningKey); in PostgreSQL, one per database; in memory
	// a key for this Server only. See Server.PublicKey and GET /v1/keys.
	SigningKey ed25519.PrivateKey
	// RotateSigningKey makes a new current signing key in the store at
	// start (SigningKey must be nil); the replaced keys stay listed by GET
	// /v1/keys, so clients that trust them keep verifying what they signed.
	RotateSigningKey bool
	// DataDir makes the server durable: state (configs, versions, the
	// audit log, delete tombstones, idempotency records) is kept in
	// DataDir/flagwire.db (bbolt), every acknowledged write is committed
	// and fsynced before its response, and New restores it; the audit log
	// is read from the file page by page, never held in memory. "" keeps
	// everything in memory (bounded: the newest 100,000 audit entries,
	// 10,000 tombstones, 10,000 idempotency records within 64 MiB).
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
	// WebSocket configures GET /v1/ws (ws.go): pings, the send queue,
	// allowed origins. The zero value is valid.
	WebSocket WebSocketOptions
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
	// ProtectedEnvironments need approval (the two-person rule): a write
	// to one answers 202 Accepted with a change request that a principal
	// other than the requester, holding the flags:approve scope, applies
	// with POST /v1/changes/{id}/approve. A config with RequireApproval
	// set is protected too. Nil or empty protects none.
	ProtectedEnvironments []string
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
	// Store is where the server keeps its state instead of the embedded
	// store that DataDir selects (for example the PostgreSQL store of
	// module github.com/flagwire/flagwire/pgstore); DataDir and NewEpoch
	// must then be unset. The Server closes it on Close. With a shared
	// store (Store.Shared) several servers serve the same state: each
	// follows the store's changes feed and checks the store's version
	// before it answers a read.
	Store Store
	// AuditRetention is how long audit entries are kept: older ones are
	// removed, a few per write. Zero keeps them all.
	AuditRetention time.Duration
	// StoreTimeout bounds each store call of a request. Zero or negative
	// means DefaultStoreTimeout (5s).
	StoreTimeout time.Duration
	// PollInterval is how often a server on a shared store looks for
	// changes when no notification came (a lost notification is found
	// then at the latest). Zero or negative means DefaultPollInterval (1s).
	PollInterval time.Duration
	// ReadStaleness lets a server on a shared store answer a read without
	// asking the store for its version when it confirmed that version less
	// than ReadStaleness ago (by Now): reads then cost no database round
	// trip, and a write made through another replica may be missed for up
	// to ReadStaleness (its notification usually brings it within
	// milliseconds). Zero, the default, asks before every read (concurrent
	// reads share one query), so that a write acknowledged by any replica
	// is seen by every read that starts after it.
	ReadStaleness time.Duration
}

// Defaults of the store options.
const (
	DefaultStoreTimeout = 5 * time.Second
	DefaultPollInterval = time.Second
)

// Server is the reference Flag API: an http.Handler serving /v1. It is safe
// for concurrent use. Create one with New and release it with Close.
type Server struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	handler http.Handler
	// keys are the signing keys: replaced whole when a replica finds that
	// another rotated the store's key (signing.go).
	keys atomic.Pointer[keyring]
	// keysFromStore: the keys are the store's (not Options.SigningKey).
	keysFromStore bool

	auth     authenticator
	sig      *signatureVerifier
	readLim  *limiter
	writeLim *limiter
	authFail *authFailLimiter
	hub      *hub
	ws       wsConns // ws.go: the WebSocket handlers, waited for by Close
	store    Store
	epoch    string
	reason   map[string]bool
	sync     replicaSync
	// maxConfigBytes is wire.MaxServedConfigBytes (tests lower it).
	maxConfigBytes int

	envMu sync.RWMutex
	envs  map[string]*envState

	wmu    sync.Mutex // serializes writes and Close
	closed bool
	done   chan struct{}
	follow sync.WaitGroup // the follower of a shared store
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
	if err := resolveWebSocket(&opts); err != nil {
		return nil, err
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
	auth, err := newAuthenticator(tokens, opts.Verifier)
	if err != nil {
		return nil, err
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = DefaultStoreTimeout
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.SigningKey != nil && len(opts.SigningKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("flagserver: signing key is %d bytes, want %d", len(opts.SigningKey), ed25519.PrivateKeySize)
	}
	st := opts.Store
	if st != nil && (opts.DataDir != "" || opts.NewEpoch) {
		return nil, errors.New("flagserver: Options.Store excludes DataDir and NewEpoch")
	}
	if st == nil {
		es, err := openEmbedded(opts.DataDir, opts.NewEpoch)
		if err != nil {
			return nil, err
		}
		st = es
	}
	var signKeys []ed25519.PrivateKey
	keysFromStore := opts.SigningKey == nil
	if opts.SigningKey == nil {
		ctx, cancel := context.WithTimeout(context.Background(), opts.StoreTimeout)
		var err error
		if opts.RotateSigningKey {
			signKeys, err = st.RotateSigningKey(ctx)
		} else {
			signKeys, err = st.SigningKeys(ctx)
		}
		cancel()
		if err != nil {
			st.Close()
			return nil, err
		}
		opts.SigningKey = signKeys[0]
	} else if opts.RotateSigningKey {
		st.Close()
		return nil, errors.New("flagserver: Options.RotateSigningKey rotates the store's key; Options.SigningKey is set")
	} else {
		signKeys = []ed25519.PrivateKey{opts.SigningKey}
	}

	s := &Server{
		opts:           opts,
		log:            opts.Logger,
		now:            opts.Now,
		keysFromStore:  keysFromStore,
		auth:           auth,
		readLim:        newLimiter(opts.Now),
		writeLim:       newLimiter(opts.Now),
		authFail:       newAuthFailLimiter(opts.AuthFailureLimit, opts.MaxAuthFailureAddrs, opts.Now),
		hub:            newHub(opts.ReplayBuffer),
		store:          st,
		epoch:          st.Epoch(),
		reason:         maps.Clone(opts.RequireChangeReason),
		maxConfigBytes: wire.MaxServedConfigBytes,
		envs:           map[string]*envState{},
		done:           make(chan struct{}),
	}
	s.keys.Store(&keyring{sign: signKeys[0], all: signKeys})
	s.auth.mint = newMinter(st, opts.Now, signKeys, keysFromStore, opts.StoreTimeout)
	if len(opts.HMACKeys) > 0 {
		s.sig = &signatureVerifier{keys: maps.Clone(opts.HMACKeys), now: opts.Now, maxNonces: opts.MaxSignatureNonces}
	}

	if err := s.restore(opts.Configs); err != nil {
		st.Close()
		return nil, err
	}
	s.opts.Configs = nil // restore cloned what it serves; the caller's configs and their source positions are garbage
	s.handler = s.routes()
	if st.Shared() {
		s.follow.Add(1)
		go s.follower()
	}
	return s, nil
}

// restore seeds the environments of configs the store lacks, then loads
// every stored environment.
func (s *Server) restore(configs []*evaluate.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 4*s.opts.StoreTimeout)
	defer cancel()
	seen := map[string]bool{}
	for _, c := range configs {
		if c == nil {
			continue
		}
		if seen[c.Environment] {
			return fmt.Errorf("flagserver: two configs for environment %q", c.Environment)
		}
		seen[c.Environment] = true
		// Compile the caller's Config itself first: one loaded from files
		// reports findings with file:line positions.
		if _, err := evaluate.Compile(c); err != nil {
			return fmt.Errorf("flagserver: environment %q: %w", c.Environment, err)
		}
		es, err := newEnvState(cloneConfig(c))
		if err != nil {
			return fmt.Errorf("flagserver: environment %q: %w", c.Environment, err)
		}
		se, err := storedEnvOf(es)
		if err != nil {
			return fmt.Errorf("flagserver: environment %q: %w", c.Environment, err)
		}
		if _, err := s.store.Seed(ctx, se); err != nil {
			return fmt.Errorf("flagserver: persist environment %q: %w", c.Environment, err)
		}
	}
	return s.reloadAll(ctx)
}

// reloadAll replaces every environment with the store's, as of its head.
func (s *Server) reloadAll(ctx context.Context) error {
	stored, head, err := s.store.Load(ctx)
	if err != nil {
		return err
	}
	envs := make(map[string]*envState, len(stored))
	for i := range stored {
		es, err := envFromStored(&stored[i], s.env(stored[i].Name))
		if err != nil {
			return fmt.Errorf("flagserver: stored environment %q: %w", stored[i].Name, err)
		}
		envs[stored[i].Name] = es
	}
	s.envMu.Lock()
	first := len(s.envs) == 0
	for name, es := range envs {
		if cur := s.envs[name]; cur == nil || cur.version() < es.version() || first {
			s.envs[name] = es
			if first {
				s.hub.init(name, es.version())
			} else {
				s.hub.resetTo(name, es.version())
			}
		}
	}
	s.envMu.Unlock()
	s.sync.advance(head)
	return nil
}

// ServeHTTP serves the Flag API under /v1.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Close ends every SSE stream (their handlers return) and closes the data
// directory; later writes fail with 503 (ErrClosed programmatically), reads
// keep working from memory. It waits for in-flight writes, not for SSE
// handlers to return (http.Server.Shutdown does that), and for WebSocket
// handlers, which Shutdown does not track (each closes its connection with
// 1001 and waits at most 5 s for the client's reply; a write stuck on a
// client that does not read is abandoned after 1 s; see ws.go). Close is
// idempotent.
func (s *Server) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.done)
	s.hub.close()
	s.ws.closeAndWait()
	s.follow.Wait()
	return s.store.Close()
}

// PublicKey returns the public half of the bootstrap signing key.
func (s *Server) PublicKey() ed25519.PublicKey {
	return s.keys.Load().sign.Public().(ed25519.PublicKey)
}

// KeyID returns the key id of bootstrap envelopes (wire.KeyID of PublicKey).
func (s *Server) KeyID() string { return wire.KeyID(s.PublicKey()) }

// PublicKeys returns the public halves of the store's signing keys: the
// current one (PublicKey) first, then those a rotation replaced, newest
// first.
func (s *Server) PublicKeys() []ed25519.PublicKey {
	all := s.keys.Load().all
	out := make([]ed25519.PublicKey, len(all))
	for i, k := range all {
		out[i] = k.Public().(ed25519.PublicKey)
	}
	return out
}

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

// Streams returns the number of connected SSE and WebSocket subscribers.
// A subscriber is counted once it is registered: every change made after
// Streams counts it reaches it.
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
		{"GET", "/v1/ws", classRead, 0, s.handleWS},
		{"GET", "/v1/audit", classRead, 0, s.handleAudit},
		{"GET", "/v1/bootstrap", classRead, 0, s.handleBootstrap},
		{"GET", "/v1/keys", classRead, 0, s.handleKeys},
		{"POST", "/v1/tokens", classWrite, body, s.handleMintToken},
		{"DELETE", "/v1/tokens/{id}", classWrite, 0, s.handleRevokeToken},
		{"GET", "/v1/me", classRead, 0, s.handleMe}, // me.go
	}
	rs = append(rs, s.ofrepRoutes(body)...) // ofrep.go: POST /ofrep/v1/evaluate/flags[/{key}]
	// approvals.go: /v1/changes
	rs = append(rs, s.changeRoutes(body)...)
	mux := http.NewServeMux()
	// Health (replica.go): no credentials, no rate limit.
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	// The contract (openapi.go): no credentials, no rate limit.
	mux.HandleFunc("GET /v1/openapi.json", s.handleOpenAPI)
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
	return s.middleware(wsBearer(mux))
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
		if p.public != nil && !publicRoutes[rt.method+" "+rt.pattern] { // mint.go
			fail(errPublicRoute(r.Method, r.URL.Path))
			return
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
