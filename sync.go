package flagwire

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

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

// WithPollInterval sets local mode's polling interval while the event
// stream is down (jittered ±10%). Default 60 s; the seed recommends 60–300 s.
func WithPollInterval(d time.Duration) Option {
	return boundTo("WithPollInterval", localOnly, func(c *config) {
		if d > 0 {
			c.localOptions.pollInterval = d
		}
	})
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

// State says what the client can serve. One word a meaning, shared with
// the rest of the API: "ready" as in WaitReady and CodeNotReady, "stale"
// as in SourceStale and WithStaleAfter (past its freshness limit, still
// served).
type State string

// The states.
const (
	// StateNotReady: no config yet (local mode before its first sync);
	// evaluations serve the bootstrap or the caller's default, and
	// WaitReady blocks.
	StateNotReady State = "not-ready"
	// StateReady: the client serves its flags' own answers.
	StateReady State = "ready"
	// StateStale: local mode's config was last confirmed by the server
	// longer ago than WithStaleAfter; it still serves.
	StateStale State = "stale"
	// StateOffline: offline mode (the bootstrap alone, no network), or a
	// closed client.
	StateOffline State = "offline"
	// StateError: the client cannot serve fresh answers: local mode's
	// last sync failed (or there is no config and a failure), or, in
	// remote mode, the circuit breaker is open, the server refused the
	// event stream for good, or the API answered with a misconfiguration
	// (unknown environment, bad token, no such endpoint).
	StateError State = "error"
)

// Status describes the client's data (State and the Config fields) and,
// apart from it, the API's health (Endpoint, Breaker, StreamConnected,
// LastError, ErrorSince). The two can differ without contradicting each
// other: in remote mode, a client whose API stopped answering stays
// StateReady (cached decisions serve until their TTL, then as STALE, and
// new ones fall back) while LastError says why the API failed and
// ErrorSince since when, until the circuit breaker opens (StateError).
type Status struct {
	Mode  Mode
	State State
	// ConfigVersion, ETag and ConfigAge describe the config in use (local
	// and offline modes, and a remote-mode bootstrap fallback).
	ConfigVersion int64
	ETag          string
	ConfigSource  Source
	ConfigAge     time.Duration
	// StreamConnected reports a live SSE subscription.
	StreamConnected bool
	// Endpoint is the base URL of the endpoint that answered last (the
	// primary until one did; see WithEndpoint); empty in offline mode.
	Endpoint string
	// Breaker is the state of that endpoint's circuit breaker.
	Breaker BreakerState
	// LastError describes the last failure of the API (or of a bootstrap
	// or last-known file at start); empty once the API answered after it
	// (a stream the server refused for good keeps its error).
	LastError string
	// ErrorSince is when the API began failing: the time of the first
	// failure since its last answer. Zero when LastError is empty.
	ErrorSince time.Time
}

// localState is the data source's mutable state.
type localState struct {
	mu        sync.Mutex
	lastErr   string
	errSince  time.Time // when lastErr's run of failures began
	confirmed time.Time // last time the server confirmed the config (200 or 304)
	ready     chan struct{}
	readyOnce sync.Once
	trigger   chan struct{} // coalesced refetch requests
	stream    *streamer
	fetches   int // config fetches (tests)
	compiles  int

	syncMu           sync.Mutex // one sync at a time
	persistedVersion int64      // guarded by syncMu

	// persistCtx bounds last-known writes. It is not derived from the
	// client's context: Close lets a write in progress finish (a change
	// the client has served must survive a restart) and cancels it only
	// when Close's own ctx ends (abandonPersist).
	persistCtx  context.Context
	persistStop context.CancelFunc

	lmu       sync.Mutex
	listeners map[int]*listener
	nextID    int
	lastState State
}

// setLastError records a failure for Status: LastError, and ErrorSince
// when it is the first since the API last answered (apiAnswered).
func (c *Client) setLastError(err error) {
	c.local.mu.Lock()
	c.local.lastErr = err.Error()
	if c.local.errSince.IsZero() {
		c.local.errSince = c.cfg.clock.Now()
	}
	c.failing.Store(true)
	c.local.mu.Unlock()
}

func (c *Client) markReady() {
	c.local.readyOnce.Do(func() { close(c.local.ready) })
}

// startLocal loads the bootstrap and last-known files and starts the
// stream and config sync, per mode.
func (c *Client) startLocal() error {
	lc := &c.cfg.localOptions
	c.local = &localState{ready: make(chan struct{}), trigger: make(chan struct{}, 1), listeners: make(map[int]*listener)}
	c.local.persistCtx, c.local.persistStop = context.WithCancel(context.Background())
	now := c.cfg.clock.Now()
	var best *snapshotState
	consider := func(name string, data []byte) error {
		st, err := c.loadEnvelope(data, now)
		if err != nil {
			if name == "" {
				return err
			}
			return fmt.Errorf("%s: %w", name, err)
		}
		if best != nil && st.snap.Version() < best.snap.Version() {
			return fmt.Errorf("%s: version %d is older than the %d already held: refused", name, st.snap.Version(), best.snap.Version())
		}
		best = st
		return nil
	}
	if lc.bootstrapErr != nil {
		if c.cfg.mode == ModeOffline { // whatever the order of the options
			return fmt.Errorf("%w: %w", ErrInvalidConfig, lc.bootstrapErr)
		}
		c.setLastError(lc.bootstrapErr)
		c.cfg.logger.Error("flagwire: bootstrap not used", "error", lc.bootstrapErr.Error())
	}
	if lc.bootstrap != nil {
		if err := consider(lc.bootstrapName, lc.bootstrap); err != nil {
			if c.cfg.mode == ModeOffline { // nothing else could serve: New fails
				return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
			}
			c.setLastError(err)
			c.cfg.logger.Error("flagwire: bootstrap refused", "error", err.Error())
		}
	}
	if p := lc.lastKnownPath; p != "" && c.cfg.mode != ModeOffline {
		if data, err := readConfigFile(p, lc.maxConfig); err == nil {
			if err := consider("last-known config "+p, data); err != nil {
				c.cfg.logger.Warn("flagwire: last-known config not used", "error", err.Error())
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			// Not there yet is normal; unreadable (a FIFO, a device, a
			// directory, too large) is a deployment problem worth seeing.
			err = fmt.Errorf("last-known config: %w", err)
			c.setLastError(err)
			c.cfg.logger.Error("flagwire: last-known config unreadable", "error", err.Error())
		}
	}
	if best != nil {
		c.snap.Store(best)
		if c.cfg.mode == ModeOffline {
			c.markReady()
		}
	}
	switch c.cfg.mode {
	case ModeRemote:
		c.markReady()
		if lc.streaming {
			c.startStream(c.onRemoteInvalidation, c.onRemoteConnect, nil) // stream.go: expire what may predate an unannounced change; stale still allowed
		}
	case ModeLocal:
		if lc.streaming {
			// The sync loop fetches at start; a dropped stream triggers a
			// fetch at once and polling until it is back.
			c.startStream(func(wire.StreamEvent) { c.requestSync() }, func(streamStart) { c.requestSync() }, c.requestSync)
		}
		c.goTracked(c.syncLoop)
	}
	return nil
}

func (c *Client) startStream(onEvent func(wire.StreamEvent), onConnect func(streamStart), onDown func()) {
	s := &streamer{c: c, idle: c.cfg.localOptions.streamIdle, onEvent: onEvent, onConnect: onConnect, onDown: onDown}
	c.local.stream = s
	c.goTracked(func() { s.run(c.ctx) })
}

// loadEnvelope verifies a signed envelope and compiles its config.
func (c *Client) loadEnvelope(data []byte, now time.Time) (*snapshotState, error) {
	if int64(len(data)) > c.cfg.localOptions.maxConfig {
		return nil, fmt.Errorf("%w: %d bytes exceed the %d-byte limit", wire.ErrBootstrapFormat, len(data), c.cfg.localOptions.maxConfig)
	}
	env, err := wire.DecodeEnvelope(data)
	if err != nil {
		return nil, err
	}
	if len(c.cfg.localOptions.keys) == 0 {
		return nil, errors.New("no trusted keys configured (WithTrustedKeys): a bootstrap is never used unverified")
	}
	if err := env.Verify(c.cfg.localOptions.keys, now); err != nil {
		return nil, err
	}
	if env.Environment != "" && env.Environment != c.cfg.environment {
		return nil, fmt.Errorf("bootstrap is for environment %q, not %q", env.Environment, c.cfg.environment)
	}
	// The one config decoder; fields a newer server adds are skipped
	// (forward compatibility, as with unknown stream events).
	var cfg evaluate.Config
	if err := evaluate.DecodeJSON(env.Payload, &cfg, evaluate.JSONOptions{AllowUnknownFields: true}); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", wire.ErrBootstrapFormat, err)
	}
	if cfg.Version != env.Version {
		return nil, fmt.Errorf("%w: payload version %d does not match envelope version %d", wire.ErrBootstrapFormat, cfg.Version, env.Version)
	}
	snap, err := evaluate.Compile(&cfg)
	if err != nil {
		return nil, err
	}
	return &snapshotState{snap: snap, source: SourceBootstrap, receivedAt: env.IssuedAt}, nil
}

// requestSync asks the sync loop for a conditional refetch. Requests
// coalesce: a burst of invalidations causes one or two fetches.
func (c *Client) requestSync() {
	select {
	case c.local.trigger <- struct{}{}:
	default:
	}
}

// syncLoop keeps local mode's config current: a fetch at start, on every
// stream event (coalesced), and by polling (jittered) while the stream is
// down.
func (c *Client) syncLoop() {
	timer := time.NewTimer(0)
	defer timer.Stop()
	wait := time.NewTimer(0)
	<-wait.C
	defer wait.Stop()
	var notBefore time.Time // a server's Retry-After (wall clock, like timers)
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.local.trigger:
		case <-timer.C:
		}
		// Honour Retry-After: stream events arriving meanwhile coalesce
		// into the one fetch that follows.
		if d := time.Until(notBefore); d > 0 {
			wait.Reset(d)
			select {
			case <-c.ctx.Done():
				return
			case <-wait.C:
			}
		}
		err := c.syncOnce(c.ctx)
		if ra := c.retryAfter(err); ra > 0 { // capped: RetrySettings.MaxRetryAfter
			notBefore = time.Now().Add(ra)
		}
		if err != nil && c.ctx.Err() == nil {
			c.setLastError(err)
			c.logs.warn("sync", "flagwire: config sync failed; serving the config held", "error", err.Error())
		}
		c.statusChanged()
		// Poll while the stream is down (or off); a live stream makes
		// polling unnecessary, but a slow safety poll remains.
		iv := c.cfg.localOptions.pollInterval
		if s := c.local.stream; s != nil && s.connected.Load() {
			iv *= 5
		}
		jitter := time.Duration(rand.Int64N(int64(iv)/5+1)) - iv/10
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(iv + jitter)
	}
}

// syncOnce makes one conditional GET /v1/flags. Syncs are serialized, so
// snapshots and the persisted last-known file only move forward.
func (c *Client) syncOnce(ctx context.Context) error {
	c.local.syncMu.Lock()
	defer c.local.syncMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, max(c.cfg.timeout, 5*time.Second))
	defer cancel()
	// Each endpoint in turn, most preferred usable first, until one
	// answers (WithEndpoint); an endpoint that fails is skipped for the
	// breaker's open timeout.
	var tried uint32
	for {
		i := c.endpointFor(tried, c.cfg.clock.Nanotime())
		err := c.syncFrom(ctx, i)
		if err == nil || !failsOver(err) {
			c.markUp(i)
			return err
		}
		if len(c.eps) > 1 {
			c.markDown(i)
		}
		tried |= 1 << i
		if ctx.Err() != nil || c.pickEndpoint(tried, c.cfg.clock.Nanotime()) < 0 {
			return err
		}
	}
}

// syncFrom is syncOnce's request to endpoint i.
func (c *Client) syncFrom(ctx context.Context, i int) error {
	u := c.eps[i].url.JoinPath("v1", "flags")
	q := u.Query()
	q.Set("environment", c.cfg.environment)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", wire.ContentTypeJSON)
	cur := c.snap.Load()
	if cur != nil && cur.source == SourceLocal && cur.etag != "" {
		req.Header.Set("If-None-Match", cur.etag)
	}
	c.authorize(req, nil)
	c.local.mu.Lock()
	c.local.fetches++
	c.local.mu.Unlock()
	resp, err := c.hc.Do(req)
	if err != nil {
		return &apiError{code: CodeUnavailable, msg: "config fetch: " + transportMessage(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.localOptions.maxConfig+1))
	if err != nil {
		return &apiError{code: CodeUnavailable, msg: "config fetch: " + transportMessage(err)}
	}
	now := c.cfg.clock.Now()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotModified {
		c.markUp(i) // before the config is served: Status names where it came from
	}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		c.confirm(now)
		return nil
	case resp.StatusCode != http.StatusOK:
		return statusError(resp, data, now)
	case int64(len(data)) > c.cfg.localOptions.maxConfig:
		return &apiError{code: CodeBadResponse, msg: fmt.Sprintf("config larger than %d bytes", c.cfg.localOptions.maxConfig)}
	}
	var cfg evaluate.Config // decoded as a bootstrap's (loadEnvelope)
	if err := evaluate.DecodeJSON(data, &cfg, evaluate.JSONOptions{AllowUnknownFields: true}); err != nil {
		return &apiError{code: CodeBadResponse, msg: "config: malformed JSON: " + err.Error()}
	}
	epoch := resp.Header.Get(wire.HeaderConfigEpoch)
	if cur != nil && cur.source == SourceLocal && cfg.Version < cur.snap.Version() {
		// Versions compare within one store epoch only. A lower version
		// of the same epoch (or from a server that names none) is an
		// out-of-order answer, say from a stale cache on the way; one of a
		// new epoch is the server's whole state now (it restarted without
		// its data, or another store took over): refusing it would serve
		// the old config for good.
		if epoch == "" || cur.epoch == "" || epoch == cur.epoch {
			return &apiError{code: CodeBadResponse, msg: fmt.Sprintf("config version %d is older than the %d held: refused (out of order)", cfg.Version, cur.snap.Version())}
		}
		c.cfg.logger.Warn("flagwire: the server's config store is new (restarted without its data, or replaced): following its config",
			"version", cfg.Version, "heldVersion", cur.snap.Version(), "epoch", epoch, "heldEpoch", cur.epoch)
		c.local.persistedVersion = math.MinInt64 // the last-known file follows too
	}
	if cfg.Environment != "" && cfg.Environment != c.cfg.environment {
		return &apiError{code: CodeBadResponse, msg: fmt.Sprintf("config is for environment %q", cfg.Environment)}
	}
	snap, err := evaluate.Compile(&cfg)
	if err != nil {
		return &apiError{code: CodeBadResponse, msg: "config refused, the previous one keeps serving: " + err.Error()}
	}
	c.local.mu.Lock()
	c.local.compiles++
	c.local.mu.Unlock()
	next := &snapshotState{snap: snap, source: SourceLocal, etag: resp.Header.Get("ETag"), epoch: epoch, receivedAt: now}
	c.snap.Store(next)
	c.confirm(now)
	c.markReady()
	var prev *evaluate.Snapshot
	if cur != nil {
		prev = cur.snap
	}
	c.notifyChanges(prev, snap)
	if c.cfg.localOptions.lastKnownPath != "" {
		// The new config is visible: write it even if Close has begun, or
		// a restart with the API down would serve the previous config (a
		// kill switch switched back on). Close waits for this, bounded by
		// its ctx.
		pctx, pcancel := context.WithTimeout(c.local.persistCtx, max(c.cfg.timeout, 5*time.Second))
		err := c.persistLastKnown(pctx)
		pcancel()
		if err != nil {
			c.logs.warn("persist", "flagwire: could not persist the last-known config", "error", err.Error())
		}
	}
	return nil
}

// abandonPersist cancels a last-known write in progress: Close calls it
// when its ctx ends before the client's goroutines have stopped.
func (c *Client) abandonPersist() {
	if c.local != nil && c.local.persistStop != nil {
		c.local.persistStop()
	}
}

func (c *Client) confirm(now time.Time) {
	c.local.mu.Lock()
	c.local.confirmed = now
	c.local.mu.Unlock()
	c.apiAnswered()
}

// persistLastKnown fetches the signed envelope of the current config and
// writes it atomically.
func (c *Client) persistLastKnown(ctx context.Context) error {
	u := c.eps[c.lastEndpoint.Load()].url.JoinPath("v1", "bootstrap")
	q := u.Query()
	q.Set("environment", c.cfg.environment)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	c.authorize(req, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.localOptions.maxConfig+1))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return statusError(resp, data, c.cfg.clock.Now())
	}
	st, err := c.loadEnvelope(data, c.cfg.clock.Now())
	if err != nil {
		return fmt.Errorf("server's envelope does not verify: %w", err)
	}
	if v := st.snap.Version(); v < c.local.persistedVersion {
		return nil // never overwrite a newer last-known config
	}
	if err := writeFileAtomic(c.cfg.localOptions.lastKnownPath, data); err != nil {
		return err
	}
	c.local.persistedVersion = st.snap.Version()
	return nil
}

// writeFileAtomic writes data to path via a temp file, fsync and rename, so
// a crash leaves either the old file or the new one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
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

// Status reports the data source's state.
func (c *Client) Status() Status {
	if c == nil {
		return Status{State: StateError, LastError: ErrClosed.Error()}
	}
	ep := c.eps[c.lastEndpoint.Load()]
	st := Status{Mode: c.cfg.mode, Breaker: ep.br.current()}
	if ep.url != nil {
		st.Endpoint = ep.url.String()
	}
	c.local.mu.Lock()
	st.LastError, st.ErrorSince = c.local.lastErr, c.local.errSince
	confirmed := c.local.confirmed
	c.local.mu.Unlock()
	if s := c.local.stream; s != nil {
		st.StreamConnected = s.connected.Load()
	}
	now := c.cfg.clock.Now()
	if cur := c.snap.Load(); cur != nil {
		st.ConfigVersion = cur.snap.Version()
		st.ETag = cur.etag
		st.ConfigSource = cur.source
		at := cur.receivedAt
		if cur.source == SourceLocal && confirmed.After(at) {
			at = confirmed
		}
		st.ConfigAge = now.Sub(at)
	}
	switch {
	case c.closed.Load():
		st.State = StateOffline
	case c.cfg.mode == ModeOffline:
		st.State = StateOffline
	case c.cfg.mode == ModeRemote:
		st.State = StateReady
		if st.Breaker == BreakerOpen || (c.local.stream != nil && c.local.stream.stopped.Load() && !c.local.stream.absent.Load()) || c.configErr.Load() {
			st.State = StateError
		}
	default:
		cur := c.snap.Load()
		switch {
		case cur == nil && st.LastError != "":
			st.State = StateError
		case cur == nil || cur.source != SourceLocal:
			st.State = StateNotReady
			if st.LastError != "" {
				st.State = StateError
			}
		case st.ConfigAge > c.cfg.localOptions.staleAfter:
			st.State = StateStale
		case st.LastError != "":
			st.State = StateError
		default:
			st.State = StateReady
		}
	}
	return st
}

// statusChanged notifies status listeners when the state changed.
func (c *Client) statusChanged() {
	st := c.Status()
	c.local.lmu.Lock()
	changed := st.State != c.local.lastState
	c.local.lastState = st.State
	var ls []*listener
	if changed {
		for _, l := range c.local.listeners {
			if l.status != nil {
				ls = append(ls, l)
			}
		}
	}
	c.local.lmu.Unlock()
	for _, l := range ls {
		c.safeHook(func() { l.status(st) })
	}
}
