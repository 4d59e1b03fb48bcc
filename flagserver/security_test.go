package flagserver

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

func TestAuth(t *testing.T) {
	ts := newTestServer(t, Options{
		Configs: []*evaluate.Config{seedConfig(), {Environment: "dev"}},
		Tokens: []Token{
			{Secret: "reader", Subject: "r", Scopes: []string{wire.ScopeRead}},
			{Secret: "writer", Subject: "w", Scopes: []string{wire.ScopeRead, wire.ScopeWrite}},
			{Secret: "dev-only", Subject: "d", Scopes: []string{wire.ScopeRead, wire.ScopeWrite}, Environments: []string{"dev"}},
		},
	})
	evalBody := `{"environment":"prod","requests":[]}`
	tests := []struct {
		name, method, path, body, auth string
		status                         int
		code                           string
	}{
		{"missing", "GET", "/v1/flags?environment=prod", "", "", 401, wire.CodeUnauthorized},
		{"unknown", "GET", "/v1/flags?environment=prod", "", "Bearer nope", 401, wire.CodeUnauthorized},
		{"scheme", "GET", "/v1/flags?environment=prod", "", "Basic cmVhZGVy", 401, wire.CodeUnauthorized},
		{"reader reads", "GET", "/v1/flags?environment=prod", "", "Bearer reader", 200, ""},
		{"reader evaluates", "POST", "/v1/evaluate", evalBody, "Bearer reader", 200, ""},
		{"reader writes", "POST", "/v1/flags?environment=prod", `{"key":"x","changeReason":"r"}`, "Bearer reader", 403, wire.CodeForbidden},
		{"writer writes", "POST", "/v1/flags?environment=prod", `{"key":"x","changeReason":"r"}`, "Bearer writer", 201, ""},
		{"env-limited token elsewhere", "GET", "/v1/flags?environment=prod", "", "Bearer dev-only", 403, wire.CodeForbidden},
		{"env-limited evaluate elsewhere", "POST", "/v1/evaluate", evalBody, "Bearer dev-only", 403, wire.CodeForbidden},
		{"env-limited token at home", "GET", "/v1/flags?environment=dev", "", "Bearer dev-only", 200, ""},
		{"env-limited stream elsewhere", "GET", "/v1/stream?environment=prod", "", "Bearer dev-only", 403, wire.CodeForbidden},
		{"audit", "GET", "/v1/audit", "", "", 401, wire.CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(tt.method, tt.path, tt.body, "Authorization: "+tt.auth)
			if tt.code == "" {
				r.wantStatus(t, tt.status)
				return
			}
			r.wantError(t, tt.status, tt.code)
			if tt.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// The dev-only token sees only dev in the audit log.
	var a wire.AuditResponse
	ts.do("GET", "/v1/audit", "", "Authorization: Bearer dev-only").json(t, &a)
	if len(a.Entries) != 0 {
		t.Errorf("dev-only token sees %s", mustJSON(a))
	}
}

func TestRateLimit(t *testing.T) {
	clock := testkit.NewClock()
	ts := newTestServer(t, Options{
		Now:        clock.Now,
		Tokens:     []Token{{Secret: "a", Scopes: []string{wire.ScopeRead, wire.ScopeWrite}}, {Secret: "b", Scopes: []string{wire.ScopeRead}}},
		ReadLimit:  RateLimit{PerSecond: 1, Burst: 3},
		WriteLimit: RateLimit{PerSecond: 0.5, Burst: 1},
	})
	get := func(tok string) *response {
		return ts.do("GET", "/v1/flags?environment=prod", "", "Authorization: Bearer "+tok)
	}
	for i := range 3 {
		r := get("a")
		r.wantStatus(t, 200)
		if r.header.Get("X-RateLimit-Limit") != "3" || r.header.Get("X-RateLimit-Remaining") != strconv.Itoa(2-i) || r.header.Get("X-RateLimit-Reset") == "" {
			t.Fatalf("request %d headers %v", i, r.header)
		}
	}
	r := get("a")
	r.wantError(t, 429, wire.CodeRateLimited)
	if r.header.Get("Retry-After") != "1" || r.header.Get("X-RateLimit-Remaining") != "0" || r.header.Get("X-RateLimit-Reset") != "3" {
		t.Fatalf("429 headers %v", r.header)
	}
	// Another token has its own bucket.
	get("b").wantStatus(t, 200)
	// Writes are limited apart from reads.
	ts.do("POST", "/v1/flags?environment=prod", `{"key":"w1","changeReason":"r"}`, "Authorization: Bearer a").wantStatus(t, 201)
	r = ts.do("POST", "/v1/flags?environment=prod", `{"key":"w2","changeReason":"r"}`, "Authorization: Bearer a")
	r.wantError(t, 429, wire.CodeRateLimited)
	if r.header.Get("Retry-After") != "2" {
		t.Errorf("write Retry-After %q", r.header.Get("Retry-After"))
	}
	clock.Advance(time.Second)
	get("a").wantStatus(t, 200)
}

func signedRequest(t *testing.T, ts *testServer, method, path string, body []byte, keyID string, secret []byte, at time.Time) *response {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	wire.SignRequest(req, body, keyID, secret, at)
	return doReq(t, req)
}

func TestHMAC(t *testing.T) {
	clock := testkit.NewClock()
	secret := []byte("s3cret")
	ts := newTestServer(t, Options{Now: clock.Now, HMACKeys: map[string][]byte{"ci": secret}})
	body := []byte(`{"environment":"prod","requests":[{"flagKey":"checkout-new-flow","context":{"plan":"pro"}}]}`)
	signedRequest(t, ts, "POST", "/v1/evaluate", body, "ci", secret, clock.Now()).wantStatus(t, 200)
	signedRequest(t, ts, "GET", "/v1/flags?environment=prod", nil, "ci", secret, clock.Now().Add(-4*time.Minute)).wantStatus(t, 200)

	// Replay of an identical signed request.
	req, _ := http.NewRequest("POST", ts.URL+"/v1/evaluate", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	wire.SignRequest(req, body, "ci", secret, clock.Now())
	hdr := req.Header.Clone()
	doReq(t, req).wantStatus(t, 200)
	replay, _ := http.NewRequest("POST", ts.URL+"/v1/evaluate", bytes.NewReader(body))
	replay.Header = hdr
	doReq(t, replay).wantError(t, 401, wire.CodeBadSignature)

	tests := []struct {
		name string
		r    func() *response
	}{
		{"unsigned", func() *response { return ts.do("GET", "/v1/flags?environment=prod", "") }},
		{"skew past", func() *response {
			return signedRequest(t, ts, "POST", "/v1/evaluate", body, "ci", secret, clock.Now().Add(-6*time.Minute))
		}},
		{"skew future", func() *response {
			return signedRequest(t, ts, "POST", "/v1/evaluate", body, "ci", secret, clock.Now().Add(6*time.Minute))
		}},
		{"wrong secret", func() *response {
			return signedRequest(t, ts, "POST", "/v1/evaluate", body, "ci", []byte("nope"), clock.Now())
		}},
		{"no nonce", func() *response {
			req, _ := http.NewRequest("GET", ts.URL+"/v1/flags?environment=prod", nil)
			wire.SignRequest(req, nil, "ci", secret, clock.Now())
			req.Header.Del(wire.HeaderNonce)
			return doReq(t, req)
		}},
		{"short nonce", func() *response {
			req, _ := http.NewRequest("GET", ts.URL+"/v1/flags?environment=prod", nil)
			wire.SignRequestNonce(req, nil, "ci", secret, clock.Now(), "0123456789abcdef")
			return doReq(t, req)
		}},
		{"seconds timestamp", func() *response {
			req, _ := http.NewRequest("GET", ts.URL+"/v1/flags?environment=prod", nil)
			ts := strconv.FormatInt(clock.Now().Unix(), 10)
			nonce := wire.NewNonce()
			req.Header.Set(wire.HeaderTimestamp, ts)
			req.Header.Set(wire.HeaderNonce, nonce)
			req.Header.Set(wire.HeaderSignature, "keyId=ci,sig="+wire.RequestSignature(secret, "GET", req.URL.RequestURI(), ts, nonce, nil))
			return doReq(t, req)
		}},
		{"unknown key", func() *response {
			return signedRequest(t, ts, "POST", "/v1/evaluate", body, "other", secret, clock.Now())
		}},
		{"tampered body", func() *response {
			req, _ := http.NewRequest("POST", ts.URL+"/v1/evaluate", bytes.NewReader(append([]byte(" "), body...)))
			req.Header.Set("Content-Type", "application/json")
			wire.SignRequest(req, body, "ci", secret, clock.Now())
			return doReq(t, req)
		}},
		{"tampered query", func() *response {
			req, _ := http.NewRequest("GET", ts.URL+"/v1/flags?environment=prod", nil)
			wire.SignRequest(req, nil, "ci", secret, clock.Now())
			req.URL.RawQuery = "environment=dev"
			return doReq(t, req)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r().wantError(t, 401, wire.CodeBadSignature)
		})
	}
}

func TestRequestID(t *testing.T) {
	ts := newTestServer(t, Options{})
	if id := ts.do("GET", "/v1/flags?environment=prod", "", "X-Request-Id: abc-123").header.Get("X-Request-Id"); id != "abc-123" {
		t.Errorf("echo: %q", id)
	}
	if id := ts.do("GET", "/v1/nothing", "", "X-Request-Id: bad id!").header.Get("X-Request-Id"); len(id) != 18 {
		t.Errorf("generated for invalid: %q", id)
	}
}
