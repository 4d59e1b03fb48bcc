package flagwire

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// TestNewHonoursItsContext: New with a context already done returns the
// context's error and no client, in every mode, and starts nothing that
// outlives it (goleak in TestMain); a live context is not retained.
func TestNewHonoursItsContext(t *testing.T) {
	srv := flagtest.NewServer(t)
	s := testkit.NewSigner()
	boot := s.Envelope(t, &evaluate.Config{Environment: "prod", Version: 1, Flags: []evaluate.Flag{{Key: "f"}}}, time.Now(), time.Hour)
	modes := map[string][]Option{
		"remote":  {WithEndpoint(srv.URL), WithToken(srv.Token())},
		"local":   {WithEndpoint(srv.URL), WithToken(srv.Token()), WithMode(ModeLocal)},
		"offline": {WithMode(ModeOffline), WithBootstrap(boot), WithTrustedKeys(s.Pub)},
	}
	for name, opts := range modes {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		c, err := New(ctx, append(opts, WithLogger(quietLogger()))...)
		if !errors.Is(err, context.Canceled) || c != nil {
			t.Errorf("%s: New with a cancelled context = %v, %v; want context.Canceled and no client", name, c, err)
		}
		expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		_, err = New(expired, append(opts, WithLogger(quietLogger()))...)
		cancel2()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: New with an expired deadline = %v; want context.DeadlineExceeded", name, err)
		}
		live, cancel3 := context.WithCancel(context.Background())
		c, err = New(live, append(opts, WithLogger(quietLogger()))...)
		cancel3() // not retained: the client keeps working
		if err != nil {
			t.Fatalf("%s: New: %v", name, err)
		}
		if name == "offline" {
			if _, d := c.BoolDetail(context.Background(), "f", true); d.Source != SourceBootstrap {
				t.Errorf("offline after New's context was cancelled: %+v, want BOOTSTRAP", d)
			}
		}
		c.Close(context.Background())
	}
}

func TestCloseStopsEverything(t *testing.T) {
	h := newHarness(t)
	ctx := user("8a7f4c91", "pro", "US")
	h.c.Bool(ctx, "checkout-new-flow", false)
	if err := h.c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); v || d.ErrorCode != CodeClosed {
		t.Fatalf("after Close: %v %+v", v, d)
	}
}

// TestAnIdleClientParksItsClock: a client that is not evaluating stops
// ticking (its coarse clock's goroutine parks after half a second without
// a reading), in every mode, offline included; the next evaluation reads
// a current clock and wakes it.
func TestAnIdleClientParksItsClock(t *testing.T) {
	cfg := killConfig(true)
	signer := testkit.NewSigner()
	for _, mode := range []Mode{ModeRemote, ModeLocal, ModeOffline} {
		t.Run(string(mode), func(t *testing.T) {
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
