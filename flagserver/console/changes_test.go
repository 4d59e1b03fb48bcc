package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
)

// fakeChanges stands for the change-request endpoints of a server that
// requires approvals (GET /v1/changes, GET /v1/changes/{id}, POST
// /v1/changes/{id}/approve|reject), with the documented shapes and rules:
// the requester cannot approve (403), approving needs flags:approve (403),
// a decided request cannot be decided again (409 change_not_pending).
// Who is asking comes from the real API's GET /v1/me. Everything else
// goes to the real API.
type fakeChanges struct {
	api http.Handler

	mu      sync.Mutex
	changes map[string]map[string]any
	reasons []string // the changeReasons of decisions, in order
}

func (f *fakeChanges) me(r *http.Request) (subject string, scopes []string, ok bool) {
	req := httptest.NewRequest("GET", "/v1/me", nil)
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	rec := httptest.NewRecorder()
	f.api.ServeHTTP(rec, req)
	var me struct {
		Subject string   `json:"subject"`
		Scopes  []string `json:"scopes"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &me) != nil {
		return "", nil, false
	}
	return me.Subject, me.Scopes, true
}

func (f *fakeChanges) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/v1/changes") {
		f.api.ServeHTTP(w, r)
		return
	}
	subject, scopes, ok := f.me(r)
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	fail := func(status int, code, msg string) {
		reply(status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
	}
	if !ok {
		fail(http.StatusUnauthorized, "unauthorized", "unknown bearer token")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rest := strings.TrimPrefix(r.URL.Path, "/v1/changes")
	switch {
	case rest == "" && r.Method == "GET":
		list := []map[string]any{}
		for _, c := range f.changes {
			if st := r.URL.Query().Get("status"); (st == "" || c["status"] == st) && c["environment"] == r.URL.Query().Get("environment") {
				list = append(list, c)
			}
		}
		reply(http.StatusOK, map[string]any{"changes": list})
	case r.Method == "GET":
		if c, ok := f.changes[strings.TrimPrefix(rest, "/")]; ok {
			reply(http.StatusOK, c)
			return
		}
		fail(http.StatusNotFound, "change_not_found", "no such change request")
	case r.Method == "POST":
		id, action, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
		c, ok := f.changes[id]
		if !ok {
			fail(http.StatusNotFound, "change_not_found", "no such change request")
			return
		}
		var body struct {
			ChangeReason string `json:"changeReason"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		switch {
		case c["requestedBy"] == subject:
			fail(http.StatusForbidden, "forbidden", "the requester cannot approve their own change")
		case !strings.Contains(strings.Join(scopes, " "), "flags:approve"):
			fail(http.StatusForbidden, "forbidden", "token lacks scope flags:approve")
		case c["status"] != "pending":
			fail(http.StatusConflict, "change_not_pending", "the change request is "+c["status"].(string))
		default:
			c["status"] = map[string]string{"approve": "applied", "reject": "rejected"}[action]
			c["decidedBy"] = subject
			f.reasons = append(f.reasons, body.ChangeReason)
			reply(http.StatusOK, c)
		}
	default:
		fail(http.StatusMethodNotAllowed, "method_not_allowed", "no")
	}
}

// The change requests page (built against the documented endpoints, here
// a fake of them): the list by status, a request's diff, approval by a
// different person with flags:approve, never by the requester.
func TestChangeRequests(t *testing.T) {
	api, err := flagserver.New(flagserver.Options{Configs: []*evaluate.Config{testConfig("prod")}, Tokens: allTokens, RequireChangeReason: map[string]bool{}})
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeChanges{api: api, changes: map[string]map[string]any{
		"cr-1": {"id": "cr-1", "status": "pending", "environment": "prod", "entity": map[string]any{"kind": "flag", "key": "search-v2"}, "requestedBy": "bob",
			"changeReason": "ramp to 50", "diff": map[string]any{"before": map[string]any{"default": map[string]any{"percentage": 10}},
				"after": map[string]any{"default": map[string]any{"percentage": 50}}}},
		"cr-2": {"id": "cr-2", "status": "pending", "environment": "prod", "entity": "flag:checkout-new-flow", "requestedBy": "bob", // the audit log's form
			"changeReason": "retire", "diff": []any{map[string]any{"op": "remove", "path": "/rules/0"}}},
	}}
	c, err := New(Options{API: fake})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(c.Mount(fake))
	t.Cleanup(func() { hs.Close(); api.Close() })
	h := &harness{api: api, console: c, hs: hs, URL: hs.URL}

	bob, alice, carol := h.browser(t), h.browser(t), h.browser(t)
	bc, ac := bob.signIn(writerToken.Secret), alice.signIn(adminToken.Secret)
	carol.signIn(readerToken.Secret)

	list := alice.get("/ui/changes?environment=prod").wantStatus(t, http.StatusOK)
	list.wantContains(t, `href="/ui/changes/cr-1">cr-1</a>`, "ramp to 50", `href="/ui/changes/cr-2">cr-2</a>`)
	bob.get("/ui/changes/cr-1").wantStatus(t, http.StatusOK).wantContains(t, "You requested this change: another person must approve it.",
		"<code>default.percentage</code></td><td><del>10</del></td><td><ins>50</ins>")
	if strings.Contains(bob.get("/ui/changes/cr-1").body, "Approve and apply") {
		t.Fatal("the requester is offered approval")
	}
	if strings.Contains(carol.get("/ui/changes/cr-1").body, "Approve and apply") {
		t.Fatal("a token without flags:approve is offered approval")
	}
	// Asked anyway, the server refuses the requester.
	bob.post("/ui/changes/cr-1/approve", url.Values{"csrf": {bc}, "reason": {"lgtm"}}).wantStatus(t, http.StatusForbidden).
		wantContains(t, "cannot approve their own change")
	alice.get("/ui/changes/cr-2").wantContains(t, "&#34;op&#34;: &#34;remove&#34;") // a diff of another shape, shown as JSON
	alice.post("/ui/changes/cr-1/approve", url.Values{"csrf": {ac}}).wantStatus(t, http.StatusBadRequest).wantContains(t, "A reason is required")
	res := alice.post("/ui/changes/cr-1/approve", url.Values{"csrf": {ac}, "reason": {"metrics fine"}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("approve: %d\n%s", res.status, res.body)
	}
	alice.get(res.header.Get("Location")).wantContains(t, "Change request cr-1 approved and applied.", `<span class="status applied">applied</span>`, "<dt>Decided by</dt><dd>alice</dd>",
		`href="/ui/flags/search-v2?environment=prod"><code>flag:search-v2</code>`)
	res = alice.post("/ui/changes/cr-2/reject", url.Values{"csrf": {ac}, "reason": {"keep it"}}).wantStatus(t, http.StatusSeeOther)
	alice.get(res.header.Get("Location")).wantContains(t, "Change request cr-2 rejected.")
	if got := fake.reasons; len(got) != 2 || got[0] != "metrics fine" || got[1] != "keep it" {
		t.Fatalf("reasons sent: %v", got)
	}
	p := alice.get("/ui/changes?environment=prod")
	if strings.Contains(p.body, "cr-1") || strings.Contains(p.body, "cr-2") {
		t.Fatal("decided requests listed as pending")
	}
	alice.get("/ui/changes?environment=prod&status=applied").wantContains(t, "cr-1")
	alice.get("/ui/changes?environment=prod&status=rejected").wantContains(t, "cr-2")
	if p := alice.post("/ui/changes/cr-1/approve", url.Values{"csrf": {ac}, "reason": {"again"}}).wantStatus(t, http.StatusConflict).
		wantContains(t, "Not applied: the change request is applied"); strings.Contains(p.body, "proposed again") {
		t.Fatal("a decided request is said to need proposing again")
	}
}

// On a protected environment (the server's approvals): a ramp opens a
// change request and changes nothing; the requester cannot approve it;
// another person approves it from its page and it is applied; a kill
// switch is applied at once as an emergency, while turning off another
// flag waits for approval; an approval that comes after the flag changed
// is refused as stale; the audit log shows requester, approver and
// emergency.
func TestChangeRequestsOnProtectedEnvironment(t *testing.T) {
	h := newHarnessAPI(t, flagserver.Options{Configs: []*evaluate.Config{testConfig("prod")}, Tokens: allTokens,
		ProtectedEnvironments: []string{"prod"}}, Options{})
	alice, bob := h.browser(t), h.browser(t)
	ac, bc := alice.signIn(adminToken.Secret), bob.signIn(writerToken.Secret)

	ramp := func(b *browser, csrf, step, reason string) *page {
		t.Helper()
		etag := b.get("/ui/flags/search-v2?environment=prod").field(t, etagRE)
		return b.post("/ui/flags/search-v2/ramp", url.Values{"csrf": {csrf}, "environment": {"prod"}, "etag": {etag},
			"target": {"default"}, "step": {step}, "reason": {reason}})
	}
	res := ramp(bob, bc, "25", "error rate flat").wantStatus(t, http.StatusSeeOther)
	notice := bob.get(res.header.Get("Location")).wantStatus(t, http.StatusOK)
	m := regexp.MustCompile(`Change request (\S+) opened: the rollout changes to 25%`).FindStringSubmatch(notice.body)
	if m == nil {
		t.Fatalf("no change request notice:\n%s", notice.body)
	}
	id := m[1]
	if got := *h.flag(t, "prod", "search-v2").Default.Percentage; got != 10 {
		t.Fatalf("a protected ramp was applied before approval: %v%%", got)
	}
	bob.get("/ui/changes/"+id).wantContains(t, "You requested this change", "<code>default.percentage</code></td><td><del>10</del></td><td><ins>25</ins>")
	bob.post("/ui/changes/"+id+"/approve", url.Values{"csrf": {bc}, "reason": {"mine"}}).wantStatus(t, http.StatusForbidden)
	alice.get("/ui/changes?environment=prod").wantContains(t, `href="/ui/changes/`+id+`"`, "error rate flat")
	alice.get("/ui/changes/"+id).wantContains(t, "Approve and apply")
	res = alice.post("/ui/changes/"+id+"/approve", url.Values{"csrf": {ac}, "reason": {"metrics fine"}}).wantStatus(t, http.StatusSeeOther)
	alice.get(res.header.Get("Location")).wantContains(t, "approved and applied", `<span class="status applied">applied</span>`)
	if got := *h.flag(t, "prod", "search-v2").Default.Percentage; got != 25 {
		t.Fatalf("approved ramp: %v%%", got)
	}

	// The kill switch stays fast; another flag's turn-off waits.
	bob.post("/ui/flags/checkout-new-flow/kill", url.Values{"csrf": {bc}, "environment": {"prod"}, "reason": {"INC-9"}}).
		wantStatus(t, http.StatusOK).wantContains(t, "is off in prod", "SDK streams were told at")
	if h.flag(t, "prod", "checkout-new-flow").State != "off" {
		t.Fatal("the kill switch waited for approval")
	}
	bob.post("/ui/flags/search-v2/kill", url.Values{"csrf": {bc}, "environment": {"prod"}, "reason": {"INC-10"}}).
		wantStatus(t, http.StatusOK).wantContains(t, "Change request opened for", "stays on until another person approves")
	if h.flag(t, "prod", "search-v2").State == "off" {
		t.Fatal("a flag that is no kill switch was turned off without approval")
	}

	// Stale: the flag changes after the request, before the approval.
	res = ramp(bob, bc, "50", "next step").wantStatus(t, http.StatusSeeOther)
	m = regexp.MustCompile(`Change request (\S+) opened`).FindStringSubmatch(bob.get(res.header.Get("Location")).body)
	f := h.flag(t, "prod", "search-v2")
	f.Metadata.Description = "edited by the operator"
	if _, err := h.api.PutFlag("prod", f, "operator", "edit"); err != nil {
		t.Fatal(err)
	}
	alice.post("/ui/changes/"+m[1]+"/approve", url.Values{"csrf": {ac}, "reason": {"ok"}}).wantStatus(t, http.StatusConflict).
		wantContains(t, "Not applied", "proposed again")

	audit := alice.get("/ui/audit?environment=prod")
	audit.wantContains(t, "Approved by alice: metrics fine", "requested by bob", `<span class="tag kill">emergency</span>`)
	if got := entries(alice.get("/ui/audit?environment=prod&actor=alice")); len(got) == 0 {
		t.Fatal("the approver's entries are not found by person")
	}
}
