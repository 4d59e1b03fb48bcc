package flagwire

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

func BenchmarkClientBoolLocalNoAlloc(b *testing.B) {
	srv := flagtest.NewServer(b, flagtest.WithConfig(exampleConfig()))
	c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithMode(ModeLocal), WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := c.WaitReady(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx := user("8a7f4c91", "pro", "US")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Bool(ctx, "checkout-new-flow", false)
	}
}

// BenchmarkBootstrap10000Flags is "bootstrap of 10,000 flags: verify +
// compile ≤ 50 ms".
func BenchmarkBootstrap10000Flags(b *testing.B) {
	s := testkit.NewSigner()
	cfg := &evaluate.Config{Environment: "prod", Salt: "s", Version: 1, Segments: []evaluate.Segment{{Key: "beta_testers", Included: []string{"a", "b"}}}}
	for i := 0; i < 10000; i++ {
		cfg.Flags = append(cfg.Flags, evaluate.Flag{Key: fmt.Sprintf("flag-%d", i), Rules: []evaluate.Rule{
			{ID: "r1", When: fmt.Sprintf("plan == 'enterprise-%d' and region == 'EU'", i), Serve: evaluate.Serve{Variant: true}},
			{ID: "r2", Segment: "beta_testers", Serve: evaluate.Serve{Variant: true}},
		}, Default: &evaluate.Serve{Percentage: ptr(25.0)}})
	}
	data := s.Envelope(b, cfg, time.Now(), time.Hour)
	c := &Client{cfg: defaultConfig()}
	c.cfg.localOptions.keys = map[string]ed25519.PublicKey{wire.KeyID(s.Pub): s.Pub}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.loadEnvelope(data, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

func benchClient(b *testing.B, opts ...Option) (*Client, *flagtest.Server) {
	b.Helper()
	srv := flagtest.NewServer(b, flagtest.WithConfig(exampleConfig()))
	base := []Option{WithEndpoint(srv.URL), WithToken(srv.Token()), WithLogger(slog.New(slog.DiscardHandler))}
	c, err := New(context.Background(), append(base, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close(context.Background()) })
	return c, srv
}

// BenchmarkClientBoolCacheHitNoAlloc is the remote mode's hot path: a
// decision cache hit through client.Bool. CI fails if it allocates.
func BenchmarkClientBoolCacheHitNoAlloc(b *testing.B) {
	c, _ := benchClient(b)
	ctx := WithAttributes(context.Background(), Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US", "appVersion": "2.3.1"})
	if !c.Bool(ctx, "checkout-new-flow", false) {
		b.Fatal("warm-up failed")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !c.Bool(ctx, "checkout-new-flow", false) {
			b.Fatal("wrong value")
		}
	}
}

// BenchmarkClientBoolCacheHitParallelNoAlloc is the same from every core.
func BenchmarkClientBoolCacheHitParallelNoAlloc(b *testing.B) {
	c, _ := benchClient(b)
	ctx := WithAttributes(context.Background(), Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US", "appVersion": "2.3.1"})
	c.Bool(ctx, "checkout-new-flow", false)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !c.Bool(ctx, "checkout-new-flow", false) {
				b.Error("wrong value")
				return
			}
		}
	})
}

// BenchmarkClientBoolMiss is the miss path: one POST /v1/evaluate over
// loopback per call (every context is new).
func BenchmarkClientBoolMiss(b *testing.B) {
	c, _ := benchClient(b)
	ctxs := make([]context.Context, b.N)
	for i := range ctxs {
		ctxs[i] = WithAttributes(context.Background(), Attributes{"userId": "u" + strconv.Itoa(i), "plan": "pro", "region": "US"})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Bool(ctxs[i], "checkout-new-flow", false)
	}
}

func BenchmarkWithAttributes(b *testing.B) {
	attrs := Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US", "appVersion": "2.3.1"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		WithAttributes(context.Background(), attrs)
	}
}

// BenchmarkSubjectCacheKey measures what remote mode pays once per new
// subject: the canonical encoding of 4 attributes and its 128-bit hash
// (the decision cache key). The context is fresh each time, as a new
// request's is.
func BenchmarkSubjectCacheKey(b *testing.B) {
	attrs := []Attr{StringAttr("userId", "user-123"), StringAttr("plan", "pro"), StringAttr("region", "US"), StringAttr("appVersion", "2.3.4")}
	b.ReportAllocs()
	for b.Loop() {
		ec := evalContext{subject: attrs}
		ec.key()
	}
}
