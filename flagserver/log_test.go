package flagserver

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	sse "github.com/tmaxmax/go-sse"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRequestLogNeverHasSecrets: request logs carry method, path, status,
// duration, request id and subject, never tokens or attribute values.
func TestRequestLogNeverHasSecrets(t *testing.T) {
	var buf syncBuffer
	ts := newTestServer(t, Options{
		Logger: slog.New(slog.NewJSONHandler(&buf, nil)),
		Tokens: []Token{{Secret: "super-secret-token", Subject: "svc-checkout", Scopes: []string{wire.ScopeRead}}},
	})
	ts.do("POST", "/v1/evaluate?environment=prod", `{"requests":[{"flagKey":"checkout-new-flow","context":{"userId":"pii-user-123","email":"a@b.example"}}]}`,
		"Authorization: Bearer super-secret-token", "X-Request-Id: log-test-1").wantStatus(t, 200)
	ts.do("GET", "/v1/flags?environment=prod", "", "Authorization: Bearer wrong-secret-token").wantStatus(t, 401)
	out := buf.String()
	for _, secret := range []string{"super-secret-token", "wrong-secret-token", "pii-user-123", "a@b.example"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["method"] != "POST" || rec["path"] != "/v1/evaluate" || rec["status"] != float64(200) || rec["requestId"] != "log-test-1" ||
		rec["subject"] != "svc-checkout" || rec["duration"] == nil {
		t.Errorf("log record %v", rec)
	}
}

// TestStreamGoSSEReader parses the stream with go-sse's own reader.
func TestStreamGoSSEReader(t *testing.T) {
	ts := newTestServer(t, Options{})
	req, _ := http.NewRequest("GET", ts.URL+"/v1/stream?environment=prod", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	for i := range 3 {
		ts.PutFlag("prod", evaluate.Flag{Key: "k" + string(rune('a'+i))}, "t", "r")
	}
	i := 0
	for ev, err := range sse.Read(res.Body, nil) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == "" { // the retry hint
			continue
		}
		var se wire.StreamEvent
		json.Unmarshal([]byte(ev.Data), &se)
		if ev.Type != "invalidate" || se.FlagKey != "k"+string(rune('a'+i)) || ev.LastEventID != strconv.FormatInt(se.Version, 10) {
			t.Fatalf("event %d: %+v", i, ev)
		}
		if i++; i == 3 {
			break
		}
	}
}
