package flagwire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flagwire/flagwire/internal/clockhook"
)

// Client evaluates feature flags. Create one with New and share it; it is
// safe for concurrent use. The zero Client is not usable, but a nil *Client
// is: every evaluation on it returns the default.
type Client struct {
	cfg     *config
	hc      *http.Client
	cache   *decisionCache
	flights flights
	// eps are the API's endpoints, primary first (endpoint.go); offline
	// mode has one without a URL. lastEndpoint is the one that answered
	// last (Status).
	eps          []*endpoint
	lastEndpoint atomic.Int32
	stats        stats
	logs         logLimiter
	ctx          context.Context // cancelled by Close
	cancel       context.CancelFunc

	mu     sync.RWMutex // guards closed against wg.Add
	closed atomic.Bool
	wg     sync.WaitGroup

	refreshCh chan refreshJob
	coarse    *coarseClock // nil when a clock was injected
	// evalWall is the evaluation wall clock a module-internal test set
	// through clockhook (nil: the real one; see hotWall).
	evalWall func() time.Time

	// failing is set while Status().LastError stands (see apiAnswered);
	// configErr while the last failure of the evaluate API is a
	// misconfiguration (isConfigError), which makes the state an error.
	failing   atomic.Bool
	configErr atomic.Bool

	// snap is the compiled config: the evaluation source in local and
	// offline modes, and the fallback in remote mode (bootstrap or
	// last-known config).
	snap  atomic.Pointer[snapshotState]
	local *localState
}

// Errors returned by New, WaitReady and Close. Evaluation methods never
// return errors: they return the default with a Detail.ErrorCode.
var (
	ErrInvalidConfig = errors.New("flagwire: invalid configuration")
	ErrClosed        = errors.New("flagwire: client closed")
	ErrNotReady      = errors.New("flagwire: no configuration received yet")
)

// New creates a Client. It never blocks on the network: in remote mode the
// first evaluation asks the API; in local mode the config sync starts in
// the background (see WaitReady). It fails only on invalid configuration,
// with an error wrapping ErrInvalidConfig that names every problem,
// including an option that does not apply to the chosen mode (such as
// WithCache in local mode or WithEndpoint in offline mode): an option
// that would silently do nothing is refused. ctx bounds New itself (which
// may verify and compile a large bootstrap or last-known file): when it is
// done before New returns, New returns its error (errors.Is(err,
// context.Canceled) or context.DeadlineExceeded) and no client. ctx is not
// retained; stop the client's background work with Close.
func New(ctx context.Context, opts ...Option) (*Client, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("flagwire: New: %w", err)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(cfg)
		}
	}
	cfg.checkModes()
	if cfg.mode != ModeOffline && len(cfg.endpoints) == 0 && len(cfg.configErrs) == 0 {
		cfg.errorf("an endpoint is required in %s mode (WithEndpoint)", cfg.mode)
	}
	if cfg.mode == ModeOffline && cfg.localOptions.bootstrap == nil && cfg.localOptions.bootstrapErr == nil && len(cfg.configErrs) == 0 {
		cfg.errorf("offline mode needs a bootstrap (WithBootstrapFile or WithBootstrap)")
	}
	if len(cfg.configErrs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(cfg.configErrs, "; "))
	}
	for i, u := range cfg.endpoints {
		cfg.endpoints[i] = baseEndpoint(u)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	hc := cfg.httpClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		hc = &http.Client{Transport: tr}
		cfg.ownHTTPClient = true
	}
	hc = withRedirectPolicy(hc) // redirect.go: never to another origin
	lifeCtx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:       cfg,
		hc:        hc,
		cache:     newDecisionCache(cfg.cacheSize),
		ctx:       lifeCtx,
		cancel:    cancel,
		refreshCh: make(chan refreshJob, 256),
	}
	c.logs.init(cfg.logger, cfg.logInterval, cfg.clock)
	c.stats.init()
	c.eps = make([]*endpoint, max(len(cfg.endpoints), 1))
	for i := range c.eps {
		c.eps[i] = &endpoint{br: newBreaker(cfg.breaker, c)}
		if i < len(cfg.endpoints) {
			c.eps[i].url = cfg.endpoints[i]
		}
	}
	c.evalWall, _ = clockhook.From(ctx)
	if rc, real := cfg.clock.(realClock); real && c.evalWall == nil {
		c.coarse = newCoarseClock(rc)
		c.goTracked(func() { c.coarse.run(lifeCtx) })
	}
	if cfg.mode == ModeRemote {
		c.goTracked(c.refreshLoop)
	}
	if err := c.startLocal(); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("flagwire: New: %w", err)
	}
	return c, nil
}

// baseEndpoint drops a trailing /v1 from the endpoint's path: the SDK
// appends /v1/... itself, and "https://flags.example.com/v1" copied from
// an API example would otherwise send every request to /v1/v1/... (404).
func baseEndpoint(u *url.URL) *url.URL {
	if u == nil {
		return nil
	}
	p := strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(p, "/v1") {
		return u
	}
	out := *u
	out.Path = strings.TrimSuffix(p, "/v1")
	out.RawPath = ""
	return &out
}

// WaitReady blocks until the client has its first good configuration (local
// mode: the first sync; offline mode: the bootstrap; remote mode: at once),
// ctx ends (ErrNotReady wrapping ctx's error), or the client is closed
// (ErrClosed). Evaluations before that use the bootstrap or defaults, and
// their Detail.Source says so.
func (c *Client) WaitReady(ctx context.Context) error {
	if c == nil {
		return ErrClosed
	}
	select {
	case <-c.local.ready:
		if c.ctx.Err() != nil { // closed: ErrClosed, whichever case select picked
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotReady, ctx.Err())
	case <-c.ctx.Done():
		return ErrClosed
	}
}

func (c *Client) markReady() {
	c.local.readyOnce.Do(func() { close(c.local.ready) })
}

// Close stops every goroutine and connection the client owns and waits for
// them, up to ctx's deadline (it then returns ctx's error; the goroutines
// still stop promptly). After Close, evaluations return the default with
// CodeClosed. Close is idempotent and safe for concurrent use.
func (c *Client) Close(ctx context.Context) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	already := c.closed.Swap(true)
	c.mu.Unlock()
	if !already {
		c.cancel()
	}
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case <-done:
	case <-ctx.Done():
		c.abandonPersist() // lastknown.go: a last-known write in progress stops too
		return ctx.Err()
	}
	if c.cfg.ownHTTPClient {
		c.hc.CloseIdleConnections()
	}
	return nil
}

// goTracked starts f on a goroutine the client owns; Close waits for it.
// It reports false (and does not start f) once the client is closed.
func (c *Client) goTracked(f func()) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// track registers work running on a goroutine someone else started (the
// batch); the returned func ends it. ok is false once closed.
func (c *Client) track() (done func(), ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return nil, false
	}
	c.wg.Add(1)
	return c.wg.Done, true
}

// Invalidate drops every cached decision of flag key, or of every flag
// when key is "" (as OnFlagChange's key), in O(1). A dropped decision is
// never served again, not even as STALE when the server is down: the next
// evaluation asks the API and falls back to the bootstrap or the default.
// The SSE stream invalidates on the server's invalidate events (for the
// flag and the flags depending on it); applications need it when the
// stream is off (WithStreaming(false)) and they learn of a change another
// way.
func (c *Client) Invalidate(key string) {
	if c == nil {
		return
	}
	if key == "" {
		c.cache.invalidateAll()
		return
	}
	c.cache.invalidate(key)
}
