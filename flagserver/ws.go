package flagserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/flagwire/flagwire/internal/wire"
)

// GET /v1/ws?environment=ENV carries the stream's events (stream.go) over
// a WebSocket (RFC 6455), for clients that prefer one to Server-Sent
// Events; the SDK itself uses SSE. Both transports subscribe to the same
// hub: the same events, in the same order, with the same ids.
//
// Every message is a JSON text message. The first is a greeting with the
// version the socket starts after (what an SSE stream's
// X-Flagwire-Config-Version header and greeting comment say; browsers
// cannot read the handshake's headers) and the store's epoch:
//
//	{"type":"hello","environment":"prod","version":41,"epoch":"e-…"}
//
// Then one message per change, byte for byte the data of the SSE event,
// whose id is its "version":
//
//	{"type":"invalidate","flagKey":"checkout-new-flow","environment":"prod","version":42}
//	{"type":"invalidate","flagKey":"a","environment":"prod","version":43,"dependents":["b","c"]}
//	{"type":"reset","environment":"prod","version":57}
//
// Resume: ?lastEventId=N (the last "version" received, same epoch) replays
// every event after N from the replay buffer, or sends one reset when N is
// no longer buffered (or is newer than the server's version), as
// Last-Event-ID does for SSE. The client sends no messages: a data message
// from it closes the socket with 1008.
//
// Keep-alive: a ping frame every WebSocketOptions.PingInterval (default
// Options.KeepAlive, 15 s); WebSocket clients and browsers answer pings
// while they read. A client that has not answered within
// Options.StreamWriteTimeout is disconnected (1008).
//
// Slow clients: each client has a send queue bounded by
// WebSocketOptions.SendQueue (default Options.ReplayBuffer, 1,024): the
// messages published since it connected that its connection has not taken
// yet (a resumption's replay comes first and is bounded by the buffer).
// The queue is a window on the environment's replay buffer (no copy per
// client); when it would grow past its bound the client is dropped at
// once (it leaves Streams and is sent nothing more) and the socket is
// closed with 1008 "too slow: send queue full" as soon as the write in
// flight ends. That write, like every write, has Options.StreamWriteTimeout
// (default 10 s); a connection that takes nothing for that long is closed
// without a close frame. Publishing never waits for a client.
//
// Authentication and scopes are those of GET /v1/stream (flags:read, the
// token's environments), with the token in the Authorization header. A
// browser cannot set that header on a WebSocket, so it may instead offer
// two subprotocols: "flagwire.v1" and "flagwire.bearer." followed by the
// token in unpadded base64url (new WebSocket(url, ["flagwire.v1",
// "flagwire.bearer." + b64url(token)])); the server answers with
// "flagwire.v1" and never echoes the token. A token in the URL is never
// accepted: URLs end up in logs. Pages of other origins than the server's
// own are refused (403) unless WebSocketOptions.OriginPatterns lists them.
//
// Close codes the server sends: 1001 when it shuts down (Close), 1008 for
// a slow client, a missing pong or a data message from the client.

// WebSocket subprotocols of GET /v1/ws.
const (
	// WebSocketProtocol is the subprotocol the server selects when the
	// client offers it (a browser that offers a bearer subprotocol must
	// offer this one too).
	WebSocketProtocol = "flagwire.v1"
	// WebSocketBearerPrefix, followed by a token in unpadded base64url,
	// is a subprotocol that carries the token of a client that cannot set
	// the Authorization header (a browser).
	WebSocketBearerPrefix = "flagwire.bearer."
)

// WebSocketOptions configures GET /v1/ws. The zero value is valid.
type WebSocketOptions struct {
	// PingInterval is how often a ping frame is sent; a client that has
	// not answered one within Options.StreamWriteTimeout is disconnected.
	// Zero or negative means Options.KeepAlive (default 15s).
	PingInterval time.Duration
	// SendQueue bounds each client's send queue: the messages published
	// since it connected that its connection has not taken yet. A client
	// whose queue would grow past it is disconnected with close code 1008.
	// (The events a resuming client is replayed are bounded by the replay
	// buffer instead.) Zero or negative means Options.ReplayBuffer
	// (default 1,024).
	SendQueue int
	// OriginPatterns are the hosts, besides the server's own, whose pages
	// may open a WebSocket to it: patterns matched case-insensitively with
	// path.Match against the Origin's host (or against scheme://host when
	// the pattern contains "://"). Empty: only pages of the server's own
	// origin, and clients that send no Origin (programs). A malformed
	// pattern is an error from New.
	OriginPatterns []string
}

// resolveWebSocket applies the defaults of opts.WebSocket (after those of
// KeepAlive and ReplayBuffer) and checks its origin patterns.
func resolveWebSocket(opts *Options) error {
	o := &opts.WebSocket
	if o.PingInterval <= 0 {
		o.PingInterval = opts.KeepAlive
	}
	if o.SendQueue <= 0 {
		o.SendQueue = opts.ReplayBuffer
	}
	for _, p := range o.OriginPatterns {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return fmt.Errorf("flagserver: WebSocket origin pattern %q is not a valid path.Match pattern", p)
		}
	}
	o.OriginPatterns = append([]string(nil), o.OriginPatterns...)
	return nil
}

// wsHello is the first message of a WebSocket.
type wsHello struct {
	Type        string `json:"type"` // "hello"
	Environment string `json:"environment"`
	Version     int64  `json:"version"`
	Epoch       string `json:"epoch"`
}

// wsConns tracks the WebSocket handlers for Close: their connections are
// hijacked, so http.Server.Shutdown neither closes nor waits for them.
type wsConns struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	// writes is cancelled by closeAndWait when handlers are still writing
	// after wsShutdownGrace: a write stuck on a client that does not read
	// is abandoned (its connection closed) rather than waited for.
	writes context.Context
	cancel context.CancelFunc
}

// wsShutdownGrace is how long Close lets WebSocket writes in flight
// finish before it abandons them.
const wsShutdownGrace = time.Second

// add registers a handler; false once Close has begun.
func (c *wsConns) add() (writes context.Context, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false
	}
	if c.writes == nil {
		c.writes, c.cancel = context.WithCancel(context.Background())
	}
	c.wg.Add(1)
	return c.writes, true
}

func (c *wsConns) done() { c.wg.Done() }

// closeAndWait refuses new handlers and waits for every handler to
// return, abandoning the writes still in flight after wsShutdownGrace. (Not
// at once: a write whose bytes have left may not have returned yet, and
// abandoning it would close its connection without the 1001.)
func (c *wsConns) closeAndWait() {
	c.mu.Lock()
	c.closed = true
	cancel := c.cancel
	c.mu.Unlock()
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(wsShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		if cancel != nil {
			cancel()
		}
		<-done
	}
}

// handleWS serves GET /v1/ws?environment=ENV (see the comment at the top
// of this file).
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	rc := reqCtx(r)
	env, es, ok := s.readableQueryEnv(w, r)
	if !ok {
		return
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		writeError(w, errorf(http.StatusUpgradeRequired, wire.CodeBadRequest,
			"GET /v1/ws is a WebSocket: the request needs Connection: Upgrade and Upgrade: websocket (GET /v1/stream serves the same events as Server-Sent Events)"))
		return
	}
	lastID := r.URL.Query().Get("lastEventId")
	if lastID != "" {
		if n, err := strconv.ParseInt(lastID, 10, 64); err != nil || n < 0 {
			writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest,
				"lastEventId must be the version of the last event received, in decimal").with(map[string]any{"field": "lastEventId"}))
			return
		}
	}
	writes, ok := s.ws.add()
	if !ok {
		writeError(w, ErrClosed)
		return
	}
	defer s.ws.done()
	opts := s.opts.WebSocket
	sub, version := s.subscribe(r.Context(), env, es, lastID, opts.SendQueue)
	defer s.hub.unsubscribe(sub)

	h := w.Header()
	h.Set(wire.HeaderConfigVersion, strconv.FormatInt(version, 10))
	h.Set(wire.HeaderConfigEpoch, s.epoch)
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:   []string{WebSocketProtocol},
		OriginPatterns: opts.OriginPatterns,
	})
	if err != nil {
		return // Accept answered: 403 for a foreign origin, 400 for a bad handshake
	}
	hello, _ := json.Marshal(wsHello{Type: "hello", Environment: env, Version: version, Epoch: s.epoch})
	c := &wsConn{
		s:       s,
		conn:    conn,
		sub:     sub,
		writes:  writes,
		timeout: s.opts.StreamWriteTimeout,
		failed:  make(chan struct{}),
	}
	code, reason := c.serve(hello, opts.PingInterval)
	if code == websocket.StatusPolicyViolation || code == 0 && reason != "" {
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "flagserver: WebSocket client dropped",
			slog.String("requestId", rc.id), slog.String("subject", rc.principal.subject),
			slog.String("environment", env), slog.Int("code", int(code)), slog.String("reason", reason))
	}
}

// wsConn is one WebSocket: the handler's goroutine writes to it, a second
// goroutine pings it and a third reads it (pongs and the client's close are
// handled inside reads). Not the library's CloseRead: on a data message it
// closes from its own reading goroutine and waits for itself (15 s).
type wsConn struct {
	s       *Server
	conn    *websocket.Conn
	sub     *subscriber
	writes  context.Context // cancelled at shutdown, after a grace
	timeout time.Duration   // each write; each ping's pong

	failOnce sync.Once
	failed   chan struct{} // closed by fail
	failCode websocket.StatusCode
	failWhy  string
}

// fail ends the connection with code (0: it is already broken) and reason.
func (c *wsConn) fail(code websocket.StatusCode, reason string) {
	c.failOnce.Do(func() {
		c.failCode, c.failWhy = code, reason
		close(c.failed)
	})
}

// serve runs the connection until it ends, closes it and returns the close
// code it sent (0 for none: the client left or the connection broke) and
// why.
func (c *wsConn) serve(hello []byte, ping time.Duration) (websocket.StatusCode, string) {
	peer, peerGone := context.WithCancel(context.Background())
	var reader sync.WaitGroup
	reader.Add(1)
	go func() {
		defer reader.Done()
		defer peerGone()
		c.reads()
	}()
	stop, stopPings := context.WithCancel(context.Background())
	var pinger sync.WaitGroup
	pinger.Add(1)
	go func() {
		defer pinger.Done()
		c.pings(stop, ping)
	}()
	code, reason := c.writeLoop(peer, hello)
	c.s.hub.unsubscribe(c.sub)
	if code == 0 {
		c.conn.CloseNow()
	} else {
		c.conn.Close(code, reason) // bounded by the library: 5 s to write the frame, 5 s for the reply
	}
	// Stopped only now: cancelling a ping while its frame is written would
	// close the connection before the close frame. Closed, it fails any ping.
	stopPings()
	pinger.Wait()
	reader.Wait() // the connection is closed: its read has returned
	return code, reason
}

// wsReadLimit bounds a client message: the client sends none, so one is
// read (up to this size) only to be refused.
const wsReadLimit = 1 << 10

// reads reads the connection until it closes, which handles pings, pongs
// and the client's close. A data message fails the connection: the client
// is to send none.
func (c *wsConn) reads() {
	c.conn.SetReadLimit(wsReadLimit) // beyond it the library closes with 1009
	if _, _, err := c.conn.Read(context.Background()); err == nil {
		c.fail(websocket.StatusPolicyViolation, "unexpected data message: the client sends none")
	}
}

// writeLoop sends hello, then the subscriber's messages, until the client
// leaves, the server closes, the subscriber is dropped as slow, a write
// fails or a ping goes unanswered.
func (c *wsConn) writeLoop(peer context.Context, hello []byte) (websocket.StatusCode, string) {
	if reason, ok := c.write(hello); !ok {
		return 0, reason
	}
	for {
		select {
		case <-peer.Done():
			select {
			case <-c.failed:
				return c.failCode, c.failWhy
			default:
				return 0, ""
			}
		case <-c.s.done:
			return websocket.StatusGoingAway, "server shutting down"
		case <-c.sub.slow:
			return websocket.StatusPolicyViolation, "too slow: send queue full"
		case <-c.failed:
			return c.failCode, c.failWhy
		case <-c.sub.notify:
			for _, ev := range c.s.pending(c.sub) {
				select {
				case <-c.sub.slow: // dropped while a write was in flight: send nothing more
					return websocket.StatusPolicyViolation, "too slow: send queue full"
				default:
				}
				if reason, ok := c.write(ev.data); !ok {
					return 0, reason
				}
				c.s.hub.sent(c.sub)
			}
		}
	}
}

// write sends one text message within the write timeout. When it fails
// the library has closed the connection; reason says why when the client
// is at fault ("" when it left or the server is closing).
func (c *wsConn) write(msg []byte) (reason string, ok bool) {
	ctx, cancel := context.WithTimeout(c.writes, c.timeout)
	defer cancel()
	err := c.conn.Write(ctx, websocket.MessageText, msg)
	switch {
	case err == nil:
		return "", true
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "no write taken within " + c.timeout.String(), false
	default:
		return "", false
	}
}

// pings sends a ping every interval until stop; an unanswered one fails the
// connection.
func (c *wsConn) pings(stop context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(stop, c.timeout)
			err := c.conn.Ping(ctx)
			timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
			cancel()
			if err != nil {
				if timedOut {
					c.fail(websocket.StatusPolicyViolation, "no pong within "+c.timeout.String())
				}
				return // otherwise stopping, or the connection is gone
			}
		}
	}
}

// wsBearer lets a browser, which cannot set Authorization on a WebSocket,
// send its token for GET /v1/ws as a subprotocol (WebSocketBearerPrefix):
// it becomes the request's Authorization before the route's guard reads
// it. Other requests pass untouched.
func wsBearer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/ws" {
			next.ServeHTTP(w, r)
			return
		}
		var tokens []string
		v1 := false
		for _, p := range headerTokens(r.Header, "Sec-WebSocket-Protocol") {
			switch {
			case p == WebSocketProtocol:
				v1 = true
			case strings.HasPrefix(p, WebSocketBearerPrefix):
				tokens = append(tokens, strings.TrimPrefix(p, WebSocketBearerPrefix))
			}
		}
		if len(tokens) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		bad := func(msg string) {
			writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest, "%s", msg).with(map[string]any{"field": "Sec-WebSocket-Protocol"}))
		}
		secret, err := base64.RawURLEncoding.DecodeString(tokens[0])
		switch {
		case len(tokens) > 1:
			bad("more than one " + WebSocketBearerPrefix + " subprotocol")
		case r.Header.Get("Authorization") != "":
			bad("a token both in Authorization and in a " + WebSocketBearerPrefix + " subprotocol: send one")
		case !v1:
			bad("a " + WebSocketBearerPrefix + " subprotocol needs the " + WebSocketProtocol + " subprotocol offered too (the server selects it)")
		case err != nil || len(secret) == 0:
			bad("the token of a " + WebSocketBearerPrefix + " subprotocol must be unpadded base64url")
		default:
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+string(secret))
			next.ServeHTTP(w, r)
		}
	})
}

// headerTokens returns the comma-separated elements of every name header.
func headerTokens(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// headerHasToken reports whether a name header lists token (in any case).
func headerHasToken(h http.Header, name, token string) bool {
	for _, t := range headerTokens(h, name) {
		if strings.EqualFold(t, token) {
			return true
		}
	}
	return false
}
