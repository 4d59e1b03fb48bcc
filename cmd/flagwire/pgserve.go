package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/pgstore"
)

// storeEnv names the environment variable that gives --store's default.
const storeEnv = "FLAGWIRE_STORE"

// Backoff between attempts to reach the database at start.
const (
	storeRetryFirst = 200 * time.Millisecond
	storeRetryMax   = 5 * time.Second
)

func isPostgresDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// prefixOf returns the start of a --store value for an error message:
// up to "://" or 10 characters, never a password.
func prefixOf(s string) string {
	if i := strings.Index(s, "://"); i >= 0 && i < 20 {
		return s[:i+3]
	}
	return s[:min(len(s), 10)]
}

// openPostgres opens the PostgreSQL store, retrying with a backoff while
// the database cannot be reached (start says why to /healthz and
// /readyz). Other failures (a wrong password, an invalid DSN) end it.
func openPostgres(ctx context.Context, dsn string, log *slog.Logger, start *startingHandler) (*pgstore.Store, error) {
	wait := storeRetryFirst
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		st, err := pgstore.Open(actx, dsn, pgstore.Options{})
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info("flagwire: the PostgreSQL store is reachable", "attempts", attempt)
			}
			return st, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, flagserver.ErrStoreUnavailable) {
			return nil, err
		}
		start.setErr(err)
		log.Warn("flagwire: cannot reach the PostgreSQL store; retrying", "attempt", attempt, "retryIn", wait.String(), "error", err.Error())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, storeRetryMax)
	}
}

// switchHandler serves with the handler set last.
type switchHandler struct{ h atomic.Pointer[http.Handler] }

func (s *switchHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// startingHandler answers while the store is not reached yet: /healthz
// 200 and /readyz 503, both naming the store's last error, and 503 with
// Retry-After for everything else.
type startingHandler struct {
	mu  sync.Mutex
	err string
}

func (h *startingHandler) setErr(err error) {
	h.mu.Lock()
	h.err = err.Error()
	h.mu.Unlock()
}

func (h *startingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	store := "connecting"
	if h.err != "" {
		store = "unavailable: " + h.err
	}
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Retry-After", "1")
	body := map[string]string{"status": "starting", "store": store}
	switch r.URL.Path {
	case "/healthz":
		w.WriteHeader(http.StatusOK)
	case "/readyz":
		w.WriteHeader(http.StatusServiceUnavailable)
	default:
		w.WriteHeader(http.StatusServiceUnavailable)
		writeJSONTo(w, map[string]any{"error": map[string]string{"code": "unavailable", "message": "the server is starting: its store is not reachable yet (" + store + ")"}})
		return
	}
	writeJSONTo(w, body)
}

func writeJSONTo(w http.ResponseWriter, v any) {
	json.NewEncoder(w).Encode(v)
}
