package flagserver

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// seedConfig is the seed guide's prod environment: checkout-new-flow
// (rule-2 serves true to segment beta_testers) and pricing-experiment (a
// 50/50 control/B rollout by accountId, B with a price payload).
func seedConfig() *evaluate.Config {
	return &evaluate.Config{
		Environment: "prod",
		Salt:        testkit.SeedSalt(),
		Segments: []evaluate.Segment{
			{Key: "beta_testers", When: "plan == 'pro'"},
		},
		Flags: []evaluate.Flag{
			{
				Key:    "checkout-new-flow",
				Owners: []string{"payments-team"},
				Rules: []evaluate.Rule{
					{ID: "rule-1", When: "region == 'EU' and plan == 'free'", Serve: evaluate.Serve{Variant: false}},
					{ID: "rule-2", Segment: "beta_testers", Serve: evaluate.Serve{Variant: true}},
				},
			},
			{
				Key:  "pricing-experiment",
				Type: evaluate.TypeString,
				Variants: []evaluate.Variant{
					{Name: "control"},
					{Name: "B", Payload: map[string]any{"price": 23.00, "currency": "EUR"}},
				},
				Bucketing: evaluate.Bucketing{Seed: "pricing-experiment", By: "accountId"},
				Default: &evaluate.Serve{Rollout: []evaluate.WeightedVariant{
					{Variant: "control", Weight: 50}, {Variant: "B", Weight: 50},
				}},
			},
		},
	}
}

// The seed's evaluate request, verbatim.
// seedEvaluateBody is the seed's evaluate request, verbatim, shared with the
// CLI's tests (testdata/seed at the repository root).
var seedEvaluateBody = func() string {
	b, err := os.ReadFile("../testdata/seed/evaluate-request.json")
	if err != nil {
		panic(err) // test fixture missing: fail loudly
	}
	return string(b)
}()

// testServer is a flagserver behind an httptest server.
type testServer struct {
	*Server
	URL string
	hs  *httptest.Server
	t   testing.TB
}

// newTestServer starts a server with opts (the seed config when it has
// none), closed when the test ends.
func newTestServer(t testing.TB, opts Options) *testServer {
	t.Helper()
	return startTestServer(t, opts, nil)
}

// startTestServer is newTestServer with setup run on the httptest server
// before it starts (nil: none).
func startTestServer(t testing.TB, opts Options, setup func(*httptest.Server)) *testServer {
	t.Helper()
	if opts.Configs == nil {
		opts.Configs = []*evaluate.Config{seedConfig()}
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(s)
	if setup != nil {
		setup(hs)
	}
	hs.Start()
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return &testServer{Server: s, URL: hs.URL, hs: hs, t: t}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// apiError decodes an error body, failing the test unless it is one.
func (r *response) apiError(t testing.TB) wire.ErrorDetail {
	t.Helper()
	var eb wire.ErrorBody
	if err := json.Unmarshal(r.body, &eb); err != nil || eb.Error.Code == "" {
		t.Fatalf("status %d: not an error body: %q (%v)", r.status, r.body, err)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error Content-Type %q", ct)
	}
	return eb.Error
}

func (r *response) wantStatus(t testing.TB, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
}

// wantError checks status and error code.
func (r *response) wantError(t testing.TB, status int, code string) wire.ErrorDetail {
	t.Helper()
	r.wantStatus(t, status)
	e := r.apiError(t)
	if e.Code != code {
		t.Fatalf("error code %q, want %q (%s)", e.Code, code, r.body)
	}
	return e
}

// do sends a request; headers are "Name: value" pairs. A non-empty body is
// sent as application/json unless a Content-Type header is given.
func (ts *testServer) do(method, path, body string, headers ...string) *response {
	ts.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	setHeaders(req, headers)
	return doReq(ts.t, req)
}

// setHeaders sets headers given as "Name: value" pairs on req.
// oneWins sends n requests at once, request i built by req, and fails t
// unless exactly one got 200 and every other 412 (a lost compare-and-set).
func oneWins(t *testing.T, n int, req func(i int) *http.Request) {
	t.Helper()
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := http.DefaultClient.Do(req(i))
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			statuses[i] = res.StatusCode
		})
	}
	close(start)
	wg.Wait()
	won, lost := 0, 0
	for _, s := range statuses {
		switch s {
		case 200:
			won++
		case 412:
			lost++
		}
	}
	if won != 1 || lost != n-1 {
		t.Fatalf("statuses %v: %d won, %d got 412", statuses, won, lost)
	}
}

func setHeaders(req *http.Request, headers []string) {
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
}

// doReq sends req and reads the whole answer.
func doReq(t testing.TB, req *http.Request) *response {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: b}
}

// openStream opens the environment's stream (from lastEventID when set;
// headers are "Name: value" pairs).
func (ts *testServer) openStream(t testing.TB, env, lastEventID string, headers ...string) *testkit.Stream {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.URL+"/v1/stream?environment="+env, nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	setHeaders(req, headers)
	return testkit.OpenStream(t, nil, req)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
