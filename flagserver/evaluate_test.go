package flagserver

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// TestEvaluateSeedExample replays the seed's evaluate request and checks the
// seed's response, field for field.
func TestEvaluateSeedExample(t *testing.T) {
	ts := newTestServer(t, Options{})
	r := ts.do("POST", "/v1/evaluate", seedEvaluateBody, "X-Request-Id: r-01J3Z3ZQ9P3ZQ7")
	r.wantStatus(t, 200)
	var got wire.EvaluateResponse
	r.json(t, &got)
	if got.RequestID != "r-01J3Z3ZQ9P3ZQ7" || r.header.Get("X-Request-Id") != got.RequestID {
		t.Errorf("requestId %q, header %q", got.RequestID, r.header.Get("X-Request-Id"))
	}
	if len(got.Decisions) != 2 {
		t.Fatalf("%d decisions", len(got.Decisions))
	}
	d0, d1 := got.Decisions[0], got.Decisions[1]
	if d0.FlagKey != "checkout-new-flow" || string(d0.Variant) != "true" || d0.TTLSeconds != 60 {
		t.Errorf("decision 0: %s", mustJSON(d0))
	}
	if d0.Reason == nil || d0.Reason.RuleID != "rule-2" || d0.Reason.Segment != "beta_testers" || d0.Reason.Kind != "SEGMENT_MATCH" {
		t.Errorf("decision 0 reason: %s", mustJSON(d0.Reason))
	}
	if d1.FlagKey != "pricing-experiment" || string(d1.Variant) != `"B"` || d1.VariantKey != "B" {
		t.Errorf("decision 1: %s", mustJSON(d1))
	}
	var payload map[string]any
	if err := json.Unmarshal(d1.Payload, &payload); err != nil || payload["price"] != 23.0 || payload["currency"] != "EUR" {
		t.Errorf("decision 1 payload %s", d1.Payload)
	}
	if d1.Bucketing == nil || d1.Bucketing.Seed != "pricing-experiment" || len(d1.Bucketing.Hash) != 64 {
		t.Fatalf("decision 1 bucketing: %s", mustJSON(d1.Bucketing))
	}
	hash, bucket := evaluate.Bucket(testkit.SeedSalt(), "pricing-experiment", "acme-co-1337")
	if d1.Bucketing.Hash != fmt.Sprintf("%x", hash) || d1.Bucketing.Bucket != int(bucket) || d1.Bucketing.By != "accountId" {
		t.Errorf("bucketing %s, want hash %x bucket %d", mustJSON(d1.Bucketing), hash, bucket)
	}
	if d1.Reason == nil || d1.Reason.Kind != "ROLLOUT" || d1.Reason.Bucket == nil || *d1.Reason.Bucket != int(bucket) {
		t.Errorf("decision 1 reason %s", mustJSON(d1.Reason))
	}

	// The seed's curl smoke test: one request, includeReasons only (no payloads).
	r = ts.do("POST", "/v1/evaluate", `{
    "environment":"prod",
    "requests":[{"flagKey":"checkout-new-flow","defaultValue":false,"context":{"userId":"8a7f4c91","plan":"pro"}}],
    "options":{"includeReasons":true}
  }`)
	r.wantStatus(t, 200)
	got = wire.EvaluateResponse{}
	r.json(t, &got)
	if len(got.Decisions) != 1 || string(got.Decisions[0].Variant) != "true" || got.Decisions[0].Reason.RuleID != "rule-2" {
		t.Errorf("smoke test: %s", r.body)
	}
	if !strings.HasPrefix(got.RequestID, "r-") || got.RequestID != r.header.Get("X-Request-Id") {
		t.Errorf("generated request id %q / %q", got.RequestID, r.header.Get("X-Request-Id"))
	}

	// Without options: no reason, no payload.
	r = ts.do("POST", "/v1/evaluate", `{"environment":"prod","requests":[{"flagKey":"pricing-experiment","defaultValue":"control","context":{"accountId":"acme-co-1337"}}]}`)
	got = wire.EvaluateResponse{}
	r.json(t, &got)
	if d := got.Decisions[0]; d.Reason != nil || d.Payload != nil || d.Bucketing == nil {
		t.Errorf("no options: %s", r.body)
	}
}

func TestEvaluatePerDecisionErrors(t *testing.T) {
	ts := newTestServer(t, Options{})
	r := ts.do("POST", "/v1/evaluate", `{"environment":"prod","requests":[
		{"flagKey":"nope","defaultValue":{"a":1}},
		{"flagKey":"checkout-new-flow","defaultValue":"wrong-type","context":{"plan":"pro"}},
		{"flagKey":"checkout-new-flow","context":{"plan":"pro"}},
		{"flagKey":"pricing-experiment","defaultValue":"control","context":{"country":"DE"}}
	]}`)
	r.wantStatus(t, 200)
	var got wire.EvaluateResponse
	r.json(t, &got)
	d := got.Decisions
	if string(d[0].Variant) != `{"a":1}` || d[0].Error == nil || d[0].Error.Code != "FLAG_NOT_FOUND" || d[0].Reason.Kind != "ERROR" {
		t.Errorf("missing flag: %s", mustJSON(d[0]))
	}
	if string(d[1].Variant) != `"wrong-type"` || d[1].Error == nil || d[1].Error.Code != "TYPE_MISMATCH" {
		t.Errorf("type mismatch: %s", mustJSON(d[1]))
	}
	if string(d[2].Variant) != "true" || d[2].Error != nil {
		t.Errorf("no default: %s", mustJSON(d[2]))
	}
	// No bucketing attribute: the off variant, not an error.
	if string(d[3].Variant) != `"control"` || d[3].Error != nil {
		t.Errorf("missing bucketing attribute: %s", mustJSON(d[3]))
	}
}

func TestEvaluateExplainAndNumbers(t *testing.T) {
	cfg := &evaluate.Config{Environment: "prod", Flags: []evaluate.Flag{{
		Key:   "big-ids",
		Rules: []evaluate.Rule{{ID: "exact", When: "userId == 9007199254740993", Serve: evaluate.Serve{Variant: true}}},
	}}}
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{cfg}})
	// 2^53+1 does not survive float64; UseNumber keeps it.
	r := ts.do("POST", "/v1/evaluate", `{"requests":[{"flagKey":"big-ids","defaultValue":false,"context":{"userId":9007199254740993}},
		{"flagKey":"big-ids","defaultValue":false,"context":{"userId":9007199254740992}}],"options":{"explain":true,"includeReasons":true}}`)
	r.wantStatus(t, 200)
	var got wire.EvaluateResponse
	r.json(t, &got)
	if string(got.Decisions[0].Variant) != "true" || string(got.Decisions[1].Variant) != "false" {
		t.Errorf("large ids lost precision: %s", r.body)
	}
	if len(got.Decisions[0].Explain) == 0 || got.Decisions[0].Explain[0].Step != "rule" || !got.Decisions[0].Explain[0].Matched {
		t.Errorf("explain: %s", mustJSON(got.Decisions[0].Explain))
	}
}

func TestEvaluateRequestErrors(t *testing.T) {
	ts := newTestServer(t, Options{MaxBodyBytes: 200 << 10})
	many := make([]string, MaxBatch+1)
	for i := range many {
		many[i] = `{"flagKey":"x"}`
	}
	tests := []struct {
		name, body, ctype string
		status            int
		code              string
	}{
		{"malformed", `{"requests": [`, "application/json", 400, wire.CodeMalformedJSON},
		{"syntax", `{"requests": x}`, "application/json", 400, wire.CodeMalformedJSON},
		{"wrong type", `{"requests": {}}`, "application/json", 400, wire.CodeBadRequest},
		{"trailing", `{} {}`, "application/json", 400, wire.CodeMalformedJSON},
		{"content type", `{}`, "text/plain", 415, wire.CodeUnsupportedMediaType},
		{"no content type", `{}`, "", 415, wire.CodeUnsupportedMediaType},
		{"unknown env", `{"environment":"nope","requests":[]}`, "application/json", 404, wire.CodeEnvironmentNotFound},
		{"batch", `{"requests":[` + strings.Join(many, ",") + `]}`, "application/json", 400, wire.CodeBatchTooLarge},
		{"too large", `{"requests":[],"pad":"` + strings.Repeat("x", 300<<10) + `"}`, "application/json", 413, wire.CodeBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do("POST", "/v1/evaluate", tt.body, "Content-Type: "+tt.ctype)
			e := r.wantError(t, tt.status, tt.code)
			if tt.code == wire.CodeMalformedJSON {
				if _, ok := e.Details.(map[string]any)["offset"]; !ok {
					t.Errorf("no offset in %s", r.body)
				}
			}
		})
	}
	r := ts.do("POST", "/v1/evaluate", `{"requests": [`)
	if e := r.apiError(t); e.Details.(map[string]any)["offset"] != float64(14) {
		t.Errorf("offset: %s", r.body)
	}
}

// BenchmarkServerEvaluate10 measures POST /v1/evaluate with a batch of 10
// through the whole handler (auth, rate limiting off, decoding, evaluation,
// encoding), in process.
func BenchmarkServerEvaluate10(b *testing.B) {
	s, err := New(Options{
		Configs:   []*evaluate.Config{seedConfig()},
		Tokens:    []Token{{Secret: "t", Subject: "bench", Scopes: []string{wire.ScopeRead}}},
		ReadLimit: RateLimit{PerSecond: -1},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var reqs []string
	for i := range 10 {
		if i%2 == 0 {
			reqs = append(reqs, fmt.Sprintf(`{"flagKey":"checkout-new-flow","defaultValue":false,"context":{"userId":"user-%d","plan":"pro","region":"US"}}`, i))
		} else {
			reqs = append(reqs, fmt.Sprintf(`{"flagKey":"pricing-experiment","defaultValue":"control","context":{"accountId":"acct-%d","country":"DE"}}`, i))
		}
	}
	body := []byte(`{"environment":"prod","requests":[` + strings.Join(reqs, ",") + `],"options":{"includeReasons":true,"returnPayloads":true}}`)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := newBenchRequest(body)
		w := &discardWriter{h: make(map[string][]string, 8)}
		s.ServeHTTP(w, req)
		if w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
}
