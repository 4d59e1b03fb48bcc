package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/flagwire/flagwire/internal/wire"
)

// wsPatience bounds one WebSocket dial or read.
const wsPatience = 30 * time.Second

// openWS dials replica s's GET /v1/ws for prod (resuming after lastID
// when it is not empty) and reads its hello message.
func openWS(t *testing.T, s *Server, lastID string) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(s.URL, "http") + "/v1/ws?environment=prod"
	if lastID != "" {
		u += "&lastEventId=" + lastID
	}
	ctx, cancel := context.WithTimeout(context.Background(), wsPatience)
	defer cancel()
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	var hello struct{ Type string }
	if err := json.Unmarshal(readWS(t, c), &hello); err != nil || hello.Type != "hello" {
		t.Fatalf("the first message is not a hello: %+v %v", hello, err)
	}
	return c
}

// readWS reads one text message.
func readWS(t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsPatience)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read /v1/ws: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("read /v1/ws: a %v message, want text", typ)
	}
	return b
}

// testWebSocketAcrossReplicas: a WebSocket client of replica B receives
// the writes made through replica A, as the same events (byte for byte)
// that B's SSE stream sends, and resumes on replica A from an event id B
// gave it.
func testWebSocketAcrossReplicas(t *testing.T, h ServerHarness) {
	a, b := two(t, h)
	wb := openWS(t, b, "")
	sb := openStream(t, b, "")
	defer sb.Close()
	versions := writesOn(t, a, "w", 3)
	for _, v := range versions {
		msg := readWS(t, wb)
		var se wire.StreamEvent
		if err := json.Unmarshal(msg, &se); err != nil {
			t.Fatalf("replica B's WebSocket message %s: %v", msg, err)
		}
		if se.Type != wire.EventInvalidate || se.FlagKey != "k" || se.Version != v {
			t.Fatalf("replica B's WebSocket: %s, want the write on A at version %d", msg, v)
		}
		if ev := sb.Next(t); ev.Data != string(msg) || ev.ID != fmt.Sprint(v) {
			t.Fatalf("replica B's SSE event id %s %s; its WebSocket message %s", ev.ID, ev.Data, msg)
		}
	}
	wb.Close(websocket.StatusNormalClosure, "")
	// Resume on the other replica after the first version: the next two.
	wa := openWS(t, a, fmt.Sprint(versions[0]))
	for _, v := range versions[1:] {
		var se wire.StreamEvent
		msg := readWS(t, wa)
		if json.Unmarshal(msg, &se); se.Version != v {
			t.Fatalf("resumed on replica A after %d: %s, want version %d", versions[0], msg, v)
		}
	}
	wa.Close(websocket.StatusNormalClosure, "")
}
