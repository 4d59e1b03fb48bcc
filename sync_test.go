package flagwire

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newLocal(t *testing.T, srv *flagtest.Server, opts ...Option) *Client {
	t.Helper()
	return newLocalAt(t, srv.URL, srv.Token(), opts...)
}

// newLocalAt is newLocal for a server at url, reached with token.
func newLocalAt(t *testing.T, url, token string, opts ...Option) *Client {
	t.Helper()
	base := []Option{WithEndpoint(url), WithToken(token), WithEnvironment("prod"), WithMode(ModeLocal), WithLogger(quietLogger())}
	c, err := New(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLocalModeEvaluatesInProcess(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	c := newLocal(t, srv)
	v, d := c.BoolDetail(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false)
	if !v || d.Source != SourceLocal || d.Reason.RuleID != "rule-1" {
		t.Fatalf("%v %+v", v, d)
	}
	if n := srv.Requests("POST", "/v1/evaluate"); n != 0 {
		t.Fatalf("local mode called /v1/evaluate %d times", n)
	}
	st := c.Status()
	if st.State != StateReady || st.ETag == "" || st.ConfigSource != SourceLocal {
		t.Fatalf("status %+v", st)
	}
	if _, d := c.BoolDetail(user("x", "pro", "US"), "missing", false); d.ErrorCode != CodeFlagNotFound {
		t.Fatalf("missing flag: %+v", d)
	}
}

// TestSSEPropagation checks that every server-side change reaches
// client.Bool over SSE on loopback, in local and remote modes, and logs how
// fast. The target (p99 ≤ 50 ms) is BenchmarkSSEPropagation's figure, not
// an assertion: a test bounding wall-clock latency fails on a loaded
// machine without any defect.
func TestSSEPropagation(t *testing.T) {
	for _, mode := range []Mode{ModeLocal, ModeRemote} {
		t.Run(mode.String(), func(t *testing.T) {
			const changes = 200
			lat := measurePropagation(t, mode, changes)
			slices.Sort(lat)
			t.Logf("%s mode: SSE propagation over %d changes: p50 %v, p99 %v, max %v", mode, changes, testkit.Quantile(lat, 0.5), testkit.Quantile(lat, 0.99), lat[len(lat)-1])
		})
	}
}

// BenchmarkSSEPropagation measures server change → client.Bool returns the
// new value, over SSE on loopback: ns/op is the mean, with p50 and p99 as
// extra metrics (the design target: p99 ≤ 50 ms).
//
//	go test -run '^$' -bench BenchmarkSSEPropagation -benchtime 500x .
func BenchmarkSSEPropagation(b *testing.B) {
	for _, mode := range []Mode{ModeLocal, ModeRemote} {
		b.Run(mode.String(), func(b *testing.B) {
			lat := measurePropagation(b, mode, b.N)
			slices.Sort(lat)
			b.ReportMetric(float64(testkit.Quantile(lat, 0.5))/1e6, "p50-ms")
			b.ReportMetric(float64(testkit.Quantile(lat, 0.99))/1e6, "p99-ms")
		})
	}
}

// measurePropagation makes n changes to one flag and returns, for each,
// the time from the server's write to the client serving the new value.
func measurePropagation(tb testing.TB, mode Mode, n int) []time.Duration {
	tb.Helper()
	srv := flagtest.NewServer(tb, flagtest.WithConfig(exampleConfig()))
	c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithMode(mode), WithLogger(quietLogger()), WithTimeout(patience))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close(context.Background()) })
	ready, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := c.WaitReady(ready); err != nil {
		tb.Fatal(err)
	}
	testkit.WaitFor(tb, patience, "stream connected", func() bool { return c.Status().StreamConnected })
	ctx := user("8a7f4c91", "free", "EU")
	lat := make([]time.Duration, 0, n)
	if b, ok := tb.(*testing.B); ok {
		b.ResetTimer()
	}
	for i := 0; i < n; i++ {
		want := i%2 == 0
		c.Bool(ctx, "kill-switch", !want) // cache the old value (remote)
		start := time.Now()
		if _, err := srv.SetFlag("prod", evaluate.Flag{Key: "kill-switch", Default: &evaluate.Serve{Variant: want}}); err != nil {
			tb.Fatal(err)
		}
		testkit.WaitFor(tb, patience, fmt.Sprintf("change %d visible", i), func() bool {
			v, d := c.BoolDetail(ctx, "kill-switch", !want)
			return v == want && d.ErrorCode == ""
		})
		lat = append(lat, time.Since(start))
	}
	return lat
}

func TestStreamDropResumesWithLastEventID(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	c := newLocal(t, srv, WithPollInterval(time.Hour))
	testkit.WaitFor(t, patience, "stream connected", func() bool { return c.Status().StreamConnected })
	srv.SetFlag("prod", evaluate.Flag{Key: "a", Default: &evaluate.Serve{Variant: true}})
	testkit.WaitFor(t, patience, "first change", func() bool { return c.Bool(context.Background(), "a", false) })
	srv.DropStreams()
	srv.SetFlag("prod", evaluate.Flag{Key: "a", Default: &evaluate.Serve{Variant: false}})
	testkit.WaitFor(t, patience, "change made while the stream was down", func() bool { return !c.Bool(context.Background(), "a", true) })
	// A change after the reconnect arrives over the resumed stream.
	testkit.WaitFor(t, patience, "stream back", func() bool { return c.Status().StreamConnected })
	srv.SetFlag("prod", evaluate.Flag{Key: "a", Default: &evaluate.Serve{Variant: true}})
	testkit.WaitFor(t, patience, "change after the reconnect", func() bool { return c.Bool(context.Background(), "a", false) })
	testkit.WaitFor(t, patience, "reconnect", func() bool { return c.local.stream.connects.Load() >= 2 })
	c.Close(context.Background()) // the stream goroutine has exited: lastID is ours to read
	if c.local.stream.lastID == "" {
		t.Fatal("no Last-Event-ID tracked")
	}
}

func TestPollingTakesOverWhenStreamDown(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	srv.InjectFault(flagtest.Fault{Path: "/v1/stream", Status: 503})
	c := newLocal(t, srv, WithPollInterval(50*time.Millisecond))
	srv.SetFlag("prod", evaluate.Flag{Key: "polled", Default: &evaluate.Serve{Variant: true}})
	testkit.WaitFor(t, patience, "polling picks up the change", func() bool { return c.Bool(context.Background(), "polled", false) })
	if c.Status().StreamConnected {
		t.Fatal("stream should be down")
	}
}

func TestStalledStreamReconnects(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()), flagtest.WithKeepAlive(20*time.Millisecond))
	c := newLocal(t, srv, WithStreamIdleTimeout(150*time.Millisecond), WithPollInterval(time.Hour))
	testkit.WaitFor(t, patience, "stream connected", func() bool { return c.Status().StreamConnected })
	srv.StallStreams(true)
	testkit.WaitFor(t, patience, "stall detected and reconnect attempted", func() bool { return c.local.stream.connects.Load() >= 2 })
	srv.StallStreams(false)
}

func TestNotModifiedCausesNoRecompile(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	c := newLocal(t, srv, WithStreaming(false), WithPollInterval(time.Hour))
	before := c.snap.Load()
	for i := 0; i < 3; i++ {
		if err := c.syncOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	c.local.mu.Lock()
	compiles, fetches := c.local.compiles, c.local.fetches
	c.local.mu.Unlock()
	if compiles != 1 || fetches < 4 || c.snap.Load() != before {
		t.Fatalf("compiles %d fetches %d; a 304 must not recompile", compiles, fetches)
	}
}

func TestBadOrOlderConfigKeepsTheOld(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	srv.SetFlag("prod", evaluate.Flag{Key: "bump", Default: &evaluate.Serve{Variant: true}}) // version 1
	c := newLocal(t, srv, WithStreaming(false), WithPollInterval(time.Hour))
	held := c.snap.Load()
	if held.snap.Version() < 1 {
		t.Fatalf("version %d", held.snap.Version())
	}
	bad := `{"environment":"prod","version":999,"flags":[{"key":"x","rules":[{"id":"r","when":"plan ==","variant":true}]}]}`
	older := `{"environment":"prod","version":0,"flags":[]}`
	for name, body := range map[string]string{"fails to compile": bad, "older version": older, "malformed": `{"flags": [`} {
		t.Run(name, func(t *testing.T) {
			remove := srv.InjectFault(flagtest.Fault{Path: "/v1/flags", Body: []byte(body)})
			defer remove()
			err := c.syncOnce(context.Background())
			if err == nil {
				t.Fatal("accepted")
			}
			if c.snap.Load() != held {
				t.Fatal("held config replaced")
			}
			if !c.Bool(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false) {
				t.Fatal("old config stopped serving")
			}
			t.Logf("refused: %v", err)
		})
	}
}

// failingTransport fails the test if anything touches the network.
type failingTransport struct{ t *testing.T }

func (f failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("offline mode made a network call: %s %s", r.Method, r.URL.Path)
	return nil, errors.New("no network in offline mode")
}

func TestOfflineModeBootstrap(t *testing.T) {
	s := testkit.NewSigner()
	cfg := exampleConfig()
	cfg.Version = 7
	env := s.Envelope(t, cfg, time.Now(), time.Hour)
	c, err := New(context.Background(), WithMode(ModeOffline), WithBootstrap(env), WithTrustedKeys(s.Pub),
		WithHTTPClient(&http.Client{Transport: failingTransport{t}}), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := c.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, d := c.BoolDetail(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false)
	if !v || d.Source != SourceBootstrap {
		t.Fatalf("%v %+v", v, d)
	}
	if st := c.Status(); st.State != StateOffline || st.ConfigVersion != 7 {
		t.Fatalf("status %+v", st)
	}
}

func TestBootstrapRefused(t *testing.T) {
	s, other := testkit.NewSigner(), testkit.NewSigner()
	cfg := exampleConfig()
	cfg.Version = 5
	good := s.Envelope(t, cfg, time.Now(), time.Hour)
	tamper := func(f func(e *wire.BootstrapEnvelope)) []byte {
		var e wire.BootstrapEnvelope
		json.Unmarshal(good, &e)
		f(&e)
		b, _ := json.Marshal(e)
		return b
	}
	cases := map[string]struct {
		data []byte
		want error
	}{
		"tampered payload": {tamper(func(e *wire.BootstrapEnvelope) {
			e.Payload = []byte(strings.Replace(string(e.Payload), `"rule-1"`, `"rule-X"`, 1))
		}), wire.ErrBootstrapSignature},
		"tampered version": {tamper(func(e *wire.BootstrapEnvelope) { e.Version = 6 }), wire.ErrBootstrapSignature},
		"expired":          {s.Envelope(t, cfg, time.Now().Add(-2*time.Hour), time.Hour), wire.ErrBootstrapExpired},
		"unknown key":      {other.Envelope(t, cfg, time.Now(), time.Hour), wire.ErrBootstrapUnknownKey},
		"truncated":        {good[:len(good)/2], wire.ErrBootstrapFormat},
		// A second, case-variant member must not let another parser see
		// other "payload" bytes than the ones signed.
		"case-variant member": {[]byte(strings.Replace(string(good), `{`, `{"Payload":{"version":5,"flags":[]},`, 1)), wire.ErrBootstrapFormat},
		"trailing data":       {append(append([]byte{}, good...), []byte(` {}`)...), wire.ErrBootstrapFormat},
		"not json":            {[]byte("hello"), wire.ErrBootstrapFormat},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := New(context.Background(), WithMode(ModeOffline), WithBootstrap(tc.data), WithTrustedKeys(s.Pub), WithLogger(quietLogger()))
			if !errors.Is(err, tc.want) {
				t.Fatalf("New = %v; want %v", err, tc.want)
			}
			// In remote mode it is refused, not fatal, and never used.
			c, err := New(context.Background(), WithEndpoint("http://127.0.0.1:1"), WithBootstrap(tc.data), WithTrustedKeys(s.Pub),
				WithLogger(quietLogger()), WithStreaming(false), WithTimeout(20*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			if _, d := c.BoolDetail(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false); d.Source != SourceCallerDefault {
				t.Fatalf("refused bootstrap was used: %+v", d)
			}
			if c.Status().LastError == "" {
				t.Fatal("refusal not surfaced in Status")
			}
		})
	}
}

func TestBootstrapRollbackRefused(t *testing.T) {
	s := testkit.NewSigner()
	dir := t.TempDir()
	newer := exampleConfig()
	newer.Version = 10
	older := exampleConfig()
	older.Version = 3
	older.Flags[0].State = evaluate.StateOff
	last := filepath.Join(dir, "last-known.json")
	os.WriteFile(last, s.Envelope(t, newer, time.Now(), time.Hour), 0o600)
	c, err := New(context.Background(), WithEndpoint("http://127.0.0.1:1"), WithStreaming(false), WithLastKnownFile(last),
		WithBootstrap(s.Envelope(t, older, time.Now(), time.Hour)), WithTrustedKeys(s.Pub), WithLogger(quietLogger()), WithTimeout(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if st := c.Status(); st.ConfigVersion != 10 {
		t.Fatalf("held version %d; the older bootstrap must not win", st.ConfigVersion)
	}
}

func TestRemoteFallsBackToBootstrap(t *testing.T) {
	s := testkit.NewSigner()
	cfg := exampleConfig()
	cfg.Version = 1
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: 503})
	c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithBootstrap(s.Envelope(t, cfg, time.Now(), time.Hour)),
		WithTrustedKeys(s.Pub), WithLogger(quietLogger()), WithRetry(RetrySettings{MaxAttempts: -1}), WithTimeout(patience))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	v, d := c.BoolDetail(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false)
	if !v || d.Source != SourceBootstrap || d.ErrorCode != CodeUnavailable || d.Reason.RuleID != "rule-1" {
		t.Fatalf("%v %+v", v, d)
	}
}

func TestLastKnownSurvivesRestart(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	pub := srv.Flagserver().PublicKey()
	path := filepath.Join(t.TempDir(), "flags-last-known.json")
	c := newLocal(t, srv, WithLastKnownFile(path), WithTrustedKeys(pub), WithStreaming(false))
	srv.SetFlag("prod", evaluate.Flag{Key: "persisted", Default: &evaluate.Serve{Variant: true}})
	if err := c.syncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close(context.Background())
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	srv.Down() // the API is down for the restart
	defer srv.Up()
	c2, err := New(context.Background(), WithEndpoint(srv.URL), WithMode(ModeLocal), WithLastKnownFile(path), WithTrustedKeys(pub),
		WithLogger(quietLogger()), WithStreaming(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(context.Background())
	v, d := c2.BoolDetail(context.Background(), "persisted", false)
	if !v || d.Source != SourceBootstrap {
		t.Fatalf("after restart with the API down: %v %+v", v, d)
	}
}

func TestChangeListeners(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	c := newLocal(t, srv, WithStreaming(false), WithPollInterval(time.Hour))
	var mu sync.Mutex
	var all, one []FlagChange
	var values []ValueChange
	c.OnFlagChange("", func(ch FlagChange) { mu.Lock(); all = append(all, ch); mu.Unlock() })
	c.OnFlagChange("checkout-new-flow", func(ch FlagChange) { mu.Lock(); one = append(one, ch); mu.Unlock() })
	c.OnFlagChange("", func(FlagChange) { panic("listener bug") }) // recovered
	c.OnValueChange(user("8a7f4c91", "pro", "US"), "checkout-new-flow", func(ch ValueChange) { mu.Lock(); values = append(values, ch); mu.Unlock() })

	srv.SetFlag("prod", evaluate.Flag{Key: "unrelated", Default: &evaluate.Serve{Variant: true}})
	c.syncOnce(context.Background())
	f := exampleConfig().Flags[0]
	f.Rules[0].When = "plan == 'enterprise'" // 8a7f4c91 (pro/US) no longer matches rule-1
	srv.SetFlag("prod", f)
	c.syncOnce(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if len(all) != 2 || !slices.Equal(all[0].Keys, []string{"unrelated"}) || !slices.Equal(all[1].Keys, []string{"checkout-new-flow"}) {
		t.Fatalf("all-flags listener: %+v", all)
	}
	if len(one) != 1 {
		t.Fatalf("one-flag listener: %+v", one)
	}
	if len(values) != 1 || values[0].Old != true {
		t.Fatalf("value listener: %+v", values)
	}
}

// TestRemoteAndLocalAgree evaluates 10,000 random contexts through the
// server (remote mode) and in-process (local mode): identical decisions.
func TestRemoteAndLocalAgree(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	local := newLocal(t, srv)
	remote, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithLogger(quietLogger()), WithBatch(500, 2), WithTimeout(2*patience)) // a bound, not a target: the machine may be loaded
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close(context.Background())
	rng := mrand.New(mrand.NewPCG(1, 2))
	plans, regions, countries := []string{"free", "pro", "enterprise"}, []string{"US", "EU", "APAC"}, []string{"DE", "FR", "US", "JP"}
	const n = 10000
	keys := []string{"checkout-new-flow", "pricing-experiment", "max-items", "theme"}
	reqs := make([]Request, 0, n)
	for i := 0; i < n; i++ {
		attrs := Attributes{
			"userId":    fmt.Sprintf("user-%d", rng.IntN(1_000_000)),
			"accountId": fmt.Sprintf("acct-%d", rng.IntN(5000)),
			"plan":      plans[rng.IntN(3)], "region": regions[rng.IntN(3)], "country": countries[rng.IntN(4)],
		}
		if rng.IntN(50) == 0 {
			attrs["userId"] = "beta-1"
		}
		reqs = append(reqs, Request{FlagKey: keys[i%len(keys)], Attributes: attrs})
	}
	got := remote.Evaluate(context.Background(), reqs)
	for i, r := range got {
		if r.Detail.Source != SourceRemote {
			t.Fatalf("item %d: %+v", i, r.Detail)
		}
		lv := local.Evaluate(context.Background(), reqs[i:i+1])[0]
		if !jsonEqual(lv.Value, r.Value) || lv.Detail.Variant != r.Detail.Variant || lv.Detail.Reason.Kind != r.Detail.Reason.Kind || lv.Detail.Reason.RuleID != r.Detail.Reason.RuleID {
			t.Fatalf("item %d (%s %v): local %v %+v, remote %v %+v", i, reqs[i].FlagKey, reqs[i].Attributes, lv.Value, lv.Detail, r.Value, r.Detail)
		}
	}
	if n := srv.Requests("POST", "/v1/evaluate"); n != int64(math.Ceil(float64(len(reqs))/500)) {
		t.Errorf("%d evaluate requests for %d items in chunks of 500", n, len(reqs))
	}
}

func BenchmarkClientBoolLocalNoAlloc(b *testing.B) {
	srv := flagtest.NewServer(b, flagtest.WithConfig(exampleConfig()))
	c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithMode(ModeLocal), WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := c.WaitReady(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx := user("8a7f4c91", "pro", "US")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Bool(ctx, "checkout-new-flow", false)
	}
}

// BenchmarkBootstrap10000Flags is "bootstrap of 10,000 flags: verify +
// compile ≤ 50 ms".
func BenchmarkBootstrap10000Flags(b *testing.B) {
	s := testkit.NewSigner()
	cfg := &evaluate.Config{Environment: "prod", Salt: "s", Version: 1, Segments: []evaluate.Segment{{Key: "beta_testers", Included: []string{"a", "b"}}}}
	for i := 0; i < 10000; i++ {
		cfg.Flags = append(cfg.Flags, evaluate.Flag{Key: fmt.Sprintf("flag-%d", i), Rules: []evaluate.Rule{
			{ID: "r1", When: fmt.Sprintf("plan == 'enterprise-%d' and region == 'EU'", i), Serve: evaluate.Serve{Variant: true}},
			{ID: "r2", Segment: "beta_testers", Serve: evaluate.Serve{Variant: true}},
		}, Default: &evaluate.Serve{Percentage: ptr(25.0)}})
	}
	data := s.Envelope(b, cfg, time.Now(), time.Hour)
	c := &Client{cfg: defaultConfig()}
	c.cfg.localOptions.keys = map[string]ed25519.PublicKey{wire.KeyID(s.Pub): s.Pub}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.loadEnvelope(data, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHashedIdentifiersAgreeAndNeverLeave(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	rt := &testkit.RecordingTransport{}
	opts := []Option{WithHashedAttributes("prod-salt-2026", "userId"), WithPrivateAttributes("email")}
	local := newLocal(t, srv, opts...)
	remote, err := New(context.Background(), append([]Option{WithEndpoint(srv.URL), WithToken(srv.Token()), WithLogger(quietLogger()),
		WithHTTPClient(&http.Client{Transport: rt}), WithStreaming(false), WithTimeout(patience)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close(context.Background())
	for i := 0; i < 200; i++ {
		id := fmt.Sprintf("user-%d", i)
		ctx := WithAttributes(context.Background(), Attributes{"userId": id, "plan": "free", "email": id + "@example.com"})
		lv, ld := local.BoolDetail(ctx, "checkout-new-flow", false)
		rv, rd := remote.BoolDetail(ctx, "checkout-new-flow", false)
		if lv != rv || ld.Reason.Bucket != rd.Reason.Bucket || rd.Source != SourceRemote {
			t.Fatalf("%s: local %v %+v, remote %v %+v", id, lv, ld, rv, rd)
		}
		_, want := evaluate.Bucket("prod-salt-2026", "checkout-new-flow", HashIdentifier("prod-salt-2026", id))
		if ld.Reason.Bucket != int(want) {
			t.Fatalf("bucket %d, want the hashed id's %d", ld.Reason.Bucket, want)
		}
	}
	for _, b := range rt.Bodies() {
		if strings.Contains(string(b), `"user-`) || strings.Contains(string(b), "@example.com") {
			t.Fatalf("raw identifier or private attribute sent: %s", b)
		}
	}
}

func TestRemoteSegmentChangeNotifiesAll(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithLogger(quietLogger()), WithTimeout(patience))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	testkit.WaitFor(t, patience, "stream connected", func() bool { return c.Status().StreamConnected })
	got := make(chan FlagChange, 4)
	c.OnFlagChange("", func(ch FlagChange) { got <- ch })
	ctx := user("new-beta", "free", "EU")
	if c.Bool(ctx, "checkout-new-flow", false) {
		t.Fatal("not a beta tester yet")
	}
	if _, err := srv.SetSegment("prod", evaluate.Segment{Key: "beta_testers", Included: []string{"beta-1", "new-beta"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case ch := <-got:
		if !ch.All {
			t.Fatalf("segment change: %+v", ch)
		}
	case <-time.After(patience):
		t.Fatal("no change notification for a segment change")
	}
	if v, d := c.BoolDetail(ctx, "checkout-new-flow", false); !v || d.Source != SourceRemote {
		t.Fatalf("after the segment change: %v %+v", v, d)
	}
}
