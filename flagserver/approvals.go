package flagserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// Approvals: the two-person rule for protected environments.
//
// An environment is protected when Options.ProtectedEnvironments names it
// or its config sets requireApproval. A write to it (create, PATCH or
// DELETE of a flag or segment) is checked as if it were applied (If-Match,
// compile, size), then stored as a pending change request and answered
// 202 Accepted with the request and Location: /v1/changes/{id}; nothing
// is applied and no stream event is sent. The change request holds the
// entity after the change and the ETag it was computed from (baseETag:
// the If-Match; "" for a create).
//
// POST /v1/changes/{id}/approve by a principal holding ScopeFlagsApprove whose
// subject is not the requester's applies it: in the store's transaction
// of the write, the change request goes from pending to applied and the
// entity is written only if its ETag is still baseETag (for a create:
// only if it still does not exist). Otherwise the answer is 409
// change_stale, the change request becomes stale and the change must be
// proposed again. Approving or rejecting a change request that is no
// longer pending is 409 change_not_pending; an unknown id is 404
// change_not_found; nothing is applied then.
//
// Kill switches stay fast: a PATCH that only turns off a flag whose
// metadata sets killSwitch is applied at once, audited as an emergency.
//
// Programmatic writes (Server.PutFlag and its siblings) are the server
// operator's own and are not subject to approval.

// Audit actions of change requests (applied ones are audited with the
// write's own action, create, update or delete, and the approval).
const (
	actionPropose = "propose"
	actionReject  = "reject"
	actionStale   = "stale"
)

// Bounds of change request listings: like the audit log's.
const (
	defaultChangeLimit = 100
	maxChangeLimit     = 1000
)

// protected reports whether writes to cfg's environment need approval.
func (s *Server) protected(cfg *evaluate.Config) bool {
	return cfg.RequireApproval || slices.Contains(s.opts.ProtectedEnvironments, cfg.Environment)
}

// governance is what a write's audit entry records of the two-person
// rule: an emergency (kill switch) or the change request an approval
// applies.
type governance struct {
	emergency bool
	// cr is the change request an approval applies; approver and reason
	// are the approval's. record is cr's JSON once applied (set by
	// decision).
	cr       *wire.ChangeRequest
	approver string
	reason   string
	record   []byte
}

// annotate adds the governance fields to an audit entry (nil: none).
func (g *governance) annotate(e *wire.AuditEntry) {
	if g == nil {
		return
	}
	e.Emergency = g.emergency
	if g.cr != nil {
		e.ChangeRequest = g.cr.ID
		e.RequestedBy = g.cr.RequestedBy
		e.ApprovedBy = g.approver
		e.ApprovalReason = g.reason
	}
}

// decision returns the change request's transition to applied at
// version, for the write's transaction (nil when g applies none).
func (g *governance) decision(version int64, now time.Time) (*ChangeDecision, error) {
	if g == nil || g.cr == nil {
		return nil, nil
	}
	cr := *g.cr
	at := now.UTC()
	cr.Status, cr.DecidedBy, cr.DecisionReason, cr.DecidedAt, cr.AppliedVersion = wire.ChangeApplied, g.approver, g.reason, &at, version
	b, err := json.Marshal(cr)
	if err != nil {
		return nil, err
	}
	g.record = b
	return &ChangeDecision{ID: cr.ID, Status: wire.ChangeApplied, Record: b}, nil
}

// killSwitchOff reports whether m only turns off a flag whose metadata
// marks it a kill switch.
func killSwitchOff(m mutation) bool {
	if m.kind != "flag" || m.action != actionUpdate {
		return false
	}
	before, _ := m.before.(*evaluate.Flag)
	after, _ := m.after.(*evaluate.Flag)
	if before == nil || after == nil || !before.Metadata.KillSwitch || after.State != evaluate.StateOff {
		return false
	}
	// The fields the server sets on every write (flagKind.prepare) aside,
	// only the state may differ.
	b := *before
	b.State, b.Version, b.Environment = evaluate.StateOff, after.Version, after.Environment
	return reflect.DeepEqual(&b, after)
}

// newChangeID returns "c-" and 16 random base32 characters (lower case).
func newChangeID() string {
	var b [10]byte
	rand.Read(b[:])
	return "c-" + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// propose is doWrite's hook for protected environments. For an
// environment that is not protected it returns fn and false: the write
// goes on. For a kill switch turned off it returns fn checked again at
// apply time, and marks meta as an emergency. Otherwise it stores a change
// request (or replays idem's) and answers; done is true.
func (s *Server) propose(w http.ResponseWriter, r *http.Request, meta *writeMeta, idem *idemReq, env string,
	fn func(next *evaluate.Config) (mutation, error)) (_ func(next *evaluate.Config) (mutation, error), done bool) {
	// Protection is fixed at start (options and seeded configs): no need
	// to ask a shared store first when the environment is not protected.
	if cur := s.env(env); cur == nil || !s.protected(cur.cfg) {
		return fn, false
	}
	s.fresh(r.Context()) // the dry run below checks If-Match: see other replicas' writes
	cur := s.env(env)
	if meta.reason == "" && s.requiresReason(cur.cfg) {
		writeError(w, fmt.Errorf("%w (environment %q)", ErrChangeReasonRequired, env))
		return nil, true
	}
	// The change as it would be applied now: its precondition, compile
	// and size checks answer at once rather than at approval.
	next := cloneConfig(cur.cfg)
	next.Version = cur.version() + 1
	m, err := fn(next)
	if err == nil {
		var es *envState
		if es, err = nextEnvState(next, cur, m.kind, m.key); err == nil {
			err = s.checkSize(es, cur, m)
		}
	}
	if err != nil {
		var gone *goneError
		if errors.As(err, &gone) {
			ctx, cancel := context.WithTimeout(r.Context(), s.opts.StoreTimeout)
			err = s.resolveGone(ctx, env, gone)
			cancel()
		}
		writeError(w, err)
		return nil, true
	}
	if killSwitchOff(m) {
		meta.gov = &governance{emergency: true}
		return func(next *evaluate.Config) (mutation, error) {
			m, err := fn(next)
			if err == nil && !killSwitchOff(m) {
				return m, errorf(http.StatusConflict, wire.CodeConflict, "flag %q is no longer a kill switch being turned off; read it again", m.key)
			}
			return m, err
		}, false
	}
	now := s.now()
	cr := wire.ChangeRequest{
		ID: newChangeID(), Status: wire.ChangePending, Environment: env,
		Entity: wire.ChangeEntity{Kind: m.kind, Key: m.key}, Action: m.action,
		RequestedBy: meta.subject, ChangeReason: meta.reason, CreatedAt: now.UTC(),
	}
	if m.before != nil {
		cr.Diff.Before = diffDoc(marshalOrNil(m.before))
		_, cr.BaseETag = entityDoc(m.before)
	}
	if m.after != nil {
		cr.Diff.After = diffDoc(marshalOrNil(m.after))
	}
	body, err := json.Marshal(cr)
	if err != nil {
		writeError(w, err)
		return nil, true
	}
	resp := storedResponse{status: http.StatusAccepted, loc: "/v1/changes/" + cr.ID, body: body}
	p := &ChangeProposal{
		Change:         StoredChange{ID: cr.ID, Environment: env, Status: cr.Status, Created: cr.CreatedAt, Record: body},
		Audit:          changeAudit(&cr, actionPropose, meta.subject, meta.reason, meta.requestID, now),
		IdempotencyKey: idemKeyOf(idem),
		Now:            now,
	}
	if idem != nil {
		p.Idempotency = resp.record(idem.fp, now.Add(idempotencyTTL))
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.StoreTimeout)
	defer cancel()
	replay, err := s.store.ProposeChange(ctx, p)
	switch {
	case replay != nil:
		replayIdempotent(w, replay, idem.fp, func() storedResponse { return storedResponse{} })
	case err != nil:
		writeError(w, s.storeFailure(env, err))
	default:
		resp.write(w)
	}
	return nil, true
}

// diffDoc is an entity document as a change request's diff shows it:
// without its version and environment (which the change request names),
// its fields in one (sorted) order, so that before and after differ only
// where the change does.
func diffDoc(b []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return b
	}
	delete(m, "version")
	delete(m, "environment")
	out, err := json.Marshal(m)
	if err != nil {
		return b
	}
	return out
}

func idemKeyOf(idem *idemReq) string {
	if idem == nil {
		return ""
	}
	return idem.key
}

// changeAudit is the audit entry of a change request's proposal,
// rejection or staleness.
func changeAudit(cr *wire.ChangeRequest, action, subject, reason, requestID string, now time.Time) *AuditRecord {
	e := wire.AuditEntry{
		Time: now.UTC(), Subject: subject, Action: action,
		Entity: cr.Entity.Kind + ":" + cr.Entity.Key, Environment: cr.Environment,
		ChangeReason: cr.ChangeReason, RequestID: requestID,
		Before: auditDoc(rawOrNil(cr.Diff.Before)), After: auditDoc(rawOrNil(cr.Diff.After)),
		ChangeRequest: cr.ID, RequestedBy: cr.RequestedBy,
	}
	if action != actionPropose {
		e.ApprovalReason = reason // the decision's reason
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil
	}
	return &AuditRecord{Time: e.Time, Environment: e.Environment, Entity: e.Entity, Entry: b}
}

// rawOrNil returns b as a value auditDoc marshals as is (nil for none).
func rawOrNil(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// ---- the change request endpoints ----

func (s *Server) changeRoutes(body int64) []route {
	return []route{
		{"GET", "/v1/changes", classRead, 0, s.handleChanges},
		{"GET", "/v1/changes/{id}", classRead, 0, s.handleChange},
		{"POST", "/v1/changes/{id}/approve", classWrite, body, s.handleApprove},
		{"POST", "/v1/changes/{id}/reject", classWrite, body, s.handleReject},
	}
}

func errChangeNotFound(id string) error {
	return errorf(http.StatusNotFound, wire.CodeChangeNotFound, "no change request %q", id)
}

// loadChange returns the change request id, or writes the error (404,
// 403 for an environment the caller may not see, 503) and returns false.
func (s *Server) loadChange(w http.ResponseWriter, r *http.Request, id string) (*wire.ChangeRequest, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.StoreTimeout)
	defer cancel()
	sc, ok, err := s.store.ChangeRequest(ctx, id)
	if err != nil {
		writeError(w, s.storeFailure("", err))
		return nil, false
	}
	if !ok {
		writeError(w, errChangeNotFound(id))
		return nil, false
	}
	var cr wire.ChangeRequest
	if err := json.Unmarshal(sc.Record, &cr); err != nil {
		s.log.Error("flagserver: undecodable change request", "id", id, "error", err.Error())
		writeError(w, errorf(http.StatusInternalServerError, wire.CodeInternal, "internal error"))
		return nil, false
	}
	if !reqCtx(r).principal.allowsEnv(cr.Environment) {
		writeError(w, errForbidden("token is not allowed environment %q", cr.Environment))
		return nil, false
	}
	return &cr, true
}

// handleChange serves GET /v1/changes/{id}.
func (s *Server) handleChange(w http.ResponseWriter, r *http.Request) {
	if err := authorize(reqCtx(r).principal, wire.ScopeRead, ""); err != nil {
		writeError(w, err)
		return
	}
	cr, ok := s.loadChange(w, r, r.PathValue("id"))
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, cr)
}

// handleChanges serves GET /v1/changes?environment=&status=&limit=&cursor=:
// change requests newest first; nextCursor pages to older ones.
func (s *Server) handleChanges(w http.ResponseWriter, r *http.Request) {
	rc := reqCtx(r)
	q := r.URL.Query()
	env, status := q.Get("environment"), q.Get("status")
	if err := authorize(rc.principal, wire.ScopeRead, env); err != nil {
		writeError(w, err)
		return
	}
	switch status {
	case "", wire.ChangePending, wire.ChangeApplied, wire.ChangeRejected, wire.ChangeStale:
	default:
		writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest, "status must be pending, applied, rejected or stale").with(map[string]any{"field": "status"}))
		return
	}
	limit, before, err := pageParams(q.Get("limit"), q.Get("cursor"), defaultChangeLimit, maxChangeLimit)
	if err != nil {
		writeError(w, err)
		return
	}
	cq := ChangeQuery{Before: before, Environment: env, Status: status, Limit: limit + 1, MaxBytes: maxAuditPageBytes}
	if t := rc.principal.token; t != nil && len(t.Environments) > 0 {
		cq.Environments = t.Environments
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.StoreTimeout)
	defer cancel()
	scs, err := s.store.ChangeRequests(ctx, cq)
	if err != nil {
		writeError(w, s.storeFailure("", err))
		return
	}
	resp := wire.ChangeList{Changes: []wire.ChangeRequest{}}
	more := len(scs) > limit
	if more {
		scs = scs[:limit]
	} else if len(scs) > 0 {
		// The page may have been cut by MaxBytes: ask for the next one.
		cq.Before, cq.Limit, cq.MaxBytes = scs[len(scs)-1].Seq, 1, 0
		next, err := s.store.ChangeRequests(ctx, cq)
		more = err == nil && len(next) > 0
	}
	for _, sc := range scs {
		var cr wire.ChangeRequest
		if err := json.Unmarshal(sc.Record, &cr); err != nil {
			s.log.Error("flagserver: undecodable change request", "id", sc.ID, "error", err.Error())
			writeError(w, errorf(http.StatusInternalServerError, wire.CodeInternal, "internal error"))
			return
		}
		resp.Changes = append(resp.Changes, cr)
	}
	if more && len(scs) > 0 {
		resp.NextCursor = strconv.FormatInt(scs[len(scs)-1].Seq, 10)
	}
	writeJSON(w, http.StatusOK, resp)
}

// pageParams reads limit (default def, at most max) and cursor (an
// opaque position from a previous page: a positive integer).
func pageParams(l, c string, def, maxLimit int) (limit int, before int64, err error) {
	limit = def
	if l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return 0, 0, errorf(http.StatusBadRequest, wire.CodeBadRequest, "limit must be a positive integer").with(map[string]any{"field": "limit"})
		}
		limit = min(n, maxLimit)
	}
	if c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, errorf(http.StatusBadRequest, wire.CodeBadRequest, "cursor must be the nextCursor of a previous page").with(map[string]any{"field": "cursor"})
		}
		before = n
	}
	return limit, before, nil
}

// decisionReason reads the optional body {"changeReason": "..."} of an
// approval or rejection.
func decisionReason(body []byte) (string, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return "", nil
	}
	var b wire.ChangeDecisionBody
	if err := decodeStrict(body, &b); err != nil {
		return "", err
	}
	return strings.TrimSpace(b.ChangeReason), nil
}

// idempotencyFirst reads the request's Idempotency-Key and answers a
// retry with the stored response (done true); otherwise it returns the
// key to store the response under (nil without a key).
func (s *Server) idempotencyFirst(w http.ResponseWriter, r *http.Request) (idem *idemReq, done bool) {
	rc := reqCtx(r)
	k := r.Header.Get(wire.HeaderIdempotency)
	if k == "" {
		return nil, false
	}
	if err := validIdempotencyKey(k); err != nil {
		writeError(w, err)
		return nil, true
	}
	idem = &idemReq{key: rc.principal.limitKey + "\x00" + rc.principal.subject + "\x00" + k, fp: requestFingerprint(r, rc.body)}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.StoreTimeout)
	rec, err := s.store.Idempotency(ctx, idem.key, s.now())
	cancel()
	if err != nil {
		writeError(w, s.storeFailure("", err))
		return nil, true
	}
	if rec != nil {
		replayIdempotent(w, rec, idem.fp, func() storedResponse { return storedResponse{} })
		return nil, true
	}
	return idem, false
}

// decisionStart is the common start of approve and reject: the body's
// reason, the Idempotency-Key (a retry is answered here), the change
// request, which must be pending. ok is false when a response was written.
func (s *Server) decisionStart(w http.ResponseWriter, r *http.Request) (cr *wire.ChangeRequest, reason string, idem *idemReq, ok bool) {
	reason, err := decisionReason(reqCtx(r).body)
	if err != nil {
		writeError(w, err)
		return nil, "", nil, false
	}
	idem, done := s.idempotencyFirst(w, r)
	if done {
		return nil, "", nil, false
	}
	if cr, ok = s.loadChange(w, r, r.PathValue("id")); !ok {
		return nil, "", nil, false
	}
	if cr.Status != wire.ChangePending {
		writeError(w, errNotPending(cr))
		return nil, "", nil, false
	}
	return cr, reason, idem, true
}

func errNotPending(cr *wire.ChangeRequest) error {
	return errorf(http.StatusConflict, wire.CodeChangeNotPending, "change request %q is %s, not pending: nothing was applied", cr.ID, cr.Status).
		with(map[string]any{"status": cr.Status})
}

// handleApprove serves POST /v1/changes/{id}/approve: scope flags:approve,
// a subject other than the requester's. The change is applied in one
// store transaction with the change request's move to applied.
func (s *Server) handleApprove(w http.ResponseWriter, r *http.Request) {
	rc := reqCtx(r)
	if err := authorize(rc.principal, ScopeFlagsApprove, ""); err != nil {
		writeError(w, err)
		return
	}
	cr, reason, idem, ok := s.decisionStart(w, r)
	if !ok {
		return
	}
	if cr.RequestedBy == rc.principal.subject {
		writeError(w, errForbidden("%s requested change %q and cannot approve it: another principal must", cr.RequestedBy, cr.ID))
		return
	}
	env := cr.Environment
	if es := s.env(env); es != nil && reason == "" && s.requiresReason(es.cfg) {
		writeError(w, fmt.Errorf("%w (environment %q): give the approval's reason", ErrChangeReasonRequired, env))
		return
	}
	var fn func(next *evaluate.Config) (mutation, error)
	switch cr.Entity.Kind {
	case "flag":
		fn = approvedMutation(flagKind, cr)
	case "segment":
		fn = approvedMutation(segmentKind, cr)
	default:
		writeError(w, errorf(http.StatusInternalServerError, wire.CodeInternal, "change request %q names an unknown kind %q", cr.ID, cr.Entity.Kind))
		return
	}
	gov := &governance{cr: cr, approver: rc.principal.subject, reason: reason}
	meta := writeMeta{subject: rc.principal.subject, reason: cr.ChangeReason, requestID: rc.id, gov: gov}
	respond := func(*envState) storedResponse { return storedResponse{status: http.StatusOK, body: gov.record} }
	s.fresh(r.Context())
	s.wmu.Lock()
	es, rec, err := s.applyLocked(env, meta, idem, respond, fn)
	s.wmu.Unlock()
	var ae *apiError
	switch {
	case rec != nil:
		replayIdempotent(w, rec, idem.fp, func() storedResponse { return storedResponse{} })
	case errors.As(err, &ae) && ae.code == wire.CodeChangeStale:
		if s.markStale(r, cr, ae) {
			writeError(w, ae)
		} else { // another decision came first (it may be what moved the ETag)
			s.answerDecided(w, r, cr.ID)
		}
	case errors.Is(err, ErrChangeDecided), errors.Is(err, ErrChangeNotFound):
		s.answerDecided(w, r, cr.ID)
	case err != nil:
		writeError(w, err)
	default:
		resp := respond(es)
		resp.write(w)
	}
}

// answerDecided answers an approval or rejection that lost to another
// decision: 409 with the change request's status now (404 if it is gone).
func (s *Server) answerDecided(w http.ResponseWriter, r *http.Request, id string) {
	if cr, ok := s.loadChange(w, r, id); ok {
		writeError(w, errNotPending(cr))
	}
}

// markStale records that an approval found cr's entity changed: cr
// becomes stale. It returns false when another decision came first.
func (s *Server) markStale(r *http.Request, cr *wire.ChangeRequest, ae *apiError) bool {
	rc := reqCtx(r)
	now := s.now()
	c := *cr
	at := now.UTC()
	c.Status, c.DecidedBy, c.DecidedAt = wire.ChangeStale, rc.principal.subject, &at
	if d, ok := ae.details.(map[string]any); ok {
		c.CurrentETag, _ = d["currentETag"].(string)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.StoreTimeout)
	defer cancel()
	d := &ChangeDecision{ID: c.ID, Status: wire.ChangeStale, Record: b, Now: now,
		Audit: changeAudit(&c, actionStale, rc.principal.subject, "", rc.id, now)}
	_, err = s.store.DecideChange(ctx, d)
	switch {
	case errors.Is(err, ErrChangeDecided), errors.Is(err, ErrChangeNotFound):
		return false
	case err != nil: // the answer stays change_stale: nothing was applied
		s.log.Error("flagserver: cannot mark a change request stale", "id", c.ID, "error", err.Error())
	}
	return true
}

// approvedMutation applies change request cr of kind k: only while the
// entity's ETag is still cr.BaseETag (for a create: while it does not
// exist), else a change_stale error.
func approvedMutation[T any](k *entityKind[T], cr *wire.ChangeRequest) func(next *evaluate.Config) (mutation, error) {
	key := cr.Entity.Key
	return func(next *evaluate.Config) (mutation, error) {
		l := k.list(next)
		i := k.find(next, key)
		current := ""
		if i >= 0 {
			_, current = entityDoc(&(*l)[i])
		}
		if current != cr.BaseETag {
			return mutation{}, errorf(http.StatusConflict, wire.CodeChangeStale,
				"the %s %q changed since change request %q was made (ETag %s, now %s): nothing was applied; propose the change again",
				k.name, key, cr.ID, orNone(cr.BaseETag), orNone(current)).
				with(map[string]any{"baseETag": cr.BaseETag, "currentETag": current})
		}
		var v T
		if cr.Action != actionDelete {
			var err error
			if v, err = k.decode(cr.Diff.After); err != nil {
				return mutation{}, err
			}
			k.prepare(&v, key, next.Version)
		}
		switch cr.Action {
		case actionCreate:
			*l = append(*l, v)
			return mutation{action: actionCreate, kind: k.name, key: key, after: &v}, nil
		case actionUpdate:
			before := (*l)[i]
			(*l)[i] = v
			return mutation{action: actionUpdate, kind: k.name, key: key, before: &before, after: &v}, nil
		case actionDelete:
			before := (*l)[i]
			*l = slices.Delete(*l, i, i+1)
			return mutation{action: actionDelete, kind: k.name, key: key, before: &before}, nil
		}
		return mutation{}, errorf(http.StatusInternalServerError, wire.CodeInternal, "change request %q has an unknown action %q", cr.ID, cr.Action)
	}
}

func orNone(etag string) string {
	if etag == "" {
		return "none"
	}
	return etag
}

// handleReject serves POST /v1/changes/{id}/reject: scope flags:approve,
// or the requester withdrawing their own change request.
func (s *Server) handleReject(w http.ResponseWriter, r *http.Request) {
	rc := reqCtx(r)
	cr, reason, idem, ok := s.decisionStart(w, r)
	if !ok {
		return
	}
	if cr.RequestedBy != rc.principal.subject {
		if err := authorize(rc.principal, ScopeFlagsApprove, ""); err != nil {
			writeError(w, err)
			return
		}
	}
	now := s.now()
	c := *cr
	at := now.UTC()
	c.Status, c.DecidedBy, c.DecisionReason, c.DecidedAt = wire.ChangeRejected, rc.principal.subject, reason, &at
	b, err := json.Marshal(c)
	if err != nil {
		writeError(w, err)
		return
	}
	resp := storedResponse{status: http.StatusOK, body: b}
	d := &ChangeDecision{ID: c.ID, Status: wire.ChangeRejected, Record: b, Now: now, IdempotencyKey: idemKeyOf(idem),
		Audit: changeAudit(&c, actionReject, rc.principal.subject, reason, rc.id, now)}
	if idem != nil {
		d.Idempotency = resp.record(idem.fp, now.Add(idempotencyTTL))
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.StoreTimeout)
	defer cancel()
	replay, err := s.store.DecideChange(ctx, d)
	switch {
	case replay != nil:
		replayIdempotent(w, replay, idem.fp, func() storedResponse { return storedResponse{} })
	case errors.Is(err, ErrChangeDecided), errors.Is(err, ErrChangeNotFound):
		s.answerDecided(w, r, c.ID)
	case err != nil:
		writeError(w, s.storeFailure(c.Environment, err))
	default:
		resp.write(w)
	}
}
