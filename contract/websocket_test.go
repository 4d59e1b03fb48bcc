package contract

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
)

// The messages of GET /v1/ws are WebSocketMessages: a real server's hello,
// flag and segment invalidations (with dependents) and reset each
// validate against the schema, and each is told apart (oneOf: exactly one
// alternative). The recorded traffic covers the handshake, not the
// messages, which travel on the upgraded connection.
func TestWebSocketMessagesMatchContract(t *testing.T) {
	doc := loadDocument(t)
	schema := doc.Components.Schemas["WebSocketMessage"]
	if schema == nil {
		t.Fatal("the document has no WebSocketMessage schema")
	}
	cfg := &evaluate.Config{Environment: "prod", Flags: []evaluate.Flag{
		{Key: "a"},
		{Key: "b", Prerequisites: []evaluate.Prerequisite{{FlagKey: "a", Variants: []any{true}}}},
	}}
	srv, err := flagserver.New(flagserver.Options{Configs: []*evaluate.Config{cfg}, ReplayBuffer: 2})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/ws?environment=prod"

	check := func(c *websocket.Conn, wantType string) {
		t.Helper()
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var msg map[string]any
		if err := json.Unmarshal(b, &msg); err != nil {
			t.Fatalf("message %s is not JSON: %v", b, err)
		}
		if err := schema.Value.VisitJSON(msg, openapi3.EnableJSONSchema2020()); err != nil {
			t.Fatalf("message %s does not match WebSocketMessage: %v", b, err)
		}
		if msg["type"] != wantType {
			t.Fatalf("message %s, want type %s", b, wantType)
		}
		t.Logf("valid: %s", b)
	}
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	check(c, "hello")
	for _, f := range cfg.Flags {
		f.Owners = []string{"x"}
		if _, err := srv.PutFlag("prod", f, "t", "r"); err != nil {
			t.Fatal(err)
		}
		check(c, "invalidate") // a's lists dependent b
	}
	v, err := srv.PutSegment("prod", evaluate.Segment{Key: "s", When: "plan == 'pro'"}, "t", "r")
	if err != nil {
		t.Fatal(err)
	}
	check(c, "invalidate")
	c.Close(websocket.StatusNormalClosure, "")

	// The first version is no longer in the 2-event buffer: a reset.
	r, _, err := websocket.Dial(ctx, url+"&lastEventId="+strconv.FormatInt(v-3, 10), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.CloseNow()
	check(r, "hello")
	check(r, "reset")
	r.Close(websocket.StatusNormalClosure, "")

	// A message of neither shape fails, so the checks above can fail.
	for _, bad := range []string{
		`{"type":"hello","environment":"prod","version":1}`, // no epoch
		`{"type":"invalidate","version":1,"epoch":"e"}`,     // an event with an epoch
		`{"type":"ping","environment":"prod","version":1,"epoch":"e"}`,
	} {
		var msg map[string]any
		json.Unmarshal([]byte(bad), &msg)
		if err := schema.Value.VisitJSON(msg, openapi3.EnableJSONSchema2020()); err == nil {
			t.Errorf("%s matches WebSocketMessage", bad)
		}
	}
}
