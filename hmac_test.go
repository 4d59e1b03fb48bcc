package flagwire

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/internal/wire"
)

// capturingTransport records the requests it sends (headers and body).
type capturingTransport struct {
	mu   sync.Mutex
	reqs []capturedRequest
}

type capturedRequest struct {
	method, url string
	header      http.Header
	body        []byte
}

func (ct *capturingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	ct.mu.Lock()
	ct.reqs = append(ct.reqs, capturedRequest{req.Method, req.URL.String(), req.Header.Clone(), body})
	ct.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// TestRequestSigningRepeatsWithinOneSecond: 20 identical signed evaluate
// requests from the SDK at one instant (the same second and millisecond:
// the SDK's clock stands still) all reach the server and succeed; a
// byte-identical replay of one of them is refused.
func TestRequestSigningRepeatsWithinOneSecond(t *testing.T) {
	secret := []byte("s3cret")
	srv, err := flagserver.New(flagserver.Options{
		Configs:  []*evaluate.Config{exampleConfig()},
		Tokens:   []flagserver.Token{{Secret: "tok", Scopes: []string{wire.ScopeRead}}},
		HMACKeys: map[string][]byte{"ci": secret},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()
	clock := newFakeClock()
	clock.now = time.Now() // within the server's skew window; it stands still
	tr := &capturingTransport{}
	c, err := New(context.Background(),
		WithEndpoint(hs.URL), WithToken("tok"), WithEnvironment("prod"),
		WithHTTPClient(&http.Client{Transport: tr}),
		WithRequestSigning("ci", secret),
		WithLogger(slog.New(slog.DiscardHandler)),
		withClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx := user("8a7f4c91", "pro", "US")
	for i := range 20 {
		c.Invalidate("checkout-new-flow")
		v, d := c.BoolDetail(ctx, "checkout-new-flow", false)
		// rule-1 of exampleConfig: plan pro in region US is served true.
		if !v || d.Source != SourceRemote || d.ErrorCode != "" || d.Reason.Kind != "RULE_MATCH" || d.Reason.RuleID != "rule-1" {
			t.Fatalf("request %d: value %v, detail %+v", i, v, d)
		}
	}
	tr.mu.Lock()
	reqs := tr.reqs
	tr.mu.Unlock()
	var evals []capturedRequest
	for _, r := range reqs {
		if r.method == "POST" {
			evals = append(evals, r)
		}
	}
	if len(evals) != 20 {
		t.Fatalf("%d evaluate requests, want 20", len(evals))
	}
	if !bytes.Equal(evals[0].body, evals[19].body) || evals[0].header.Get(wire.HeaderTimestamp) != evals[19].header.Get(wire.HeaderTimestamp) {
		t.Fatalf("requests differ in body or timestamp: the test would not show repeats")
	}
	// A byte-identical replay of the fifth.
	r := evals[4]
	replay, _ := http.NewRequest(r.method, r.url, bytes.NewReader(r.body))
	replay.Header = r.header.Clone()
	res, err := http.DefaultClient.Do(replay)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 401 || !bytes.Contains(b, []byte(wire.CodeBadSignature)) {
		t.Fatalf("replay: status %d %s, want 401 %s", res.StatusCode, b, wire.CodeBadSignature)
	}
}
