package flagwire

import (
	"context"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
)

// TestJSONFlagWithAScalarValueServesTheValue: Client.JSON on a JSON flag
// returns the flag's value even when that value is a scalar ("dark") and
// the variant has a payload; on a scalar flag it returns the payload. In
// remote and local mode alike.
func TestJSONFlagWithAScalarValueServesTheValue(t *testing.T) {
	cfg := &evaluate.Config{Environment: "prod", Salt: "s", Flags: []evaluate.Flag{
		{Key: "theme", Type: evaluate.TypeJSON, Variants: []evaluate.Variant{{Name: "dark", Value: "dark", Payload: map[string]any{"bg": "#000"}}}},
		{Key: "plan", Type: evaluate.TypeString, Variants: []evaluate.Variant{{Name: "pro", Value: "pro", Payload: map[string]any{"seats": 5.0}}}},
	}}
	srv := flagtest.NewServer(t, flagtest.WithConfig(cfg))
	for _, mode := range []Mode{ModeRemote, ModeLocal} {
		c := remoteAt(t, srv, WithMode(mode))
		if mode == ModeLocal {
			if err := c.WaitReady(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		ctx := WithAttributes(context.Background(), Attributes{"userId": "u"})
		var theme any
		if d := c.JSON(ctx, "theme", &theme); d.ErrorCode != "" || theme != "dark" {
			t.Errorf("%s: JSON flag with value \"dark\": got %#v (%+v), want \"dark\"", mode, theme, d)
		}
		var plan map[string]any
		if d := c.JSON(ctx, "plan", &plan); d.ErrorCode != "" || plan["seats"] != 5.0 {
			t.Errorf("%s: string flag with a payload: got %#v (%+v), want the payload", mode, plan, d)
		}
	}
}

// TestTransientDecisionErrorsAreNotCached: a per-decision error other than
// FLAG_NOT_FOUND (here GENERAL, once) serves the fallback for that call
// only: the next evaluation asks again and gets the flag's answer.
// FLAG_NOT_FOUND stays cached for its TTL.
func TestTransientDecisionErrorsAreNotCached(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	c := remoteAt(t, srv)
	ctx := user("8a7f4c91", "pro", "US")
	srv.InjectFault(flagtest.Fault{Method: "POST", Path: "/v1/evaluate", Count: 1,
		Body: []byte(`{"requestId":"r","decisions":[{"flagKey":"checkout-new-flow","variant":null,"ttlSeconds":60,"error":{"code":"GENERAL","message":"store busy"}}]}`)})
	if v, d := c.BoolDetail(ctx, "checkout-new-flow", false); v || d.ErrorCode != CodeGeneral || d.Source != SourceCallerDefault {
		t.Fatalf("during the error: %v %+v", v, d)
	}
	if v, d := c.BoolDetail(ctx, "checkout-new-flow", false); !v || d.ErrorCode != "" || d.Source != SourceRemote || d.Reason.RuleID != "rule-1" {
		t.Fatalf("after the error: %v %+v, want the flag's answer from a new request", v, d)
	}
	before := srv.Requests("POST", "/v1/evaluate")
	for range 2 {
		if _, d := c.BoolDetail(ctx, "no-such-flag", false); d.ErrorCode != CodeFlagNotFound {
			t.Fatalf("missing flag: %+v", d)
		}
	}
	if n := srv.Requests("POST", "/v1/evaluate") - before; n != 1 {
		t.Errorf("FLAG_NOT_FOUND twice: %d requests, want 1 (a cached negative answer)", n)
	}
}
