package flagwireotel_test

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	flagwireotel "github.com/flagwire/flagwire/otel"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testConfig() *evaluate.Config {
	return &evaluate.Config{
		Environment: "test",
		Salt:        "otel-salt",
		Flags: []evaluate.Flag{
			{Key: "new-ui", Rules: []evaluate.Rule{{ID: "pro-users", When: "plan == 'pro'", Serve: evaluate.Serve{Variant: true}}}},
			{Key: "banner", Type: evaluate.TypeString, Variants: []evaluate.Variant{{Name: "blue"}, {Name: "green"}}, Default: &evaluate.Serve{Variant: "blue"}},
			{Key: "rollout", Default: &evaluate.Serve{Rollout: []evaluate.WeightedVariant{{Variant: true, Weight: 50}, {Variant: false, Weight: 50}}}},
			{Key: "killed", State: evaluate.StateOff},
			{Key: "gated", Prerequisites: []evaluate.Prerequisite{{FlagKey: "killed", Variants: []any{true}}}, Default: &evaluate.Serve{Variant: true}},
		},
	}
}

// harness is a flagtest server, OTel test exporters, and a Flagwire client
// instrumented with flagwireotel.
type harness struct {
	srv    *flagtest.Server
	spans  *tracetest.SpanRecorder
	tracer *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	tel    *flagwireotel.Telemetry
	client *flagwire.Client
}

func newHarness(t *testing.T, telOpts []flagwireotel.Option, clientOpts ...flagwire.Option) *harness {
	t.Helper()
	h := &harness{
		srv:    flagtest.NewServer(t, flagtest.WithConfig(testConfig())),
		spans:  tracetest.NewSpanRecorder(),
		reader: sdkmetric.NewManualReader(),
	}
	h.tracer = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	t.Cleanup(func() {
		h.tracer.Shutdown(context.Background())
		mp.Shutdown(context.Background())
	})
	tel, err := flagwireotel.New(append([]flagwireotel.Option{flagwireotel.WithMeterProvider(mp)}, telOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h.tel = tel
	base := &http.Transport{}
	hc := &http.Client{Transport: tel.Transport(base)}
	opts := append([]flagwire.Option{
		flagwire.WithEndpoint(h.srv.URL),
		flagwire.WithToken(h.srv.Token()),
		flagwire.WithEnvironment("test"),
		flagwire.WithStreaming(false),
		flagwire.WithRetry(flagwire.RetrySettings{MaxAttempts: -1}),
		flagwire.WithLogger(slog.New(slog.DiscardHandler)),
		flagwire.WithHooks(tel.Hook()),
		flagwire.WithHTTPClient(hc),
	}, clientOpts...)
	c, err := flagwire.New(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	h.client = c
	t.Cleanup(func() {
		c.Close(context.Background())
		hc.CloseIdleConnections()
	})
	reg, err := tel.Observe(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Unregister() })
	return h
}

func user(id, plan string) context.Context {
	return flagwire.WithAttributes(context.Background(), flagwire.Attributes{"userId": id, "plan": plan})
}

// inSpan runs f with a recording span in ctx and returns the span's events.
func (h *harness) inSpan(ctx context.Context, f func(ctx context.Context)) []sdktrace.Event {
	h.spans.Reset()
	ctx, span := h.tracer.Tracer("test").Start(ctx, "handler")
	f(ctx)
	span.End()
	ended := h.spans.Ended()
	if len(ended) != 1 {
		return nil
	}
	return ended[0].Events()
}

func attrMap(kvs []attribute.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

// TestEvaluationEvent: each evaluation adds one feature_flag.evaluation
// event to the active span, with exactly the semantic conventions'
// attribute names and the expected values.
func TestEvaluationEvent(t *testing.T) {
	h := newHarness(t, nil)
	var staleClient *flagwire.Client
	cases := []struct {
		name    string
		prepare func(t *testing.T)
		eval    func(ctx context.Context)
		ctx     context.Context
		want    map[string]any
	}{
		{
			name: "rule match", ctx: user("u1", "pro"),
			eval: func(ctx context.Context) { h.client.Bool(ctx, "new-ui", false) },
			want: map[string]any{
				"feature_flag.key": "new-ui", "feature_flag.provider.name": "flagwire", "feature_flag.result.reason": "targeting_match",
				"feature_flag.result.variant": "true", "feature_flag.context.id": "u1",
			},
		},
		{
			name: "cached", ctx: user("u1", "pro"),
			eval: func(ctx context.Context) { h.client.Bool(ctx, "new-ui", false) },
			want: map[string]any{
				"feature_flag.key": "new-ui", "feature_flag.provider.name": "flagwire", "feature_flag.result.reason": "cached",
				"feature_flag.result.variant": "true", "feature_flag.context.id": "u1",
			},
		},
		{
			name: "static", ctx: user("u2", "free"),
			eval: func(ctx context.Context) { h.client.String(ctx, "banner", "none") },
			want: map[string]any{
				"feature_flag.key": "banner", "feature_flag.provider.name": "flagwire", "feature_flag.result.reason": "static",
				"feature_flag.result.variant": "blue", "feature_flag.context.id": "u2",
			},
		},
		{
			name: "split", ctx: user("u3", "free"),
			eval: func(ctx context.Context) { h.client.Bool(ctx, "rollout", false) },
			want: map[string]any{
				"feature_flag.key": "rollout", "feature_flag.provider.name": "flagwire", "feature_flag.result.reason": "split",
				"feature_flag.result.variant": nil, "feature_flag.context.id": "u3",
			},
		},
		{
			name: "disabled", ctx: user("u3", "free"),
			eval: func(ctx context.Context) { h.client.Bool(ctx, "killed", true) },
			want: map[string]any{
				"feature_flag.key": "killed", "feature_flag.provider.name": "flagwire", "feature_flag.result.reason": "disabled",
				"feature_flag.result.variant": "false", "feature_flag.context.id": "u3",
			},
		},
		{
			// The flag is on; its prerequisite decided for this subject:
			// targeting_match, as the OpenFeature provider reports it.
			name: "prerequisite failed", ctx: user("u3", "free"),
			eval: func(ctx context.Context) { h.client.Bool(ctx, "gated", true) },
			want: map[string]any{
				"feature_flag.key": "gated", "feature_flag.provider.name": "flagwire", "feature_flag.result.reason": "targeting_match",
				"feature_flag.result.variant": "false", "feature_flag.context.id": "u3",
			},
		},
		{
			name: "flag not found", ctx: user("u1", "pro"),
			eval: func(ctx context.Context) { h.client.Bool(ctx, "no-such-flag", false) },
			want: map[string]any{
				"feature_flag.key": "no-such-flag", "feature_flag.provider.name": "flagwire", "feature_flag.result.reason": "error",
				"feature_flag.context.id": "u1", "error.type": "flag_not_found", "feature_flag.error.message": "flagwire: FLAG_NOT_FOUND",
			},
		},
		{
			name: "type mismatch", ctx: user("u1", "pro"),
			eval: func(ctx context.Context) { h.client.Float(ctx, "banner", 1) },
			want: map[string]any{
				"feature_flag.key": "banner", "feature_flag.provider.name": "flagwire", "feature_flag.result.reason": "error",
				"feature_flag.context.id": "u1", "error.type": "type_mismatch", "feature_flag.error.message": "flagwire: TYPE_MISMATCH",
			},
		},
		{
			name: "unavailable", ctx: user("u9", "pro"),
			prepare: func(t *testing.T) {
				t.Cleanup(h.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: http.StatusServiceUnavailable, Count: 1}))
			},
			eval: func(ctx context.Context) { h.client.Bool(ctx, "new-ui", false) },
			want: map[string]any{
				"feature_flag.key": "new-ui", "feature_flag.provider.name": "flagwire", "feature_flag.result.reason": "error",
				"feature_flag.context.id": "u9", "error.type": "general", "feature_flag.error.message": "flagwire: UNAVAILABLE",
			},
		},
		{
			name: "stale", ctx: user("u1", "pro"),
			prepare: func(t *testing.T) {
				// An expired decision (1 ns TTL) while the API fails. (An
				// invalidated one is never served again, not even stale.)
				// Its own Telemetry keeps h's metrics out of it; the event
				// goes to the span in ctx all the same.
				tel, err := flagwireotel.New()
				if err != nil {
					t.Fatal(err)
				}
				staleClient, err = flagwire.New(context.Background(), flagwire.WithEndpoint(h.srv.URL), flagwire.WithToken(h.srv.Token()),
					flagwire.WithEnvironment("test"), flagwire.WithStreaming(false), flagwire.WithRetry(flagwire.RetrySettings{MaxAttempts: -1}),
					flagwire.WithLogger(slog.New(slog.DiscardHandler)), flagwire.WithCache(flagwire.CacheSettings{MinTTL: time.Nanosecond, MaxTTL: time.Nanosecond}), flagwire.WithHooks(tel.Hook()))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { staleClient.Close(context.Background()) })
				if !staleClient.Bool(user("u1", "pro"), "new-ui", false) {
					t.Fatal("first evaluation failed")
				}
				t.Cleanup(h.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: http.StatusServiceUnavailable}))
				deadline := time.Now().Add(5 * time.Second)
				for _, d := staleClient.BoolDetail(user("u1", "pro"), "new-ui", false); d.Source != flagwire.SourceStale; _, d = staleClient.BoolDetail(user("u1", "pro"), "new-ui", false) {
					if time.Now().After(deadline) {
						t.Fatalf("no stale answer: %+v", d)
					}
				}
			},
			eval: func(ctx context.Context) { staleClient.Bool(ctx, "new-ui", false) },
			want: map[string]any{
				"feature_flag.key": "new-ui", "feature_flag.provider.name": "flagwire", "feature_flag.result.reason": "stale",
				"feature_flag.result.variant": "true", "feature_flag.context.id": "u1",
				"feature_flag.error.message": "flagwire: UNAVAILABLE; a stale value was served",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prepare != nil {
				tc.prepare(t)
			}
			evs := h.inSpan(tc.ctx, tc.eval)
			if len(evs) != 1 || evs[0].Name != "feature_flag.evaluation" {
				t.Fatalf("events %+v, want one feature_flag.evaluation", evs)
			}
			got := attrMap(evs[0].Attributes)
			delete(got, "feature_flag.version") // the flag's version, when the server knows it
			for k, v := range tc.want {
				if v == nil { // present, any value
					if _, ok := got[k]; !ok {
						t.Errorf("attribute %s missing", k)
					}
					tc.want[k] = got[k]
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("attributes\n got %v\nwant %v", got, tc.want)
			}
		})
	}
	t.Run("no recording span", func(t *testing.T) {
		h.spans.Reset()
		h.client.Bool(user("u1", "pro"), "new-ui", false) // no span: no event, no panic
		if n := len(h.spans.Ended()); n != 0 {
			t.Errorf("%d spans", n)
		}
	})
}

// TestContextIDOption: WithContextIDAttribute picks the attribute, and ""
// leaves feature_flag.context.id out.
func TestContextIDOption(t *testing.T) {
	cases := []struct {
		name  string
		attr  string
		attrs flagwire.Attributes
		want  any // nil: absent
	}{
		{"accountId", "accountId", flagwire.Attributes{"userId": "u1", "accountId": "acme"}, "acme"},
		{"numeric id", "accountId", flagwire.Attributes{"accountId": 1337.0}, "1337"},
		{"off", "", flagwire.Attributes{"userId": "u1"}, nil},
		{"attribute missing", "accountId", flagwire.Attributes{"userId": "u1"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, []flagwireotel.Option{flagwireotel.WithContextIDAttribute(tc.attr), flagwireotel.WithProviderName("checkout-flags")})
			ctx := flagwire.WithAttributes(context.Background(), tc.attrs)
			evs := h.inSpan(ctx, func(ctx context.Context) { h.client.String(ctx, "banner", "none") })
			if len(evs) != 1 {
				t.Fatalf("events %+v", evs)
			}
			got := attrMap(evs[0].Attributes)
			if got["feature_flag.context.id"] != tc.want {
				t.Errorf("context id %v, want %v", got["feature_flag.context.id"], tc.want)
			}
			if got["feature_flag.provider.name"] != "checkout-flags" {
				t.Errorf("provider name %v", got["feature_flag.provider.name"])
			}
		})
	}
}

// collect returns the current metrics by name.
func (h *harness) collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != flagwireotel.ScopeName {
			t.Errorf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// sumPoints returns an Int64 sum's points keyed by their attributes.
func sumPoints(t *testing.T, m metricdata.Metrics) map[attribute.Distinct]metricdata.DataPoint[int64] {
	t.Helper()
	s, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T, want an int64 sum", m.Name, m.Data)
	}
	out := map[attribute.Distinct]metricdata.DataPoint[int64]{}
	for _, p := range s.DataPoints {
		out[p.Attributes.Equivalent()] = p
	}
	return out
}

func set(kv ...attribute.KeyValue) attribute.Distinct {
	s := attribute.NewSet(kv...)
	return s.Equivalent()
}

// TestMetrics: the evaluation counter, the remote latency histogram and
// the observed cache, breaker and request instruments, with their exact
// names, units and attributes.
func TestMetrics(t *testing.T) {
	h := newHarness(t, nil, flagwire.WithBreaker(flagwire.BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Hour}))
	ctx := user("u1", "pro")
	h.client.Bool(ctx, "new-ui", false)                   // miss → remote
	h.client.Bool(ctx, "new-ui", false)                   // hit
	h.client.Bool(ctx, "no-such-flag", false)             // miss → FLAG_NOT_FOUND
	h.client.Bool(ctx, "no-such-flag", false)             // hit (a cached negative answer)
	h.client.String(user("u2", "free"), "banner", "none") // miss → remote

	ms := h.collect(t)
	units := map[string]string{
		"flagwire.evaluations": "{evaluation}", "flagwire.remote.duration": "s", "flagwire.cache.hit_ratio": "1",
		"flagwire.cache.lookups": "{lookup}", "flagwire.cache.entries": "{entry}", "flagwire.remote.requests": "{request}",
		"flagwire.breaker.state": "1", "flagwire.breaker.transitions": "{transition}",
	}
	for name, unit := range units {
		m, ok := ms[name]
		if !ok {
			t.Errorf("metric %s missing", name)
			continue
		}
		if m.Unit != unit {
			t.Errorf("%s unit %q, want %q", name, m.Unit, unit)
		}
	}
	if _, ok := ms["flagwire.config.age"]; ok {
		t.Error("config age reported in remote mode without a config")
	}

	t.Run("evaluations", func(t *testing.T) {
		pts := sumPoints(t, ms["flagwire.evaluations"])
		want := map[attribute.Distinct]int64{
			set(attribute.String("feature_flag.key", "new-ui"), attribute.String("feature_flag.result.variant", "true"), attribute.String("feature_flag.result.reason", "targeting_match")): 1,
			set(attribute.String("feature_flag.key", "new-ui"), attribute.String("feature_flag.result.variant", "true"), attribute.String("feature_flag.result.reason", "cached")):          1,
			set(attribute.String("feature_flag.key", "no-such-flag"), attribute.String("feature_flag.result.reason", "error"), attribute.String("error.type", "flag_not_found")):            2,
			set(attribute.String("feature_flag.key", "banner"), attribute.String("feature_flag.result.variant", "blue"), attribute.String("feature_flag.result.reason", "static")):          1,
		}
		if len(pts) != len(want) {
			t.Errorf("%d series, want %d: %+v", len(pts), len(want), pts)
		}
		for k, n := range want {
			if p, ok := pts[k]; !ok || p.Value != n {
				t.Errorf("series %v = %d (present %v), want %d", k, p.Value, ok, n)
			}
		}
	})
	t.Run("remote duration", func(t *testing.T) {
		hist, ok := ms["flagwire.remote.duration"].Data.(metricdata.Histogram[float64])
		if !ok || len(hist.DataPoints) != 1 {
			t.Fatalf("histogram %+v", ms["flagwire.remote.duration"].Data)
		}
		p := hist.DataPoints[0]
		wantAttrs := set(attribute.String("http.request.method", "POST"), attribute.String("url.template", "/v1/evaluate"), attribute.Int("http.response.status_code", 200))
		if p.Attributes.Equivalent() != wantAttrs || p.Count != 3 || p.Sum <= 0 {
			t.Errorf("point %v count %d sum %v", p.Attributes.ToSlice(), p.Count, p.Sum)
		}
	})
	t.Run("cache", func(t *testing.T) {
		g := ms["flagwire.cache.hit_ratio"].Data.(metricdata.Gauge[float64])
		if len(g.DataPoints) != 1 || g.DataPoints[0].Value != 0.4 {
			t.Errorf("hit ratio %+v, want 2/5", g.DataPoints)
		}
		pts := sumPoints(t, ms["flagwire.cache.lookups"])
		if pts[set(flagwireotel.CacheResultKey.String("hit"))].Value != 2 || pts[set(flagwireotel.CacheResultKey.String("miss"))].Value != 3 {
			t.Errorf("lookups %+v", pts)
		}
		e := ms["flagwire.cache.entries"].Data.(metricdata.Gauge[int64])
		if len(e.DataPoints) != 1 || e.DataPoints[0].Value != 3 {
			t.Errorf("entries %+v", e.DataPoints)
		}
		if r := sumPoints(t, ms["flagwire.remote.requests"]); r[set()].Value != 3 {
			t.Errorf("requests %+v", r)
		}
	})
	t.Run("breaker", func(t *testing.T) {
		states := func() map[string]int64 {
			g := h.collect(t)["flagwire.breaker.state"].Data.(metricdata.Gauge[int64])
			out := map[string]int64{}
			for _, p := range g.DataPoints {
				v, _ := p.Attributes.Value(flagwireotel.BreakerStateKey)
				out[v.AsString()] = p.Value
			}
			return out
		}
		if got := states(); !reflect.DeepEqual(got, map[string]int64{"closed": 1, "half-open": 0, "open": 0}) {
			t.Errorf("closed breaker: %v", got)
		}
		h.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: http.StatusServiceUnavailable, Count: 1})
		h.client.Bool(user("u7", "pro"), "new-ui", false)
		if got := states(); !reflect.DeepEqual(got, map[string]int64{"closed": 0, "half-open": 0, "open": 1}) {
			t.Errorf("open breaker: %v", got)
		}
		if tr := sumPoints(t, h.collect(t)["flagwire.breaker.transitions"]); tr[set()].Value != 1 {
			t.Errorf("transitions %+v", tr)
		}
		hist := h.collect(t)["flagwire.remote.duration"].Data.(metricdata.Histogram[float64])
		var failed bool
		for _, p := range hist.DataPoints {
			if v, ok := p.Attributes.Value("error.type"); ok && v.AsString() == "503" && p.Count == 1 {
				failed = true
			}
		}
		if !failed {
			t.Errorf("no remote.duration point with error.type 503: %+v", hist.DataPoints)
		}
	})
}

// TestConfigAge: in local mode the config's age is observed.
func TestConfigAge(t *testing.T) {
	h := newHarness(t, nil, flagwire.WithMode(flagwire.ModeLocal))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.client.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	m, ok := h.collect(t)["flagwire.config.age"]
	if !ok || m.Unit != "s" {
		t.Fatalf("config age: %+v", m)
	}
	g := m.Data.(metricdata.Gauge[float64])
	if len(g.DataPoints) != 1 || g.DataPoints[0].Value < 0 || g.DataPoints[0].Value > 60 {
		t.Errorf("config age %+v", g.DataPoints)
	}
	hist := h.collect(t)["flagwire.remote.duration"].Data.(metricdata.Histogram[float64])
	if len(hist.DataPoints) == 0 {
		t.Fatal("no remote.duration for the config fetch")
	}
	if v, _ := hist.DataPoints[0].Attributes.Value("url.template"); v.AsString() != "/v1/flags" {
		t.Errorf("url.template %q", v.AsString())
	}
}

// TestObserveAttributes: Observe's attributes tell clients apart.
func TestObserveAttributes(t *testing.T) {
	h := newHarness(t, nil)
	reg, err := h.tel.Observe(h.client, attribute.String("service.component", "checkout"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	g := h.collect(t)["flagwire.cache.entries"].Data.(metricdata.Gauge[int64])
	if len(g.DataPoints) != 2 {
		t.Fatalf("%d points, want one per registration: %+v", len(g.DataPoints), g.DataPoints)
	}
	var tagged bool
	for _, p := range g.DataPoints {
		if v, ok := p.Attributes.Value("service.component"); ok && v.AsString() == "checkout" {
			tagged = true
		}
	}
	if !tagged {
		t.Error("no point with the registration's attribute")
	}
}

// BenchmarkCacheHitWithHook measures a cache hit through client.Bool with
// the OTel hook registered and no recording span (the common case).
func BenchmarkCacheHitWithHook(b *testing.B) {
	srv := flagtest.NewServer(b, flagtest.WithConfig(testConfig()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	tel, err := flagwireotel.New(flagwireotel.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	c, err := flagwire.New(context.Background(), flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()),
		flagwire.WithEnvironment("test"), flagwire.WithStreaming(false), flagwire.WithHooks(tel.Hook()))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx := user("u1", "pro")
	c.Bool(ctx, "new-ui", false)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c.Bool(ctx, "new-ui", false)
	}
}
