package flagwire

import (
	"time"
)

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
	// ConfigVersion, ETag, ConfigSource and ConfigAge describe the config
	// in use (local and offline modes, and a remote-mode bootstrap
	// fallback). ConfigSource is SourceLocal (synced) or SourceBootstrap
	// (a bootstrap or last-known file); empty, as the others are zero,
	// while the client holds no config.
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
