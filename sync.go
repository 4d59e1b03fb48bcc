package flagwire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

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
	req, err := c.getEnv(ctx, c.eps[i].url, "flags")
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

func (c *Client) confirm(now time.Time) {
	c.local.mu.Lock()
	c.local.confirmed = now
	c.local.mu.Unlock()
	c.apiAnswered()
}
