package flagtest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// client is a fresh transport per test so pooled connections never cross
// tests.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func get(t *testing.T, c *http.Client, s *Server, path string) (*http.Response, []byte, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.Token())
	res, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, b, err
}

func evaluateBool(t *testing.T, c *http.Client, s *Server, env, key string) (bool, error) {
	t.Helper()
	body := `{"environment":"` + env + `","requests":[{"flagKey":"` + key + `","defaultValue":false,"context":{"userId":"u1"}}]}`
	req, _ := http.NewRequest("POST", s.URL+"/v1/evaluate", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Token())
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	var out wire.EvaluateResponse
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return false, err
	}
	if res.StatusCode != 200 || len(out.Decisions) != 1 {
		return false, errors.New(res.Status)
	}
	return string(out.Decisions[0].Variant) == "true", nil
}

func TestDefaults(t *testing.T) {
	s := NewServer(t)
	c := newClient(t)
	res, body, err := get(t, c, s, "/v1/flags?environment=prod")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("default environment: %v %s", err, body)
	}
	req, _ := http.NewRequest("GET", s.URL+"/v1/flags?environment=prod", nil)
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("no token: %d", res.StatusCode)
	}
	if s.Token() != DefaultToken || s.Flagserver() == nil || !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Errorf("server %v", s)
	}
}

func TestOptions(t *testing.T) {
	clock := func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }
	yamlFS := fstest.MapFS{"flags/prod.yaml": {Data: []byte("environment: prod\nflags:\n  - flagKey: from-yaml\n")}}
	s := NewServer(t,
		WithFlags("dev", evaluate.Flag{Key: "on-flag"}),
		WithSegments("dev", evaluate.Segment{Key: "seg", Included: []string{"u1"}}),
		WithConfig(&evaluate.Config{Environment: "staging", Flags: []evaluate.Flag{{Key: "s"}}}),
		WithYAMLDir(yamlFS, "flags"),
		WithToken("reader", wire.ScopeRead),
		WithClock(clock),
		WithKeepAlive(time.Minute),
		WithServerOptions(func(o *flagserver.Options) { o.DecisionTTL = 5 * time.Second }),
	)
	if got := s.Flagserver().Environments(); strings.Join(got, ",") != "dev,prod,staging" {
		t.Fatalf("environments %v", got)
	}
	if _, ok := s.Flagserver().Snapshot("prod"); !ok {
		t.Fatal("yaml environment missing")
	}
	c := newClient(t)
	on, err := evaluateBool(t, c, s, "dev", "on-flag")
	if err != nil || on {
		t.Errorf("on-flag: %v %v", on, err)
	}
	// The extra token reads but cannot write.
	req, _ := http.NewRequest("POST", s.URL+"/v1/flags?environment=dev", strings.NewReader(`{"key":"x"}`))
	req.Header.Set("Authorization", "Bearer reader")
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Errorf("reader write: %d", res.StatusCode)
	}
	// Bad YAML fails Start.
	if _, err := Start(WithYAMLDir(fstest.MapFS{"d/x.yaml": {Data: []byte("flagKey: [")}}, "d")); err == nil {
		t.Error("bad yaml accepted")
	}
}

func TestSetFlagAndCounts(t *testing.T) {
	s := NewServer(t)
	c := newClient(t)
	if on, _ := evaluateBool(t, c, s, DefaultEnvironment, "new-ui"); on {
		t.Fatal("unknown flag on")
	}
	v, err := s.SetFlag(DefaultEnvironment, evaluate.Flag{Key: "new-ui", Default: &evaluate.Serve{Variant: true}})
	if err != nil || v != 1 {
		t.Fatalf("SetFlag: %d %v", v, err)
	}
	if on, err := evaluateBool(t, c, s, DefaultEnvironment, "new-ui"); !on || err != nil {
		t.Fatalf("after SetFlag: %v %v", on, err)
	}
	if _, err := s.SetSegment(DefaultEnvironment, evaluate.Segment{Key: "seg"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFlag(DefaultEnvironment, "new-ui"); err != nil {
		t.Fatal(err)
	}
	if n := s.Requests("POST", "/v1/evaluate"); n != 2 {
		t.Errorf("Requests = %d", n)
	}
	if n := s.RequestCounts()["POST /v1/evaluate"]; n != 2 {
		t.Errorf("RequestCounts = %d", n)
	}
	s.ResetCounts()
	if n := s.Requests("POST", "/v1/evaluate"); n != 0 {
		t.Errorf("after reset = %d", n)
	}
	if !strings.Contains(s.String(), s.URL) {
		t.Errorf("String() = %q", s.String())
	}
}

func TestFaults(t *testing.T) {
	s := NewServer(t, WithFlags(DefaultEnvironment, evaluate.Flag{Key: "f", Default: &evaluate.Serve{Variant: true}}))
	c := newClient(t)

	t.Run("status", func(t *testing.T) {
		s.InjectFault(Fault{Method: "GET", Path: "/v1/flags", Status: 503, RetryAfter: 1500 * time.Millisecond, Count: 2})
		for range 2 {
			res, body, err := get(t, c, s, "/v1/flags?environment=prod")
			if err != nil || res.StatusCode != 503 || res.Header.Get("Retry-After") != "2" {
				t.Fatalf("fault: %v %v %s", err, res, body)
			}
			var eb wire.ErrorBody
			if json.Unmarshal(body, &eb) != nil || eb.Error.Code != "injected_fault" {
				t.Fatalf("body %s", body)
			}
		}
		// Count exhausted.
		if res, _, _ := get(t, c, s, "/v1/flags?environment=prod"); res.StatusCode != 200 {
			t.Fatalf("after count: %d", res.StatusCode)
		}
		// Requests are counted before faults.
		if n := s.Requests("GET", "/v1/flags"); n != 3 {
			t.Errorf("counted %d", n)
		}
	})
	t.Run("method and path filter", func(t *testing.T) {
		remove := s.InjectFault(Fault{Method: "POST", Path: "/v1/evaluate", Status: 500})
		if res, _, _ := get(t, c, s, "/v1/flags?environment=prod"); res.StatusCode != 200 {
			t.Errorf("GET hit by POST fault")
		}
		if _, err := evaluateBool(t, c, s, DefaultEnvironment, "f"); err == nil {
			t.Errorf("evaluate not failed")
		}
		remove()
		if on, err := evaluateBool(t, c, s, DefaultEnvironment, "f"); !on || err != nil {
			t.Errorf("after remove: %v %v", on, err)
		}
	})
	t.Run("latency", func(t *testing.T) {
		defer s.InjectFault(Fault{Path: "/v1/evaluate", Latency: 150 * time.Millisecond})()
		start := time.Now()
		if _, err := evaluateBool(t, c, s, DefaultEnvironment, "f"); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("latency %s", d)
		}
		// The wait respects the request context.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/v1/evaluate", strings.NewReader(`{}`))
		if _, err := c.Do(req); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("canceled request: %v", err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		defer s.InjectFault(Fault{Path: "/v1/evaluate", Reset: true})()
		_, err := evaluateBool(t, c, s, DefaultEnvironment, "f")
		if err == nil {
			t.Fatal("no error")
		}
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "EOF") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("malformed body", func(t *testing.T) {
		defer s.InjectFault(Fault{Path: "/v1/evaluate", Body: []byte(`{"decisions":[`)})()
		_, err := evaluateBool(t, c, s, DefaultEnvironment, "f")
		if err == nil || !strings.Contains(err.Error(), "EOF") {
			t.Errorf("error %v", err)
		}
	})
	for _, rst := range []bool{false, true} {
		t.Run("truncate", func(t *testing.T) {
			defer s.InjectFault(Fault{Path: "/v1/flags", Truncate: true, Reset: rst})()
			res, body, err := get(t, c, s, "/v1/flags?environment=prod")
			if err == nil {
				t.Fatalf("no error: %d %s", res.StatusCode, body)
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("error %v", err)
			}
			if res.StatusCode != 200 || len(body) == 0 {
				t.Errorf("status %d, %d bytes before the cut", res.StatusCode, len(body))
			}
		})
	}
	s.InjectFault(Fault{Status: 500})
	s.ClearFaults()
	if res, _, _ := get(t, c, s, "/v1/flags?environment=prod"); res.StatusCode != 200 {
		t.Errorf("after ClearFaults: %d", res.StatusCode)
	}
}

func TestDownUp(t *testing.T) {
	s := NewServer(t)
	c := newClient(t)
	url := s.URL
	s.Down()
	s.Down() // no-op
	_, _, err := get(t, c, s, "/v1/flags?environment=prod")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("while down: %v", err)
	}
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	if s.URL != url {
		t.Errorf("URL changed")
	}
	if res, _, err := get(t, c, s, "/v1/flags?environment=prod"); err != nil || res.StatusCode != 200 {
		t.Fatalf("after Up: %v", err)
	}
}

// openStream opens the default environment's stream with c.
func openStream(t *testing.T, c *http.Client, s *Server) *testkit.Stream {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+"/v1/stream?environment=prod", nil)
	req.Header.Set("Authorization", "Bearer "+s.Token())
	return testkit.OpenStream(t, c, req)
}

func TestStreams(t *testing.T) {
	s := NewServer(t)
	c := newClient(t)
	st := openStream(t, c, s)
	if s.Streams() != 1 {
		t.Fatalf("Streams = %d", s.Streams())
	}
	s.SetFlag(DefaultEnvironment, evaluate.Flag{Key: "a"})
	if d, ok := st.NextWithin(5 * time.Second); !ok || !strings.Contains(d.Data, `"flagKey":"a"`) {
		t.Fatalf("event %q %v", d.Data, ok)
	}

	// Stalled: nothing arrives, not even keep-alives; the event is lost.
	s.StallStreams(true)
	s.SetFlag(DefaultEnvironment, evaluate.Flag{Key: "b"})
	if d, ok := st.NextWithin(200 * time.Millisecond); ok {
		t.Fatalf("event while stalled: %q", d.Data)
	}
	s.StallStreams(false)
	s.SetFlag(DefaultEnvironment, evaluate.Flag{Key: "c"})
	if d, ok := st.NextWithin(5 * time.Second); !ok || !strings.Contains(d.Data, `"flagKey":"c"`) {
		t.Fatalf("after stall: %q %v", d.Data, ok)
	}

	// Dropped: the stream ends.
	s.DropStreams()
	for {
		if _, ok := st.NextWithin(5 * time.Second); !ok {
			break
		}
	}
	select {
	case <-st.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("stream not ended by DropStreams")
	}
	// Down also ends streams.
	st2 := openStream(t, c, s)
	s.Down()
	select {
	case <-st2.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("stream not ended by Down")
	}
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
}

// TestCloseEndsHandlers: Close returns once handlers have finished, even a
// request stuck in a long injected latency and an open stream.
func TestCloseEndsHandlers(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	st := openStream(t, c, s)
	s.InjectFault(Fault{Path: "/v1/evaluate", Latency: time.Hour})
	errc := make(chan error, 1)
	go func() {
		_, err := evaluateBool(t, c, s, DefaultEnvironment, "x")
		errc <- err
	}()
	// Wait until the slow request is in the handler.
	testkit.WaitFor(t, 5*time.Second, "the request to arrive", func() bool { return s.Requests("POST", "/v1/evaluate") > 0 })
	s.Close()
	s.Close() // no-op
	select {
	case err := <-errc:
		if err == nil {
			t.Error("slow request succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request still running after Close")
	}
	select {
	case <-st.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after Close")
	}
}
