package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	alice.get(res.header.Get("Location")).wantContains(t, "Change request cr-1 approved and applied.", `<span class="status applied">applied</span>`, "<dt>decidedBy</dt><dd>alice</dd>",
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

// A server without change requests (no endpoint) says so on the page.
func TestChangeRequestsUnsupported(t *testing.T) {
	h := newHarness(t, Options{})
	b := h.browser(t)
	b.signIn(adminToken.Secret)
	b.get("/ui/changes?environment=prod").wantStatus(t, http.StatusOK).wantContains(t, "no change requests")
}
