package flagwire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/flagtest"
)

func TestNewValidation(t *testing.T) {
	cases := map[string][]Option{
		"no endpoint":     {},
		"bad endpoint":    {WithEndpoint("ftp://x")},
		"relative":        {WithEndpoint("/v1")},
		"empty env":       {WithEndpoint("http://127.0.0.1:1"), WithEnvironment("")},
		"bad ratio":       {WithEndpoint("http://127.0.0.1:1"), WithBreaker(BreakerSettings{FailureRatio: 2})},
		"ttl bounds":      {WithEndpoint("http://127.0.0.1:1"), WithCache(CacheSettings{MinTTL: time.Hour, MaxTTL: time.Second})},
		"offline no boot": {WithMode(ModeOffline)},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := New(context.Background(), opts...)
			if !errors.Is(err, ErrInvalidConfig) || c != nil {
				t.Fatalf("New = %v, %v; want ErrInvalidConfig", c, err)
			}
		})
	}
	// New does not touch the network: an unreachable endpoint is fine.
	c, err := New(context.Background(), WithEndpoint("http://127.0.0.1:1"), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	c.Close(context.Background())
}

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

// TestRemoteAndLocalAgree evaluates 10,000 random contexts through the
// server (remote mode) and in-process (local mode): identical decisions.
func TestRemoteAndLocalAgree(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	local := newLocal(t, srv)
	remote, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithLogger(quietLogger()), WithBatch(500, 2), WithTimeout(2*patience)) // a bound, not a target: the machine may be loaded
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close(context.Background())
	rng := mrand.New(mrand.NewPCG(1, 2))
	plans, regions, countries := []string{"free", "pro", "enterprise"}, []string{"US", "EU", "APAC"}, []string{"DE", "FR", "US", "JP"}
	const n = 10000
	keys := []string{"checkout-new-flow", "pricing-experiment", "max-items", "theme"}
	reqs := make([]Request, 0, n)
	for i := 0; i < n; i++ {
		attrs := Attributes{
			"userId":    fmt.Sprintf("user-%d", rng.IntN(1_000_000)),
			"accountId": fmt.Sprintf("acct-%d", rng.IntN(5000)),
			"plan":      plans[rng.IntN(3)], "region": regions[rng.IntN(3)], "country": countries[rng.IntN(4)],
		}
		if rng.IntN(50) == 0 {
			attrs["userId"] = "beta-1"
		}
		reqs = append(reqs, Request{FlagKey: keys[i%len(keys)], Attributes: attrs})
	}
	got := remote.Evaluate(context.Background(), reqs)
	for i, r := range got {
		if r.Detail.Source != SourceRemote {
			t.Fatalf("item %d: %+v", i, r.Detail)
		}
		lv := local.Evaluate(context.Background(), reqs[i:i+1])[0]
		if !jsonEqual(lv.Value, r.Value) || lv.Detail.Variant != r.Detail.Variant || lv.Detail.Reason.Kind != r.Detail.Reason.Kind || lv.Detail.Reason.RuleID != r.Detail.Reason.RuleID {
			t.Fatalf("item %d (%s %v): local %v %+v, remote %v %+v", i, reqs[i].FlagKey, reqs[i].Attributes, lv.Value, lv.Detail, r.Value, r.Detail)
		}
	}
	if n := srv.Requests("POST", "/v1/evaluate"); n != int64(math.Ceil(float64(len(reqs))/500)) {
		t.Errorf("%d evaluate requests for %d items in chunks of 500", n, len(reqs))
	}
}
