package flagwireotel_test

import (
	"context"
	"fmt"
	"net/http"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	flagwireotel "github.com/flagwire/flagwire/otel"
)

// Instrument a client: evaluations add a feature_flag.evaluation event to
// the active span and feed the metrics.
func Example() {
	srv, err := flagtest.Start(flagtest.WithFlags("test", evaluate.Flag{
		Key:   "checkout-new-flow",
		Rules: []evaluate.Rule{{ID: "rule-2", When: "plan == 'pro'", Serve: evaluate.Serve{Variant: true}}},
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	// Test exporters stand in for your OTel SDK setup.
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	ctx := context.Background()
	defer tp.Shutdown(ctx)
	defer mp.Shutdown(ctx)

	tel, err := flagwireotel.New(flagwireotel.WithMeterProvider(mp))
	if err != nil {
		fmt.Println(err)
		return
	}
	hc := &http.Client{Transport: tel.Transport(&http.Transport{})}
	defer hc.CloseIdleConnections()
	client, err := flagwire.New(ctx,
		flagwire.WithEndpoint(srv.URL),
		flagwire.WithToken(srv.Token()),
		flagwire.WithEnvironment("test"),
		flagwire.WithHooks(tel.Hook()),
		flagwire.WithHTTPClient(hc),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close(ctx)
	reg, err := tel.Observe(client)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer reg.Unregister()

	// A request handler's span, and a flag evaluated inside it.
	reqCtx, span := tp.Tracer("shop").Start(ctx, "GET /checkout")
	reqCtx = flagwire.WithAttributes(reqCtx, flagwire.Attributes{"userId": "8a7f4c91", "plan": "pro"})
	client.Bool(reqCtx, "checkout-new-flow", false)
	client.Bool(reqCtx, "checkout-new-flow", false)
	span.End()

	for _, ev := range spans.Ended()[0].Events() {
		fmt.Println(ev.Name)
		for _, kv := range ev.Attributes {
			fmt.Printf("  %s = %s\n", kv.Key, kv.Value.String())
		}
	}

	var rm metricdata.ResourceMetrics
	reader.Collect(ctx, &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if g, ok := m.Data.(metricdata.Gauge[float64]); ok && m.Name == flagwireotel.MetricCacheHitRatio {
			fmt.Println(m.Name, g.DataPoints[0].Value)
		}
	}
	// Output:
	// feature_flag.evaluation
	//   feature_flag.key = checkout-new-flow
	//   feature_flag.provider.name = flagwire
	//   feature_flag.result.reason = targeting_match
	//   feature_flag.result.variant = true
	//   feature_flag.context.id = 8a7f4c91
	// feature_flag.evaluation
	//   feature_flag.key = checkout-new-flow
	//   feature_flag.provider.name = flagwire
	//   feature_flag.result.reason = cached
	//   feature_flag.result.variant = true
	//   feature_flag.context.id = 8a7f4c91
	// flagwire.cache.hit_ratio 0.5
}
