package flagwire

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// TestOptionsThatDoNotApplyToTheModeAreRefused: an option that would be
// silently ignored in the chosen mode is a configuration error naming the
// option, the mode and where it applies; options that apply are accepted.
func TestOptionsThatDoNotApplyToTheModeAreRefused(t *testing.T) {
	ep := WithEndpoint("http://127.0.0.1:1")
	for _, tc := range []struct {
		name string
		opts []Option
		want string // "" = accepted
	}{
		{"cache size in local mode", []Option{WithMode(ModeLocal), ep, WithCache(CacheSettings{Size: 10})}, "WithCache does not apply in local mode (only in remote)"},
		{"OFREP in local mode", []Option{WithMode(ModeLocal), ep, WithOFREP(true)}, "WithOFREP does not apply in local mode"},
		{"max staleness in local mode", []Option{WithMode(ModeLocal), ep, WithCache(CacheSettings{MaxStale: 1})}, "WithCache does not apply in local mode"},
		{"poll interval in remote mode", []Option{ep, WithPollInterval(1)}, "WithPollInterval does not apply in remote mode (only in local)"},
		{"endpoint in offline mode", []Option{WithMode(ModeOffline), WithBootstrap([]byte("{}")), ep}, "WithEndpoint does not apply in offline mode (only in remote and local)"},
		{"retry in offline mode", []Option{WithMode(ModeOffline), WithBootstrap([]byte("{}")), WithRetry(RetrySettings{})}, "WithRetry does not apply in offline mode"},
		{"options in any order", []Option{WithCache(CacheSettings{Size: 10}), WithMode(ModeLocal), ep}, "WithCache does not apply in local mode"},
		{"remote options in remote mode", []Option{ep, WithCache(CacheSettings{Size: 10}), WithCache(CacheSettings{MinTTL: 0, MaxTTL: 0}), WithCache(CacheSettings{MaxStale: 1}), WithBatch(0, 0)}, ""},
		{"local options in local mode", []Option{WithMode(ModeLocal), ep, WithPollInterval(1), WithStreaming(false)}, ""},
		{"last-known file in remote mode (a fallback source)", []Option{ep, WithLastKnownFile("x")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(context.Background(), append(tc.opts, WithLogger(quietLogger()))...)
			if c != nil {
				c.Close(context.Background())
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v; want ErrInvalidConfig saying %q", err, tc.want)
			}
		})
	}
}

// TestOfflineRefusedBootstrapIsInvalidConfig: in offline mode a bootstrap
// that cannot be used (no trusted key here) fails New with an error that
// wraps ErrInvalidConfig, as New documents.
func TestOfflineRefusedBootstrapIsInvalidConfig(t *testing.T) {
	_, err := New(context.Background(), WithMode(ModeOffline), WithBootstrap([]byte("{}")), WithLogger(quietLogger()))
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "WithTrustedKeys") {
		t.Fatalf("New: %v; want ErrInvalidConfig naming WithTrustedKeys", err)
	}
}

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
