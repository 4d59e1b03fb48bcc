// Package flagtest runs an in-process Flagwire Flag API server for tests,
// like net/http/httptest: a real flagserver.Server on a loopback port,
// speaking real HTTP and SSE, with helpers to change flags and to inject
// faults (latency, error statuses, resets, truncated or malformed bodies,
// outages, stalled streams).
//
//	srv := flagtest.NewServer(t, flagtest.WithFlags(flagtest.DefaultEnvironment, evaluate.Flag{Key: "new-ui"}))
//	client, _ := flagwire.New(ctx, flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()))
//	srv.SetFlag(flagtest.DefaultEnvironment, evaluate.Flag{Key: "new-ui", State: "off"}) // SSE subscribers are told
//	srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: 503, Count: 1})
//
// Defaults: when no environment is configured (WithConfig, WithFlags,
// WithSegments, WithYAMLDir), the server has one empty environment named
// "prod" (DefaultEnvironment): the environment the SDK evaluates when
// WithEnvironment is not given, and the one the server uses for requests
// that name none, so a client built with only WithEndpoint and WithToken
// sees the server's flags. A bearer token "test-token" (DefaultToken)
// with every scope is always accepted (see Server.Token). Rate limits are
// off and changeReason is never required, so tests are not throttled or
// refused by governance rules; WithServerOptions changes any of that.
//
// A Server is safe for concurrent use.
package flagtest

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagfile"
	"github.com/flagwire/flagwire/flagserver"
)

// Defaults.
const (
	// DefaultEnvironment is the environment created when none is given,
	// and the one a config without an Environment joins: "prod", the SDK's
	// and the server's default environment.
	DefaultEnvironment = flagserver.DefaultEnvironment
	// DefaultToken is the bearer token accepted with every scope.
	DefaultToken = "test-token"
)

// Option configures a Server.
type Option func(*settings)

type settings struct {
	configs   map[string]*evaluate.Config
	order     []string
	yaml      []yamlDir
	tokens    []flagserver.Token
	serverOpt []func(*flagserver.Options)
	now       func() time.Time
	keepAlive time.Duration
}

type yamlDir struct {
	fsys fs.FS
	dir  string
}

func (st *settings) config(env string) *evaluate.Config {
	c, ok := st.configs[env]
	if !ok {
		c = &evaluate.Config{Environment: env}
		st.configs[env] = c
		st.order = append(st.order, env)
	}
	return c
}

// WithConfig adds an environment's whole config (named by its Environment
// field; "" means DefaultEnvironment). Repeatable; a later config for the
// same environment replaces the earlier one.
func WithConfig(cfg *evaluate.Config) Option {
	return func(st *settings) {
		env := cfg.Environment
		if env == "" {
			env = DefaultEnvironment
		}
		c := *cfg
		c.Environment = env
		c.Flags = slices.Clone(cfg.Flags)
		c.Segments = slices.Clone(cfg.Segments)
		*st.config(env) = c
	}
}

// WithFlags adds flags to env, creating it if needed.
func WithFlags(env string, flags ...evaluate.Flag) Option {
	return func(st *settings) {
		c := st.config(env)
		c.Flags = append(c.Flags, flags...)
	}
}

// WithSegments adds segments to env, creating it if needed.
func WithSegments(env string, segs ...evaluate.Segment) Option {
	return func(st *settings) {
		c := st.config(env)
		c.Segments = append(c.Segments, segs...)
	}
}

// WithYAMLDir loads flags-as-code files from dir in fsys with
// flagfile.LoadDir; each environment found is added as WithConfig would.
func WithYAMLDir(fsys fs.FS, dir string) Option {
	return func(st *settings) { st.yaml = append(st.yaml, yamlDir{fsys, dir}) }
}

// WithToken adds a bearer token with the given scopes
// ("flags:read", "flags:write"), for all environments. DefaultToken stays
// valid.
func WithToken(secret string, scopes ...string) Option {
	return func(st *settings) {
		st.tokens = append(st.tokens, flagserver.Token{
			Secret:  secret,
			Subject: fmt.Sprintf("flagtest-token-%d", len(st.tokens)+1),
			Scopes:  slices.Clone(scopes),
		})
	}
}

// WithServerOptions edits the flagserver.Options after flagtest has filled
// them in (configs, tokens, clock, and its defaults), so it can change
// anything, such as rate limits or RequireChangeReason.
func WithServerOptions(fn func(*flagserver.Options)) Option {
	return func(st *settings) { st.serverOpt = append(st.serverOpt, fn) }
}

// WithClock sets the server's clock (evaluation time, expiries, rate limits).
func WithClock(now func() time.Time) Option {
	return func(st *settings) { st.now = now }
}

// WithKeepAlive sets the SSE keep-alive interval (default 15s).
func WithKeepAlive(d time.Duration) Option {
	return func(st *settings) { st.keepAlive = d }
}

// Server is a running test server. URL is its base URL
// ("http://127.0.0.1:PORT"), to which the API paths (/v1/…) are appended.
type Server struct {
	// URL is the base URL, without a trailing slash. It stays the same
	// across Down and Up.
	URL string

	fs    *flagserver.Server
	token string
	hs    *http.Server
	addr  string

	baseCtx context.Context
	cancel  context.CancelFunc

	mu      sync.Mutex
	ln      net.Listener
	down    bool
	closed  bool
	conns   map[net.Conn]struct{}
	streams map[*streamConn]struct{}
	faults  []*faultEntry
	counts  map[string]int64
	active  int
	idle    chan struct{} // closed when active drops to 0 after Close
	serveWG sync.WaitGroup

	stall atomic.Bool
}

// NewServer starts a Server and registers tb.Cleanup to close it. It fails
// the test (tb.Fatal) if the server cannot start.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := Start(opts...)
	if err != nil {
		tb.Fatalf("flagtest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start starts a Server without a testing.TB (for examples and programs).
// The caller must Close it.
func Start(opts ...Option) (*Server, error) {
	st := &settings{configs: map[string]*evaluate.Config{}}
	for _, o := range opts {
		o(st)
	}
	for _, y := range st.yaml {
		cfgs, err := flagfile.LoadDir(y.fsys, y.dir)
		if err != nil {
			return nil, err
		}
		names := slices.Sorted(maps.Keys(cfgs))
		for _, env := range names {
			WithConfig(cfgs[env])(st)
		}
	}
	if len(st.configs) == 0 {
		st.config(DefaultEnvironment)
	}
	fo := flagserver.Options{
		Tokens: append([]flagserver.Token{{
			Secret:  DefaultToken,
			Subject: "flagtest",
			Scopes:  flagserver.Scopes,
		}}, st.tokens...),
		Now:                 st.now,
		KeepAlive:           st.keepAlive,
		ReadLimit:           flagserver.RateLimit{PerSecond: -1},
		WriteLimit:          flagserver.RateLimit{PerSecond: -1},
		RequireChangeReason: map[string]bool{},
	}
	for _, env := range st.order {
		fo.Configs = append(fo.Configs, st.configs[env])
	}
	for _, fn := range st.serverOpt {
		fn(&fo)
	}
	fsrv, err := flagserver.New(fo)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fsrv.Close()
		return nil, fmt.Errorf("flagtest: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		URL:     "http://" + ln.Addr().String(),
		fs:      fsrv,
		token:   DefaultToken,
		addr:    ln.Addr().String(),
		baseCtx: ctx,
		cancel:  cancel,
		ln:      ln,
		conns:   map[net.Conn]struct{}{},
		streams: map[*streamConn]struct{}{},
		counts:  map[string]int64{},
	}
	s.hs = &http.Server{
		Handler:           s.handler(),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnState:         s.connState,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          nil,
	}
	s.serve(ln)
	return s, nil
}

func (s *Server) serve(ln net.Listener) {
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		s.hs.Serve(ln)
	}()
}

func (s *Server) connState(c net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch state {
	case http.StateNew:
		if s.down || s.closed {
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	}
}

// Close shuts the server down: it ends SSE streams and in-flight requests
// (their contexts are canceled), closes every connection and blocks until
// every handler has returned. A second Close is a no-op.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.idle = make(chan struct{})
	if s.active == 0 {
		close(s.idle)
	}
	idle := s.idle
	s.mu.Unlock()

	s.cancel()
	s.fs.Close()
	s.hs.Close() // closes listeners and connections
	<-idle
	s.serveWG.Wait()
}

// Token returns the bearer token with every scope (DefaultToken).
func (s *Server) Token() string { return s.token }

// Flagserver returns the underlying server, for anything the helpers do
// not cover.
func (s *Server) Flagserver() *flagserver.Server { return s.fs }

// SetFlag creates or replaces flag f in env (which must exist), like an
// API write: the environment version is bumped and SSE subscribers get an
// invalidate event. It returns the new environment version.
func (s *Server) SetFlag(env string, f evaluate.Flag) (int64, error) {
	return s.fs.PutFlag(env, f, "flagtest", "flagtest.SetFlag")
}

// SetSegment creates or replaces a segment in env, like SetFlag.
func (s *Server) SetSegment(env string, seg evaluate.Segment) (int64, error) {
	return s.fs.PutSegment(env, seg, "flagtest", "flagtest.SetSegment")
}

// DeleteFlag removes flag key from env, like SetFlag.
func (s *Server) DeleteFlag(env, key string) error {
	return s.fs.DeleteFlag(env, key, "flagtest", "flagtest.DeleteFlag")
}

// Requests returns how many requests with this method and path (without
// the query) the server has received since start or ResetCounts, counted
// before faults are applied, so requests failed by a fault are included.
// For example Requests("POST", "/v1/evaluate").
func (s *Server) Requests(method, path string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[method+" "+path]
}

// RequestCounts returns a copy of every count, keyed "METHOD /path".
func (s *Server) RequestCounts() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.counts)
}

// ResetCounts sets every request count to zero.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
}

// Down simulates an outage: it closes the listener, so new connections are
// refused (ECONNREFUSED), and closes every open connection, including SSE
// streams. Up listens again on the same address. Down on a down server is
// a no-op.
func (s *Server) Down() {
	s.mu.Lock()
	if s.down || s.closed {
		s.mu.Unlock()
		return
	}
	s.down = true
	ln := s.ln
	s.ln = nil
	conns := slices.Collect(maps.Keys(s.conns))
	clear(s.conns)
	s.mu.Unlock()
	ln.Close()
	for _, c := range conns {
		c.Close()
	}
	s.DropStreams()
}

// Up ends an outage started by Down: the server listens on its old address
// again. It returns an error if the address cannot be bound again.
func (s *Server) Up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down || s.closed {
		return nil
	}
	// Go listeners set SO_REUSEADDR, so the port can be bound again at
	// once unless another process took it meanwhile.
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("flagtest: listen again on %s: %w", s.addr, err)
	}
	s.ln = ln
	s.down = false
	s.serve(ln)
	return nil
}

// DropStreams ends every open SSE stream (the response ends cleanly, as if
// the server closed it); clients are expected to reconnect.
func (s *Server) DropStreams() {
	s.mu.Lock()
	streams := slices.Collect(maps.Keys(s.streams))
	s.mu.Unlock()
	for _, sc := range streams {
		sc.cancel()
	}
}

// StallStreams(true) keeps SSE connections open but sends nothing on them,
// neither events nor keep-alives (new streams still get their response
// headers); StallStreams(false) resumes sending. Events published while
// stalled are lost for the connections that were stalled, as on a dead
// network path; a client that reconnects with Last-Event-ID gets them.
func (s *Server) StallStreams(on bool) { s.stall.Store(on) }

// Streams returns the number of connected SSE subscribers.
func (s *Server) Streams() int { return s.fs.Streams() }

// String describes the server (its URL and request counts), for test logs.
func (s *Server) String() string {
	counts := s.RequestCounts()
	out := "flagtest.Server " + s.URL
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		out += fmt.Sprintf("\n  %s: %d", k, counts[k])
	}
	return out
}
