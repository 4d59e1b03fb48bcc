package flagwire

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// TestNonFiniteNumbersCountAsMissingInEveryMode: a number that is not
// finite (NaN, +Inf, -Inf) in a context counts as null, a missing
// attribute, in every mode: remote and OFREP send null in its place
// (JSON cannot carry it; before, the request failed with GENERAL), and
// local and offline evaluation treat it as null. The oracle is the
// documented equivalence: every answer equals the engine's for the same
// context with null in place of the number.
func TestNonFiniteNumbersCountAsMissingInEveryMode(t *testing.T) {
	cfg := &evaluate.Config{Environment: "prod", Salt: "s", Version: 1, Flags: []evaluate.Flag{
		{Key: "big-score", Rules: []evaluate.Rule{{ID: "gt", When: "score > 5", Serve: evaluate.Serve{Variant: true}}}},
		{Key: "low-score", Rules: []evaluate.Rule{{ID: "lt", When: "not (score >= 5)", Serve: evaluate.Serve{Variant: true}}}},
		{Key: "has-score", Rules: []evaluate.Rule{{ID: "has", When: "has(account.score)", Serve: evaluate.Serve{Variant: true}}}},
		{Key: "by-score", Bucketing: evaluate.Bucketing{By: "score"}, Default: &evaluate.Serve{Percentage: ptr(50.0)}},
	}}
	srv := flagtest.NewServer(t, flagtest.WithConfig(cfg))
	signer := testkit.NewSigner()
	env := signer.Envelope(t, cfg, time.Now().Add(-time.Minute), 2*time.Hour)
	modes := map[string][]Option{
		"remote":  nil,
		"ofrep":   {WithOFREP(true)},
		"local":   {WithMode(ModeLocal)},
		"offline": nil, // built below: no server
	}
	for name, opts := range modes {
		var c *Client
		if name == "offline" {
			var err error
			c, err = New(context.Background(), WithMode(ModeOffline), WithEnvironment("prod"), WithBootstrap(env), WithTrustedKeys(signer.Pub), WithLogger(quietLogger()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
		} else {
			c = remoteAt(t, srv, opts...)
			if name == "local" {
				if err := c.WaitReady(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			attrs := Attributes{"userId": "u", "score": x, "account": map[string]any{"score": x}, "list": []any{1.0, x}}
			asNull := Attributes{"userId": "u", "score": nil, "account": map[string]any{"score": nil}, "list": []any{1.0, nil}}
			for _, flag := range []string{"big-score", "low-score", "has-score", "by-score"} {
				for _, ctx := range []context.Context{
					WithAttributes(context.Background(), attrs),
					WithSubject(context.Background(), StringAttr("userId", "u"), FloatAttr("score", x), AnyAttr("account", map[string]any{"score": x}), AnyAttr("list", []any{1.0, x})),
				} {
					_, d := c.BoolDetail(ctx, flag, false)
					if d.ErrorCode.isFallback() {
						t.Errorf("%s, %v, %s: %+v", name, x, flag, d)
						continue
					}
					sameAnswer(t, name+" "+flag, d, engineAnswer(t, cfg, flag, asNull))
				}
			}
		}
	}
}
