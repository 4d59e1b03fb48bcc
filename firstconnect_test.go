package flagwire

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// TestFirstStreamConnectSyncsLocalMode: local mode's first sync can come
// before the event stream's first connection, and a change made in
// between is never replayed (there is no event id to resume from). The
// first connection therefore asks for a conditional sync, so the change
// is served now rather than at the next poll (60 s by default).
func TestFirstStreamConnectSyncsLocalMode(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	remove := srv.InjectFault(flagtest.Fault{Path: "/v1/stream", Status: 503}) // the stream cannot connect yet
	c, err := New(context.Background(), WithMode(ModeLocal), WithEndpoint(srv.URL), WithToken(srv.Token()),
		WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
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
		return !v && d.Reason.Kind == ReasonOff
	})
}
