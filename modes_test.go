package flagwire

import (
	"context"
	"errors"
	"strings"
	"testing"
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
		{"cache size in local mode", []Option{WithMode(ModeLocal), ep, WithCacheSize(10)}, "WithCacheSize does not apply in local mode (only in remote)"},
		{"OFREP in local mode", []Option{WithMode(ModeLocal), ep, WithOFREP()}, "WithOFREP does not apply in local mode"},
		{"max staleness in local mode", []Option{WithMode(ModeLocal), ep, WithMaxStaleness(1)}, "WithMaxStaleness does not apply in local mode"},
		{"poll interval in remote mode", []Option{ep, WithPollInterval(1)}, "WithPollInterval does not apply in remote mode (only in local)"},
		{"endpoint in offline mode", []Option{WithMode(ModeOffline), WithBootstrap([]byte("{}")), ep}, "WithEndpoint does not apply in offline mode (only in remote and local)"},
		{"retry in offline mode", []Option{WithMode(ModeOffline), WithBootstrap([]byte("{}")), WithRetry(RetrySettings{})}, "WithRetry does not apply in offline mode"},
		{"options in any order", []Option{WithCacheSize(10), WithMode(ModeLocal), ep}, "WithCacheSize does not apply in local mode"},
		{"remote options in remote mode", []Option{ep, WithCacheSize(10), WithTTLBounds(0, 0), WithMaxStaleness(1), WithBatch(0, 0)}, ""},
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
