package flagserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// wsPatience bounds each WebSocket read and dial of these tests.
const wsPatience = 10 * time.Second

func wsURL(ts *testServer, query string) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/ws?" + query
}

// dialWS opens a WebSocket to ts (query: "environment=prod&…"), failing
// t unless the handshake succeeds. It returns the handshake response.
func dialWS(t testing.TB, ts *testServer, query string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsPatience)
	defer cancel()
	c, res, err := websocket.Dial(ctx, wsURL(ts, query), opts)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial /v1/ws?%s: %v (status %d)", query, err, status)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, res
}

// dialWSRefused dials and returns the refusal (failing t if the handshake
// succeeds).
func dialWSRefused(t testing.TB, ts *testServer, query string, opts *websocket.DialOptions) *response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsPatience)
	defer cancel()
	c, res, err := websocket.Dial(ctx, wsURL(ts, query), opts)
	if err == nil {
		c.CloseNow()
		t.Fatalf("dial /v1/ws?%s succeeded, want a refusal", query)
	}
	if res == nil {
		t.Fatalf("dial /v1/ws?%s: no response: %v", query, err)
	}
	b, _ := io.ReadAll(res.Body)
	return &response{status: res.StatusCode, header: res.Header, body: b}
}

// readWS reads one text message.
func readWS(t testing.TB, c *websocket.Conn) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsPatience)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read a WebSocket message: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("message type %v, want text", typ)
	}
	return b
}

// readHello reads the greeting, decoded strictly (no other fields).
func readHello(t testing.TB, c *websocket.Conn) wsHello {
	t.Helper()
	b := readWS(t, c)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var h wsHello
	if err := dec.Decode(&h); err != nil || h.Type != "hello" {
		t.Fatalf("first message %s: want a hello (%v)", b, err)
	}
	return h
}

// readEvent reads one event message, decoded strictly as the SSE event
// data it must be.
func readEvent(t testing.TB, c *websocket.Conn) (wire.StreamEvent, []byte) {
	t.Helper()
	b := readWS(t, c)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var se wire.StreamEvent
	if err := dec.Decode(&se); err != nil {
		t.Fatalf("message %s is not a stream event: %v", b, err)
	}
	return se, b
}

// The same invalidations as the SSE stream, byte for byte: flag (with its
// dependents) and segment changes, after a greeting that names the version
// the socket starts after and the store's epoch.
func TestWebSocketDeliversInvalidations(t *testing.T) {
	ts := newTestServer(t, Options{})
	epoch := ts.do("GET", "/v1/flags?environment=prod", "").header.Get(wire.HeaderConfigEpoch)
	before, _ := ts.Snapshot("prod")
	sse := ts.openStream(t, "prod", "")
	c, res := dialWS(t, ts, "environment=prod", nil)

	hello := readHello(t, c)
	if hello.Environment != "prod" || hello.Version != before.Version() || hello.Epoch != epoch || epoch == "" {
		t.Fatalf("hello %+v, want prod at version %d, epoch %q", hello, before.Version(), epoch)
	}
	if res.Header.Get(wire.HeaderConfigVersion) != strconv.FormatInt(before.Version(), 10) || res.Header.Get(wire.HeaderConfigEpoch) != epoch {
		t.Fatalf("handshake headers %v", res.Header)
	}
	if c.Subprotocol() != "" {
		t.Fatalf("subprotocol %q selected though none was offered", c.Subprotocol())
	}

	child := evaluate.Flag{Key: "child", Prerequisites: []evaluate.Prerequisite{{FlagKey: "checkout-new-flow", Variants: []any{true}}}}
	v1, err := ts.PutFlag("prod", child, "t", "r")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := ts.PutFlag("prod", evaluate.Flag{Key: "checkout-new-flow", Owners: []string{"changed"}}, "t", "r")
	if err != nil {
		t.Fatal(err)
	}
	v3, err := ts.PutSegment("prod", evaluate.Segment{Key: "beta_testers", When: "plan == 'max'"}, "t", "r")
	if err != nil {
		t.Fatal(err)
	}
	want := []wire.StreamEvent{
		{Type: wire.EventInvalidate, FlagKey: "child", Environment: "prod", Version: v1},
		// child requires checkout-new-flow: its decisions are invalid too.
		{Type: wire.EventInvalidate, FlagKey: "checkout-new-flow", Environment: "prod", Version: v2, Dependents: []string{"child"}},
		{Type: wire.EventInvalidate, SegmentKey: "beta_testers", Environment: "prod", Version: v3},
	}
	for i, w := range want {
		got, raw := readEvent(t, c)
		if !eventsEqual(got, w) {
			t.Fatalf("message %d: %s, want %+v", i, raw, w)
		}
		ev := sse.Next(t)
		if ev.Data != string(raw) || ev.ID != strconv.FormatInt(w.Version, 10) {
			t.Fatalf("message %d: WebSocket %s, SSE id %s data %s", i, raw, ev.ID, ev.Data)
		}
	}
}

func eventsEqual(a, b wire.StreamEvent) bool {
	return a.Type == b.Type && a.FlagKey == b.FlagKey && a.SegmentKey == b.SegmentKey &&
		a.Environment == b.Environment && a.Version == b.Version && strings.Join(a.Dependents, ",") == strings.Join(b.Dependents, ",")
}

// ?lastEventId=N resumes as Last-Event-ID does on SSE: the buffered events
// after N, or one reset when N is no longer buffered or is in the future.
func TestWebSocketResume(t *testing.T) {
	ts := newTestServer(t, Options{ReplayBuffer: 8})
	var versions []int64
	for i := range 10 {
		v, err := ts.PutFlag("prod", evaluate.Flag{Key: "f" + strconv.Itoa(i)}, "t", "r")
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	last := versions[9]

	// From the 5th write: writes 6..10 replayed in order, as SSE replays them.
	id := strconv.FormatInt(versions[4], 10)
	c, _ := dialWS(t, ts, "environment=prod&lastEventId="+id, nil)
	if h := readHello(t, c); h.Version != last {
		t.Fatalf("hello %+v, want version %d", h, last)
	}
	sse := ts.openStream(t, "prod", id)
	for i := 5; i < 10; i++ {
		se, raw := readEvent(t, c)
		if se.Type != wire.EventInvalidate || se.FlagKey != "f"+strconv.Itoa(i) || se.Version != versions[i] {
			t.Fatalf("replayed %s, want f%d at %d", raw, i, versions[i])
		}
		if ev := sse.Next(t); ev.Data != string(raw) {
			t.Fatalf("SSE replayed %s where the WebSocket replayed %s", ev.Data, raw)
		}
	}
	// Then live.
	vLive, _ := ts.PutFlag("prod", evaluate.Flag{Key: "live"}, "t", "r")
	if se, raw := readEvent(t, c); se.FlagKey != "live" || se.Version != vLive {
		t.Fatalf("live %s", raw)
	}

	// Up to date: nothing replayed; the next message is the next write.
	u, _ := dialWS(t, ts, "environment=prod&lastEventId="+strconv.FormatInt(vLive, 10), nil)
	readHello(t, u)
	vNext, _ := ts.PutFlag("prod", evaluate.Flag{Key: "next"}, "t", "r")
	if se, raw := readEvent(t, u); se.FlagKey != "next" || se.Version != vNext {
		t.Fatalf("up to date: first message %s, want next at %d", raw, vNext)
	}

	// The buffer holds the last 8 events: the 1st write's id is too old; an
	// id from the future (a restart without data) too. Each gets a reset
	// to the current version.
	for _, id := range []string{strconv.FormatInt(versions[0], 10), "999999"} {
		r, _ := dialWS(t, ts, "environment=prod&lastEventId="+id, nil)
		readHello(t, r)
		if se, raw := readEvent(t, r); se.Type != wire.EventReset || se.Version != vNext || se.Environment != "prod" {
			t.Fatalf("lastEventId %s: %s, want a reset to %d", id, raw, vNext)
		}
	}

	// A malformed id is refused before the upgrade.
	for _, id := range []string{"abc", "-1", "1.5"} {
		e := dialWSRefused(t, ts, "environment=prod&lastEventId="+id, nil).wantError(t, 400, wire.CodeBadRequest)
		if !strings.Contains(e.Message, "lastEventId") {
			t.Fatalf("lastEventId %s: %+v", id, e)
		}
	}
}

// A resumption's replay is not the send queue: a client resuming 200
// events back with a queue of 4, which has taken only the few its socket
// buffers hold when three more events are published, is not dropped: it
// gets the 200, then the 3.
func TestWebSocketReplayIsNotTheSendQueue(t *testing.T) {
	ts, dialStalled := newStallServer(t, Options{WebSocket: WebSocketOptions{SendQueue: 4}})
	var versions []int64
	for i := range 201 {
		v, err := ts.PutFlag("prod", evaluate.Flag{Key: "f" + strconv.Itoa(i%10), Owners: []string{strconv.Itoa(i)}}, "t", "r")
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	// Small buffers (see stallListener): most of the replay is still
	// to be taken when the live events are published.
	c := dialStalled("environment=prod&lastEventId=" + strconv.FormatInt(versions[0], 10))
	for i := range 3 {
		v, _ := ts.PutFlag("prod", evaluate.Flag{Key: "live" + strconv.Itoa(i)}, "t", "r")
		versions = append(versions, v)
	}
	if ts.Streams() != 1 {
		t.Fatalf("the resuming client was dropped")
	}
	readHello(t, c)
	for _, v := range versions[1:] {
		if se, raw := readEvent(t, c); se.Version != v {
			t.Fatalf("%s, want version %d", raw, v)
		}
	}
}

// The stream's authentication and scopes, with the token in Authorization
// or, for browsers, in a subprotocol; never in the URL.
func TestWebSocketAuth(t *testing.T) {
	dev := &evaluate.Config{Environment: "dev", Flags: []evaluate.Flag{{Key: "x"}}}
	ts := newTestServer(t, Options{
		Configs: []*evaluate.Config{seedConfig(), dev},
		Tokens: []Token{
			{Secret: "r3ad", Subject: "reader", Scopes: []string{wire.ScopeRead}},
			{Secret: "wr1te", Subject: "writer", Scopes: []string{wire.ScopeWrite}},
			{Secret: "dev-only", Subject: "dev", Scopes: []string{wire.ScopeRead}, Environments: []string{"dev"}},
		},
	})
	header := func(pairs ...string) *websocket.DialOptions {
		h := http.Header{}
		for i := 0; i < len(pairs); i += 2 {
			h.Add(pairs[i], pairs[i+1])
		}
		return &websocket.DialOptions{HTTPHeader: h}
	}
	protocols := func(ps ...string) *websocket.DialOptions { return &websocket.DialOptions{Subprotocols: ps} }
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

	for _, tt := range []struct {
		name   string
		query  string
		opts   *websocket.DialOptions
		status int
		code   string
	}{
		{"no token", "environment=prod", nil, 401, wire.CodeUnauthorized},
		{"unknown token", "environment=prod", header("Authorization", "Bearer nope"), 401, wire.CodeUnauthorized},
		{"token in the URL is ignored", "environment=prod&access_token=r3ad&token=r3ad", nil, 401, wire.CodeUnauthorized},
		{"no flags:read", "environment=prod", header("Authorization", "Bearer wr1te"), 403, wire.CodeForbidden},
		{"other environment", "environment=prod", header("Authorization", "Bearer dev-only"), 403, wire.CodeForbidden},
		{"unknown environment", "environment=nope", header("Authorization", "Bearer r3ad"), 404, wire.CodeEnvironmentNotFound},
		{"unknown token as subprotocol", "environment=prod", protocols(WebSocketProtocol, WebSocketBearerPrefix+b64("nope")), 401, wire.CodeUnauthorized},
		{"bearer subprotocol alone", "environment=prod", protocols(WebSocketBearerPrefix + b64("r3ad")), 400, wire.CodeBadRequest},
		{"bearer subprotocol not base64url", "environment=prod", protocols(WebSocketProtocol, WebSocketBearerPrefix+"r3ad*"), 400, wire.CodeBadRequest},
		{"two bearer subprotocols", "environment=prod", protocols(WebSocketProtocol, WebSocketBearerPrefix+b64("r3ad"), WebSocketBearerPrefix+b64("dev-only")), 400, wire.CodeBadRequest},
		{"token twice", "environment=prod", &websocket.DialOptions{
			HTTPHeader:   http.Header{"Authorization": {"Bearer r3ad"}},
			Subprotocols: []string{WebSocketProtocol, WebSocketBearerPrefix + b64("r3ad")},
		}, 400, wire.CodeBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dialWSRefused(t, ts, tt.query, tt.opts).wantError(t, tt.status, tt.code)
		})
	}

	t.Run("Authorization", func(t *testing.T) {
		c, _ := dialWS(t, ts, "environment=prod", header("Authorization", "Bearer r3ad"))
		readHello(t, c)
		d, _ := dialWS(t, ts, "environment=dev", header("Authorization", "Bearer dev-only"))
		if h := readHello(t, d); h.Environment != "dev" {
			t.Fatalf("hello %+v", h)
		}
	})
	t.Run("bearer subprotocol", func(t *testing.T) {
		c, res := dialWS(t, ts, "environment=prod", protocols(WebSocketProtocol, WebSocketBearerPrefix+b64("r3ad")))
		if c.Subprotocol() != WebSocketProtocol || res.Header.Get("Sec-WebSocket-Protocol") != WebSocketProtocol {
			t.Fatalf("subprotocol %q, header %q: want %s, never the token", c.Subprotocol(), res.Header.Get("Sec-WebSocket-Protocol"), WebSocketProtocol)
		}
		readHello(t, c)
		v, _ := ts.PutFlag("prod", evaluate.Flag{Key: "seen"}, "t", "r")
		if se, raw := readEvent(t, c); se.Version != v {
			t.Fatalf("event %s, want version %d", raw, v)
		}
	})
	t.Run("not an upgrade", func(t *testing.T) {
		r := ts.do("GET", "/v1/ws?environment=prod", "", "Authorization: Bearer r3ad")
		r.wantError(t, http.StatusUpgradeRequired, wire.CodeBadRequest)
		if r.header.Get("Upgrade") != "websocket" {
			t.Fatalf("426 without Upgrade: websocket: %v", r.header)
		}
	})
	t.Run("not an upgrade, no token", func(t *testing.T) {
		ts.do("GET", "/v1/ws?environment=prod", "").wantError(t, 401, wire.CodeUnauthorized)
	})
}

// Pages of other origins are refused unless OriginPatterns lists them;
// bad patterns are an error from New.
func TestWebSocketOrigins(t *testing.T) {
	origin := func(o string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {o}}}
	}
	ts := newTestServer(t, Options{})
	if r := dialWSRefused(t, ts, "environment=prod", origin("https://evil.example")); r.status != 403 {
		t.Fatalf("foreign origin: status %d %s", r.status, r.body)
	}
	same, _ := dialWS(t, ts, "environment=prod", origin(ts.URL)) // the server's own origin
	readHello(t, same)

	allow := newTestServer(t, Options{WebSocket: WebSocketOptions{OriginPatterns: []string{"*.example.com"}}})
	c, _ := dialWS(t, allow, "environment=prod", origin("https://app.example.com"))
	readHello(t, c)
	if r := dialWSRefused(t, allow, "environment=prod", origin("https://example.org")); r.status != 403 {
		t.Fatalf("unlisted origin: status %d", r.status)
	}

	if _, err := New(Options{WebSocket: WebSocketOptions{OriginPatterns: []string{"[bad"}}}); err == nil || !strings.Contains(err.Error(), "[bad") {
		t.Fatalf("New with a malformed origin pattern: %v", err)
	}
}

// Ping frames at PingInterval, answered by a reading client; a client that
// never answers is disconnected with 1008 after StreamWriteTimeout.
func TestWebSocketPings(t *testing.T) {
	t.Run("answered", func(t *testing.T) {
		ts := newTestServer(t, Options{WebSocket: WebSocketOptions{PingInterval: 5 * time.Millisecond}})
		var pings atomic.Int64
		c, _ := dialWS(t, ts, "environment=prod", &websocket.DialOptions{
			OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true },
		})
		readHello(t, c)
		// Pings are handled inside Read: keep one pending while waiting.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, _, err := c.Read(ctx); done <- err }()
		testkit.WaitFor(t, wsPatience, "three pings", func() bool { return pings.Load() >= 3 })
		if ts.Streams() != 1 {
			t.Fatalf("a client answering pings was dropped")
		}
		cancel()
		<-done
	})
	t.Run("unanswered", func(t *testing.T) {
		ts := newTestServer(t, Options{StreamWriteTimeout: 300 * time.Millisecond, WebSocket: WebSocketOptions{PingInterval: 5 * time.Millisecond}})
		c, _ := dialWS(t, ts, "environment=prod", nil)
		// The client reads nothing, so answers no ping: dropped.
		testkit.WaitFor(t, wsPatience, "the silent client dropped", func() bool { return ts.Streams() == 0 })
		readHello(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), wsPatience)
		defer cancel()
		_, b, err := c.Read(ctx)
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || !strings.HasPrefix(ce.Reason, "no pong") {
			t.Fatalf("after the drop: message %q, error %v; want close 1008 no pong", b, err)
		}
	})
}

// A data message from the client closes the socket with 1008; Close sends
// 1001 to every client, waits for their handlers and refuses new sockets.
func TestWebSocketClientMessageAndServerClose(t *testing.T) {
	ts := newTestServer(t, Options{})
	talker, _ := dialWS(t, ts, "environment=prod", nil)
	readHello(t, talker)
	ctx, cancel := context.WithTimeout(context.Background(), wsPatience)
	defer cancel()
	if err := talker.Write(ctx, websocket.MessageText, []byte(`{"hello":"server"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := talker.Read(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("after a client message: %v, want close 1008", err)
	}

	c, _ := dialWS(t, ts, "environment=prod", nil)
	readHello(t, c)
	got := make(chan error, 1)
	go func() { _, _, err := c.Read(ctx); got <- err }()

	ts.Close()

	if ts.Streams() != 0 {
		t.Fatalf("Streams() = %d after Close", ts.Streams())
	}
	if err := <-got; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("on Close: %v, want close 1001", err)
	}
	dialWSRefused(t, ts, "environment=prod", nil).wantError(t, 503, wire.CodeUnavailable)
}

// Close does not wait out the write timeout of a write stuck on a client
// that does not read: after a grace (1 s) it abandons it.
func TestWebSocketCloseAbandonsAStuckWrite(t *testing.T) {
	ts, dialStalled := newStallServer(t, Options{StreamWriteTimeout: time.Minute, WebSocket: WebSocketOptions{SendQueue: 10000}})
	dialStalled("environment=prod")
	// 500 events (about 40 KB) cannot fit the few kilobytes of socket
	// buffers: the handler's write is stuck, and the queue (10,000) keeps
	// the client from being dropped.
	for i := range 500 {
		ts.PutFlag("prod", evaluate.Flag{Key: "f" + strconv.Itoa(i%10), Owners: []string{strconv.Itoa(i)}}, "t", "r")
	}
	if ts.Streams() != 1 {
		t.Fatal("the stalled client was dropped")
	}
	start := time.Now()
	ts.Close()
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("Close took %v: it waited for the stuck write's 1-minute timeout", d)
	} else {
		t.Logf("Close returned after %v", d.Round(time.Millisecond))
	}
}

// stallListener gives the connections it accepts while stalling is set a
// small socket send buffer: with the client's small receive buffer
// (smallRecvBufDialer), a client that stops reading backs up after a few
// kilobytes, as one on a slow network would, instead of after the
// megabytes a loopback connection buffers.
type stallListener struct {
	net.Listener
	stalling atomic.Bool
}

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && l.stalling.Load() {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// newStallServer is newTestServer with a dial for clients with small
// socket buffers at both ends (the others have the usual ones).
func newStallServer(t testing.TB, opts Options) (ts *testServer, dialStalled func(query string, subprotocols ...string) *websocket.Conn) {
	t.Helper()
	var ln *stallListener
	ts = startTestServer(t, opts, func(hs *httptest.Server) {
		ln = &stallListener{Listener: hs.Listener}
		hs.Listener = ln
	})
	d := smallRecvBufDialer(t, 4096)
	// Its own transport: a new connection (accepted while stalling is
	// set) for every dial.
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	return ts, func(query string, subprotocols ...string) *websocket.Conn {
		t.Helper()
		ln.stalling.Store(true)
		defer ln.stalling.Store(false)
		c, _ := dialWS(t, ts, query, &websocket.DialOptions{HTTPClient: client, Subprotocols: subprotocols})
		return c
	}
}

// drainStalled reads a dropped client to its end: the messages it was
// sent (hello first) and the close error.
func drainStalled(t testing.TB, c *websocket.Conn) (msgs [][]byte, closeErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsPatience)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, b)
	}
}

// A client that stops reading is dropped once its send queue is full: it
// leaves Streams at once, the writes and the other clients go on, and
// when it reads again it finds an in-order prefix of the events, then
// close code 1008. The drop is logged, without the client's token.
func TestWebSocketSlowClientDropped(t *testing.T) {
	var logs syncBuffer
	const secret = "stalled-secret"
	ts, dialStalled := newStallServer(t, Options{
		StreamWriteTimeout: time.Minute,
		WebSocket:          WebSocketOptions{SendQueue: 16},
		Logger:             slog.New(slog.NewJSONHandler(&logs, nil)),
		Tokens:             []Token{{Secret: secret, Subject: "slow-browser", Scopes: []string{wire.ScopeRead}}},
	})
	healthy, _ := dialWS(t, ts, "environment=prod", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + secret}}})
	readHello(t, healthy)
	bearer := WebSocketBearerPrefix + base64.RawURLEncoding.EncodeToString([]byte(secret))
	stalled := dialStalled("environment=prod", WebSocketProtocol, bearer)

	var sent [][]byte // what the healthy client received, in order
	for i := 0; ts.Streams() == 2; i++ {
		if i == 5000 {
			t.Fatalf("the stalled client was not dropped after %d events", i)
		}
		v, err := ts.PutFlag("prod", evaluate.Flag{Key: "f" + strconv.Itoa(i)}, "t", "r")
		if err != nil {
			t.Fatal(err)
		}
		se, raw := readEvent(t, healthy)
		if se.Version != v {
			t.Fatalf("healthy client: %s, want version %d", raw, v)
		}
		sent = append(sent, raw)
	}
	// Dropped: the writes and the healthy client go on.
	v, _ := ts.PutFlag("prod", evaluate.Flag{Key: "after"}, "t", "r")
	if se, _ := readEvent(t, healthy); se.Version != v {
		t.Fatalf("after the drop: version %d, want %d", se.Version, v)
	}
	msgs, err := drainStalled(t, stalled)
	if len(msgs) == 0 {
		t.Fatalf("the stalled client got nothing: %v", err)
	}
	if !bytes.Contains(msgs[0], []byte(`"type":"hello"`)) {
		t.Fatalf("first message %s", msgs[0])
	}
	events := msgs[1:]
	if len(events) >= len(sent) {
		t.Fatalf("the stalled client got %d of %d events: it was not cut off", len(events), len(sent))
	}
	for i, m := range events {
		if !bytes.Equal(m, sent[i]) {
			t.Fatalf("stalled client message %d: %s, want %s", i, m, sent[i])
		}
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "too slow: send queue full" {
		t.Fatalf("the stalled client's end: %v, want close 1008 too slow", err)
	}
	t.Logf("stalled client dropped after %d events; it had received %d", len(sent), len(events))

	// The handler has returned once the server closes (Close waits for it).
	ts.Close()
	out := logs.String()
	if strings.Contains(out, secret) || strings.Contains(out, bearer) {
		t.Fatalf("the log has the token:\n%s", out)
	}
	found := false
	for line := range strings.SplitSeq(out, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "flagserver: WebSocket client dropped" {
			found = rec["level"] == "WARN" && rec["code"] == float64(1008) && rec["reason"] == "too slow: send queue full" &&
				rec["subject"] == "slow-browser" && rec["environment"] == "prod"
			if !found {
				t.Fatalf("drop record %v", rec)
			}
		}
	}
	if !found {
		t.Fatalf("no drop record in the log:\n%s", out)
	}
}

// The two transports deliver the same sequence: 1,000 writes reach 100
// SSE clients and 100 WebSocket clients as the same 1,000 events (same
// ids, same bytes, in write order), while one more WebSocket client that
// never reads is dropped (close code 1008 once it reads again, after an
// in-order prefix) without holding anyone up.
//
// The writer pauses every 100 writes until every reading client has caught
// up (a condition, not a sleep), so that on a busy machine a reading client
// never lags by more than the send queue (256) and only the stalled one is
// dropped. Under the race detector it runs with 25 clients of each kind.
func TestSSEAndWebSocketSameSequence(t *testing.T) {
	const (
		writes = 1000
		batch  = 100
	)
	clients := 100
	if raceEnabled {
		clients = 25
	}
	ts, dialStalled := newStallServer(t, Options{StreamWriteTimeout: time.Minute, WebSocket: WebSocketOptions{SendQueue: 256}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A client of its own, not http.DefaultClient: the contract tests
	// record what goes through the default transport, and 100,000 events
	// would add nothing to what the other tests show them.
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}

	// A collector gathers one client's events (id and data) until it has
	// them all or its connection fails.
	type collector struct {
		ids, data []string // ids: SSE only
		n         atomic.Int64
		err       error
		done      chan struct{}
	}
	newCollector := func() *collector { return &collector{done: make(chan struct{})} }
	var all []*collector
	for range clients {
		req, _ := http.NewRequest("GET", ts.URL+"/v1/stream?environment=prod", nil)
		s := testkit.OpenStream(t, client, req)
		c := newCollector()
		all = append(all, c)
		go func() {
			defer close(c.done)
			for len(c.ids) < writes {
				ev, ok := s.NextWithin(wsPatience)
				if !ok {
					c.err = errors.New("SSE: stream ended or silent")
					return
				}
				c.ids, c.data = append(c.ids, ev.ID), append(c.data, ev.Data)
				c.n.Add(1)
			}
		}()
	}
	for range clients {
		conn, _ := dialWS(t, ts, "environment=prod", &websocket.DialOptions{HTTPClient: client})
		readHello(t, conn)
		c := newCollector()
		all = append(all, c)
		go func() {
			defer close(c.done)
			for len(c.data) < writes {
				_, b, err := conn.Read(ctx)
				if err != nil {
					c.err = err
					return
				}
				// A message's id is its version: compared as part of its
				// bytes, with an SSE client's id and data below.
				c.data = append(c.data, string(b))
				c.n.Add(1)
			}
		}()
	}
	stalled := dialStalled("environment=prod")
	if n := ts.Streams(); n != 2*clients+1 {
		t.Fatalf("Streams() = %d, want %d", n, 2*clients+1)
	}

	start := time.Now()
	var slowest time.Duration
	versions := make([]int64, writes)
	for i := range writes {
		w := time.Now()
		// Ten flags in turn, each write a change (its owner).
		v, err := ts.PutFlag("prod", evaluate.Flag{Key: "w" + strconv.Itoa(i%10), Owners: []string{"owner-" + strconv.Itoa(i)}}, "t", "r")
		if err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(w))
		versions[i] = v
		if (i+1)%batch == 0 {
			testkit.WaitFor(t, time.Minute, "every reading client to catch up", func() bool {
				for _, c := range all {
					select {
					case <-c.done:
						if c.err != nil {
							return true // reported below
						}
					default:
					}
					if c.n.Load() < int64(i+1) {
						return false
					}
				}
				return true
			})
		}
	}
	for _, c := range all {
		<-c.done
	}
	elapsed := time.Since(start)

	// Every reader: all 1,000 events, in write order, ids the versions the
	// writes returned, each the invalidation of the flag written; the
	// bytes identical across all 200 clients and both transports.
	ref := all[0]
	for i, c := range all {
		kind := "SSE"
		if i >= clients {
			kind = "WebSocket"
		}
		if c.err != nil || len(c.data) != writes {
			t.Fatalf("%s client %d: %d events, error %v", kind, i, len(c.data), c.err)
		}
		for j := range writes {
			if kind == "SSE" && c.ids[j] != strconv.FormatInt(versions[j], 10) || c.data[j] != ref.data[j] {
				t.Fatalf("%s client %d, event %d: data %s; want id %d data %s", kind, i, j, c.data[j], versions[j], ref.data[j])
			}
		}
	}
	for j, d := range ref.data {
		var se wire.StreamEvent
		if err := json.Unmarshal([]byte(d), &se); err != nil || se.Type != wire.EventInvalidate || se.FlagKey != "w"+strconv.Itoa(j%10) || se.Version != versions[j] || se.Environment != "prod" {
			t.Fatalf("event %d: %s, want the invalidation of w%d at %d", j, d, j%10, versions[j])
		}
	}

	// The stalled client was dropped; reading now it finds an in-order
	// prefix, then 1008.
	if n := ts.Streams(); n != 2*clients {
		t.Fatalf("Streams() = %d after the writes, want %d (the stalled client dropped)", n, 2*clients)
	}
	msgs, err := drainStalled(t, stalled)
	if len(msgs) == 0 || !bytes.Contains(msgs[0], []byte(`"type":"hello"`)) {
		t.Fatalf("stalled client: %d messages, first %q", len(msgs), msgs)
	}
	got := msgs[1:]
	if len(got) >= writes {
		t.Fatalf("the stalled client got all %d events", len(got))
	}
	for j, m := range got {
		if string(m) != ref.data[j] {
			t.Fatalf("stalled client event %d: %s, want %s", j, m, ref.data[j])
		}
	}
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("stalled client's end: %v, want close 1008", err)
	}
	t.Logf("%d writes to %d SSE + %d WebSocket clients in %v (slowest write %v); the stalled client got %d events before it was dropped",
		writes, clients, clients, elapsed.Round(time.Millisecond), slowest.Round(time.Microsecond), len(got))
}
