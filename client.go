package flagwire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/clockhook"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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

type refreshJob struct {
	key cacheKey
	ec  *evalContext
}

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
	hc = withRedirectPolicy(hc) // options.go: never to another origin
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

// apiAnswered clears Status().LastError and ErrorSince: the API answered
// (an evaluation in remote mode, a config fetch in local mode, a stream
// connect in remote mode). A stream the server refused for good keeps its
// error: no answer elsewhere cures it. Cheap when nothing failed.
func (c *Client) apiAnswered() {
	if !c.failing.Load() {
		return
	}
	if s := c.local.stream; s != nil && s.stopped.Load() && !s.absent.Load() {
		return
	}
	c.local.mu.Lock()
	c.local.lastErr, c.local.errSince = "", time.Time{}
	c.failing.Store(false)
	c.configErr.Store(false)
	c.local.mu.Unlock()
}

// isConfigError reports whether an API failure is a misconfiguration
// (which retries and time do not cure) rather than a transport failure.
func isConfigError(err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.code {
	case CodeUnknownEnvironment, CodeUnauthorized:
		return true
	case CodeGeneral:
		return ae.status == http.StatusNotFound // no such endpoint
	}
	return false
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
		c.abandonPersist() // sync.go: a last-known write in progress stops too
		return ctx.Err()
	}
	if c.cfg.ownHTTPClient {
		c.hc.CloseIdleConnections()
	}
	return nil
}

// Bool returns the value of a boolean flag for the evaluation context in ctx
// (see WithAttributes), or def when it cannot be decided.
func (c *Client) Bool(ctx context.Context, key string, def bool) bool {
	return c.plainBool(ctx, key, def)
}

// BoolDetail is Bool with the Detail of the evaluation.
func (c *Client) BoolDetail(ctx context.Context, key string, def bool) (bool, Detail) {
	var det Detail
	v := c.evalBool(ctx, key, def, &det)
	return v, det
}

// The typed evaluations fill *det in place: Detail is large, and copying
// it through every frame showed in hot-path profiles.
//
// They are go:noinline so that Bool, String, … inlined into an
// application's package call them, not the generic evalAs: a call to a
// generic function's shape instance from another package has no escape
// summary there, so the caller's Detail would be moved to the heap on
// every evaluation (TestCrossPackageBoolNoAlloc).
//
//go:noinline
func (c *Client) evalBool(ctx context.Context, key string, def bool, det *Detail) bool {
	return evalAs(c, ctx, key, def, det, asBool)
}

//go:noinline
func (c *Client) plainBool(ctx context.Context, key string, def bool) bool {
	if v, ok := quick(c, ctx, key, asBool); ok {
		return v
	}
	var det Detail
	return evalAs(c, ctx, key, def, &det, asBool)
}

// String returns the value of a string flag, or def.
func (c *Client) String(ctx context.Context, key string, def string) string {
	return c.plainString(ctx, key, def)
}

// StringDetail is String with the Detail of the evaluation.
func (c *Client) StringDetail(ctx context.Context, key string, def string) (string, Detail) {
	var det Detail
	v := c.evalString(ctx, key, def, &det)
	return v, det
}

//go:noinline
func (c *Client) evalString(ctx context.Context, key string, def string, det *Detail) string {
	return evalAs(c, ctx, key, def, det, asString)
}

//go:noinline
func (c *Client) plainString(ctx context.Context, key string, def string) string {
	if v, ok := quick(c, ctx, key, asString); ok {
		return v
	}
	var det Detail
	return evalAs(c, ctx, key, def, &det, asString)
}

// Float returns the value of a number flag, or def.
func (c *Client) Float(ctx context.Context, key string, def float64) float64 {
	return c.plainFloat(ctx, key, def)
}

// FloatDetail is Float with the Detail of the evaluation.
func (c *Client) FloatDetail(ctx context.Context, key string, def float64) (float64, Detail) {
	var det Detail
	v := c.evalFloat(ctx, key, def, &det)
	return v, det
}

//go:noinline
func (c *Client) evalFloat(ctx context.Context, key string, def float64, det *Detail) float64 {
	return evalAs(c, ctx, key, def, det, asFloat)
}

//go:noinline
func (c *Client) plainFloat(ctx context.Context, key string, def float64) float64 {
	if v, ok := quick(c, ctx, key, asFloat); ok {
		return v
	}
	var det Detail
	return evalAs(c, ctx, key, def, &det, asFloat)
}

// Int returns the value of a number flag as an integer, or def. A value
// that is not a whole number in int64 range is a TYPE_MISMATCH.
func (c *Client) Int(ctx context.Context, key string, def int64) int64 {
	return c.plainInt(ctx, key, def)
}

// IntDetail is Int with the Detail of the evaluation.
func (c *Client) IntDetail(ctx context.Context, key string, def int64) (int64, Detail) {
	var det Detail
	v := c.evalInt(ctx, key, def, &det)
	return v, det
}

//go:noinline
func (c *Client) evalInt(ctx context.Context, key string, def int64, det *Detail) int64 {
	return evalAs(c, ctx, key, def, det, asInt)
}

//go:noinline
func (c *Client) plainInt(ctx context.Context, key string, def int64) int64 {
	if v, ok := quick(c, ctx, key, asInt); ok {
		return v
	}
	var det Detail
	return evalAs(c, ctx, key, def, &det, asInt)
}

// quick answers a plain typed call (Bool, String, Float, Int) when it
// succeeds without a Detail to fill: a fresh cache hit in remote mode, an
// evaluation of the current config in local and offline modes, with no
// hooks. It counts the evaluation as lookup does. ok is false for anything
// else (a miss, a stale or negative answer, an error, a value of another
// type): the caller then takes the full path (evalAs), which decides it
// and counts it. On every path where ok is true, evalAs would serve the
// same value with the same counts (TestPlainCallsAgreeWithDetail and the
// conformance runners, which make both calls).
func quick[T any](c *Client, ctx context.Context, key string, as func(any) (T, bool)) (v T, ok bool) {
	if c == nil || len(c.cfg.hooks) > 0 || c.closed.Load() {
		return v, false
	}
	ec := contextOf(ctx)
	if c.cfg.mode != ModeRemote {
		st := c.snap.Load()
		if st == nil {
			return v, false
		}
		var r evaluate.Result
		c.evalTo(&r, st, key, ec)
		if r.Reason.Kind == evaluate.ReasonError {
			return v, false
		}
		if v, ok = as(r.Value); ok {
			c.stats.uncached.Add(1)
		}
		return v, ok
	}
	k, keyed := c.keyOf(ec, key)
	if !keyed {
		return v, false
	}
	now := c.hotNow()
	d := c.cache.get(k, now)
	if d == nil || !c.cache.fresh(d, now) || d.errCode != "" || d.codeDefault {
		return v, false
	}
	if v, ok = as(d.value); !ok {
		return v, false
	}
	c.hit(k, ec, d, now)
	return v, true
}

// hit counts a fresh cache hit on d and, once d is due, schedules its
// background refresh (one at a time).
func (c *Client) hit(k cacheKey, ec *evalContext, d *decision, now int64) {
	c.stats.hits.Add(1)
	if now >= d.refreshAt && d.refreshing.CompareAndSwap(false, true) {
		c.scheduleRefresh(k, ec, d)
	}
}

// evalAs is the typed evaluations' common path: look the flag up, convert
// its value with as, and serve def with TYPE_MISMATCH when it does not fit.
func evalAs[T any](c *Client, ctx context.Context, key string, def T, det *Detail, as func(any) (T, bool)) T {
	d := c.lookup(ctx, key, det)
	if !d.ok {
		return def
	}
	if d.useDefault { // an OFREP code-default answer: a success
		c.finish(ctx, key, det)
		return def
	}
	v, ok := as(d.value)
	if !ok {
		c.mismatch(ctx, key, det)
		return def
	}
	c.finish(ctx, key, det)
	return v
}

func asBool(v any) (bool, bool)     { b, ok := v.(bool); return b, ok }
func asString(v any) (string, bool) { s, ok := v.(string); return s, ok }
func asFloat(v any) (float64, bool) { f, ok := v.(float64); return f, ok }

// asInt accepts whole numbers in int64 range only.
func asInt(v any) (int64, bool) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// JSON decodes the flag's value into dst: the value of a JSON flag, or,
// for a boolean, string or number flag, the served variant's payload (its
// value when the variant has no payload). Every mode answers the same way
// (remote, local, offline, OFREP). Fill dst with the default first: on
// any failure dst is left as it was and the Detail's ErrorCode says why
// (TYPE_MISMATCH when the JSON does not fit dst). A JSON call never
// changes what other typed calls of the same flag get: the decision cache
// holds the flag's answer, not the answer to one type.
func (c *Client) JSON(ctx context.Context, key string, dst any) Detail {
	var det Detail
	d := c.lookup(ctx, key, &det)
	if !d.ok {
		return det
	}
	if d.useDefault { // an OFREP code-default answer: dst keeps the default
		c.finish(ctx, key, &det)
		return det
	}
	raw := d.raw
	if !d.jsonFlag && d.value != nil && len(det.Payload) > 0 { // a scalar flag: decode its payload
		raw = det.Payload
	}
	if len(raw) == 0 || decodeInto(raw, dst) != nil {
		c.mismatch(ctx, key, &det)
		return det
	}
	c.finish(ctx, key, &det)
	return det
}

// decodeInto decodes raw into dst, a non-nil pointer, leaving dst as it
// was on error (the decode goes to a copy first).
func decodeInto(raw []byte, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("destination is not a non-nil pointer")
	}
	tmp := reflect.New(rv.Elem().Type())
	tmp.Elem().Set(rv.Elem())
	if err := json.Unmarshal(raw, tmp.Interface()); err != nil {
		return err
	}
	rv.Elem().Set(tmp.Elem())
	return nil
}

func (c *Client) mismatch(ctx context.Context, key string, det *Detail) {
	det.ErrorCode = CodeTypeMismatch
	det.Source = SourceCallerDefault
	det.Reason, det.Variant, det.Payload, det.FlagMetadata = errorReason, "", nil, nil
	c.stats.countError(CodeTypeMismatch)
	c.logs.warn("type-mismatch", "flagwire: flag value has another type than asked; serving the default", "flag", key)
	c.finish(ctx, key, det)
}

func (c *Client) finish(ctx context.Context, key string, det *Detail) {
	if len(c.cfg.hooks) > 0 {
		c.runAfterHooks(ctx, key, *det)
	}
}

// value is what an evaluation found: the value (bool, string, float64, or
// nil for JSON objects) and its JSON encoding. ok is false when the caller's
// default must be served. It is passed by value: no allocation.
type value struct {
	value any
	raw   []byte
	ok    bool
	// useDefault (with ok) is a successful answer that says "serve the
	// caller's default" (OFREP's code default): no value, no error.
	useDefault bool
	// jsonFlag: the flag is a JSON flag (JSON serves its value, never
	// the payload, even when the value is a scalar).
	jsonFlag bool
}

// lookup finds the decision for key in ctx, following the fallback order:
// fresh (cache, remote or local) > stale cache > bootstrap/last-known >
// default. It fills *det.
func (c *Client) lookup(ctx context.Context, key string, det *Detail) value {
	det.FlagKey = key
	det.Reason.Bucket = -1
	if c == nil {
		det.ErrorCode = CodeClosed
		det.Reason = errorReason
		return value{}
	}
	if len(c.cfg.hooks) > 0 {
		c.runBeforeHooks(ctx, key)
	}
	if c.closed.Load() {
		c.stats.uncached.Add(1)
		det.ErrorCode = CodeClosed
		c.fallbackDefault(ctx, key, det)
		return value{}
	}
	ec := contextOf(ctx)
	if c.cfg.mode != ModeRemote {
		c.stats.uncached.Add(1)
		return c.lookupLocal(ctx, key, ec, det)
	}
	k, keyed := c.keyOf(ec, key) // counted below as a hit or a miss
	now := c.hotNow()
	if !keyed {
		c.stats.uncached.Add(1)
		return c.fallback(ctx, key, ec, nil, now, errInvalidContext, det)
	}
	var stale *decision
	if d := c.cache.get(k, now); d != nil {
		if c.cache.fresh(d, now) {
			c.hit(k, ec, d, now)
			return c.served(ctx, d, SourceCache, det)
		}
		stale = d
	}
	c.stats.misses.Add(1)
	d, err := c.fetchOne(ctx, k, ec)
	if err == nil {
		return c.served(ctx, d, SourceRemote, det)
	}
	return c.fallback(ctx, key, ec, stale, now, err, det)
}

// fallback serves, after a failed fetch, a stale decision, else the
// bootstrap/last-known config, else the default; det carries the error code.
func (c *Client) fallback(ctx context.Context, key string, ec *evalContext, stale *decision, now int64, err error, det *Detail) value {
	code := errorCodeOf(err)
	c.stats.countError(code)
	det.ErrorCode = code
	if stale != nil && now < stale.staleUntil && stale.errCode == "" {
		c.stats.stale.Add(1)
		v := c.served(ctx, stale, SourceStale, det)
		det.ErrorCode = code
		return v
	}
	if v, ok := c.evalSnapshot(key, ec, det); ok {
		det.ErrorCode = code
		return v
	}
	det.ErrorCode = code
	c.fallbackDefault(ctx, key, det)
	return value{}
}

func (c *Client) served(ctx context.Context, d *decision, src Source, det *Detail) value {
	if d.errCode != "" { // a cached negative answer, e.g. FLAG_NOT_FOUND
		det.ErrorCode = d.errCode
		c.fallbackDefault(ctx, det.FlagKey, det)
		return value{}
	}
	det.Variant = d.variant
	det.Reason = d.reason
	det.Source = src
	det.Payload = d.payload
	det.FlagVersion = d.flagVersion
	det.FlagMetadata = d.meta
	det.ErrorCode = d.answerCode
	if d.codeDefault {
		return value{ok: true, useDefault: true}
	}
	return value{value: d.value, raw: d.raw, ok: true, jsonFlag: d.typ == string(evaluate.TypeJSON)}
}

// errorReason is the Reason of a Detail that serves the caller's default
// because of an error: no variant was chosen, so no rule or bucket says why.
var errorReason = Reason{Kind: evaluate.ReasonError, Bucket: -1}

func (c *Client) fallbackDefault(ctx context.Context, key string, det *Detail) {
	det.Source = SourceCallerDefault
	det.Reason, det.Variant, det.Payload, det.FlagVersion, det.FlagMetadata = errorReason, "", nil, 0, nil
	c.stats.defaults.Add(1)
	c.finish(ctx, key, det)
}

// fetchOne fetches one decision, coalescing concurrent misses of the same
// key (flights) into one request. The request is detached from the
// caller's cancellation (it serves every waiting caller) and bounded by
// the client's timeout; each caller waits at most for its own deadline or
// the timeout.
func (c *Client) fetchOne(ctx context.Context, k cacheKey, ec *evalContext) (*decision, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if c.rateLimited(c.cfg.clock.Nanotime()) {
		return nil, errRateLimitedGate
	}
	fk, fs, f, leader := c.joinFlight(k)
	if leader {
		started := c.goTracked(func() {
			// A caller that missed the cache while a request for k was
			// in flight can get here after that request stored its
			// answer: serve that answer instead of asking again.
			now := c.hotNow()
			if d := c.cache.get(k, now); d != nil && c.cache.fresh(d, now) && d.gen == fk.gen && d.global == fk.global {
				c.flights.finish(fk, f, d, nil)
				return
			}
			c.fly(fk, f, fs, ec)
		})
		if !started {
			c.flights.finish(fk, f, nil, ErrClosed)
		}
	}
	timer := time.NewTimer(c.cfg.timeout)
	defer timer.Stop()
	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return f.dec, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, errTimeout
		}
		return nil, ctx.Err()
	case <-timer.C:
		return nil, errTimeout
	}
}

// joinFlight stamps k's flag generations (before any request, so that an
// invalidation racing with it wins) and joins the flight of k at them,
// starting it when none is in progress: leader is then true, and the
// caller must fly it.
func (c *Client) joinFlight(k cacheKey) (fk flightKey, fs *flagState, f *flight, leader bool) {
	fs, gen, global := c.cache.stamp(k.flag)
	fk = flightKey{k: k, gen: gen, global: global}
	f, leader = c.flights.join(fk)
	return fk, fs, f, leader
}

// fly makes the request of a flight this caller leads, caches its answer
// and ends the flight.
func (c *Client) fly(fk flightKey, f *flight, fs *flagState, ec *evalContext) error {
	d, err := c.fetchAndStore(fk.k, ec, fs, fk.gen, fk.global)
	c.flights.finish(fk, f, d, err)
	return err
}

// fetchAndStore asks the API for one decision and caches it, stamped with
// the generations read before the request (stamp), so that an
// invalidation that races with the request wins.
func (c *Client) fetchAndStore(k cacheKey, ec *evalContext, fs *flagState, gen, global uint64) (*decision, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.timeout)
	defer cancel()
	decs, err := c.remoteEvaluate(ctx, []remoteItem{{key: k.flag, ec: ec}})
	if err != nil {
		return nil, err
	}
	d := decs[0]
	if d.err != nil {
		return nil, d.err
	}
	c.stampDecision(d.dec, fs, gen, global)
	c.cache.add(k, d.dec)
	return d.dec, nil
}

func (c *Client) stampDecision(d *decision, fs *flagState, gen, global uint64) {
	d.fs, d.gen, d.global = fs, gen, global
}

func (c *Client) scheduleRefresh(k cacheKey, ec *evalContext, d *decision) {
	select {
	case c.refreshCh <- refreshJob{key: k, ec: ec}:
	default:
		d.refreshing.Store(false) // queue full: a later hit retries
	}
}

// refreshLoop refreshes hot entries close to expiry in the background, so
// hot paths stay on cache hits. A refresh joins a request for the same key
// already in flight instead of making another.
func (c *Client) refreshLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case j := <-c.refreshCh:
			// A request for the key already in flight makes this refresh
			// unnecessary; it did not refresh the entry, so, as after a
			// failure, the current entry stays and a later hit may retry.
			fk, fs, f, leader := c.joinFlight(j.key)
			if !leader || c.fly(fk, f, fs, j.ec) != nil {
				// Keep serving the current entry; allow another attempt.
				if d := c.cache.get(j.key, c.cfg.clock.Nanotime()); d != nil {
					d.refreshing.Store(false)
				}
			}
		}
	}
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
