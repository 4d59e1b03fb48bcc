package servicetest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
)

func newCheckout(t *testing.T, timeout time.Duration) (*Checkout, *flagtest.Server) {
	srv := flagtest.NewServer(t, flagtest.WithFlags("prod", evaluate.Flag{
		Key:   "checkout-new-flow",
		Rules: []evaluate.Rule{{ID: "pro", When: "plan == 'pro'", Serve: evaluate.Serve{Variant: true}}},
	}))
	client, err := flagwire.New(context.Background(), flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()),
		flagwire.WithTimeout(timeout), flagwire.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(context.Background()) })
	return &Checkout{Flags: client}, srv
}

func TestFlowFollowsTheFlag(t *testing.T) {
	c, _ := newCheckout(t, 5*time.Second)
	if got := c.Flow(context.Background(), "u1", "pro"); got != "new" {
		t.Fatalf("pro user: %s", got)
	}
	if got := c.Flow(context.Background(), "u2", "free"); got != "old" {
		t.Fatalf("free user: %s", got)
	}
}

func TestFlowIsSafeWhenFlagServiceFails(t *testing.T) {
	for name, fault := range map[string]flagtest.Fault{
		"5xx":       {Path: "/v1/evaluate", Status: 503},
		"slow":      {Path: "/v1/evaluate", Latency: time.Second},
		"garbage":   {Path: "/v1/evaluate", Body: []byte("<html>oops</html>")},
		"reset":     {Path: "/v1/evaluate", Reset: true},
		"throttled": {Path: "/v1/evaluate", Status: 429, RetryAfter: 30 * time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			c, srv := newCheckout(t, 100*time.Millisecond)
			srv.InjectFault(fault)
			start := time.Now()
			if got := c.Flow(context.Background(), "u1", "pro"); got != "old" {
				t.Fatalf("got %s; want the safe default", got)
			}
			if d := time.Since(start); d > 2*time.Second { // the timeout is 100 ms; slack for loaded CI machines
				t.Fatalf("took %v", d)
			}
		})
	}
}
