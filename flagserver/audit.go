package flagserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

// Audit actions.
const (
	actionCreate = "create"
	actionUpdate = "update"
	actionDelete = "delete"
)

// Audit limits: a page holds at most maxAuditLimit entries and, past its
// first entry, maxAuditPageBytes of entries; an entity document larger
// than auditInlineBytes is recorded as its digest (auditDigest) instead of
// whole, so a large segment's history stays small.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
	maxAuditPageBytes = 1 << 20
	auditInlineBytes  = 64 << 10
)

// auditDigest stands for an entity document too large to keep in the
// audit log: its SHA-256 (hex) and size in bytes.
type auditDigest struct {
	Omitted string `json:"omitted"`
	SHA256  string `json:"sha256"`
	Bytes   int    `json:"bytes"`
}

// auditDoc returns v's JSON for an audit entry: whole up to
// auditInlineBytes, else an auditDigest; nil for nil.
func auditDoc(v any) json.RawMessage {
	b := marshalOrNil(v)
	if len(b) <= auditInlineBytes {
		return b
	}
	sum := sha256.Sum256(b)
	d, _ := json.Marshal(auditDigest{Omitted: fmt.Sprintf("larger than %d bytes: digest only", auditInlineBytes), SHA256: hex.EncodeToString(sum[:]), Bytes: len(b)})
	return d
}

// handleAudit serves GET /v1/audit?entity=flag:KEY[&environment=ENV][&actor=NAME]
// [&since=RFC3339][&until=RFC3339][&limit=N][&cursor=C | &before=ID]: the
// newest entries matching the filters (with ids below the cursor),
// oldest first. When more may follow, nextCursor (and nextBefore, the
// same position as an id) is the cursor of the next (older) page. actor
// matches an entry's subject, requester or approver; since is inclusive,
// until exclusive.
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
	if err := authorize(rc.principal, ScopeAuditRead, env); err != nil {
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
	var before int64
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest, "before must be a positive integer (an audit id)"))
			return
		}
		before = n
	}
	_, cursor, err := pageParams("", q.Get("cursor"), 0, 0)
	if err != nil {
		writeError(w, err)
		return
	}
	if cursor > 0 {
		if before > 0 && before != cursor {
			writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest, "cursor and before name different pages: send one"))
			return
		}
		before = cursor
	}
	aq := AuditQuery{Before: before, Entity: entity, Environment: env, Limit: limit, MaxBytes: maxAuditPageBytes, Actor: q.Get("actor")}
	if len(aq.Actor) > 256 {
		writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest, "actor is longer than 256 bytes").with(map[string]any{"field": "actor"}))
		return
	}
	for _, p := range []struct {
		name string
		into *time.Time
	}{{"since", &aq.Since}, {"until", &aq.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest, "%s must be an RFC 3339 time such as 2026-06-25T12:00:00Z", p.name).
					with(map[string]any{"field": p.name}))
				return
			}
			*p.into = t
		}
	}
	if envs := rc.principal.envs; len(envs) > 0 {
		aq.Environments = envs
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.StoreTimeout)
	defer cancel()
	recs, err := s.store.Audit(ctx, aq)
	if err != nil {
		s.log.Error("flagserver: audit query failed", "error", err.Error())
		writeError(w, fmt.Errorf("%w: %v", ErrStoreUnavailable, err))
		return
	}
	resp := wire.AuditResponse{Entries: make([]wire.AuditEntry, len(recs))}
	for i, rec := range recs {
		e := &resp.Entries[len(recs)-1-i]
		if err := json.Unmarshal(rec.Entry, e); err != nil {
			s.log.Error("flagserver: undecodable audit entry", "id", rec.ID, "error", err.Error())
			writeError(w, errorf(http.StatusInternalServerError, wire.CodeInternal, "internal error"))
			return
		}
		e.ID = rec.ID
	}
	if len(recs) > 0 && s.auditMore(ctx, aq, recs[len(recs)-1].ID) {
		resp.NextBefore = recs[len(recs)-1].ID
		resp.NextCursor = strconv.FormatInt(resp.NextBefore, 10)
	}
	writeJSON(w, http.StatusOK, resp)
}

// auditMore reports whether an entry older than id matches aq.
func (s *Server) auditMore(ctx context.Context, aq AuditQuery, id int64) bool {
	aq.Before, aq.Limit, aq.MaxBytes = id, 1, 0
	more, err := s.store.Audit(ctx, aq)
	return err == nil && len(more) > 0
}
