package flagserver

import (
	"net/http"
	"testing"
	"time"

	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// TestHMACRepeatsWithinOneSecond: identical signed requests (a refetch, a
// retry, a stream reconnect) sent within the same second — here the same
// instant of the server's clock — all succeed; only a byte-identical
// replay of one of them is refused.
func TestHMACRepeatsWithinOneSecond(t *testing.T) {
	clock := testkit.NewClock()
	secret := []byte("s3cret")
	ts := newTestServer(t, Options{Now: clock.Now, HMACKeys: map[string][]byte{"ci": secret}})
	var first http.Header
	for i := range 20 {
		req, _ := http.NewRequest("GET", ts.URL+"/v1/flags?environment=prod", nil)
		wire.SignRequest(req, nil, "ci", secret, clock.Now())
		if i == 0 {
			first = req.Header.Clone()
		}
		doReq(t, req).wantStatus(t, 200)
	}
	body := []byte(`{"environment":"prod","requests":[{"flagKey":"checkout-new-flow","context":{"plan":"pro"}}]}`)
	for range 20 {
		signedRequest(t, ts, "POST", "/v1/evaluate", body, "ci", secret, clock.Now()).wantStatus(t, 200)
	}
	replay, _ := http.NewRequest("GET", ts.URL+"/v1/flags?environment=prod", nil)
	replay.Header = first
	e := doReq(t, replay).wantError(t, 401, wire.CodeBadSignature)
	t.Logf("replay refused: %s", e.Message)
}

// TestHMACReplayCacheBounded: the nonce cache never holds more than
// MaxSignatureNonces entries; when full, the oldest are evicted and
// requests signed no later than them are refused (never a replay
// admitted); entries expire with the skew window.
func TestHMACReplayCacheBounded(t *testing.T) {
	clock := testkit.NewClock()
	secret := []byte("s3cret")
	ts := newTestServer(t, Options{Now: clock.Now, HMACKeys: map[string][]byte{"ci": secret}, MaxSignatureNonces: 4})
	sign := func(at time.Time) *http.Request {
		req, _ := http.NewRequest("GET", ts.URL+"/v1/flags?environment=prod", nil)
		wire.SignRequest(req, nil, "ci", secret, at)
		return req
	}
	base := clock.Now()
	var oldest http.Header
	for i := range 4 {
		req := sign(base.Add(time.Duration(i) * time.Millisecond))
		if i == 0 {
			oldest = req.Header.Clone()
		}
		doReq(t, req).wantStatus(t, 200)
	}
	// A fifth evicts the oldest (signed at base): its replay is still
	// refused, now by the floor.
	doReq(t, sign(base.Add(10*time.Millisecond))).wantStatus(t, 200)
	replay, _ := http.NewRequest("GET", ts.URL+"/v1/flags?environment=prod", nil)
	replay.Header = oldest
	doReq(t, replay).wantError(t, 401, wire.CodeBadSignature)
	// A fresh request signed at base is refused too (the window shrank).
	doReq(t, sign(base)).wantError(t, 401, wire.CodeBadSignature)
	ts.sig.mu.Lock()
	n := len(ts.sig.seen)
	ts.sig.mu.Unlock()
	if n > 4 {
		t.Fatalf("replay cache holds %d entries, limit 4", n)
	}
	// After the window, everything has expired.
	clock.Advance(wire.MaxSignatureSkew + time.Second)
	doReq(t, sign(clock.Now())).wantStatus(t, 200)
	ts.sig.mu.Lock()
	n = len(ts.sig.seen)
	ts.sig.mu.Unlock()
	if n != 1 {
		t.Fatalf("replay cache holds %d entries after the window, want 1", n)
	}
}
