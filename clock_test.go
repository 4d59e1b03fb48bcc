package flagwire

import (
	"context"
	"testing"
	"time"

	"github.com/flagwire/flagwire/internal/testkit"
)

// TestAnIdleClientParksItsClock: a client that is not evaluating stops
// ticking (its coarse clock's goroutine parks after half a second without
// a reading), in every mode, offline included; the next evaluation reads
// a current clock and wakes it.
func TestAnIdleClientParksItsClock(t *testing.T) {
	cfg := killConfig(true)
	signer := testkit.NewSigner()
	for _, mode := range []Mode{ModeRemote, ModeLocal, ModeOffline} {
		t.Run(mode.String(), func(t *testing.T) {
			opts := []Option{WithMode(mode), WithEnvironment("prod"), WithLogger(quietLogger()),
				WithBootstrap(signer.Envelope(t, cfg, time.Now().Add(-time.Minute), 2*time.Hour)), WithTrustedKeys(signer.Pub)}
			if mode != ModeOffline {
				opts = append(opts, WithEndpoint("http://127.0.0.1:1"), WithToken("t"), WithStreaming(false))
			}
			c, err := New(context.Background(), opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			if c.coarse == nil {
				t.Fatal("no coarse clock")
			}
			testkit.WaitFor(t, patience, "the idle clock to park", func() bool { return c.coarse.parked.Load() })
			parkedAt := c.coarse.now.Load()
			before := c.cfg.clock.Nanotime()
			c.Bool(WithSubject(context.Background(), StringAttr("userId", "u")), "kill", false)
			if c.coarse.parked.Load() {
				t.Fatal("an evaluation left the clock parked")
			}
			if now := c.coarse.now.Load(); now < before || now == parkedAt {
				t.Fatalf("the first reading after parking is %d, want a current one (≥ %d)", now, before)
			}
			testkit.WaitFor(t, patience, "the clock to park again", func() bool { return c.coarse.parked.Load() })
		})
	}
}
