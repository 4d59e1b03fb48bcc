package flagwire_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/bootstrap"
	"github.com/flagwire/flagwire/evaluate"
)

// These tests call the client from another package, as applications do:
// the compiler inlines Client.Bool into the caller, and escape analysis
// there, not in package flagwire, decides whether its Detail is on the
// heap. The in-package …NoAlloc benchmarks cannot see that.

// TestCrossPackageBoolNoAlloc is the regression test for a Detail moved
// to the heap on every evaluation when Client.Bool was inlined into
// another package (the generic evalAs it called has no escape summary
// there): 1 allocation per evaluation.
func TestCrossPackageBoolNoAlloc(t *testing.T) {
	srv := exampleServer()
	defer srv.Close()
	c := crossClient(t, flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()))
	ctx := flagwire.WithAttributes(context.Background(), flagwire.Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US"})
	if v, d := c.BoolDetail(ctx, "checkout-new-flow", false); !v || d.Source != flagwire.SourceRemote {
		t.Fatalf("warm-up: %v %+v, want true from REMOTE", v, d)
	}
	for name, eval := range map[string]func(){
		"Bool":       func() { c.Bool(ctx, "checkout-new-flow", false) },
		"String":     func() { c.String(ctx, "pricing-experiment", "") },
		"BoolDetail": func() { c.BoolDetail(ctx, "checkout-new-flow", false) },
	} {
		eval() // warm the cache
		if n := testing.AllocsPerRun(200, eval); n != 0 {
			t.Errorf("%s from another package: %v allocs per cache hit, want 0", name, n)
		}
	}
}

var sinkAttrs flagwire.Attributes

// crossClient is a client of the tests below, closed at the end of the
// test, ready (its config synced) unless in remote mode.
func crossClient(t *testing.T, opts ...flagwire.Option) *flagwire.Client {
	t.Helper()
	c, err := flagwire.New(context.Background(), append(opts, quiet())...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCrossPackageRequestAllocs: a request as a service makes it, from
// another package — a new subject, then cache hits — costs Flagwire one
// allocation beyond the caller's own attributes map, and WithSubject one
// allocation in all.
func TestCrossPackageRequestAllocs(t *testing.T) {
	srv := exampleServer()
	defer srv.Close()
	c := crossClient(t, flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()))
	id, plan, region := "8a7f4c91", "pro", "US"
	bg := context.Background()
	if v, d := c.BoolDetail(flagwire.WithAttributes(bg, flagwire.Attributes{"userId": id, "plan": plan, "region": region}), "checkout-new-flow", false); !v || d.Source != flagwire.SourceRemote {
		t.Fatalf("warm-up: %v %+v, want true from REMOTE", v, d)
	}
	mapOnly := testing.AllocsPerRun(200, func() {
		sinkAttrs = flagwire.Attributes{"userId": id, "plan": plan, "region": region}
	})
	withMap := testing.AllocsPerRun(200, func() {
		ctx := flagwire.WithAttributes(bg, flagwire.Attributes{"userId": id, "plan": plan, "region": region})
		for range 3 {
			if !c.Bool(ctx, "checkout-new-flow", false) {
				t.Fatal("wrong value")
			}
		}
	})
	if withMap-mapOnly != 1 {
		t.Errorf("WithAttributes + 3 cache hits: %v allocations, the map alone %v: Flagwire adds %v, want 1", withMap, mapOnly, withMap-mapOnly)
	}
	withSubject := testing.AllocsPerRun(200, func() {
		ctx := flagwire.WithSubject(bg, flagwire.StringAttr("userId", id), flagwire.StringAttr("plan", plan), flagwire.StringAttr("region", region))
		for range 3 {
			if !c.Bool(ctx, "checkout-new-flow", false) {
				t.Fatal("wrong value")
			}
		}
	})
	if withSubject != 1 {
		t.Errorf("WithSubject + 3 cache hits: %v allocations, want 1", withSubject)
	}
}

// TestCrossPackageLocalRequestAllocs is the regression test for local
// and offline modes building a map from a WithSubject subject on every
// request (8 allocations for 4 attributes): a new subject stated with
// WithSubject, then evaluations from the synced config or the bootstrap,
// costs one allocation in all; WithAttributes costs one beyond the
// caller's map.
func TestCrossPackageLocalRequestAllocs(t *testing.T) {
	srv := exampleServer()
	defer srv.Close()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := bootstrap.Sign(docsConfig(), priv, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		name string
		src  flagwire.Source
		opts []flagwire.Option
	}{
		{"local", flagwire.SourceLocal, []flagwire.Option{flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()), flagwire.WithMode(flagwire.ModeLocal)}},
		{"offline", flagwire.SourceBootstrap, []flagwire.Option{flagwire.WithMode(flagwire.ModeOffline), flagwire.WithBootstrap(boot), flagwire.WithTrustedKeys(pub)}},
	} {
		c := crossClient(t, m.opts...)
		// id misses rule-1 (plan free), so the 10% rollout decides: a
		// rule, a segment lookup by id and a bucketing per evaluation.
		id, plan, region := "8a7f4c91", "free", "US"
		bg := context.Background()
		want := c.Bool(flagwire.WithAttributes(bg, flagwire.Attributes{"userId": id, "plan": plan, "region": region}), "checkout-new-flow", false)
		if _, d := c.BoolDetail(flagwire.WithSubject(bg, flagwire.StringAttr("userId", id), flagwire.StringAttr("plan", plan), flagwire.StringAttr("region", region)),
			"checkout-new-flow", false); d.Source != m.src || d.Reason.Kind != evaluate.ReasonRollout {
			t.Fatalf("%s: warm-up: %+v, want a ROLLOUT from %v", m.name, d, m.src)
		}
		withSubject := testing.AllocsPerRun(200, func() {
			ctx := flagwire.WithSubject(bg, flagwire.StringAttr("userId", id), flagwire.StringAttr("plan", plan), flagwire.StringAttr("region", region))
			for range 3 {
				if c.Bool(ctx, "checkout-new-flow", !want) != want {
					t.Fatal("wrong value")
				}
				c.String(ctx, "pricing-experiment", "")
			}
		})
		if withSubject != 1 {
			t.Errorf("%s mode, WithSubject + 6 evaluations: %v allocations, want 1", m.name, withSubject)
		}
		mapOnly := testing.AllocsPerRun(200, func() {
			sinkAttrs = flagwire.Attributes{"userId": id, "plan": plan, "region": region}
		})
		withMap := testing.AllocsPerRun(200, func() {
			ctx := flagwire.WithAttributes(bg, flagwire.Attributes{"userId": id, "plan": plan, "region": region})
			for range 3 {
				if c.Bool(ctx, "checkout-new-flow", !want) != want {
					t.Fatal("wrong value")
				}
			}
		})
		if withMap-mapOnly != 1 {
			t.Errorf("%s mode, WithAttributes + 3 evaluations: %v allocations, the map alone %v: Flagwire adds %v, want 1", m.name, withMap, mapOnly, withMap-mapOnly)
		}
	}
}
