package flagwire

import (
	"context"
	"log/slog"
	"strconv"
	"testing"

	"github.com/flagwire/flagwire/flagtest"
)

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
