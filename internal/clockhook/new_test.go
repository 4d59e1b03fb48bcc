package clockhook_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/clockhook"
	"github.com/flagwire/flagwire/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestNewEvaluatesAtTheHookedClock: an offline client created with a
// clock in New's context decides a date rule by that clock, read at each
// evaluation, while the bootstrap's validity (signed for the real time)
// is still checked against the real clock; a client created without it
// decides by the real clock.
func TestNewEvaluatesAtTheHookedClock(t *testing.T) {
	signer := testkit.NewSigner()
	cfg := &evaluate.Config{Environment: "e", Salt: "s", Version: 1, Flags: []evaluate.Flag{{
		Key:     "launch",
		Rules:   []evaluate.Rule{{ID: "after", When: "now >= '2090-01-01'", Serve: evaluate.Serve{Variant: true}}},
		Default: &evaluate.Serve{Variant: false},
	}}}
	boot := signer.Envelope(t, cfg, time.Now().Add(-time.Minute), time.Hour+time.Minute)
	opts := []flagwire.Option{flagwire.WithMode(flagwire.ModeOffline), flagwire.WithEnvironment("e"),
		flagwire.WithBootstrap(boot), flagwire.WithTrustedKeys(signer.Pub)}

	var at atomic.Pointer[time.Time]
	set := func(tm time.Time) { at.Store(&tm) }
	set(time.Date(2089, 12, 31, 23, 59, 59, 0, time.UTC))
	hooked, err := flagwire.New(clockhook.With(context.Background(), func() time.Time { return *at.Load() }), opts...)
	if err != nil {
		t.Fatalf("New with a hooked clock: %v", err)
	}
	defer hooked.Close(context.Background())
	plain, err := flagwire.New(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(context.Background())

	ctx := flagwire.WithAttributes(context.Background(), flagwire.Attributes{"userId": "u1"})
	check := func(c *flagwire.Client, who string, want bool, wantReason evaluate.ReasonKind) {
		t.Helper()
		v, d := c.BoolDetail(ctx, "launch", !want)
		if v != want || d.Reason.Kind != wantReason || d.ErrorCode != "" {
			t.Errorf("%s: launch = %v (%s, %q), want %v (%s)", who, v, d.Reason.Kind, d.ErrorCode, want, wantReason)
		}
	}
	check(hooked, "hooked at 2089-12-31T23:59:59Z", false, evaluate.ReasonDefault)
	set(time.Date(2090, 1, 1, 0, 0, 0, 0, time.UTC))
	check(hooked, "hooked at 2090-01-01T00:00:00Z", true, evaluate.ReasonRuleMatch)
	check(plain, "the real clock (before 2090)", false, evaluate.ReasonDefault)
}
