package flagserver

import (
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// TestRestartKeepsAcknowledgedWrites: every write acknowledged before a
// restart is there after it, with versions and audit.
func TestRestartKeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	s1, err := New(Options{DataDir: dir, Configs: []*evaluate.Config{seedConfig()}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s1)
	ts := &testServer{Server: s1, URL: hs.URL, hs: hs, t: t}
	var acked []string
	for i, key := range []string{"a", "b", "c", "d"} {
		r := ts.do("POST", "/v1/flags?environment=prod", `{"key":"`+key+`","changeReason":"r`+string(rune('0'+i))+`"}`)
		r.wantStatus(t, 201)
		acked = append(acked, key)
	}
	etag := getETag(t, ts, "/v1/flags/checkout-new-flow")
	ts.do("PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"off","state":"off"}`, "If-Match: "+etag).wantStatus(t, 200)
	if _, err := s1.PutSegment("prod", evaluate.Segment{Key: "s", Included: []string{"x"}}, "svc", "seg"); err != nil {
		t.Fatal(err)
	}
	before := ts.do("GET", "/v1/flags?environment=prod", "")
	s1.Close()
	hs.Close()

	// Restart with a different seed config: the stored environment wins.
	other := &evaluate.Config{Environment: "prod", Flags: []evaluate.Flag{{Key: "only-in-seed"}}}
	s2, err := New(Options{DataDir: dir, Configs: []*evaluate.Config{other, {Environment: "new-env"}}})
	if err != nil {
		t.Fatal(err)
	}
	ts2 := newTestServerFrom(t, s2)
	after := ts2.do("GET", "/v1/flags?environment=prod", "")
	if string(after.body) != string(before.body) || after.header.Get("ETag") != before.header.Get("ETag") {
		t.Fatalf("config changed across restart:\n%s\n%s", before.body, after.body)
	}
	var cfg evaluate.Config
	after.json(t, &cfg)
	if cfg.Version != 6 {
		t.Errorf("version %d, want 6", cfg.Version)
	}
	snap, _ := s2.Snapshot("prod")
	for _, k := range acked {
		if _, ok := snap.Flag(k); !ok {
			t.Errorf("acknowledged flag %q lost", k)
		}
	}
	if f, _ := snap.Flag("checkout-new-flow"); f.State != "off" {
		t.Errorf("acknowledged PATCH lost")
	}
	// A new environment from Options.Configs is seeded.
	ts2.do("GET", "/v1/flags?environment=new-env", "").wantStatus(t, 200)
	var a wire.AuditResponse
	ts2.do("GET", "/v1/audit", "").json(t, &a)
	if len(a.Entries) != 6 || a.Entries[5].Entity != "segment:s" || a.Entries[0].ID != 1 {
		t.Fatalf("audit after restart: %s", mustJSON(a))
	}
	// Writes continue from the stored version, audit ids too.
	if v, err := s2.PutFlag("prod", evaluate.Flag{Key: "e"}, "t", "r"); err != nil || v != 7 {
		t.Fatalf("PutFlag after restart: %d %v", v, err)
	}
	a = wire.AuditResponse{}
	ts2.do("GET", "/v1/audit?entity=flag:e", "").json(t, &a)
	if len(a.Entries) != 1 || a.Entries[0].ID != 7 {
		t.Errorf("audit id %s", mustJSON(a))
	}
}

// close stops the server and its listener (a restart closes the data dir
// before opening it again); the test's cleanup closing them again is
// harmless.
func (ts *testServer) close() {
	ts.Server.Close()
	ts.hs.Close()
}

func newTestServerFrom(t *testing.T, s *Server) *testServer {
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return &testServer{Server: s, URL: hs.URL, hs: hs, t: t}
}

func TestNewErrors(t *testing.T) {
	bad := &evaluate.Config{Environment: "prod", Flags: []evaluate.Flag{{Key: "x", Rules: []evaluate.Rule{{ID: "r", Segment: "missing", Serve: evaluate.Serve{Variant: true}}}}}}
	if _, err := New(Options{Configs: []*evaluate.Config{bad}}); err == nil {
		t.Error("a config that does not compile was accepted")
	}
	if _, err := New(Options{Configs: []*evaluate.Config{{Environment: "a"}, {Environment: "a"}}}); err == nil {
		t.Error("duplicate environments accepted")
	}
	if _, err := New(Options{Tokens: []Token{{Subject: "x"}}}); err == nil {
		t.Error("empty token secret accepted")
	}
	if _, err := New(Options{SigningKey: ed25519.PrivateKey{1, 2}}); err == nil {
		t.Error("short signing key accepted")
	}
}

func TestBootstrap(t *testing.T) {
	clock := testkit.NewClock()
	_, priv, _ := ed25519.GenerateKey(nil)
	ts := newTestServer(t, Options{Now: clock.Now, SigningKey: priv})
	r := ts.do("GET", "/v1/bootstrap?environment=prod&ttl=720h", "")
	r.wantStatus(t, 200)
	var env wire.BootstrapEnvelope
	r.json(t, &env)
	keys := map[string]ed25519.PublicKey{ts.KeyID(): ts.PublicKey()}
	if err := env.Verify(keys, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if !env.ExpiresAt.Equal(clock.Now().Add(720*time.Hour)) || env.Environment != "prod" || env.Version != 0 {
		t.Errorf("envelope %s", r.body)
	}
	var cfg evaluate.Config
	if err := json.Unmarshal(env.Payload, &cfg); err != nil || len(cfg.Flags) != 2 {
		t.Errorf("payload %s", env.Payload)
	}
	if _, err := evaluate.Compile(&cfg); err != nil {
		t.Errorf("payload does not compile: %v", err)
	}
	if err := env.Verify(keys, clock.Now().Add(721*time.Hour)); err == nil {
		t.Error("expired envelope verified")
	}
	// Default TTL is 7 days.
	env = wire.BootstrapEnvelope{}
	ts.do("GET", "/v1/bootstrap", "").json(t, &env)
	if !env.ExpiresAt.Equal(clock.Now().Add(7 * 24 * time.Hour)) {
		t.Errorf("default expiry %s", env.ExpiresAt)
	}
	ts.do("GET", "/v1/bootstrap?ttl=forever", "").wantError(t, 400, wire.CodeBadRequest)
	ts.do("GET", "/v1/bootstrap?environment=nope", "").wantError(t, 404, wire.CodeEnvironmentNotFound)
}

// FuzzEvaluateRequest: any body to POST /v1/evaluate gets a JSON response
// and never panics.
func FuzzEvaluateRequest(f *testing.F) {
	for _, b := range testkit.ReadFiles(f, "testdata/evaluate/*.json") {
		f.Add(b)
	}
	f.Add([]byte(`{"requests":null}`))
	f.Add([]byte(`[`))
	f.Add([]byte(``))
	s, err := New(Options{Configs: []*evaluate.Config{seedConfig()}, ReadLimit: RateLimit{PerSecond: -1}})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/v1/evaluate", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("status %d: response is not JSON: %q", w.Code, w.Body.String())
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("Content-Type %q", ct)
		}
		if w.Code != http.StatusOK && w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge && w.Code != http.StatusNotFound {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	})
}
