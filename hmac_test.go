package flagwire

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

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
	clock := testkit.NewClock()
	clock.Set(time.Now()) // within the server's skew window; it stands still
	tr := &testkit.RecordingTransport{}
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
	var evals []testkit.Request
	for _, r := range tr.Requests() {
		if r.Method == "POST" {
			evals = append(evals, r)
		}
	}
	if len(evals) != 20 {
		t.Fatalf("%d evaluate requests, want 20", len(evals))
	}
	if !bytes.Equal(evals[0].Body, evals[19].Body) || evals[0].Header.Get(wire.HeaderTimestamp) != evals[19].Header.Get(wire.HeaderTimestamp) {
		t.Fatalf("requests differ in body or timestamp: the test would not show repeats")
	}
	// A byte-identical replay of the fifth.
	r := evals[4]
	replay, _ := http.NewRequest(r.Method, r.URL, bytes.NewReader(r.Body))
	replay.Header = r.Header.Clone()
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
