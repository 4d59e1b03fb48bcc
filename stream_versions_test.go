package flagwire

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// TestFirstStreamConnectSyncsLocalMode: local mode's first sync can come
// before the event stream's first connection, and a change made in
// between is never replayed (there is no event id to resume from). The
// first connection therefore asks for a conditional sync, so the change
// is served now rather than at the next poll (60 s by default).
func TestFirstStreamConnectSyncsLocalMode(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	remove := srv.InjectFault(flagtest.Fault{Path: "/v1/stream", Status: 503}) // the stream cannot connect yet
	c := newLocal(t, srv)
	user := user("8a7f4c91", "pro", "US")
	if v, d := c.BoolDetail(user, "checkout-new-flow", false); !v || d.Source != SourceLocal {
		t.Fatalf("before the change: %v %+v", v, d)
	}
	off := exampleConfig().Flags[0]
	if off.Key != "checkout-new-flow" {
		t.Fatalf("fixture: first flag is %q", off.Key)
	}
	off.State = evaluate.StateOff
	if _, err := srv.SetFlag("prod", off); err != nil { // published while nobody listens
		t.Fatal(err)
	}
	remove()
	testkit.WaitFor(t, patience, "the stream's first connection", func() bool { return c.Status().StreamConnected })
	// Well under the poll interval: only the first-connection sync can
	// bring the change this soon.
	testkit.WaitFor(t, 20*time.Second, "the change", func() bool {
		v, d := c.BoolDetail(user, "checkout-new-flow", true)
		return !v && d.Reason.Kind == evaluate.ReasonOff
	})
}

// remoteClient is a remote-mode client of endpoint with a frozen clock and
// a timeout no busy machine reaches.
func remoteClient(t *testing.T, endpoint, token string, clock *testkit.Clock, opts ...Option) *Client {
	t.Helper()
	base := []Option{WithEndpoint(endpoint), WithToken(token), WithEnvironment("prod"),
		WithLogger(quietLogger()), withClock(clock), WithTimeout(patience)}
	c, err := New(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// answer is what one evaluation of the fixtures gives: written from the
// config's documented semantics, not from the code under test.
type answer struct {
	value   any
	variant string
	reason  evaluate.ReasonKind
	ruleID  string
	source  Source
	code    ErrorCode
}

// The fixtures (exampleConfig) for the subjects used below.
var (
	// checkout-new-flow for a pro user in the US: rule-1 serves true;
	// switched off, the off variant false.
	checkoutOn  = answer{value: true, variant: "true", reason: evaluate.ReasonRuleMatch, ruleID: "rule-1"}
	checkoutOff = answer{value: false, variant: "false", reason: evaluate.ReasonOff}
	// max-items: no targeting, the "large" variant (100) for everyone.
	maxItems = answer{value: 100.0, variant: "large", reason: evaluate.ReasonStatic}
	// pricing-experiment for a subject without a country: its default.
	pricingControl = answer{value: "control", variant: "control", reason: evaluate.ReasonDefault}
)

var (
	proUS    = func() context.Context { return user("8a7f4c91", "pro", "US") }
	noRegion = func() context.Context { return WithAttributes(context.Background(), Attributes{"userId": "u-2"}) }
)

// check evaluates key for ctx and compares value, variant, reason, source
// and error code with want (whose source is src).
func check(t *testing.T, c *Client, ctx context.Context, key string, want answer, src Source, what string) {
	t.Helper()
	var (
		got any
		d   Detail
	)
	switch want.value.(type) {
	case bool:
		got, d = c.BoolDetail(ctx, key, !want.value.(bool))
	case float64:
		got, d = c.FloatDetail(ctx, key, -1)
	case string:
		got, d = c.StringDetail(ctx, key, "default")
	}
	if got != want.value || d.Variant != want.variant || d.Reason.Kind != want.reason || d.Reason.RuleID != want.ruleID ||
		d.Source != src || d.ErrorCode != want.code {
		t.Fatalf("%s: %s = %v %+v; want %v variant %q reason %s %q, source %s, error code %q",
			what, key, got, d, want.value, want.variant, want.reason, want.ruleID, src, want.code)
	}
}

// switchOff turns checkout-new-flow off on srv and returns the new version.
func switchOff(t *testing.T, srv *flagtest.Server) int64 {
	t.Helper()
	off := exampleConfig().Flags[0]
	if off.Key != "checkout-new-flow" {
		t.Fatalf("fixture: first flag is %q", off.Key)
	}
	off.State = evaluate.StateOff
	v, err := srv.SetFlag("prod", off)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestChangeBeforeFirstStreamConnectIsNotServedFromCache: remote mode. A
// decision fetched before the stream's first connection, of a flag that
// changed before that connection, is not announced by any event. The
// stream's first connection says which version it starts after: the
// decision, older, is asked again (REMOTE, the new value), while a
// decision computed at that version stays a CACHE hit, whenever the
// stream happens to connect. An expired decision is still served STALE
// when the API fails.
func TestChangeBeforeFirstStreamConnectIsNotServedFromCache(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	release := srv.InjectFault(flagtest.Fault{Path: "/v1/stream", Status: http.StatusServiceUnavailable})
	clock := testkit.NewClock()
	c := remoteClient(t, srv.URL, srv.Token(), clock)

	check(t, c, proUS(), "checkout-new-flow", checkoutOn, SourceRemote, "before the change")
	check(t, c, proUS(), "checkout-new-flow", checkoutOn, SourceCache, "before the change, again")
	check(t, c, noRegion(), "pricing-experiment", pricingControl, SourceRemote, "an unchanged flag before the change")
	switchOff(t, srv) // published while nobody listens
	check(t, c, proUS(), "checkout-new-flow", checkoutOn, SourceCache, "after the change, before the stream (the TTL window)")
	check(t, c, proUS(), "max-items", maxItems, SourceRemote, "an unchanged flag at the current version")

	clock.Advance(time.Second)
	connected(t, c, release, 1)
	check(t, c, proUS(), "max-items", maxItems, SourceCache, "the decision at the stream's version")
	check(t, c, proUS(), "checkout-new-flow", checkoutOff, SourceRemote, "the changed flag")
	check(t, c, proUS(), "checkout-new-flow", checkoutOff, SourceCache, "the changed flag, again")
	// pricing-experiment did not change, but its decision predates the
	// stream's version: expired, not dropped, so it is served STALE while
	// the API fails, then asked again.
	stale := pricingControl
	stale.code = CodeUnavailable
	removeFault := srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: http.StatusServiceUnavailable})
	check(t, c, noRegion(), "pricing-experiment", stale, SourceStale, "an older decision while the API fails")
	removeFault()
	check(t, c, noRegion(), "pricing-experiment", pricingControl, SourceRemote, "an older decision")
}

// TestReconnectWithoutResumeExpiresOnlyOlderDecisions: a reconnect that
// cannot resume (no event arrived yet, so no Last-Event-ID) expires
// exactly the decisions computed before the version the new connection
// announces: a change made while the stream was down is served at once,
// and a decision fetched at the current version stays a CACHE hit.
func TestReconnectWithoutResumeExpiresOnlyOlderDecisions(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	clock := testkit.NewClock()
	c := remoteClient(t, srv.URL, srv.Token(), clock)
	connected(t, c, func() {}, 1)
	check(t, c, proUS(), "checkout-new-flow", checkoutOn, SourceRemote, "first")
	check(t, c, noRegion(), "pricing-experiment", pricingControl, SourceRemote, "first")
	check(t, c, proUS(), "max-items", maxItems, SourceRemote, "first")

	// Down and up with nothing changed: every decision stays fresh.
	release := dropAndHold(t, srv, c)
	clock.Advance(time.Second)
	connected(t, c, release, 2)
	check(t, c, proUS(), "checkout-new-flow", checkoutOn, SourceCache, "after a reconnect without changes")
	check(t, c, proUS(), "max-items", maxItems, SourceCache, "after a reconnect without changes")

	release = dropAndHold(t, srv, c)
	switchOff(t, srv) // while the stream is down: never replayed
	check(t, c, proUS(), "checkout-new-flow", checkoutOn, SourceCache, "after the change, before the reconnect")
	check(t, c, WithAttributes(context.Background(), Attributes{"userId": "u-3"}), "max-items", maxItems, SourceRemote, "at the current version")
	clock.Advance(time.Second)
	connected(t, c, release, 3)
	if id := c.local.stream.lastID; id != "" {
		t.Fatalf("the stream resumed from %q: the test needs a reconnect without an event id", id)
	}
	check(t, c, proUS(), "checkout-new-flow", checkoutOff, SourceRemote, "the changed flag")
	check(t, c, WithAttributes(context.Background(), Attributes{"userId": "u-3"}), "max-items", maxItems, SourceCache, "the decision at the stream's version")
	check(t, c, proUS(), "max-items", maxItems, SourceRemote, "an unchanged flag's decision from before the change")
	check(t, c, noRegion(), "pricing-experiment", pricingControl, SourceRemote, "an unchanged flag's decision from before the change")
}

// TestStreamResetExpiresOnlyOlderDecisions: a reconnect whose event id
// the server can no longer replay from gets a reset carrying the current
// version: decisions computed before it are asked again, one computed at
// it stays a CACHE hit, and every flag listener is told.
func TestStreamResetExpiresOnlyOlderDecisions(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()),
		flagtest.WithServerOptions(func(o *flagserver.Options) { o.ReplayBuffer = 1 }))
	clock := testkit.NewClock()
	c := remoteClient(t, srv.URL, srv.Token(), clock)
	changes := make(chan FlagChange, 16)
	defer c.OnFlagChange("", func(ch FlagChange) { changes <- ch })()
	connected(t, c, func() {}, 1)
	theme := exampleConfig().Flags[3]
	if theme.Key != "theme" {
		t.Fatalf("fixture: fourth flag is %q", theme.Key)
	}
	theme.Owners = []string{"one"}
	if _, err := srv.SetFlag("prod", theme); err != nil { // an event: the stream can resume from it
		t.Fatal(err)
	}
	select {
	case ch := <-changes:
		if len(ch.Keys) != 1 || ch.Keys[0] != "theme" {
			t.Fatalf("change %+v, want theme's", ch)
		}
	case <-time.After(patience):
		t.Fatal("no event for the change to theme")
	}
	check(t, c, proUS(), "checkout-new-flow", checkoutOn, SourceRemote, "first")
	check(t, c, noRegion(), "pricing-experiment", pricingControl, SourceRemote, "first")

	release := dropAndHold(t, srv, c)
	switchOff(t, srv)
	theme.Owners = []string{"two"}
	if _, err := srv.SetFlag("prod", theme); err != nil { // the replay buffer now holds only this one
		t.Fatal(err)
	}
	check(t, c, proUS(), "max-items", maxItems, SourceRemote, "at the current version")
	clock.Advance(time.Second)
	connected(t, c, release, 2)
	select {
	case ch := <-changes:
		if !ch.All {
			t.Fatalf("change %+v, want a reset (All)", ch)
		}
	case <-time.After(patience):
		t.Fatal("no reset")
	}
	check(t, c, proUS(), "checkout-new-flow", checkoutOff, SourceRemote, "the changed flag")
	check(t, c, proUS(), "max-items", maxItems, SourceCache, "the decision at the reset's version")
	check(t, c, noRegion(), "pricing-experiment", pricingControl, SourceRemote, "an unchanged flag's decision from before the reset")
}

// holdingTransport holds the answers of POST /v1/evaluate (the server has
// already computed them) on their way back while hold is set, until
// released.
type holdingTransport struct {
	base    http.RoundTripper
	hold    atomic.Bool
	held    chan struct{}
	release chan struct{}
}

func (h *holdingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := h.base.RoundTrip(r)
	if r.URL.Path == "/v1/evaluate" && h.hold.Load() {
		h.held <- struct{}{}
		<-h.release
	}
	return resp, err
}

// TestFetchInFlightAcrossFirstConnect: a decision computed before a
// change, whose answer arrives after the stream's first connection
// announced the change's version, is cached as expired: the caller that
// asked gets it (REMOTE: it was the answer when asked), the next caller
// gets the new value. Expiring by time instead (everything fetched
// before the connection) would keep it: it was received after.
func TestFetchInFlightAcrossFirstConnect(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	release := srv.InjectFault(flagtest.Fault{Path: "/v1/stream", Status: http.StatusServiceUnavailable})
	tr := &holdingTransport{base: http.DefaultTransport.(*http.Transport).Clone(), held: make(chan struct{}), release: make(chan struct{})}
	defer tr.base.(*http.Transport).CloseIdleConnections()
	clock := testkit.NewClock()
	c := remoteClient(t, srv.URL, srv.Token(), clock, WithHTTPClient(&http.Client{Transport: tr}))

	tr.hold.Store(true)
	type result struct {
		v bool
		d Detail
	}
	first := make(chan result, 1)
	go func() {
		v, d := c.BoolDetail(proUS(), "checkout-new-flow", false)
		first <- result{v, d}
	}()
	<-tr.held // computed at the version before the change
	tr.hold.Store(false)
	switchOff(t, srv)
	clock.Advance(time.Second)
	connected(t, c, release, 1)
	close(tr.release)
	r := <-first
	if want := checkoutOn; r.v != want.value || r.d.Variant != want.variant || r.d.Reason.Kind != want.reason || r.d.Reason.RuleID != want.ruleID || r.d.Source != SourceRemote || r.d.ErrorCode != "" {
		t.Fatalf("the held answer: %v %+v", r.v, r.d)
	}
	check(t, c, proUS(), "checkout-new-flow", checkoutOff, SourceRemote, "after the held answer was cached")
}

// TestServerWithoutVersionsKeepsOldBehaviour: a server that sends no
// versions (an older flagserver, emulated by a proxy that strips
// X-Flagwire-Config-Version and "configVersion" from a real server's
// answers) gets the behaviour from before versions: the first connection
// expires nothing (a change made before it is served from the cache until
// the TTL: the documented window), and a reconnect that cannot resume
// expires every decision fetched before it.
func TestServerWithoutVersionsKeepsOldBehaviour(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	front := frontServer(t, srv, nil)
	var stripped atomic.Int64
	front.Config.Handler = unversioned(front.Config.Handler, &stripped)
	release := srv.InjectFault(flagtest.Fault{Path: "/v1/stream", Status: http.StatusServiceUnavailable})
	clock := testkit.NewClock()
	c := remoteClient(t, front.URL, srv.Token(), clock)

	check(t, c, proUS(), "checkout-new-flow", checkoutOn, SourceRemote, "first")
	check(t, c, proUS(), "max-items", maxItems, SourceRemote, "first")
	switchOff(t, srv)
	connected(t, c, release, 1)
	check(t, c, proUS(), "checkout-new-flow", checkoutOn, SourceCache, "after the first connection (the window)")
	check(t, c, proUS(), "max-items", maxItems, SourceCache, "after the first connection")

	release = dropAndHold(t, srv, c)
	clock.Advance(time.Second) // the reconnect comes after the fetches
	connected(t, c, release, 2)
	check(t, c, proUS(), "checkout-new-flow", checkoutOff, SourceRemote, "after a reconnect")
	check(t, c, proUS(), "max-items", maxItems, SourceRemote, "after a reconnect")
	if n := stripped.Load(); n != 4 {
		t.Fatalf("the proxy stripped %d versions, want 4, one per fetch (the test server sends them)", n)
	}
}

// unversioned strips what a server without versions does not send,
// counting the evaluate answers it stripped.
func unversioned(next http.Handler, stripped *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/evaluate" {
			next.ServeHTTP(&headerStripper{ResponseWriter: w}, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var m map[string]json.RawMessage
		if rec.Code == http.StatusOK && json.Unmarshal(body, &m) == nil {
			if _, ok := m["configVersion"]; ok {
				stripped.Add(1)
			}
			delete(m, "configVersion")
			body, _ = json.Marshal(m)
		}
		maps.Copy(w.Header(), rec.Header())
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
}

// headerStripper drops X-Flagwire-Config-Version from a response.
type headerStripper struct{ http.ResponseWriter }

func (h *headerStripper) WriteHeader(code int) {
	h.Header().Del(wire.HeaderConfigVersion)
	h.ResponseWriter.WriteHeader(code)
}

func (h *headerStripper) Write(b []byte) (int, error) {
	h.Header().Del(wire.HeaderConfigVersion)
	return h.ResponseWriter.Write(b)
}

func (h *headerStripper) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// TestAnnouncedVersionParsing: only one decimal X-Flagwire-Config-Version
// counts; anything else is "no version" (the behaviour of older servers),
// never a guess.
func TestAnnouncedVersionParsing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		want   int64
		ok     bool
	}{
		{"absent", nil, 0, false},
		{"decimal", []string{"41"}, 41, true},
		{"zero", []string{"0"}, 0, true},
		{"spaces", []string{" 7 "}, 7, true},
		{"empty", []string{""}, 0, false},
		{"not a number", []string{"v41"}, 0, false},
		{"fraction", []string{"4.1"}, 0, false},
		{"overflow", []string{"99999999999999999999"}, 0, false},
		{"two values", []string{"4", "5"}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.values {
				h.Add(wire.HeaderConfigVersion, v)
			}
			if v, ok := announcedVersion(h); v != tc.want || ok != tc.ok {
				t.Fatalf("announcedVersion(%q) = %d, %v; want %d, %v", tc.values, v, ok, tc.want, tc.ok)
			}
		})
	}
}
