package flagserver

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/flagwire/flagwire/internal/wire"
)

// The stream (GET /v1/stream?environment=ENV) is Server-Sent Events. The
// response carries X-Flagwire-Config-Version: V (wire.HeaderConfigVersion),
// the environment's config version when the stream was opened: every
// change after V reaches this stream, as an event or a reset. V is read
// after the subscription is registered, so no change falls between the
// two; a stream opened without Last-Event-ID never sends an event at or
// below V (V already holds those changes). A client that opens a stream without Last-Event-ID compares V with
// the "configVersion" of the POST /v1/evaluate answers it caches: an
// answer computed at a version below V may predate a change that no event
// will announce; one at V or later is kept. The greeting comment repeats V
// for people reading the stream by hand:
//
//	retry: 1000                       (once, first)
//	: flagwire stream environment=prod version=41
//
//	id: 42
//	event: invalidate
//	data: {"type":"invalidate","flagKey":"checkout-new-flow","environment":"prod","version":42}
//
//	: keep-alive                      (every KeepAlive)
//
// A flag's invalidation lists in "dependents" every flag that depends on it
// through prerequisites, directly or transitively (in the config before or
// after the change), sorted; a client drops their decisions too:
//
//	data: {"type":"invalidate","flagKey":"a","environment":"prod","version":43,"dependents":["b","c"]}
//
// Event ids are the environment's version after the change, in decimal:
// the store's version of the write, one counter for every environment of
// the store (so an environment's versions have gaps, and on a shared store
// an id means the same change on every replica). Events arrive in version
// order, one per change. A client reconnecting with Last-Event-ID: N gets
// every event after N from the replay buffer. When N is older than the
// version this server started from (or last reloaded the environment at),
// as on a replica that started after the client's last event, the events
// before the buffer come from the store's changes feed, when the feed
// still holds them and they are no more than the buffer's size. Otherwise,
// when N is older than the buffer (or newer than the server's version,
// e.g. after a restart without a data directory), it gets one "reset"
// event {"type":"reset","version":V} with id V instead, and should refetch
// everything.
//
// Each subscriber keeps only a cursor into its environment's replay buffer,
// so a slow client costs no memory: if it falls behind by more than the
// buffer, it is sent a reset.

// streamRetry is the reconnection delay hint sent to clients.
const streamRetry = time.Second

type bufferedEvent struct {
	version int64
	typ     string
	data    []byte
}

// envEvents is the replay buffer of one environment. It holds the
// environment's events with versions in (base, current], in order.
// Versions are the store's (one counter for every environment), so they
// have gaps.
type envEvents struct {
	events  []bufferedEvent
	base    int64
	current int64
	// evicted is set once the buffer dropped events: base is then the
	// last event a slow client missed, not where the server started
	// (init) or reloaded (resetTo), and a client behind it gets a reset.
	evicted bool
}

// subscriber is one connected stream: SSE (stream.go) or WebSocket
// (ws.go), both fed by the one hub.
type subscriber struct {
	env    string
	notify chan struct{} // capacity 1: "there may be something new"
	cursor int64         // last version sent
	// floor is the version a stream without Last-Event-ID announced:
	// events at or below it are already part of that version and are
	// not sent (see skipThrough).
	floor int64
	reset bool // send a reset next
	// early are the events before the buffer that a resuming stream is
	// sent first, from the store's changes feed (Server.backfill); only
	// the stream's own goroutine reads them, after subscribe.
	early []bufferedEvent

	// WebSocket subscribers (ws.go) only: queued counts the messages
	// published since the subscriber connected that its connection has not
	// taken yet (its send queue: a window on the replay buffer, so it costs
	// no memory of its own). When it exceeds limit, publish drops the
	// subscriber and closes slow. The replay of a resumption (replay, the
	// messages buffered before it connected) is bounded by the buffer, not
	// counted: they are taken first. limit 0 (SSE) means unbounded: a
	// stream that falls behind the buffer gets a reset.
	limit  int
	queued int
	replay int
	slow   chan struct{}
}

// hub fans events out to subscribers.
type hub struct {
	size int

	mu     sync.Mutex
	envs   map[string]*envEvents
	subs   map[*subscriber]struct{}
	closed bool
}

func newHub(size int) *hub {
	return &hub{size: size, envs: map[string]*envEvents{}, subs: map[*subscriber]struct{}{}}
}

// init starts env's buffer at version.
func (h *hub) init(env string, version int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.envs[env] = &envEvents{base: version, current: version}
}

// publish appends ev and wakes env's subscribers. An event at or below
// the environment's current version is already there (a replica sees its
// own writes again in the store's feed) and is dropped.
func (h *hub) publish(env string, ev wire.StreamEvent) {
	data, _ := json.Marshal(ev)
	h.mu.Lock()
	defer h.mu.Unlock()
	ee := h.envs[env]
	if ee == nil {
		ee = &envEvents{base: ev.Version - 1}
		h.envs[env] = ee
	}
	if ev.Version <= ee.current {
		return
	}
	ee.events = append(ee.events, bufferedEvent{version: ev.Version, typ: ev.Type, data: data})
	ee.current = ev.Version
	if over := len(ee.events) - h.size; over > 0 {
		ee.base = ee.events[over-1].version
		ee.events = append(ee.events[:0:0], ee.events[over:]...)
		ee.evicted = true
	}
	for sub := range h.subs {
		if sub.env != env {
			continue
		}
		if sub.limit > 0 {
			if sub.queued++; sub.queued > sub.limit {
				delete(h.subs, sub)
				close(sub.slow)
				continue
			}
		}
		select {
		case sub.notify <- struct{}{}:
		default:
		}
	}
}

// startedAt returns the version env's buffer started from when the
// server started or reloaded env, and whether the buffer has kept every
// event since (no eviction): a resumption from before it can be
// backfilled from the store.
func (h *hub) startedAt(env string) (base int64, whole bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ee := h.envs[env]
	if ee == nil {
		return 0, false
	}
	return ee.base, !ee.evicted
}

// subscribe registers a stream. lastID is the Last-Event-ID header ("" for
// none); limit bounds a WebSocket subscriber's send queue (0: none);
// early are events before the buffer to send first (see Server.backfill).
func (h *hub) subscribe(env, lastID string, limit int, early []bufferedEvent) *subscriber {
	sub := &subscriber{env: env, notify: make(chan struct{}, 1), limit: limit, early: early}
	if limit > 0 {
		sub.slow = make(chan struct{})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ee := h.envs[env]
	if ee == nil {
		ee = &envEvents{}
		h.envs[env] = ee
	}
	sub.cursor = ee.current
	if lastID != "" {
		n, err := strconv.ParseInt(lastID, 10, 64)
		switch {
		case err != nil || n > ee.current || n < ee.base:
			sub.reset = true
		default:
			sub.cursor = n
		}
		if sub.reset || sub.cursor < ee.current || len(early) > 0 {
			sub.notify <- struct{}{}
		}
	}
	sub.replay = backlog(ee, sub) + len(early)
	if !h.closed {
		h.subs[sub] = struct{}{}
	}
	return sub
}

// skipThrough makes sub skip events at or below version: the one it
// announced. A write swaps in its state before publishing its event, so
// a stream that subscribed in between would otherwise send an event its
// announced version already holds.
func (h *hub) skipThrough(sub *subscriber, version int64) {
	h.mu.Lock()
	sub.floor = version
	sub.replay, sub.queued = backlog(h.envs[sub.env], sub), 0
	h.mu.Unlock()
}

// backlog is the number of messages sub is yet to be sent from ee: a
// reset, or the events after its cursor and floor.
func backlog(ee *envEvents, sub *subscriber) int {
	if sub.reset || sub.cursor < ee.base || sub.cursor > ee.current {
		return 1
	}
	i, _ := slices.BinarySearchFunc(ee.events, max(sub.cursor, sub.floor)+1, func(e bufferedEvent, v int64) int { return cmp.Compare(e.version, v) })
	return len(ee.events) - i
}

// sent records that sub's connection took one message: of its replay
// first, then of its queue.
func (h *hub) sent(sub *subscriber) {
	h.mu.Lock()
	if sub.replay > 0 {
		sub.replay--
	} else {
		sub.queued = max(sub.queued-1, 0)
	}
	h.mu.Unlock()
}

// resetTo forgets env's buffered events: the environment was reloaded
// whole at version, and every subscriber behind it gets a reset.
func (h *hub) resetTo(env string, version int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ee := h.envs[env]
	if ee == nil {
		h.envs[env] = &envEvents{base: version, current: version}
		return
	}
	if version <= ee.current {
		return
	}
	ee.events, ee.base, ee.current, ee.evicted = nil, version, version, false
	for sub := range h.subs {
		if sub.env == env {
			if sub.limit > 0 {
				sub.replay, sub.queued = 0, 1 // a reset replaces what it had not taken
			}
			select {
			case sub.notify <- struct{}{}:
			default:
			}
		}
	}
}

func (h *hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.mu.Unlock()
}

// next returns what sub has not been sent yet: events in order, or a reset
// to version resetTo when sub fell behind the buffer.
func (h *hub) next(sub *subscriber) (events []bufferedEvent, reset bool, resetTo int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ee := h.envs[sub.env]
	if sub.reset || sub.cursor < ee.base || sub.cursor > ee.current {
		sub.reset = false
		sub.cursor = ee.current
		return nil, true, ee.current
	}
	from := max(sub.cursor, sub.floor)
	sub.cursor = ee.current
	if from >= ee.current {
		return nil, false, 0
	}
	i, _ := slices.BinarySearchFunc(ee.events, from+1, func(e bufferedEvent, v int64) int { return cmp.Compare(e.version, v) })
	return ee.events[i:], false, 0
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	clear(h.subs)
	h.mu.Unlock()
}

// subscribe registers a subscriber to env's events for a stream (SSE or
// WebSocket) and returns it with the version it starts after. lastID is
// the event id to resume after ("" for none); es is env's state; limit
// bounds a WebSocket's send queue (0 for SSE).
func (s *Server) subscribe(ctx context.Context, env string, es *envState, lastID string, limit int) (*subscriber, int64) {
	var early []bufferedEvent
	if n, err := strconv.ParseInt(lastID, 10, 64); err == nil {
		if base, whole := s.hub.startedAt(env); whole && n >= 0 && n < base {
			if evs, ok := s.backfill(ctx, env, n, base); ok {
				early, lastID = evs, strconv.FormatInt(base, 10)
			}
		}
	}
	sub := s.hub.subscribe(env, lastID, limit, early)
	// Read after subscribing: a write publishes its event after swapping
	// in its state, so every version above this one reaches sub.
	version := es.version()
	if cur := s.env(env); cur != nil {
		version = cur.version()
	}
	if lastID == "" {
		s.hub.skipThrough(sub, version)
	}
	return sub, version
}

// backfill returns env's events in (after, through] from the store's
// changes feed, encoded as publish encodes them, for a stream resuming
// from before this server's buffer began. ok is false, and the stream
// gets a reset instead, when the feed no longer holds them, they are more
// than the buffer holds, or the store fails.
func (s *Server) backfill(ctx context.Context, env string, after, through int64) (events []bufferedEvent, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.StoreTimeout)
	defer cancel()
	for from := after; from < through; {
		changes, err := s.store.Changes(ctx, from, 1000)
		if err != nil || len(changes) == 0 {
			return nil, false // gone, failing, or shorter than through: reset
		}
		for _, c := range changes {
			if c.Version > through {
				return events, true
			}
			from = c.Version
			if c.Environment != env {
				continue
			}
			var ev wire.StreamEvent
			if err := json.Unmarshal(c.Event, &ev); err != nil {
				return nil, false
			}
			data, _ := json.Marshal(ev)
			if events = append(events, bufferedEvent{version: c.Version, typ: ev.Type, data: data}); len(events) > s.hub.size {
				return nil, false
			}
		}
	}
	return events, true
}

// pending returns what sub has not been sent yet: its events in order, or
// one reset event when it fell behind the replay buffer. A resuming
// stream's backfilled events come first.
func (s *Server) pending(sub *subscriber) []bufferedEvent {
	events, reset, resetTo := s.hub.next(sub)
	if reset {
		data, _ := json.Marshal(wire.StreamEvent{Type: wire.EventReset, Environment: sub.env, Version: resetTo})
		events = []bufferedEvent{{version: resetTo, typ: wire.EventReset, data: data}}
	}
	if early := sub.early; len(early) > 0 {
		sub.early = nil
		events = append(early[:len(early):len(early)], events...)
	}
	return events
}

// handleStream serves GET /v1/stream?environment=ENV (see the comment at
// the top of this file).
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	env, es, ok := s.readableQueryEnv(w, r)
	if !ok {
		return
	}
	sess, err := sse.Upgrade(w, r)
	if err != nil {
		writeError(w, errorf(http.StatusInternalServerError, wire.CodeInternal, "streaming is not supported by this connection"))
		return
	}
	select {
	case <-s.done:
		writeError(w, ErrClosed)
		return
	default:
	}
	sub, version := s.subscribe(r.Context(), env, es, r.Header.Get("Last-Event-ID"), 0)
	defer s.hub.unsubscribe(sub)

	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set(wire.HeaderConfigVersion, strconv.FormatInt(version, 10))
	h.Set(wire.HeaderConfigEpoch, s.epoch) // event ids resume within one epoch only
	// A stream outlives the http.Server's ReadTimeout and WriteTimeout:
	// clear the read deadline (its expiry would cancel the request) and
	// give every write its own deadline instead, so a client that stops
	// reading is dropped after StreamWriteTimeout.
	ctl := http.NewResponseController(w)
	ctl.SetReadDeadline(time.Time{}) // ErrNotSupported (a test recorder): nothing to clear
	send := func(m *sse.Message) bool {
		ctl.SetWriteDeadline(time.Now().Add(s.opts.StreamWriteTimeout))
		return sess.Send(m) == nil && sess.Flush() == nil
	}
	hello := &sse.Message{Retry: streamRetry}
	hello.AppendComment("flagwire stream environment=" + env + " version=" + strconv.FormatInt(version, 10))
	if !send(hello) {
		return
	}
	keepAlive := time.NewTicker(s.opts.KeepAlive)
	defer keepAlive.Stop()
	ping := &sse.Message{}
	ping.AppendComment("keep-alive")
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-keepAlive.C:
			if !send(ping) {
				return
			}
		case <-sub.notify:
			for _, ev := range s.pending(sub) {
				m := &sse.Message{ID: sse.ID(strconv.FormatInt(ev.version, 10)), Type: sse.Type(ev.typ)}
				m.AppendData(string(ev.data))
				if !send(m) {
					return
				}
			}
		}
	}
}
