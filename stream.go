package flagwire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/flagwire/flagwire/internal/retry"
	"github.com/flagwire/flagwire/internal/wire"
)

// Stream defaults.
const (
	// defaultStreamIdle is how long a stream may stay silent (no event, no
	// keep-alive comment) before it is considered stalled and reconnected:
	// three of the server's 15 s keep-alives.
	defaultStreamIdle = 45 * time.Second
	// streamHealthy is how long a connection must last for the reconnect
	// backoff to start over.
	streamHealthy = 30 * time.Second
	// maxStreamEvent bounds one SSE event (go-sse's default is 64 KiB; an
	// event above the bound ends the connection with an error instead of
	// being dropped silently).
	maxStreamEvent = 1 << 20
)

// streamer owns the SSE subscription to GET /v1/stream: one connection,
// an SDK-owned reconnect loop with decorrelated jitter and Last-Event-ID,
// a watchdog for stalled streams, and a stop (not a hammer) on 401/403.
// go-sse parses the event stream; the SDK makes the requests itself so it
// sees status codes and Retry-After, and never subscribes from inside a
// callback.
type streamer struct {
	c      *Client
	idle   time.Duration
	lastID string
	// skip: the endpoints whose connect failed since the last good
	// connection (a bit per index); only the stream's goroutine uses it.
	skip uint32
	// epoch is the store epoch (X-Flagwire-Config-Epoch) the last
	// connection announced; "" when none did. Event ids are positions in
	// one store's history: they never resume across epochs.
	epoch     string
	connected atomic.Bool
	stopped   atomic.Bool // after 401/403
	// absent: an OFREP-only server has no stream (stopped, not an error).
	absent atomic.Bool
	// onEvent handles one event.
	onEvent func(wire.StreamEvent)
	// onConnect, if set, runs when a connection starts that does not
	// resume: the first one, or a reconnect without an event id.
	onConnect func(streamStart)
	onDown    func() // after a live connection ends

	// connects counts successful connections (tests, stats).
	connects atomic.Int64
}

// streamStart describes a stream connection that does not resume:
// events published before it will never reach the client.
type streamStart struct {
	// first is the stream's first connection (otherwise a reconnect
	// without an event id, or one to another store epoch).
	first bool
	// newEpoch: the server's store is not the one the previous
	// connection streamed (it restarted without its data, or a backup
	// was restored): its versions and event ids are another history.
	newEpoch bool
	// version is the server's X-Flagwire-Config-Version: every change
	// after it reaches this connection. versioned is false when the
	// server sent none (older servers) or an unreadable one.
	version   int64
	versioned bool
}

// errMovingToPreferred ends a stream connection to move it to a more
// preferred endpoint (WithEndpoint).
var errMovingToPreferred = errors.New("flagwire: moving the stream to a more preferred endpoint")

// errStreamFatal marks an answer that must not be retried (401/403/404).
// code is the API error code of a 404 (environment_not_found).
type errStreamFatal struct {
	status int
	code   string
	env    string
}

func (e *errStreamFatal) Error() string {
	if e.status == http.StatusNotFound && e.code == wire.CodeEnvironmentNotFound {
		return fmt.Sprintf("stream refused with HTTP 404: the server has no environment %q (check WithEnvironment)", e.env)
	}
	if e.status == http.StatusNotFound {
		return "stream refused with HTTP 404: the server has no /v1/stream (WithStreaming(false) silences this)"
	}
	return fmt.Sprintf("stream refused with HTTP %d: check the token and its scopes", e.status)
}

func (s *streamer) run(ctx context.Context) {
	b := retry.NewDecorrelatedJitter(500*time.Millisecond, 30*time.Second)
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	for ctx.Err() == nil {
		start := time.Now()
		err := s.connectOnce(ctx)
		wasUp := s.connected.Swap(false)
		if ctx.Err() != nil {
			return
		}
		if wasUp && s.onDown != nil {
			s.onDown() // e.g. local mode: fetch now and poll until the stream is back
		}
		var fatal *errStreamFatal
		if errors.As(err, &fatal) {
			if s.c.cfg.ofrep && fatal.status == http.StatusNotFound && fatal.code != wire.CodeEnvironmentNotFound {
				// An OFREP-only server (flagd, GO Feature Flag) has no
				// Flagwire stream: expected, not an error. Decisions
				// expire by their TTL instead.
				s.absent.Store(true)
				s.stopped.Store(true)
				s.c.cfg.logger.Info("flagwire: the OFREP server has no /v1/stream; cached decisions expire by TTL")
				return
			}
			s.stopped.Store(true)
			s.c.setLastError(err)
			s.c.cfg.logger.Error("flagwire: event stream refused; not retrying", "status", fatal.status)
			s.c.statusChanged()
			return
		}
		if errors.Is(err, errMovingToPreferred) {
			continue // a planned move: reconnect at once
		}
		if time.Since(start) >= streamHealthy {
			b.Reset()
		}
		wait := b.NextBackOff()
		wait = max(wait, s.c.retryAfter(err)) // capped: RetrySettings.MaxRetryAfter
		if s.skip != 0 && s.c.pickEndpoint(s.skip, s.c.cfg.clock.Nanotime()) >= 0 {
			wait = 0 // another endpoint may answer: try it now
		}
		if err != nil {
			s.c.logs.warn("stream", "flagwire: event stream interrupted; reconnecting", "error", err.Error(), "retryIn", wait.String())
		}
		s.c.statusChanged()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// connectOnce opens the stream and reads it until it ends, stalls or ctx
// is cancelled.
func (s *streamer) connectOnce(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	// The most preferred usable endpoint not failed since the last good
	// connection (WithEndpoint).
	c := s.c
	if c.pickEndpoint(s.skip, c.cfg.clock.Nanotime()) < 0 {
		s.skip = 0
	}
	epi := c.endpointFor(s.skip, c.cfg.clock.Nanotime())
	req, err := c.getEnv(ctx, c.eps[epi].url, "stream")
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if s.lastID != "" {
		req.Header.Set("Last-Event-ID", s.lastID)
	}
	s.c.authorize(req, nil)
	// The connect itself is bounded by the idle timeout, not the client's
	// evaluation timeout.
	connectTimer := time.AfterFunc(s.idle, cancel)
	resp, err := s.c.hc.Do(req)
	connectTimer.Stop()
	if err != nil {
		return s.connectFailed(epi, &apiError{code: CodeUnavailable, msg: "stream connect: " + transportMessage(err)})
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden,
		resp.StatusCode == http.StatusNotFound: // a server without /v1/stream (e.g. a plain OFREP service), or an unknown environment
		fatal := &errStreamFatal{status: resp.StatusCode, env: s.c.cfg.environment}
		var eb wire.ErrorBody
		if body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)); json.Unmarshal(body, &eb) == nil {
			fatal.code = eb.Error.Code
		}
		return fatal
	case resp.StatusCode != http.StatusOK:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return s.connectFailed(epi, statusError(resp, body, s.c.cfg.clock.Now()))
	}
	// A connection without an event id (the first, or a reconnect before
	// any event arrived) cannot resume: what changed before it is not
	// replayed. The owner acts on it: remote mode expires the decisions
	// older than the server's announced version (all of them, on a
	// reconnect to a server that announces none); local mode asks for a
	// conditional sync (a 304 costs nothing). With Last-Event-ID the
	// server replays missed events or sends a reset.
	//
	// A connection to another store epoch does not resume either,
	// whatever id it was sent: the id named an event of another store's
	// history, which the new store may take as one of its own and so
	// replay nothing (a change made on a restarted server before the
	// reconnect would never reach the client).
	n := s.connects.Add(1)
	epoch := resp.Header.Get(wire.HeaderConfigEpoch)
	newEpoch := epoch != "" && s.epoch != "" && epoch != s.epoch
	if epoch != "" {
		s.epoch = epoch
	}
	if newEpoch {
		s.lastID = ""
	}
	if s.lastID == "" && s.onConnect != nil {
		st := streamStart{first: n == 1, newEpoch: newEpoch}
		st.version, st.versioned = announcedVersion(resp.Header)
		s.onConnect(st)
	}
	s.connected.Store(true)
	if c.cfg.mode == ModeRemote { // local mode: the config fetch says (confirm)
		c.apiAnswered()
	}
	s.skip = 0
	c.markUp(epi)
	s.c.statusChanged()
	// On a less preferred endpoint, check now and then whether a more
	// preferred one is usable again, and move there (resuming with the
	// last event id).
	var moving atomic.Bool
	if epi > 0 {
		var mu sync.Mutex
		var t *time.Timer
		mu.Lock()
		t = time.AfterFunc(c.cfg.localOptions.streamPrefer, func() {
			if i := c.pickEndpoint(0, c.cfg.clock.Nanotime()); i >= 0 && i < epi {
				moving.Store(true)
				cancel()
				return
			}
			mu.Lock()
			t.Reset(c.cfg.localOptions.streamPrefer)
			mu.Unlock()
		})
		mu.Unlock()
		defer func() { mu.Lock(); t.Stop(); mu.Unlock() }()
	}
	// The watchdog: each complete event and each complete keep-alive
	// comment pushes the deadline back; bytes alone do not (a server
	// trickling a byte a second without ever finishing an event is as
	// stalled as a silent one). s.idle without either cancels the request.
	var stalled atomic.Bool
	watchdog := time.AfterFunc(s.idle, func() { stalled.Store(true); cancel() })
	defer watchdog.Stop()
	alive := func() { watchdog.Reset(s.idle) }
	body := &commentWatcher{r: resp.Body, onComment: alive, atLineStart: true}
	stalledErr := func() error {
		return &apiError{code: CodeUnavailable, msg: fmt.Sprintf("stream stalled: no event or keep-alive for %v", s.idle)}
	}
	for ev, err := range sse.Read(body, &sse.ReadConfig{MaxEventSize: maxStreamEvent}) {
		if err != nil {
			if moving.Load() {
				return errMovingToPreferred
			}
			if stalled.Load() {
				return stalledErr()
			}
			return &apiError{code: CodeUnavailable, msg: "stream read: " + err.Error()}
		}
		alive()
		s.handle(ev)
	}
	if stalled.Load() {
		return stalledErr()
	}
	return &apiError{code: CodeUnavailable, msg: "stream closed by the server"}
}

func (s *streamer) handle(ev sse.Event) {
	if ev.LastEventID != "" && validEventID(ev.LastEventID) {
		s.lastID = ev.LastEventID
	}
	var se wire.StreamEvent
	if err := json.Unmarshal([]byte(ev.Data), &se); err != nil {
		s.c.logs.warn("stream-event", "flagwire: ignoring a malformed stream event", "type", ev.Type, "error", err.Error())
		return
	}
	if se.Type == "" {
		se.Type = ev.Type
	}
	switch se.Type {
	case wire.EventInvalidate, wire.EventReset:
		s.onEvent(se)
	default:
		// Unknown event types are ignored: forward compatibility.
	}
}

// connectFailed notes a failed connect to endpoint i: one that failing
// over could help (unreachable, 5xx, 429) is skipped until a connection
// succeeds, and with several endpoints marked down (WithEndpoint).
func (s *streamer) connectFailed(i int, err error) error {
	if failsOver(err) {
		s.skip |= 1 << i
		if len(s.c.eps) > 1 {
			s.c.markDown(i)
		}
	}
	return err
}

// announcedVersion reads a stream response's X-Flagwire-Config-Version.
// ok is false when it is absent or not a decimal integer.
func announcedVersion(h http.Header) (v int64, ok bool) {
	vs := h.Values(wire.HeaderConfigVersion)
	if len(vs) != 1 {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(vs[0]), 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// onRemoteConnect is remote mode's answer to a stream connection that
// does not resume (see decisionCache.expireOlderThan). With the server's
// version, exactly the decisions computed before it are expired, and
// those without a version as before versions existed: kept at the first
// connection, expired at a reconnect. Without it (an older server), the
// first connection changes nothing (a change made between a decision's
// fetch and that connection is served until the decision's TTL), and a
// reconnect expires every decision fetched before it.
func (c *Client) onRemoteConnect(st streamStart) {
	now := c.cfg.clock.Nanotime()
	switch {
	case st.newEpoch:
		// Versions of the old store say nothing about the new one.
		c.cache.newEpoch(st.version, st.versioned, now)
	case st.versioned:
		c.cache.expireOlderThan(st.version, now, !st.first)
	case !st.first:
		c.cache.expireAll(now)
	}
}

// validEventID reports whether an event id can be sent back as the
// Last-Event-ID header: net/http refuses header values with control
// characters, and an id it refuses would make every reconnect fail.
func validEventID(id string) bool {
	for i := 0; i < len(id); i++ {
		if b := id[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

// commentWatcher passes an event stream through and calls onComment for
// each complete comment line (": keep-alive"), which go-sse's Read parses
// but never yields. A line ends at "\n", "\r" or "\r\n".
type commentWatcher struct {
	r           io.Reader
	onComment   func()
	atLineStart bool
	inComment   bool
}

func (w *commentWatcher) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	for _, b := range p[:n] {
		switch {
		case b == '\n' || b == '\r':
			if w.inComment {
				w.onComment()
			}
			w.inComment, w.atLineStart = false, true
		case w.atLineStart:
			w.inComment, w.atLineStart = b == ':', false
		}
	}
	return n, err
}
