package flagserver

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// serveInProcess sends one request to s without a network (for request
// counts that would take loopback seconds).
func serveInProcess(s *Server, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	var req *http.Request
	if body != "" {
		req = httptest.NewRequest(method, target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req = httptest.NewRequest(method, target, nil)
	}
	setHeaders(req, headers)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

// TestDefaultReadLimitServesAFleet: with the default limits, one read
// token shared by a fleet is never throttled: 10,000 reads (GET, POST
// /v1/evaluate, OFREP) at one instant of the server's clock all succeed,
// with no X-RateLimit headers (there is no limit to report). Writes keep
// their default of 20/s with a burst of 40, and failed authentication its
// 2/s with a burst of 20 per address.
func TestDefaultReadLimitServesAFleet(t *testing.T) {
	clock := testkit.NewClock()
	s, err := New(Options{
		Now:         clock.Now,
		Configs:     seedConfigs(),
		Tokens:      []Token{{Secret: "fleet", Scopes: []string{wire.ScopeRead}}, {Secret: "ci", Scopes: []string{wire.ScopeWrite}}},
		DecisionTTL: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reads := []struct{ method, target, body string }{
		{"GET", "/v1/flags?environment=prod", ""},
		{"POST", "/v1/evaluate", `{"environment":"prod","requests":[{"flagKey":"checkout-new-flow","context":{"plan":"pro"}}]}`},
		{"POST", "/ofrep/v1/evaluate/flags/checkout-new-flow", `{"context":{"targetingKey":"u1","plan":"pro"}}`},
	}
	const n = 10_000
	for i := range n {
		rd := reads[i%len(reads)]
		w := serveInProcess(s, rd.method, rd.target, rd.body, "Authorization: Bearer fleet")
		if w.Code != http.StatusOK {
			t.Fatalf("read %d of %d (%s %s) at one instant: %d %s", i+1, n, rd.method, rd.target, w.Code, w.Body)
		}
		if h := w.Header().Get(wire.HeaderRateLimitLimit); h != "" {
			t.Fatalf("read %d: X-RateLimit-Limit %q without a read limit", i+1, h)
		}
	}
	// Writes: DefaultWriteLimit's burst, then 429.
	for i := range DefaultWriteLimit.Burst + 1 {
		w := serveInProcess(s, "POST", "/v1/flags?environment=prod", `{"key":"w`+strconv.Itoa(i)+`","changeReason":"r"}`, "Authorization: Bearer ci")
		want := http.StatusCreated
		if i == DefaultWriteLimit.Burst {
			want = http.StatusTooManyRequests
		}
		if w.Code != want {
			t.Fatalf("write %d: %d, want %d (%s)", i+1, w.Code, want, w.Body)
		}
	}
	if DefaultWriteLimit != (RateLimit{PerSecond: 20, Burst: 40}) || DefaultAuthFailureLimit != (RateLimit{PerSecond: 2, Burst: 20}) {
		t.Errorf("documented defaults changed: write %v, failed auth %v", DefaultWriteLimit, DefaultAuthFailureLimit)
	}
}

// seedConfigs is seedConfig as Options.Configs.
func seedConfigs() []*evaluate.Config { return []*evaluate.Config{seedConfig()} }

// TestTokenRateLimits: a token's own ReadLimit and WriteLimit replace the
// server's, in both directions (stricter, looser, off); a token without
// them gets the server's.
func TestTokenRateLimits(t *testing.T) {
	clock := testkit.NewClock()
	s, err := New(Options{
		Now:        clock.Now,
		Configs:    seedConfigs(),
		ReadLimit:  RateLimit{PerSecond: 1, Burst: 5},
		WriteLimit: RateLimit{PerSecond: 1, Burst: 1},
		Tokens: []Token{
			{Secret: "public", Scopes: []string{wire.ScopeRead}, ReadLimit: RateLimit{PerSecond: 1, Burst: 2}},
			{Secret: "fleet", Scopes: []string{wire.ScopeRead}, ReadLimit: Unlimited},
			{Secret: "plain", Scopes: []string{wire.ScopeRead, wire.ScopeWrite}},
			{Secret: "pipeline", Scopes: []string{wire.ScopeWrite}, WriteLimit: RateLimit{PerSecond: 100}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// reads returns how many of n reads at one instant succeed, and the
	// X-RateLimit-Limit of the first.
	reads := func(token string, n int) (ok int, limitHeader string) {
		for i := range n {
			w := serveInProcess(s, "GET", "/v1/flags?environment=prod", "", "Authorization: Bearer "+token)
			if i == 0 {
				limitHeader = w.Header().Get(wire.HeaderRateLimitLimit)
			}
			if w.Code == http.StatusOK {
				ok++
			} else if w.Code != http.StatusTooManyRequests {
				t.Fatalf("%s: status %d %s", token, w.Code, w.Body)
			}
		}
		return ok, limitHeader
	}
	for _, tc := range []struct {
		token  string
		ok     int
		header string
	}{
		{"public", 2, "2"},  // its own, stricter
		{"fleet", 1000, ""}, // its own: off
		{"plain", 5, "5"},   // the server's
	} {
		if ok, h := reads(tc.token, 1000); ok != tc.ok || h != tc.header {
			t.Errorf("%s: %d of 1000 reads at one instant, X-RateLimit-Limit %q; want %d, %q", tc.token, ok, h, tc.ok, tc.header)
		}
	}
	writes := func(token string, n int) (ok int) {
		for i := range n {
			w := serveInProcess(s, "POST", "/v1/flags?environment=prod", `{"key":"`+token+strconv.Itoa(i)+`","changeReason":"r"}`, "Authorization: Bearer "+token)
			if w.Code == http.StatusCreated {
				ok++
			}
		}
		return ok
	}
	// pipeline: 100/s and a burst of 100 (the rate rounded up).
	if got := writes("pipeline", 150); got != 100 {
		t.Errorf("pipeline: %d of 150 writes at one instant, want 100", got)
	}
	if got := writes("plain", 3); got != 1 {
		t.Errorf("plain: %d of 3 writes at one instant, want 1 (the server's burst)", got)
	}
	clock.Advance(time.Second) // refills a token of "public" (1/s)
	if ok, _ := reads("public", 3); ok != 1 {
		t.Errorf("public after 1s: %d reads, want 1", ok)
	}
}

// TestRateLimitText: the text form of flags and tokens files.
func TestRateLimitText(t *testing.T) {
	good := []struct {
		in   string
		want RateLimit
		out  string
	}{
		{"20/s,40", RateLimit{PerSecond: 20, Burst: 40}, "20/s,40"},
		{"20,40", RateLimit{PerSecond: 20, Burst: 40}, "20/s,40"},
		{" 5000 ", RateLimit{PerSecond: 5000}, "5000/s"},
		{"0.5/s, 3", RateLimit{PerSecond: 0.5, Burst: 3}, "0.5/s,3"},
		{"off", Unlimited, "off"},
		{"OFF", Unlimited, "off"},
		{"unlimited", Unlimited, "off"},
		{"default", RateLimit{}, "default"},
	}
	for _, tc := range good {
		got, err := ParseRateLimit(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRateLimit(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if s := got.String(); s != tc.out {
			t.Errorf("%+v.String() = %q, want %q", got, s, tc.out)
		}
		if again, err := ParseRateLimit(got.String()); err != nil || again != got {
			t.Errorf("round trip of %q: %+v, %v", got.String(), again, err)
		}
	}
	for _, in := range []string{"", "0", "-1", "abc", "20/m", "20,0", "20,-1", "20,1.5", "NaN", "Inf", "1e400", "20,40,60"} {
		if got, err := ParseRateLimit(in); err == nil {
			t.Errorf("ParseRateLimit(%q) = %+v, want an error", in, got)
		} else if !strings.Contains(err.Error(), "RATE[/s][,BURST]") {
			t.Errorf("ParseRateLimit(%q): error %q does not name the form", in, err)
		}
	}
	// JSON: the text form as a string, or the struct form; either
	// marshals back to the text form.
	var tok Token
	if err := json.Unmarshal([]byte(`{"secret":"s","readLimit":{"perSecond":-1},"writeLimit":"5/s,10"}`), &tok); err != nil {
		t.Fatal(err)
	}
	if tok.ReadLimit != Unlimited || tok.WriteLimit != (RateLimit{PerSecond: 5, Burst: 10}) {
		t.Errorf("token limits %+v %+v", tok.ReadLimit, tok.WriteLimit)
	}
	if b, err := json.Marshal(tok); err != nil || !strings.Contains(string(b), `"readLimit":"off","writeLimit":"5/s,10"`) {
		t.Errorf("marshalled %s, %v", b, err)
	}
	for _, bad := range []string{`"0"`, `{"perSecond":"x"}`, `[1]`} {
		var l RateLimit
		if err := json.Unmarshal([]byte(bad), &l); err == nil {
			t.Errorf("json %s: %+v, want an error", bad, l)
		}
	}
}

// TestNewRefusesBadRateLimits: a rate that is not a finite number is an
// error from New, naming the limit.
func TestNewRefusesBadRateLimits(t *testing.T) {
	for name, opts := range map[string]Options{
		"ReadLimit":  {ReadLimit: RateLimit{PerSecond: math.NaN()}},
		"WriteLimit": {WriteLimit: RateLimit{PerSecond: math.Inf(1)}},
		"readLimit":  {Tokens: []Token{{Secret: "x", ReadLimit: RateLimit{PerSecond: math.Inf(-1)}}}},
	} {
		if s, err := New(opts); err == nil {
			s.Close()
			t.Errorf("%s: New accepted it", name)
		} else if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %q does not name it", name, err)
		}
	}
}
