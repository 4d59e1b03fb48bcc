package storetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/internal/wire"
)

// The principals of the approval scenarios (static tokens): alice
// requests changes (she holds every scope, flags:approve included, so
// that her refusal is the two-person rule's and not a missing scope), bob
// approves, carol may write but not approve.
const (
	TokenAlice = "alice-secret"
	TokenBob   = "bob-secret"
	TokenCarol = "carol-secret"
)

// ApprovalTokens are the tokens of TokenAlice, TokenBob and TokenCarol.
func ApprovalTokens() []flagserver.Token {
	return []flagserver.Token{
		{Secret: TokenAlice, Subject: "alice", Scopes: []string{"flags:read", "flags:write", "audit:read", "flags:approve"}},
		{Secret: TokenBob, Subject: "bob", Scopes: []string{"flags:read", "flags:write", "audit:read", "flags:approve"}},
		{Secret: TokenCarol, Subject: "carol", Scopes: []string{"flags:read", "flags:write", "audit:read"}},
	}
}

// ProtectedConfig is environment prod of the approval scenarios: flags f,
// g and kill (a kill switch: metadata killSwitch).
func ProtectedConfig() *evaluate.Config {
	return &evaluate.Config{Environment: "prod", Salt: "salt", Flags: []evaluate.Flag{
		{Key: "f"}, {Key: "g"},
		{Key: "kill", Metadata: evaluate.Metadata{KillSwitch: true, Team: "sre"}},
	}}
}

// StartProtected starts a Server on st serving ProtectedConfig, with prod
// protected (Options.ProtectedEnvironments), change reasons required in
// prod (the default) and ApprovalTokens, and registers its Close.
func StartProtected(t testing.TB, st flagserver.Store) *Server {
	t.Helper()
	return start(t, flagserver.Options{Store: st, Configs: []*evaluate.Config{ProtectedConfig()},
		Tokens: ApprovalTokens(), ProtectedEnvironments: []string{"prod"}})
}

// as returns the Authorization header of token.
func as(token string) string { return "Authorization: Bearer " + token }

func flagETag(t testing.TB, s *Server, key string) string {
	t.Helper()
	r := Do(t, "GET", s.URL+"/v1/flags/"+key+"?environment=prod", "", as(TokenBob))
	want(t, r, 200)
	return r.Header.Get("ETag")
}

func getFlag(t testing.TB, s *Server, key string) evaluate.Flag {
	t.Helper()
	r := Do(t, "GET", s.URL+"/v1/flags/"+key+"?environment=prod", "", as(TokenBob))
	want(t, r, 200)
	var f evaluate.Flag
	if err := json.Unmarshal(r.Body, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func configVersion(t testing.TB, s *Server) int64 {
	t.Helper()
	r := Do(t, "GET", s.URL+"/v1/flags?environment=prod", "", as(TokenBob))
	want(t, r, 200)
	var c evaluate.Config
	if err := json.Unmarshal(r.Body, &c); err != nil {
		t.Fatal(err)
	}
	return c.Version
}

func changeOf(t testing.TB, r *Response) wire.ChangeRequest {
	t.Helper()
	var cr wire.ChangeRequest
	if err := json.Unmarshal(r.Body, &cr); err != nil {
		t.Fatalf("not a change request: %s (%v)", r.Body, err)
	}
	return cr
}

// wantCode checks an error answer's status and code.
func wantCode(t testing.TB, r *Response, status int, code string) {
	t.Helper()
	want(t, r, status)
	var eb wire.ErrorBody
	if err := json.Unmarshal(r.Body, &eb); err != nil || eb.Error.Code != code {
		t.Fatalf("error code of %s: want %q", r.Body, code)
	}
}

// propose sends a write by alice that protection turns into a change
// request, and checks the 202.
func propose(t testing.TB, s *Server, method, path, body string, headers ...string) wire.ChangeRequest {
	t.Helper()
	r := Do(t, method, s.URL+path, body, append([]string{as(TokenAlice)}, headers...)...)
	want(t, r, http.StatusAccepted)
	cr := changeOf(t, r)
	if cr.Status != wire.ChangePending || cr.RequestedBy != "alice" || cr.Environment != "prod" || !strings.HasPrefix(cr.ID, "c-") {
		t.Fatalf("change request %s: want pending, requested by alice, in prod", r.Body)
	}
	if loc := r.Header.Get("Location"); loc != "/v1/changes/"+cr.ID {
		t.Fatalf("Location %q, want /v1/changes/%s", loc, cr.ID)
	}
	return cr
}

func approve(t testing.TB, s *Server, token, id, reason string, headers ...string) *Response {
	t.Helper()
	return Do(t, "POST", s.URL+"/v1/changes/"+id+"/approve", fmt.Sprintf(`{"changeReason":%q}`, reason), append([]string{as(token)}, headers...)...)
}

func auditEntries(t testing.TB, s *Server, query string) []wire.AuditEntry {
	t.Helper()
	r := Do(t, "GET", s.URL+"/v1/audit?"+query, "", as(TokenBob))
	want(t, r, 200)
	var a wire.AuditResponse
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatal(err)
	}
	return a.Entries
}

func openAuthStream(t *testing.T, s *Server) *stream {
	t.Helper()
	return openStream(t, s, "", as(TokenBob))
}

// nextEvent returns the stream's next invalidation.
func nextEvent(t *testing.T, st *stream) wire.StreamEvent {
	t.Helper()
	ev := st.Next(t)
	var se wire.StreamEvent
	if err := json.Unmarshal([]byte(ev.Data), &se); err != nil {
		t.Fatalf("event %q: %v", ev.Data, err)
	}
	if ev.ID != strconv.FormatInt(se.Version, 10) {
		t.Fatalf("event id %s for version %d", ev.ID, se.Version)
	}
	return se
}

// testApprovals is the two-person rule end to end over HTTP: a change
// requested on one server is approved on another (a second replica of a
// shared store, or the same store after a restart), and only then applied
// and streamed; the requester and a principal without flags:approve are
// refused; a stale change is refused and marked stale; a kill switch goes
// off at once; approvals are idempotent and atomic.
func testApprovals(t *testing.T, h ServerHarness) {
	open := h.NewStore(t)
	a := StartProtected(t, open(t))
	v0 := configVersion(t, a)
	var early *stream
	if h.Shared {
		early = openAuthStream(t, a) // sees the approval only
	}

	// A write to prod is a change request: nothing applied, nothing streamed.
	tagF := flagETag(t, a, "f")
	for _, body := range []string{`{"state":"off"}`, `{"state":"off","changeReason":"  "}`} {
		wantCode(t, Do(t, "PATCH", a.URL+"/v1/flags/f?environment=prod", body, as(TokenAlice), "If-Match: "+tagF),
			400, wire.CodeChangeReasonRequired)
	}
	wantCode(t, Do(t, "PATCH", a.URL+"/v1/flags/f?environment=prod", `{"state":"off","changeReason":"r"}`, as(TokenAlice), `If-Match: "stale"`),
		412, wire.CodePreconditionFailed)
	patch := `{"state":"off","changeReason":"turn f off for the migration"}`
	cr := propose(t, a, "PATCH", "/v1/flags/f?environment=prod", patch, "If-Match: "+tagF, "Idempotency-Key: p-1")
	if cr.Entity != (wire.ChangeEntity{Kind: "flag", Key: "f"}) || cr.Action != "update" || cr.BaseETag != tagF ||
		cr.ChangeReason != "turn f off for the migration" || len(cr.Diff.Before) == 0 || len(cr.Diff.After) == 0 {
		t.Fatalf("change request %+v", cr)
	}
	var after evaluate.Flag
	if err := json.Unmarshal(cr.Diff.After, &after); err != nil || after.State != "off" {
		t.Fatalf("diff.after %s (%v): want state off", cr.Diff.After, err)
	}
	retry := Do(t, "PATCH", a.URL+"/v1/flags/f?environment=prod", patch, as(TokenAlice), "If-Match: "+tagF, "Idempotency-Key: p-1")
	want(t, retry, http.StatusAccepted)
	if changeOf(t, retry).ID != cr.ID || retry.Header.Get(wire.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("retried proposal: %s %v, want change %s replayed", retry.Body, retry.Header, cr.ID)
	}
	if got := flagETag(t, a, "f"); got != tagF || getFlag(t, a, "f").State == "off" || configVersion(t, a) != v0 {
		t.Fatal("a change request was applied before any approval")
	}

	// The other server: a second replica, or this store after a restart.
	var b *Server
	if h.Shared {
		b = StartProtected(t, open(t))
	} else {
		a.Close()
		b = StartProtected(t, open(t))
		a = b
	}
	sb := openAuthStream(t, b)
	r := Do(t, "GET", b.URL+"/v1/changes/"+cr.ID, "", as(TokenCarol))
	want(t, r, 200)
	if got := changeOf(t, r); got.Status != wire.ChangePending || got.BaseETag != tagF {
		t.Fatalf("GET /v1/changes/%s on the other server: %s", cr.ID, r.Body)
	}
	var list wire.ChangeList
	r = Do(t, "GET", b.URL+"/v1/changes?environment=prod&status=pending", "", as(TokenCarol))
	want(t, r, 200)
	json.Unmarshal(r.Body, &list)
	if len(list.Changes) != 1 || list.Changes[0].ID != cr.ID {
		t.Fatalf("pending changes: %s, want just %s", r.Body, cr.ID)
	}

	// Refusals: no flags:approve, the requester herself, no reason; none applies.
	wantCode(t, approve(t, b, TokenCarol, cr.ID, "ok"), 403, wire.CodeForbidden)
	wantCode(t, approve(t, b, TokenAlice, cr.ID, "ok"), 403, wire.CodeForbidden)
	wantCode(t, approve(t, b, TokenBob, cr.ID, ""), 400, wire.CodeChangeReasonRequired)
	wantCode(t, approve(t, b, TokenBob, "c-nosuchchange", "ok"), 404, wire.CodeChangeNotFound)
	if flagETag(t, b, "f") != tagF {
		t.Fatal("a refused approval changed the flag")
	}

	// Bob approves on the other server: applied, then streamed.
	r = approve(t, b, TokenBob, cr.ID, "reviewed", "Idempotency-Key: a-1")
	want(t, r, 200)
	applied := changeOf(t, r)
	if applied.Status != wire.ChangeApplied || applied.DecidedBy != "bob" || applied.DecisionReason != "reviewed" || applied.AppliedVersion <= v0 || applied.DecidedAt == nil {
		t.Fatalf("approved change: %s", r.Body)
	}
	for _, st := range []*stream{sb, early} {
		if st == nil {
			continue
		}
		if ev := nextEvent(t, st); ev.FlagKey != "f" || ev.Version != applied.AppliedVersion {
			t.Fatalf("first stream event %+v, want flag f at the approval's version %d", ev, applied.AppliedVersion)
		}
	}
	for _, s := range []*Server{a, b} {
		if f := getFlag(t, s, "f"); f.State != "off" || f.Version != applied.AppliedVersion {
			t.Fatalf("flag f after the approval: %+v, want off at version %d", f, applied.AppliedVersion)
		}
	}
	again := approve(t, b, TokenBob, cr.ID, "reviewed", "Idempotency-Key: a-1")
	want(t, again, 200)
	if string(again.Body) != string(r.Body) || again.Header.Get(wire.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("retried approval: %s, want the first answer replayed", again.Body)
	}
	wantCode(t, approve(t, a, TokenBob, cr.ID, "again"), 409, wire.CodeChangeNotPending)
	wantCode(t, Do(t, "POST", a.URL+"/v1/changes/"+cr.ID+"/reject", `{"changeReason":"late"}`, as(TokenBob)), 409, wire.CodeChangeNotPending)
	if f := getFlag(t, a, "f"); f.Version != applied.AppliedVersion {
		t.Fatalf("flag f changed again (version %d) after refused decisions", f.Version)
	}

	// The audit log: requester, approver and both reasons.
	entries := auditEntries(t, a, "entity=flag:f&actor=bob")
	if len(entries) != 1 {
		t.Fatalf("audit entries of flag f by bob: %+v", entries)
	}
	e := entries[0]
	if e.Action != "update" || e.Subject != "bob" || e.RequestedBy != "alice" || e.ApprovedBy != "bob" ||
		e.ChangeReason != "turn f off for the migration" || e.ApprovalReason != "reviewed" || e.ChangeRequest != cr.ID || e.Emergency {
		t.Fatalf("audit entry of the approval: %+v", e)
	}
	if n := len(auditEntries(t, a, "entity=flag:f&actor=alice")); n != 2 { // her proposal and the change she requested
		t.Fatalf("%d audit entries of flag f with alice as an actor, want 2", n)
	}

	// A stale change: f changes (another approved request) after it was made.
	tagF = flagETag(t, a, "f")
	stale := propose(t, a, "PATCH", "/v1/flags/f?environment=prod", `{"owners":["x"],"changeReason":"owners"}`, "If-Match: "+tagF)
	first := propose(t, a, "PATCH", "/v1/flags/f?environment=prod", `{"owners":["y"],"changeReason":"owners too"}`, "If-Match: "+tagF)
	want(t, approve(t, a, TokenBob, first.ID, "ok"), 200)
	if ev := nextEvent(t, sb); ev.FlagKey != "f" {
		t.Fatalf("stream event %+v, want flag f", ev)
	}
	r = approve(t, b, TokenBob, stale.ID, "ok")
	wantCode(t, r, 409, wire.CodeChangeStale)
	if f := getFlag(t, b, "f"); strings.Join(f.Owners, ",") != "y" {
		t.Fatalf("owners %v after the stale approval, want [y]", f.Owners)
	}
	r = Do(t, "GET", a.URL+"/v1/changes/"+stale.ID, "", as(TokenBob))
	if got := changeOf(t, r); got.Status != wire.ChangeStale || got.CurrentETag != flagETag(t, a, "f") {
		t.Fatalf("the stale change request: %s", r.Body)
	}
	wantCode(t, approve(t, a, TokenBob, stale.ID, "ok"), 409, wire.CodeChangeNotPending)

	// A kill switch goes off at once, for a principal without flags:approve,
	// audited as an emergency; turning it back on needs approval.
	r = Do(t, "PATCH", b.URL+"/v1/flags/kill?environment=prod", `{"state":"off","changeReason":"incident 42"}`,
		as(TokenCarol), "If-Match: "+flagETag(t, b, "kill"))
	want(t, r, 200)
	if ev := nextEvent(t, sb); ev.FlagKey != "kill" {
		t.Fatalf("stream event %+v, want the kill switch", ev)
	}
	em := auditEntries(t, a, "entity=flag:kill")
	if len(em) != 1 || !em[0].Emergency || em[0].Subject != "carol" || em[0].ChangeReason != "incident 42" || em[0].ApprovedBy != "" {
		t.Fatalf("kill switch audit: %+v", em)
	}
	on := propose(t, b, "PATCH", "/v1/flags/kill?environment=prod", `{"state":"on","changeReason":"incident over"}`, "If-Match: "+flagETag(t, b, "kill"))
	// Turning off a flag that is not a kill switch needs approval.
	propose(t, b, "PATCH", "/v1/flags/g?environment=prod", `{"state":"off","changeReason":"not a kill switch"}`, "If-Match: "+flagETag(t, b, "g"))

	// Rejection (idempotent), by the approver; nothing applied.
	rej := Do(t, "POST", a.URL+"/v1/changes/"+on.ID+"/reject", `{"changeReason":"wait for the postmortem"}`, as(TokenBob), "Idempotency-Key: r-1")
	want(t, rej, 200)
	if got := changeOf(t, rej); got.Status != wire.ChangeRejected || got.DecidedBy != "bob" || got.DecisionReason != "wait for the postmortem" {
		t.Fatalf("rejected change: %s", rej.Body)
	}
	rej2 := Do(t, "POST", b.URL+"/v1/changes/"+on.ID+"/reject", `{"changeReason":"wait for the postmortem"}`, as(TokenBob), "Idempotency-Key: r-1")
	if rej2.Status != 200 || string(rej2.Body) != string(rej.Body) || rej2.Header.Get(wire.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("retried rejection: %d %s", rej2.Status, rej2.Body)
	}
	wantCode(t, approve(t, b, TokenBob, on.ID, "ok"), 409, wire.CodeChangeNotPending)
	if getFlag(t, a, "kill").State != "off" {
		t.Fatal("a rejected change was applied")
	}

	// Create and delete go through approval too.
	created := propose(t, a, "POST", "/v1/flags?environment=prod", `{"key":"newf","changeReason":"new flag"}`)
	wantCode(t, Do(t, "GET", a.URL+"/v1/flags/newf?environment=prod", "", as(TokenBob)), 404, wire.CodeFlagNotFound)
	want(t, approve(t, b, TokenBob, created.ID, "ok"), 200)
	if ev := nextEvent(t, sb); ev.FlagKey != "newf" {
		t.Fatalf("stream event %+v, want newf", ev)
	}
	del := propose(t, b, "DELETE", "/v1/flags/newf?environment=prod&changeReason=cleanup", "", "If-Match: "+flagETag(t, a, "newf"))
	if del.Action != "delete" || len(del.Diff.After) != 0 {
		t.Fatalf("delete change request %+v", del)
	}
	want(t, approve(t, a, TokenBob, del.ID, "ok"), 200)
	wantCode(t, Do(t, "GET", b.URL+"/v1/flags/newf?environment=prod", "", as(TokenBob)), 404, wire.CodeFlagNotFound)

	// Concurrent approvals of one change, one on each server: one applies.
	one := propose(t, a, "PATCH", "/v1/flags/g?environment=prod", `{"owners":["race"],"changeReason":"race"}`, "If-Match: "+flagETag(t, a, "g"))
	answers := make([]*Response, 4)
	var wg sync.WaitGroup
	for i := range answers {
		s := []*Server{a, b}[i%2]
		wg.Go(func() { answers[i] = approve(t, s, TokenBob, one.ID, "race") })
	}
	wg.Wait()
	won := 0
	var statuses []int
	for _, r := range answers {
		statuses = append(statuses, r.Status)
		var eb wire.ErrorBody
		switch {
		case r.Status == 200:
			won++
		case r.Status == 409 && json.Unmarshal(r.Body, &eb) == nil && eb.Error.Code == wire.CodeChangeNotPending:
		default:
			t.Fatalf("concurrent approval: %d %s, want 200 or 409 change_not_pending", r.Status, r.Body)
		}
	}
	if won != 1 {
		t.Fatalf("concurrent approvals: statuses %v, want exactly one 200", statuses)
	}
	n := 0
	for _, e := range auditEntries(t, b, "entity=flag:g") {
		if e.ChangeRequest == one.ID && e.Action == "update" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the change was applied %d times", n)
	}
}
