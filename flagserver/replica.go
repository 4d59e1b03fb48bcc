package flagserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

// Servers on a shared store (Store.Shared) are replicas: any of them
// takes writes (the store checks each against the environment's version
// inside its transaction), and each follows the others' writes through the
// store's changes feed, woken by Store.Notify and, should a notification
// be lost, every Options.PollInterval. Before it answers a read, a replica
// asks the store for its head version and catches up when it is behind, so
// a write acknowledged by one replica is seen by reads on every replica
// from then on. Concurrent reads share one head query: each waits for a
// query that started after it arrived. Options.ReadStaleness trades that
// guarantee for reads without a query: for that long after a check, reads
// are answered from what the replica has. When the store cannot be reached,
// reads are answered from the last version the replica has (and /readyz
// says so); writes fail with 503 and Retry-After.

// replicaSync is a server's position in the store's changes feed.
type replicaSync struct {
	mu      sync.Mutex // serializes catch-ups
	applied int64      // every change at or below applied is applied (guarded by vmu)
	vmu     sync.Mutex

	hmu     sync.Mutex
	running *headCheck
	queued  *headCheck

	// lastErr is the last store failure of a head check or catch-up ("" once it answers again).
	emu     sync.Mutex
	lastErr string

	// confirmed is when (Options.Now, Unix nanoseconds) the latest read
	// that checked the store's version began: the replica had every
	// change made before then (Options.ReadStaleness).
	confirmed atomic.Int64
}

// confirm records that the replica had every change made before at.
func (rs *replicaSync) confirm(at time.Time) {
	n := at.UnixNano()
	for {
		cur := rs.confirmed.Load()
		if n <= cur || rs.confirmed.CompareAndSwap(cur, n) {
			return
		}
	}
}

type headCheck struct {
	done chan struct{}
	head int64
	err  error
}

func (rs *replicaSync) advance(v int64) {
	rs.vmu.Lock()
	rs.applied = max(rs.applied, v)
	rs.vmu.Unlock()
}

func (rs *replicaSync) position() int64 {
	rs.vmu.Lock()
	defer rs.vmu.Unlock()
	return rs.applied
}

// setErr records the store's state; it reports whether it changed from
// answering to failing or back.
func (rs *replicaSync) setErr(err error) (changed bool) {
	rs.emu.Lock()
	defer rs.emu.Unlock()
	was := rs.lastErr != ""
	if err == nil {
		rs.lastErr = ""
	} else {
		rs.lastErr = err.Error()
	}
	return was != (err != nil)
}

func (rs *replicaSync) storeErr() string {
	rs.emu.Lock()
	defer rs.emu.Unlock()
	return rs.lastErr
}

// head returns the store's head version from a query that started after
// the call (shared with concurrent callers).
func (s *Server) head(ctx context.Context) (int64, error) {
	rs := &s.sync
	rs.hmu.Lock()
	var c *headCheck
	if rs.running == nil {
		c = &headCheck{done: make(chan struct{})}
		rs.running = c
		go s.runHeadChecks(c)
	} else {
		if rs.queued == nil {
			rs.queued = &headCheck{done: make(chan struct{})}
		}
		c = rs.queued
	}
	rs.hmu.Unlock()
	select {
	case <-c.done:
		return c.head, c.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// runHeadChecks runs c, then whatever was queued meanwhile, and ends.
func (s *Server) runHeadChecks(c *headCheck) {
	rs := &s.sync
	for c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.StoreTimeout)
		c.head, c.err = s.store.Head(ctx)
		cancel()
		close(c.done)
		rs.hmu.Lock()
		c, rs.queued = rs.queued, nil
		rs.running = c
		rs.hmu.Unlock()
	}
}

// fresh brings a replica up to the store's version before a read. On a
// store nobody else writes to it does nothing. When the store cannot be
// reached the read is answered from what the replica has.
func (s *Server) fresh(ctx context.Context) {
	if !s.store.Shared() {
		return
	}
	// With ReadStaleness: the head query starts after now (head), so the
	// replica has every change made before now once it caught up to the
	// head.
	var now time.Time
	if d := s.opts.ReadStaleness; d > 0 {
		now = s.opts.Now()
		if c := s.sync.confirmed.Load(); c != 0 && now.UnixNano()-c < int64(d) {
			return
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.StoreTimeout)
	defer cancel()
	h, err := s.head(ctx)
	if err == nil && h > s.sync.position() {
		err = s.catchUp(ctx)
	}
	if err == nil && !now.IsZero() {
		s.sync.confirm(now)
	}
	if err != nil && ctx.Err() == nil {
		if s.sync.setErr(err) {
			s.log.Warn("flagserver: store unreachable; serving the last version this replica has", "version", s.sync.position(), "error", err.Error())
		}
		return
	}
	if err == nil && s.sync.setErr(nil) {
		s.log.Info("flagserver: store reachable again", "version", s.sync.position())
	}
}

// catchUp applies the store's changes after this replica's position:
// each changed environment is reloaded, and the changes' events are
// published in version order. When the feed no longer holds them,
// everything is reloaded and streams get a reset.
func (s *Server) catchUp(ctx context.Context) error {
	rs := &s.sync
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for {
		from := rs.position()
		changes, err := s.store.Changes(ctx, from, 1000)
		if errors.Is(err, ErrChangesGone) {
			return s.reloadAll(ctx)
		}
		if err != nil {
			return err
		}
		if len(changes) == 0 {
			h, err := s.store.Head(ctx)
			if err != nil || h <= from {
				return err
			}
			// The head moved: a write committed since the query above
			// (its change is in the feed now), or a seed, which has none
			// (a replica that started with a new environment).
			if changes, err = s.store.Changes(ctx, from, 1000); err != nil && !errors.Is(err, ErrChangesGone) {
				return err
			}
			if len(changes) == 0 {
				return s.reloadAll(ctx)
			}
		}
		reloaded := map[string]*envState{}
		for _, c := range changes {
			if _, ok := reloaded[c.Environment]; ok {
				continue
			}
			cur := s.env(c.Environment)
			if cur != nil && cur.version() >= changes[len(changes)-1].Version {
				reloaded[c.Environment] = cur
				continue
			}
			se, ok, err := s.store.LoadEnv(ctx, c.Environment)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			es, err := envFromStored(&se, cur)
			if err != nil {
				return err
			}
			reloaded[c.Environment] = es
		}
		// Swap in the states, then publish: a stream that subscribed in
		// between announces a version whose events it then skips.
		s.envMu.Lock()
		for name, es := range reloaded {
			if cur := s.envs[name]; cur == nil || cur.version() < es.version() {
				s.envs[name] = es
			}
		}
		s.envMu.Unlock()
		for _, c := range changes {
			var ev wire.StreamEvent
			if err := json.Unmarshal(c.Event, &ev); err != nil {
				s.log.Error("flagserver: undecodable change in the store's feed", "version", c.Version, "error", err.Error())
				continue
			}
			s.hub.publish(c.Environment, ev)
		}
		rs.advance(changes[len(changes)-1].Version)
		if len(changes) < 1000 {
			return nil
		}
	}
}

// follower catches up whenever the store notifies a change, and every
// PollInterval in case a notification was lost, until Close.
func (s *Server) follower() {
	defer s.follow.Done()
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	notify := s.store.Notify()
	for {
		poll := false
		select {
		case <-s.done:
			return
		case <-notify:
		case <-t.C:
			poll = true
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.StoreTimeout)
		err := s.catchUp(ctx)
		if err == nil {
			_, err = s.store.Head(ctx) // also notices a store that came back
		}
		if err == nil && poll {
			err = s.reloadSigningKeys(ctx) // a key another replica rotated in
		}
		cancel()
		if s.sync.setErr(err) {
			if err != nil {
				s.log.Warn("flagserver: store unreachable; serving the last version this replica has", "version", s.sync.position(), "error", err.Error())
			} else {
				s.log.Info("flagserver: store reachable again", "version", s.sync.position())
			}
		}
	}
}

// handleHealthz serves GET /healthz: the process answers (200), with the
// store's state for people reading it.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	body := map[string]any{"status": "ok"}
	if e := s.sync.storeErr(); e != "" {
		body["store"] = "unavailable: " + e
	} else {
		body["store"] = "ok"
	}
	writeJSON(w, http.StatusOK, body)
}

// handleReadyz serves GET /readyz: 200 when the store answers now, else
// 503 naming the failure (a load balancer then sends requests elsewhere).
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), min(s.opts.StoreTimeout, 2*time.Second))
	defer cancel()
	select {
	case <-s.done:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "closing"})
		return
	default:
	}
	if err := s.store.Ping(ctx); err != nil {
		s.sync.setErr(err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "store": "unavailable: " + err.Error(), "version": s.sync.position()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "store": "ok", "version": s.sync.position()})
}
