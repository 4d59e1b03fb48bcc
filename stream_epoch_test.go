package flagwire

import (
	"context"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// TestAChangeOnARestartedServerIsStreamed: the server restarts without its
// data (a new store epoch, versions again from 1) and a kill switch is
// turned off on it while the client is disconnected. The client
// reconnects with the Last-Event-ID of the old store, which the new store
// could take as one of its own and replay nothing; the client must not
// resume across epochs, so it serves the change at once instead of the
// old value until a TTL (remote) or the next poll (local).
func TestAChangeOnARestartedServerIsStreamed(t *testing.T) {
	for _, mode := range []Mode{ModeRemote, ModeLocal} {
		t.Run(mode.String(), func(t *testing.T) {
			a := flagtest.NewServer(t, flagtest.WithConfig(killConfig(true)))
			b := flagtest.NewServer(t, flagtest.WithConfig(killConfig(true)))
			// b's kill switch goes off: its version (2) is the one a's
			// event below carries.
			if _, err := b.SetFlag("prod", evaluate.Flag{Key: "kill", Default: &evaluate.Serve{Variant: false}}); err != nil {
				t.Fatal(err)
			}
			p := newSwitchProxy(t, a)
			var c *Client
			if mode == ModeLocal {
				c = newLocalAt(t, p.URL, a.Token(), WithTrustedKeys(a.Flagserver().PublicKey(), b.Flagserver().PublicKey()))
			} else {
				c = remoteAtURL(t, p.URL, a.Token(), WithStreaming(true))
			}
			ctx := WithSubject(context.Background(), StringAttr("userId", "u1"))
			if !c.Bool(ctx, "kill", false) {
				t.Fatal("kill is off on the first server")
			}
			testkit.WaitFor(t, patience, "the stream to connect", func() bool { return c.Status().StreamConnected })
			// An event from a (version 2) gives the client an event id.
			if _, err := a.SetFlag("prod", evaluate.Flag{Key: "kill", Default: &evaluate.Serve{Variant: true}}); err != nil {
				t.Fatal(err)
			}
			testkit.WaitFor(t, patience, "a's event", func() bool {
				if mode == ModeLocal {
					return c.Status().ConfigVersion == 2
				}
				_, d := c.BoolDetail(ctx, "kill", false)
				return d.Source == SourceRemote // re-fetched after the invalidation
			})
			// a is gone; the proxy now leads to b, down while the client
			// notices the loss, then up.
			b.Down()
			p.point(b)
			a.DropStreams()
			testkit.WaitFor(t, patience, "the client to see the outage", func() bool { return !c.Status().StreamConnected })
			b.Up()
			testkit.WaitFor(t, patience, "the restarted server's change", func() bool { return !c.Bool(ctx, "kill", true) })
		})
	}
}
