package flagserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// ---- the write path ----

// writeMeta says who writes and why.
type writeMeta struct {
	subject, reason, requestID string
	gov                        *governance // approvals.go: emergency or approval; nil for neither
}

// mutation describes one applied change, for the audit log and the stream.
type mutation struct {
	action        string
	kind          string // "flag" or "segment"
	key           string
	before, after any
}

func (s *Server) requiresReason(cfg *evaluate.Config) bool {
	return cfg.RequireChangeReason || s.reason[cfg.Environment]
}

// maxWriteAttempts bounds how often a write is computed again after
// another replica changed the environment first (ErrStale).
const maxWriteAttempts = 8

// applyLocked applies fn to a copy of env's config with the next version,
// compiles the whole result and commits it to the store with its audit
// entry (and idemKey's record, made by respond) in one transaction, then
// publishes it (snapshot, stream event). On any error nothing changes.
// When the store already holds a record under idemKey, it is returned and
// nothing is written. The caller holds s.wmu.
func (s *Server) applyLocked(env string, meta writeMeta, idem *idemReq, respond func(es *envState) storedResponse,
	fn func(next *evaluate.Config) (mutation, error)) (*envState, *IdempotencyRecord, error) {
	idemKey := ""
	if idem != nil {
		idemKey = idem.key
	}
	if s.closed {
		return nil, nil, ErrClosed
	}
	if meta.requestID == "" {
		meta.requestID = newRequestID()
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.StoreTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		cur, err := s.envOr404(env)
		if err != nil {
			return nil, nil, err
		}
		if meta.reason == "" && s.requiresReason(cur.cfg) {
			return nil, nil, fmt.Errorf("%w (environment %q)", ErrChangeReasonRequired, env)
		}
		var es *envState
		var m mutation
		var ev wire.StreamEvent
		now := s.now()
		req := &WriteRequest{Environment: env, Base: cur.version(), IdempotencyKey: idemKey, Now: now}
		if s.opts.AuditRetention > 0 {
			req.PruneAuditBefore = now.Add(-s.opts.AuditRetention)
		}
		req.Build = func(version int64) (*Change, error) {
			next := cloneConfig(cur.cfg)
			next.Version = version
			var err error
			if m, err = fn(next); err != nil {
				return nil, err
			}
			// fn changed only the entity named by m: everything else is reused.
			if es, err = nextEnvState(next, cur, m.kind, m.key); err != nil {
				return nil, err
			}
			if err := s.checkSize(es, cur, m); err != nil {
				return nil, err
			}
			ch, err := s.changeOf(es, cur, next, m, meta, now)
			if err != nil {
				return nil, err
			}
			ev = ch.event
			if idem != nil && respond != nil {
				resp := respond(es)
				ch.Idempotency = resp.record(idem.fp, now.Add(idempotencyTTL))
			}
			return &ch.Change, nil
		}
		replay, err := s.store.Write(ctx, req)
		if replay != nil {
			return nil, replay, nil
		}
		var gone *goneError
		switch {
		case errors.As(err, &gone):
			return nil, nil, s.resolveGone(ctx, env, gone)
		case errors.Is(err, ErrStale) && s.store.Shared() && attempt+1 < maxWriteAttempts:
			if err := s.catchUp(ctx); err != nil {
				return nil, nil, s.storeFailure(env, err)
			}
			continue
		case err != nil:
			var ae *apiError
			var ce *evaluate.CompileError
			if errors.As(err, &ae) || errors.As(err, &ce) || errors.Is(err, ErrUnknownEnvironment) ||
				errors.Is(err, ErrFlagNotFound) || errors.Is(err, ErrSegmentNotFound) ||
				errors.Is(err, ErrChangeDecided) || errors.Is(err, ErrChangeNotFound) {
				return nil, nil, err
			}
			return nil, nil, s.storeFailure(env, err)
		}
		s.sync.mu.Lock()
		s.envMu.Lock()
		if c := s.envs[env]; c == nil || c.version() < es.version() {
			s.envs[env] = es
		}
		s.envMu.Unlock()
		s.hub.publish(env, ev)
		if !s.store.Shared() {
			s.sync.advance(es.version())
		}
		s.sync.mu.Unlock()
		for _, w := range es.warnings {
			s.log.Warn("flagserver: "+w, "environment", env, "entity", m.kind+":"+m.key, "requestId", meta.requestID)
		}
		return es, nil, nil
	}
}

// storeFailure logs a failed commit and returns the error to answer with:
// 503 with Retry-After when the store is unavailable, else 500.
func (s *Server) storeFailure(env string, err error) error {
	s.log.Error("flagserver: commit failed; write refused", "environment", env, "error", err.Error())
	if errors.Is(err, ErrStoreUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		s.sync.setErr(err)
		return fmt.Errorf("%w: %v", ErrStoreUnavailable, err)
	}
	if errors.Is(err, ErrStale) {
		return errorf(http.StatusServiceUnavailable, wire.CodeUnavailable, "the environment is changing too fast; retry")
	}
	return errorf(http.StatusInternalServerError, wire.CodeInternal, "cannot store the change")
}

// builtChange is a Change and the stream event it carries.
type builtChange struct {
	Change
	event wire.StreamEvent
}

// changeOf builds what the store keeps for mutation m, which made es
// (next) from cur.
func (s *Server) changeOf(es, cur *envState, next *evaluate.Config, m mutation, meta writeMeta, now time.Time) (*builtChange, error) {
	ch := &builtChange{Change: Change{Kind: m.kind, Key: m.key, Head: es.head}}
	if m.after != nil {
		if m.kind == "segment" {
			for i := range es.cfg.Segments {
				if es.cfg.Segments[i].Key == m.key {
					ch.Entity = es.segJSON[i]
				}
			}
		} else {
			for i := range es.cfg.Flags {
				if es.cfg.Flags[i].Key == m.key {
					ch.Entity = es.flagJSON[i]
				}
			}
		}
	}
	if m.action == actionDelete {
		_, ch.Tombstone = entityDoc(m.before)
	}
	if m.action != actionUpdate {
		var err error
		if m.kind == "flag" {
			ch.FlagKeys, err = flagKeysJSON(es)
		} else {
			ch.SegKeys, err = segKeysJSON(es)
		}
		if err != nil {
			return nil, err
		}
	}
	entry := wire.AuditEntry{
		Time:         now.UTC(),
		Subject:      meta.subject,
		Action:       m.action,
		Entity:       m.kind + ":" + m.key,
		Environment:  es.name,
		ChangeReason: meta.reason,
		RequestID:    meta.requestID,
		Before:       auditDoc(m.before),
		After:        auditDoc(m.after),
	}
	meta.gov.annotate(&entry)
	ab, err := json.Marshal(entry)
	if err != nil {
		return nil, err
	}
	if ch.Decision, err = meta.gov.decision(es.version(), now); err != nil {
		return nil, err
	}
	ch.Audit = &AuditRecord{Time: entry.Time, Environment: es.name, Entity: entry.Entity, Entry: ab}
	ev := wire.StreamEvent{Type: wire.EventInvalidate, Environment: es.name, Version: es.version()}
	if m.kind == "flag" {
		ev.FlagKey = m.key
		ev.Dependents = evaluate.Dependents(m.key, cur.cfg, next)
	} else {
		ev.SegmentKey = m.key
	}
	if ch.Event, err = json.Marshal(ev); err != nil {
		return nil, err
	}
	ch.event = ev
	return ch, nil
}

// checkSize refuses (413 config_too_large) a change that would make the
// environment's config larger than wire.MaxServedConfigBytes (the SDK
// refuses configs and envelopes above wire.MaxConfigBytes) unless it makes
// an oversized config smaller, and records warnings on es: a written
// segment with more than Options.SegmentWarnIDs static ids, a config above
// 3/4 of the limit.
func (s *Server) checkSize(es, cur *envState, m mutation) error {
	limit := s.maxConfigBytes
	size := es.size
	if size > limit && size >= cur.size {
		return errorf(http.StatusRequestEntityTooLarge, wire.CodeConfigTooLarge,
			"the change would make environment %q's config %d bytes (now %d); the limit is %d bytes, as SDKs refuse larger configs: shard static segments or move them server-side",
			es.name, size, cur.size, limit).with(map[string]any{"limit": limit, "size": size, "current": cur.size})
	}
	if seg, ok := m.after.(*evaluate.Segment); ok {
		if n := len(seg.Included) + len(seg.Excluded); n > s.opts.SegmentWarnIDs {
			es.warnings = append(es.warnings, fmt.Sprintf(
				"segment %q has %d static ids (warning threshold %d): every SDK in local mode downloads and holds them; consider sharding it or a rule on an attribute", seg.Key, n, s.opts.SegmentWarnIDs))
		}
	}
	if size > limit/4*3 {
		es.warnings = append(es.warnings, fmt.Sprintf("environment %q's config is %d bytes, %d%% of the %d-byte limit", es.name, size, size*100/limit, limit))
	}
	return nil
}

// goneError is the error of a PATCH or DELETE whose entity does not
// exist: a 412 when If-Match holds the ETag the entity had when it was
// deleted (the loser of concurrent deletes, or an edit of a deleted entity:
// its precondition is stale), else notFound (404). The store's tombstone is
// looked up after the write's transaction (resolveGone).
type goneError struct {
	kind, key, ifMatch string
	notFound           error
}

func (e *goneError) Error() string { return e.notFound.Error() }

func errGone(kind, key, ifMatch string, notFound error) error {
	return &goneError{kind, key, ifMatch, notFound}
}

func (s *Server) resolveGone(ctx context.Context, env string, g *goneError) error {
	etag, ok, err := s.store.Tombstone(ctx, env, g.kind, g.key)
	if err != nil {
		return s.storeFailure(env, err)
	}
	if ok && etagMatches(g.ifMatch, etag) {
		return errorf(http.StatusPreconditionFailed, wire.CodePreconditionFailed,
			"If-Match %s is stale: the %s %q was deleted", g.ifMatch, g.kind, g.key).with(map[string]any{"etag": nil, "deleted": true})
	}
	return g.notFound
}

func marshalOrNil(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// responseNow returns a func making respond's response of env's current
// state (checked against the store's version first).
func (s *Server) responseNow(r *http.Request, env string, respond func(es *envState) storedResponse) func() storedResponse {
	return func() storedResponse {
		s.fresh(r.Context())
		es := s.env(env)
		if es == nil {
			return storedResponse{}
		}
		return respond(es)
	}
}

// idemReq is a write's Idempotency-Key (scoped to the caller) and its
// request's fingerprint.
type idemReq struct {
	key string
	fp  [32]byte
}

// doWrite applies fn under the write lock with Idempotency-Key handling
// and writes the response respond makes of the new state.
func (s *Server) doWrite(w http.ResponseWriter, r *http.Request, reason, env string,
	fn func(next *evaluate.Config) (mutation, error), respond func(es *envState) storedResponse) {
	rc := reqCtx(r)
	meta := writeMeta{subject: rc.principal.subject, reason: reason, requestID: rc.id}
	var idem *idemReq
	if k := r.Header.Get(wire.HeaderIdempotency); k != "" {
		if err := validIdempotencyKey(k); err != nil {
			writeError(w, err)
			return
		}
		idem = &idemReq{key: rc.principal.limitKey + "\x00" + rc.principal.subject + "\x00" + k, fp: requestFingerprint(r, rc.body)}
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.StoreTimeout)
		rec, err := s.store.Idempotency(ctx, idem.key, s.now())
		cancel()
		if err != nil {
			writeError(w, s.storeFailure(env, err))
			return
		}
		if rec != nil {
			replayIdempotent(w, rec, idem.fp, s.responseNow(r, env, respond))
			return
		}
	}
	fn, done := s.propose(w, r, &meta, idem, env, fn) // approvals.go: protected environments
	if done {
		return
	}
	s.wmu.Lock()
	es, rec, err := s.applyLocked(env, meta, idem, respond, fn)
	s.wmu.Unlock()
	switch {
	case rec != nil:
		replayIdempotent(w, rec, idem.fp, s.responseNow(r, env, respond))
	case err != nil:
		writeError(w, err)
	default:
		resp := respond(es)
		resp.write(w)
	}
}

// ---- entity kinds: flags and segments share the handlers ----

type entityKind[T any] struct {
	name     string // "flag", "segment"
	path     string // "/v1/flags"
	notFound error
	list     func(c *evaluate.Config) *[]T
	key      func(*T) string
	prepare  func(v *T, key string, version int64) // set key and version, clear server-ignored fields
	get      func(es *envState, key string) (*T, bool)
	decode   func(body []byte) (T, error) // a write body: the entity's fields and writeFields
}

// writeFields are the members of a write body that are not the entity's:
// changeReason (read by parseWriteBody) and etag (ignored, so that a GET
// document can be sent back).
type writeFields struct {
	ChangeReason jsontext.Value `json:"changeReason"`
	ETag         jsontext.Value `json:"etag"`
}

// decodeBody decodes a write body with the one config decoder: strictly,
// numbers in payloads and values kept exactly as sent.
func decodeBody(body []byte, v any) error {
	if err := evaluate.DecodeJSON(body, v, evaluate.JSONOptions{ExactNumbers: true}); err != nil {
		return decodeBodyError(err, body)
	}
	return nil
}

var flagKind = &entityKind[evaluate.Flag]{
	name:     "flag",
	path:     "/v1/flags",
	notFound: ErrFlagNotFound,
	list:     func(c *evaluate.Config) *[]evaluate.Flag { return &c.Flags },
	key:      func(f *evaluate.Flag) string { return f.Key },
	prepare: func(f *evaluate.Flag, key string, version int64) {
		f.Key, f.Version, f.Environment = key, version, ""
	},
	get: func(es *envState, key string) (*evaluate.Flag, bool) { return es.snap.Flag(key) },
	decode: func(body []byte) (evaluate.Flag, error) {
		var b struct {
			evaluate.Flag
			writeFields
		}
		err := decodeBody(body, &b)
		return b.Flag, err
	},
}

var segmentKind = &entityKind[evaluate.Segment]{
	name:     "segment",
	path:     "/v1/segments",
	notFound: ErrSegmentNotFound,
	list:     func(c *evaluate.Config) *[]evaluate.Segment { return &c.Segments },
	key:      func(s *evaluate.Segment) string { return s.Key },
	prepare: func(s *evaluate.Segment, key string, version int64) {
		s.Key, s.Version = key, version
	},
	get: func(es *envState, key string) (*evaluate.Segment, bool) {
		for i := range es.cfg.Segments {
			if es.cfg.Segments[i].Key == key {
				return &es.cfg.Segments[i], true
			}
		}
		return nil, false
	},
	decode: func(body []byte) (evaluate.Segment, error) {
		var b struct {
			evaluate.Segment
			writeFields
			Environment jsontext.Value `json:"environment"` // not a segment field: the handlers check it
		}
		err := decodeBody(body, &b)
		return b.Segment, err
	},
}

func (k *entityKind[T]) find(c *evaluate.Config, key string) int {
	l := *k.list(c)
	for i := range l {
		if k.key(&l[i]) == key {
			return i
		}
	}
	return -1
}

// current finds key in next for a conditional write (PATCH, DELETE): its
// list, its index and a copy of it, once If-Match holds. A missing entity
// is errGone's answer (404, or 412 for one deleted under the If-Match).
func (k *entityKind[T]) current(next *evaluate.Config, key, env, ifMatch string) (l *[]T, i int, cur T, err error) {
	l = k.list(next)
	if i = k.find(next, key); i < 0 {
		return nil, -1, cur, errGone(k.name, key, ifMatch, k.errNotFound(key, env))
	}
	cur = (*l)[i]
	if err := checkIfMatch(ifMatch, &cur); err != nil {
		return nil, -1, cur, err
	}
	return l, i, cur, nil
}

func (k *entityKind[T]) errNotFound(key, env string) error {
	return fmt.Errorf("%w: %q in environment %q", k.notFound, key, env)
}

// entityDoc returns v's JSON with its ETag added as field "etag", and the
// ETag (a quoted hash of v's JSON).
func entityDoc(v any) (body []byte, etag string) {
	b, err := json.Marshal(v)
	if err != nil || len(b) < 2 || b[len(b)-1] != '}' {
		return []byte("{}"), `"0"`
	}
	etag = etagOf(b)
	et, _ := json.Marshal(etag)
	body = make([]byte, 0, len(b)+len(et)+9)
	body = append(body, b[:len(b)-1]...)
	if len(b) > 2 {
		body = append(body, ',')
	}
	body = append(body, `"etag":`...)
	body = append(body, et...)
	body = append(body, '}')
	return body, etag
}

// writeBody is a parsed write body: its top-level fields minus
// changeReason (returned separately) and etag (ignored, so a GET document
// can be sent back).
func parseWriteBody(body []byte) (map[string]json.RawMessage, string, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&obj); err != nil {
		return nil, "", decodeError(err, body)
	}
	if dec.More() {
		return nil, "", errorf(http.StatusBadRequest, wire.CodeMalformedJSON, "malformed JSON: trailing data at offset %d", dec.InputOffset()).
			with(map[string]any{"offset": dec.InputOffset()})
	}
	if obj == nil {
		return nil, "", errorf(http.StatusBadRequest, wire.CodeBadRequest, "body must be a JSON object")
	}
	reason := ""
	if raw, ok := obj["changeReason"]; ok {
		if err := json.Unmarshal(raw, &reason); err != nil {
			return nil, "", errorf(http.StatusBadRequest, wire.CodeBadRequest, "changeReason must be a string").
				with(map[string]any{"field": "changeReason"})
		}
		delete(obj, "changeReason")
	}
	delete(obj, "etag")
	return obj, strings.TrimSpace(reason), nil
}

func stringField(obj map[string]json.RawMessage, name string) (string, error) {
	raw, ok := obj[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", errorf(http.StatusBadRequest, wire.CodeBadRequest, "%s must be a string", name).with(map[string]any{"field": name})
	}
	return v, nil
}

// handleGet serves GET /v1/{flags,segments}/{key}?environment=ENV.
func handleGet[T any](s *Server, k *entityKind[T], w http.ResponseWriter, r *http.Request) {
	env, es, ok := s.readableQueryEnv(w, r)
	if !ok {
		return
	}
	key := r.PathValue("key")
	v, ok := k.get(es, key)
	if !ok {
		writeError(w, k.errNotFound(key, env))
		return
	}
	body, etag := entityDoc(v)
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatchesWeak(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeRaw(w, http.StatusOK, body)
}

func (k *entityKind[T]) location(key, env string) string {
	return k.path + "/" + url.PathEscape(key) + "?environment=" + url.QueryEscape(env)
}

// handleCreate serves POST /v1/{flags,segments}?environment=ENV. The
// environment may also be given as the body field "environment"; it
// defaults to DefaultEnvironment.
func handleCreate[T any](s *Server, k *entityKind[T], w http.ResponseWriter, r *http.Request) {
	rc := reqCtx(r)
	obj, reason, err := parseWriteBody(rc.body)
	if err != nil {
		writeError(w, err)
		return
	}
	env := r.URL.Query().Get("environment")
	bodyEnv, err := stringField(obj, "environment")
	if err != nil {
		writeError(w, err)
		return
	}
	switch {
	case env != "" && bodyEnv != "" && env != bodyEnv:
		writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest, "environment %q in the body contradicts %q in the query", bodyEnv, env))
		return
	case env == "":
		env = bodyEnv
	}
	if env == "" {
		env = DefaultEnvironment
	}
	if err := authorize(rc.principal, wire.ScopeWrite, env); err != nil {
		writeError(w, err)
		return
	}
	v, err := k.decode(rc.body)
	if err != nil {
		writeError(w, err)
		return
	}
	key := k.key(&v)
	if key == "" {
		writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest, "%s key is required", k.name).with(map[string]any{"field": "key"}))
		return
	}
	s.doWrite(w, r, reason, env, func(next *evaluate.Config) (mutation, error) {
		if k.find(next, key) >= 0 {
			return mutation{}, errorf(http.StatusConflict, wire.CodeConflict, "%s %q already exists in environment %q", k.name, key, env)
		}
		k.prepare(&v, key, next.Version)
		l := k.list(next)
		*l = append(*l, v)
		return mutation{action: actionCreate, kind: k.name, key: key, after: &v}, nil
	}, func(es *envState) storedResponse { return k.response(es, key, http.StatusCreated, env) })
}

func (k *entityKind[T]) response(es *envState, key string, status int, env string) storedResponse {
	v, _ := k.get(es, key)
	body, etag := entityDoc(v)
	return storedResponse{status: status, etag: etag, loc: k.location(key, env), body: body, warning: strings.Join(es.warnings, "; ")}
}

// readableEnv is the common start of read endpoints: the read scope for
// env, and the environment (404 when unknown). ok is false when an error
// response was written.
func (s *Server) readableEnv(w http.ResponseWriter, r *http.Request, rc *requestCtx, env string) (*envState, bool) {
	if err := authorize(rc.principal, wire.ScopeRead, env); err != nil {
		writeError(w, err)
		return nil, false
	}
	s.fresh(r.Context())
	es, err := s.envOr404(env)
	if err != nil {
		writeError(w, err)
		return nil, false
	}
	return es, true
}

// readableQueryEnv is readableEnv for the environment the query names
// (see environment).
func (s *Server) readableQueryEnv(w http.ResponseWriter, r *http.Request) (env string, es *envState, ok bool) {
	env = environment(r)
	es, ok = s.readableEnv(w, r, reqCtx(r), env)
	return env, es, ok
}

// conditionalWrite is the common start of PATCH and DELETE: the write
// scope for the environment, and an If-Match (428 without one). ok is
// false when an error response was written.
func conditionalWrite(w http.ResponseWriter, r *http.Request, kind string) (rc *requestCtx, env, key, ifMatch string, ok bool) {
	rc = reqCtx(r)
	env = environment(r)
	key = r.PathValue("key")
	if err := authorize(rc.principal, wire.ScopeWrite, env); err != nil {
		writeError(w, err)
		return nil, "", "", "", false
	}
	ifMatch = r.Header.Get("If-Match")
	if ifMatch == "" {
		writeError(w, errorf(http.StatusPreconditionRequired, wire.CodePreconditionRequired,
			"If-Match is required: GET the %s and send its ETag", kind))
		return nil, "", "", "", false
	}
	return rc, env, key, ifMatch, true
}

// handlePatch serves PATCH /v1/{flags,segments}/{key}: If-Match required;
// top-level fields of the body replace the entity's (null removes one);
// changeReason is a body field.
func handlePatch[T any](s *Server, k *entityKind[T], w http.ResponseWriter, r *http.Request) {
	rc, env, key, ifMatch, ok := conditionalWrite(w, r, k.name)
	if !ok {
		return
	}
	obj, reason, err := parseWriteBody(rc.body)
	if err != nil {
		writeError(w, err)
		return
	}
	if bk, err := stringField(obj, "key"); err != nil || (bk != "" && bk != key) {
		writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest, "key in the body must be %q (keys cannot be renamed)", key).
			with(map[string]any{"field": "key"}))
		return
	}
	if be, err := stringField(obj, "environment"); err != nil || (be != "" && be != env) {
		writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest, "environment in the body must be %q", env).
			with(map[string]any{"field": "environment"}))
		return
	}
	s.doWrite(w, r, reason, env, func(next *evaluate.Config) (mutation, error) {
		l, i, cur, err := k.current(next, key, env, ifMatch)
		if err != nil {
			return mutation{}, err
		}
		merged, err := mergePatch(k, cur, rc.body, obj)
		if err != nil {
			return mutation{}, err
		}
		k.prepare(&merged, key, next.Version)
		(*l)[i] = merged
		return mutation{action: actionUpdate, kind: k.name, key: key, before: &cur, after: &merged}, nil
	}, func(es *envState) storedResponse { return k.response(es, key, http.StatusOK, env) })
}

func checkIfMatch(ifMatch string, cur any) error {
	_, etag := entityDoc(cur)
	if !etagMatches(ifMatch, etag) {
		return errorf(http.StatusPreconditionFailed, wire.CodePreconditionFailed,
			"If-Match %s is stale: the current ETag is %s", ifMatch, etag).with(map[string]any{"etag": etag})
	}
	return nil
}

// mergePatch returns cur with the top-level fields the PATCH body names
// (patch: its fields) replaced by the body's values; a null resets one to
// its zero value. The body is decoded whole, so that an error's line and
// column are where the client wrote it.
func mergePatch[T any](k *entityKind[T], cur T, body []byte, patch map[string]json.RawMessage) (T, error) {
	p, err := k.decode(body)
	if err != nil {
		return cur, err
	}
	dst, src := reflect.ValueOf(&cur).Elem(), reflect.ValueOf(&p).Elem()
	for i := range dst.NumField() {
		name, _, _ := strings.Cut(dst.Type().Field(i).Tag.Get("json"), ",")
		if _, named := patch[name]; named {
			dst.Field(i).Set(src.Field(i))
		}
	}
	return cur, nil
}

// handleDelete serves DELETE /v1/{flags,segments}/{key}: If-Match
// required; changeReason in a JSON body or the changeReason query parameter.
func handleDelete[T any](s *Server, k *entityKind[T], w http.ResponseWriter, r *http.Request) {
	rc, env, key, ifMatch, ok := conditionalWrite(w, r, k.name)
	if !ok {
		return
	}
	reason := strings.TrimSpace(r.URL.Query().Get("changeReason"))
	if !utf8.ValidString(reason) {
		writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest, "field \"changeReason\": the query parameter is not valid UTF-8").
			with(map[string]any{"field": "changeReason"}))
		return
	}
	if len(bytes.TrimSpace(rc.body)) > 0 {
		var body struct {
			ChangeReason string `json:"changeReason"`
		}
		if err := decodeStrict(rc.body, &body); err != nil {
			writeError(w, err)
			return
		}
		if body.ChangeReason != "" {
			reason = strings.TrimSpace(body.ChangeReason)
		}
	}
	s.doWrite(w, r, reason, env, func(next *evaluate.Config) (mutation, error) {
		l, i, cur, err := k.current(next, key, env, ifMatch)
		if err != nil {
			return mutation{}, err
		}
		*l = slices.Delete(*l, i, i+1)
		return mutation{action: actionDelete, kind: k.name, key: key, before: &cur}, nil
	}, func(es *envState) storedResponse {
		b, _ := json.Marshal(wire.DeleteResponse{Key: key, Environment: env, Deleted: true, Version: es.version()})
		return storedResponse{status: http.StatusOK, body: b, warning: strings.Join(es.warnings, "; ")}
	})
}

// ---- handlers ----

// handleGetConfig serves GET /v1/flags?environment=ENV: the whole config,
// with a strong ETag, Cache-Control: max-age=60 and If-None-Match → 304.
func (s *Server) handleGetConfig(w http.ResponseWriter, r *http.Request) {
	rc := reqCtx(r)
	env := r.URL.Query().Get("environment")
	if env == "" {
		writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest, "the environment query parameter is required").
			with(map[string]any{"field": "environment"}))
		return
	}
	es, ok := s.readableEnv(w, r, rc, env)
	if !ok {
		return
	}
	body, etag := es.document()
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "max-age=60")
	h.Set(wire.HeaderConfigEpoch, s.epoch)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatchesWeak(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeRaw(w, http.StatusOK, body)
}

// bind adapts a generic entity handler (flags or segments) to the mux.
func bind[T any](s *Server, k *entityKind[T], h func(*Server, *entityKind[T], http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { h(s, k, w, r) }
}

// ---- programmatic writes ----

func programmaticMeta(subject, reason string) writeMeta {
	if subject == "" {
		subject = "server"
	}
	return writeMeta{subject: subject, reason: strings.TrimSpace(reason)}
}

// PutFlag creates or replaces flag f in env through the same path as HTTP
// writes: the whole environment is compiled first (a *evaluate.CompileError
// leaves it unchanged), then the version is bumped, the change is stored,
// audited as subject with reason, and announced on the stream. It returns
// the environment's new version. Errors: ErrUnknownEnvironment,
// ErrChangeReasonRequired, ErrClosed, *evaluate.CompileError.
func (s *Server) PutFlag(env string, f evaluate.Flag, subject, reason string) (version int64, err error) {
	return putEntity(s, flagKind, env, f, subject, reason)
}

// PutSegment creates or replaces segment seg in env, like PutFlag.
func (s *Server) PutSegment(env string, seg evaluate.Segment, subject, reason string) (int64, error) {
	return putEntity(s, segmentKind, env, seg, subject, reason)
}

// DeleteFlag removes flag key from env, like PutFlag. It fails with
// ErrFlagNotFound if there is no such flag, and with a
// *evaluate.CompileError if another flag requires it.
func (s *Server) DeleteFlag(env, key, subject, reason string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, _, err := s.applyLocked(env, programmaticMeta(subject, reason), nil, nil, func(next *evaluate.Config) (mutation, error) {
		i := flagKind.find(next, key)
		if i < 0 {
			return mutation{}, flagKind.errNotFound(key, env)
		}
		cur := next.Flags[i]
		next.Flags = slices.Delete(next.Flags, i, i+1)
		return mutation{action: actionDelete, kind: "flag", key: key, before: &cur}, nil
	})
	return err
}

func putEntity[T any](s *Server, k *entityKind[T], env string, v T, subject, reason string) (int64, error) {
	key := k.key(&v)
	if key == "" {
		return 0, fmt.Errorf("flagserver: %s key is required", k.name)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	es, _, err := s.applyLocked(env, programmaticMeta(subject, reason), nil, nil, func(next *evaluate.Config) (mutation, error) {
		k.prepare(&v, key, next.Version)
		l := k.list(next)
		if i := k.find(next, key); i >= 0 {
			before := (*l)[i]
			(*l)[i] = v
			return mutation{action: actionUpdate, kind: k.name, key: key, before: &before, after: &v}, nil
		}
		*l = append(*l, v)
		return mutation{action: actionCreate, kind: k.name, key: key, after: &v}, nil
	})
	if err != nil {
		return 0, err
	}
	return es.version(), nil
}
