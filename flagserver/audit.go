package flagserver

import (
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/flagwire/flagwire/internal/wire"
)

// Audit actions.
const (
	actionCreate = "create"
	actionUpdate = "update"
	actionDelete = "delete"
)

// auditLog is the append-only change log. Entries are appended by writes
// (under the server's write lock) and read concurrently.
type auditLog struct {
	mu      sync.RWMutex
	entries []wire.AuditEntry
	nextID  int64
}

func (a *auditLog) restore(entries []wire.AuditEntry) {
	a.entries = entries
	for _, e := range entries {
		a.nextID = max(a.nextID, e.ID)
	}
}

// next returns the id the next entry gets.
func (a *auditLog) next() int64 {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.nextID + 1
}

func (a *auditLog) append(e wire.AuditEntry) {
	a.mu.Lock()
	a.entries = append(a.entries, e)
	a.nextID = max(a.nextID, e.ID)
	a.mu.Unlock()
}

// Audit query limits.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// query returns the newest limit entries matching entity (empty: all) and
// allowed environments, oldest first.
func (a *auditLog) query(entity, env string, allow func(env string) bool, limit int) []wire.AuditEntry {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := []wire.AuditEntry{}
	for i := len(a.entries) - 1; i >= 0 && len(out) < limit; i-- {
		e := &a.entries[i]
		if entity != "" && e.Entity != entity {
			continue
		}
		if env != "" && e.Environment != env {
			continue
		}
		if !allow(e.Environment) {
			continue
		}
		out = append(out, *e)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// handleAudit serves GET /v1/audit?entity=flag:KEY[&environment=ENV][&limit=N].
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	rc := reqCtx(r)
	q := r.URL.Query()
	entity := q.Get("entity")
	if entity != "" {
		kind, key, ok := strings.Cut(entity, ":")
		if !ok || key == "" || (kind != "flag" && kind != "segment") {
			writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest, "entity must be flag:KEY or segment:KEY"))
			return
		}
	}
	env := q.Get("environment")
	if err := authorize(rc.principal, wire.ScopeRead, env); err != nil {
		writeError(w, err)
		return
	}
	limit := defaultAuditLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest, "limit must be a positive integer"))
			return
		}
		limit = min(n, maxAuditLimit)
	}
	entries := s.audit.query(entity, env, rc.principal.allowsEnv, limit)
	writeJSON(w, http.StatusOK, wire.AuditResponse{Entries: entries})
}
