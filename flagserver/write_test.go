package flagserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

func getETag(t *testing.T, ts *testServer, path string) string {
	t.Helper()
	r := ts.do("GET", path, "")
	r.wantStatus(t, 200)
	var doc struct {
		ETag string `json:"etag"`
	}
	r.json(t, &doc)
	if doc.ETag == "" || doc.ETag != r.header.Get("ETag") {
		t.Fatalf("etag body %q header %q", doc.ETag, r.header.Get("ETag"))
	}
	return doc.ETag
}

func TestGetConfig(t *testing.T) {
	ts := newTestServer(t, Options{})
	r := ts.do("GET", "/v1/flags?environment=prod", "")
	r.wantStatus(t, 200)
	etag := r.header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || r.header.Get("Cache-Control") != "max-age=60" {
		t.Fatalf("headers %v", r.header)
	}
	var cfg evaluate.Config
	r.json(t, &cfg)
	if cfg.Environment != "prod" || len(cfg.Flags) != 2 {
		t.Fatalf("config %s", r.body)
	}
	if etagOf(r.body) != etag {
		t.Errorf("ETag is not the hash of the body")
	}
	r = ts.do("GET", "/v1/flags?environment=prod", "", "If-None-Match: "+etag)
	r.wantStatus(t, 304)
	if len(r.body) != 0 || r.header.Get("ETag") != etag {
		t.Errorf("304: body %q etag %q", r.body, r.header.Get("ETag"))
	}
	ts.do("GET", "/v1/flags", "").wantError(t, 400, wire.CodeBadRequest)
	ts.do("GET", "/v1/flags?environment=nope", "").wantError(t, 404, wire.CodeEnvironmentNotFound)

	// Any change changes the ETag and the version.
	if _, err := ts.PutFlag("prod", evaluate.Flag{Key: "another"}, "t", "test"); err != nil {
		t.Fatal(err)
	}
	r = ts.do("GET", "/v1/flags?environment=prod", "", "If-None-Match: "+etag)
	r.wantStatus(t, 200)
	var cfg2 evaluate.Config
	r.json(t, &cfg2)
	if r.header.Get("ETag") == etag || cfg2.Version != cfg.Version+1 {
		t.Errorf("after a write: etag %s→%s version %d→%d", etag, r.header.Get("ETag"), cfg.Version, cfg2.Version)
	}
}

func TestGetFlag(t *testing.T) {
	ts := newTestServer(t, Options{})
	etag := getETag(t, ts, "/v1/flags/checkout-new-flow") // environment defaults to prod
	if etag2 := getETag(t, ts, "/v1/flags/checkout-new-flow?environment=prod"); etag2 != etag {
		t.Errorf("etag not stable: %s %s", etag, etag2)
	}
	var f evaluate.Flag
	r := ts.do("GET", "/v1/flags/checkout-new-flow", "")
	r.json(t, &f)
	if f.Key != "checkout-new-flow" || len(f.Rules) != 2 {
		t.Errorf("flag %s", r.body)
	}
	ts.do("GET", "/v1/flags/checkout-new-flow", "", "If-None-Match: "+etag).wantStatus(t, 304)
	ts.do("GET", "/v1/flags/nope", "").wantError(t, 404, wire.CodeFlagNotFound)
	ts.do("GET", "/v1/flags/checkout-new-flow?environment=staging", "").wantError(t, 404, wire.CodeEnvironmentNotFound)
}

// TestRolloutStepScript is the seed's "adding a rollout step safely": GET
// the etag, PATCH with If-Match and Idempotency-Key, retry → identical.
func TestRolloutStepScript(t *testing.T) {
	ts := newTestServer(t, Options{})
	etag := getETag(t, ts, "/v1/flags/checkout-new-flow")
	body := `{
    "changeReason": "Expanding canary after stable metrics",
    "rules": [{"id":"gradual","percentage":25,"seed":"checkout-new-flow"}]
  }`
	hdrs := []string{"If-Match: " + etag, "Idempotency-Key: roll-2026-06-25-01"}
	r1 := ts.do("PATCH", "/v1/flags/checkout-new-flow", body, hdrs...)
	r1.wantStatus(t, 200)
	var f evaluate.Flag
	r1.json(t, &f)
	if len(f.Rules) != 1 || f.Rules[0].ID != "gradual" || *f.Rules[0].Percentage != 25 {
		t.Fatalf("patched flag %s", r1.body)
	}
	if len(f.Owners) != 1 {
		t.Errorf("PATCH dropped untouched fields: %s", r1.body)
	}
	r2 := ts.do("PATCH", "/v1/flags/checkout-new-flow", body, hdrs...)
	r2.wantStatus(t, 200)
	if string(r2.body) != string(r1.body) || r2.header.Get("ETag") != r1.header.Get("ETag") || r2.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry differs:\n%s\n%s\n%v", r1.body, r2.body, r2.header)
	}
	if r1.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("first response marked replayed")
	}
	// Only one change was applied.
	var audit wire.AuditResponse
	ts.do("GET", "/v1/audit?entity=flag:checkout-new-flow", "").json(t, &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].ChangeReason != "Expanding canary after stable metrics" || audit.Entries[0].Action != "update" {
		t.Fatalf("audit %s", mustJSON(audit))
	}
	// Same key, another body → 422.
	ts.do("PATCH", "/v1/flags/checkout-new-flow", strings.Replace(body, "25", "50", 1), hdrs...).
		wantError(t, 422, wire.CodeIdempotencyKeyReused)

	// 25% of users now get true.
	var reqs []string
	for i := range 1000 {
		reqs = append(reqs, fmt.Sprintf(`{"flagKey":"checkout-new-flow","defaultValue":false,"context":{"userId":"u%d"}}`, i))
	}
	var got wire.EvaluateResponse
	ts.do("POST", "/v1/evaluate", `{"environment":"prod","requests":[`+strings.Join(reqs, ",")+`]}`).json(t, &got)
	on := 0
	for _, d := range got.Decisions {
		if string(d.Variant) == "true" {
			on++
		}
	}
	if on < 200 || on > 300 {
		t.Errorf("%d of 1000 users on, want about 250", on)
	}
}

func TestWriteErrors(t *testing.T) {
	ts := newTestServer(t, Options{})
	etag := getETag(t, ts, "/v1/flags/checkout-new-flow")
	before := ts.do("GET", "/v1/flags?environment=prod", "").header.Get("ETag")
	im := "If-Match: " + etag
	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		code                     string
	}{
		{"patch without If-Match", "PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"x","state":"off"}`, nil, 428, wire.CodePreconditionRequired},
		{"delete without If-Match", "DELETE", "/v1/flags/checkout-new-flow?changeReason=x", "", nil, 428, wire.CodePreconditionRequired},
		{"stale If-Match", "PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"x","state":"off"}`, []string{`If-Match: "stale"`}, 412, wire.CodePreconditionFailed},
		{"stale delete", "DELETE", "/v1/flags/checkout-new-flow?changeReason=x", "", []string{`If-Match: "stale"`}, 412, wire.CodePreconditionFailed},
		{"no change reason in prod", "PATCH", "/v1/flags/checkout-new-flow", `{"state":"off"}`, []string{im}, 400, wire.CodeChangeReasonRequired},
		{"unknown field", "PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"x","colour":"red"}`, []string{im}, 400, wire.CodeUnknownField},
		{"bad field type", "PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"x","rules":"all"}`, []string{im}, 400, wire.CodeBadRequest},
		{"malformed", "PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":`, []string{im}, 400, wire.CodeMalformedJSON},
		{"not an object", "PATCH", "/v1/flags/checkout-new-flow", `[1]`, []string{im}, 400, wire.CodeBadRequest},
		{"rename", "PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"x","key":"other"}`, []string{im}, 400, wire.CodeBadRequest},
		{"compile error", "PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"x","rules":[{"id":"r","segment":"no_such_segment","variant":true}]}`, []string{im}, 400, wire.CodeCompileError},
		{"rule syntax", "PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"x","rules":[{"id":"r","when":"plan ==","variant":true}]}`, []string{im}, 400, wire.CodeCompileError},
		{"unknown flag", "PATCH", "/v1/flags/nope", `{"changeReason":"x"}`, []string{im}, 404, wire.CodeFlagNotFound},
		{"unknown env", "PATCH", "/v1/flags/checkout-new-flow?environment=nope", `{"changeReason":"x"}`, []string{im}, 404, wire.CodeEnvironmentNotFound},
		{"content type", "PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"x"}`, []string{im, "Content-Type: text/plain"}, 415, wire.CodeUnsupportedMediaType},
		{"create existing", "POST", "/v1/flags?environment=prod", `{"key":"checkout-new-flow","changeReason":"x"}`, nil, 409, wire.CodeConflict},
		{"create without key", "POST", "/v1/flags?environment=prod", `{"changeReason":"x"}`, nil, 400, wire.CodeBadRequest},
		{"create env mismatch", "POST", "/v1/flags?environment=prod", `{"key":"k","environment":"dev","changeReason":"x"}`, nil, 400, wire.CodeBadRequest},
		{"create unknown field", "POST", "/v1/flags", `{"key":"k","changeReason":"x","nope":1}`, nil, 400, wire.CodeUnknownField},
		{"create bad key", "POST", "/v1/flags", `{"key":"a b","changeReason":"x"}`, nil, 400, wire.CodeCompileError},
		{"delete required by nothing but unknown", "DELETE", "/v1/flags/nope?changeReason=x", "", []string{im}, 404, wire.CodeFlagNotFound},
		{"delete body unknown field", "DELETE", "/v1/flags/checkout-new-flow", `{"why":"x"}`, []string{im}, 400, wire.CodeUnknownField},
		{"bad idempotency key", "PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"x"}`, []string{im, "Idempotency-Key: " + strings.Repeat("k", 300)}, 400, wire.CodeBadRequest},
		{"method", "PUT", "/v1/flags/checkout-new-flow", `{}`, nil, 405, wire.CodeMethodNotAllowed},
		{"route", "GET", "/v1/nothing", "", nil, 404, wire.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(tt.method, tt.path, tt.body, tt.headers...)
			e := r.wantError(t, tt.status, tt.code)
			// A client reads the API's words, not a Go package's error prefix.
			if e.Message == "" || strings.Contains(e.Message, "flagserver:") {
				t.Errorf("message %q: want one without a Go package prefix", e.Message)
			}
			switch tt.status {
			case 412:
				if e.Details.(map[string]any)["etag"] != etag {
					t.Errorf("412 details %v, want etag %s", e.Details, etag)
				}
			case 405:
				if r.header.Get("Allow") == "" {
					t.Errorf("405 without Allow")
				}
			case 400:
				if tt.code == wire.CodeChangeReasonRequired && e.Details.(map[string]any)["field"] != "changeReason" {
					t.Errorf("details %v", e.Details)
				}
				if tt.code == wire.CodeCompileError {
					if f := e.Details.(map[string]any)["findings"].([]any); len(f) == 0 {
						t.Errorf("no findings")
					}
				}
			}
		})
	}
	if after := ts.do("GET", "/v1/flags?environment=prod", "").header.Get("ETag"); after != before {
		t.Errorf("failed writes changed the config")
	}
	var audit wire.AuditResponse
	ts.do("GET", "/v1/audit", "").json(t, &audit)
	if len(audit.Entries) != 0 {
		t.Errorf("failed writes were audited: %s", mustJSON(audit))
	}
}

func TestCreatePatchDelete(t *testing.T) {
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{seedConfig(), {Environment: "dev"}}})
	// dev needs no change reason.
	r := ts.do("POST", "/v1/flags?environment=dev", `{"key":"new-ui","variants":[{"name":"on","value":true},{"name":"off","value":false}],"offVariant":"off","default":{"variant":"on"}}`)
	r.wantStatus(t, 201)
	if loc := r.header.Get("Location"); loc != "/v1/flags/new-ui?environment=dev" {
		t.Errorf("Location %q", loc)
	}
	etag := r.header.Get("ETag")
	var f evaluate.Flag
	r.json(t, &f)
	if f.Version != 1 {
		t.Errorf("version %d", f.Version)
	}
	// The environment can also come from the body.
	ts.do("POST", "/v1/flags", `{"key":"from-body","environment":"dev"}`).wantStatus(t, 201)
	// A null removes a field.
	r = ts.do("PATCH", "/v1/flags/new-ui?environment=dev", `{"default":null,"state":"off"}`, "If-Match: "+etag)
	r.wantStatus(t, 200)
	f = evaluate.Flag{}
	r.json(t, &f)
	if f.Default != nil || f.State != "off" || f.Version != 3 || len(f.Variants) != 2 {
		t.Errorf("patched: %s", r.body)
	}
	// The GET document can be sent back whole (etag is ignored).
	etag = getETag(t, ts, "/v1/flags/new-ui?environment=dev")
	doc := ts.do("GET", "/v1/flags/new-ui?environment=dev", "").body
	ts.do("PATCH", "/v1/flags/new-ui?environment=dev", string(doc), "If-Match: "+etag).wantStatus(t, 200)
	// Unquoted If-Match (quotes lost in a shell) is accepted.
	etag = getETag(t, ts, "/v1/flags/new-ui?environment=dev")
	r = ts.do("DELETE", "/v1/flags/new-ui?environment=dev", "", "If-Match: "+strings.Trim(etag, `"`))
	r.wantStatus(t, 200)
	var del wire.DeleteResponse
	r.json(t, &del)
	if !del.Deleted || del.Key != "new-ui" || del.Version != 5 {
		t.Errorf("delete: %s", r.body)
	}
	ts.do("GET", "/v1/flags/new-ui?environment=dev", "").wantError(t, 404, wire.CodeFlagNotFound)
	// Deleting a flag that another requires does not compile.
	_, err := ts.PutFlag("dev", evaluate.Flag{Key: "child", Prerequisites: []evaluate.Prerequisite{{FlagKey: "from-body", Variants: []any{true}}}}, "t", "")
	if err != nil {
		t.Fatal(err)
	}
	etag = getETag(t, ts, "/v1/flags/from-body?environment=dev")
	ts.do("DELETE", "/v1/flags/from-body?environment=dev", `{"changeReason":"cleanup"}`, "If-Match: "+etag).wantError(t, 400, wire.CodeCompileError)
	// Programmatic errors.
	if _, err := ts.PutFlag("prod", evaluate.Flag{Key: "x"}, "t", ""); err == nil || !strings.Contains(err.Error(), "changeReason") {
		t.Errorf("PutFlag without reason in prod: %v", err)
	}
	if _, err := ts.PutFlag("nope", evaluate.Flag{Key: "x"}, "t", "r"); err == nil {
		t.Errorf("PutFlag to unknown env succeeded")
	}
	if err := ts.DeleteFlag("dev", "nope", "t", ""); err == nil {
		t.Errorf("DeleteFlag of unknown flag succeeded")
	}
	if err := ts.DeleteFlag("dev", "child", "t", ""); err != nil {
		t.Errorf("DeleteFlag: %v", err)
	}
}

// TestConcurrentWriters: many writers with the same ETag; exactly one wins.
func TestConcurrentWriters(t *testing.T) {
	ts := newTestServer(t, Options{})
	etag := getETag(t, ts, "/v1/flags/checkout-new-flow")
	oneWins(t, 16, func(i int) *http.Request {
		body := fmt.Sprintf(`{"changeReason":"writer %d","rules":[{"id":"w%d","percentage":%d}]}`, i, i, i+1)
		req, _ := http.NewRequest("PATCH", ts.URL+"/v1/flags/checkout-new-flow", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("If-Match", etag)
		return req
	})
}

func TestSegments(t *testing.T) {
	ts := newTestServer(t, Options{})
	ids := make([]string, 100000)
	for i := range ids {
		ids[i] = fmt.Sprintf("user-%06d", i)
	}
	body, _ := json.Marshal(map[string]any{"key": "big_static", "included": ids, "changeReason": "import"})
	if len(body) <= DefaultMaxBodyBytes {
		t.Fatalf("test body is only %d bytes", len(body))
	}
	r := ts.do("POST", "/v1/segments?environment=prod", string(body))
	r.wantStatus(t, 201)
	etag := r.header.Get("ETag")
	// A flag can target it.
	fb := `{"key":"static-flag","changeReason":"x","rules":[{"id":"in","segment":"big_static","variant":true}]}`
	ts.do("POST", "/v1/flags?environment=prod", fb).wantStatus(t, 201)
	var got wire.EvaluateResponse
	ts.do("POST", "/v1/evaluate", `{"requests":[{"flagKey":"static-flag","context":{"userId":"user-099999"}},{"flagKey":"static-flag","context":{"userId":"user-100000"}}]}`).json(t, &got)
	if string(got.Decisions[0].Variant) != "true" || string(got.Decisions[1].Variant) != "false" {
		t.Errorf("static membership: %s", mustJSON(got))
	}
	// Rule-based segment via PATCH (If-Match rules as for flags).
	ts.do("PATCH", "/v1/segments/big_static", `{"changeReason":"x","when":"plan == 'pro'"}`).wantError(t, 428, wire.CodePreconditionRequired)
	ts.do("PATCH", "/v1/segments/big_static", `{"changeReason":"x","when":"plan == 'pro'"}`, `If-Match: "old"`).wantError(t, 412, wire.CodePreconditionFailed)
	r = ts.do("PATCH", "/v1/segments/big_static", `{"changeReason":"x","when":"plan == 'pro'","included":null}`, "If-Match: "+etag, "Idempotency-Key: seg-1")
	r.wantStatus(t, 200)
	var seg evaluate.Segment
	r.json(t, &seg)
	if seg.When != "plan == 'pro'" || len(seg.Included) != 0 {
		t.Errorf("segment %s", r.body)
	}
	got = wire.EvaluateResponse{}
	ts.do("POST", "/v1/evaluate", `{"requests":[{"flagKey":"static-flag","context":{"userId":"user-000001","plan":"pro"}}]}`).json(t, &got)
	if string(got.Decisions[0].Variant) != "true" {
		t.Errorf("rule segment: %s", mustJSON(got))
	}
	ts.do("GET", "/v1/segments/nope", "").wantError(t, 404, wire.CodeSegmentNotFound)
	// Deleting a segment a flag uses does not compile.
	etag = getETag(t, ts, "/v1/segments/big_static")
	ts.do("DELETE", "/v1/segments/big_static?changeReason=x", "", "If-Match: "+etag).wantError(t, 400, wire.CodeCompileError)
	// Over the segment limit: 413.
	huge := `{"key":"huge","included":["` + strings.Repeat("x", DefaultMaxSegmentBodyBytes) + `"]}`
	ts.do("POST", "/v1/segments", huge).wantError(t, 413, wire.CodeBodyTooLarge)
	// Programmatic.
	if _, err := ts.PutSegment("prod", evaluate.Segment{Key: "s2", Included: []string{"a"}}, "t", "r"); err != nil {
		t.Fatal(err)
	}
}

func TestAudit(t *testing.T) {
	clock := testkit.NewClock()
	ts := newTestServer(t, Options{Now: clock.Now, Tokens: []Token{
		{Secret: "w", Subject: "alice", Scopes: []string{wire.ScopeRead, wire.ScopeWrite, ScopeAuditRead}},
	}})
	etag := getETagAuth(t, ts, "/v1/flags/checkout-new-flow", "w")
	ts.do("PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"turn off","state":"off"}`, "If-Match: "+etag, "Authorization: Bearer w", "X-Request-Id: req-1").wantStatus(t, 200)
	if _, err := ts.PutSegment("prod", evaluate.Segment{Key: "beta_testers", When: "plan == 'enterprise'"}, "bob", "narrow"); err != nil {
		t.Fatal(err)
	}
	var a wire.AuditResponse
	ts.do("GET", "/v1/audit?entity=flag:checkout-new-flow", "", "Authorization: Bearer w").json(t, &a)
	if len(a.Entries) != 1 {
		t.Fatalf("entries %s", mustJSON(a))
	}
	e := a.Entries[0]
	if e.Subject != "alice" || e.Action != "update" || e.ChangeReason != "turn off" || e.RequestID != "req-1" ||
		!e.Time.Equal(clock.Now()) || e.Environment != "prod" || e.Entity != "flag:checkout-new-flow" {
		t.Errorf("entry %s", mustJSON(e))
	}
	var before, after evaluate.Flag
	json.Unmarshal(e.Before, &before)
	json.Unmarshal(e.After, &after)
	if before.State != "" || after.State != "off" {
		t.Errorf("before/after %s / %s", e.Before, e.After)
	}
	a = wire.AuditResponse{}
	ts.do("GET", "/v1/audit?entity=segment:beta_testers&environment=prod", "", "Authorization: Bearer w").json(t, &a)
	if len(a.Entries) != 1 || a.Entries[0].Subject != "bob" {
		t.Errorf("segment audit %s", mustJSON(a))
	}
	ts.do("GET", "/v1/audit?entity=bogus", "", "Authorization: Bearer w").wantError(t, 400, wire.CodeBadRequest)
}

func getETagAuth(t *testing.T, ts *testServer, path, token string) string {
	t.Helper()
	r := ts.do("GET", path, "", "Authorization: Bearer "+token)
	r.wantStatus(t, 200)
	return r.header.Get("ETag")
}
