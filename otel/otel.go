// Package flagwireotel reports Flagwire evaluations to OpenTelemetry:
// the feature_flag.evaluation event of the semantic conventions on the
// active span, and metrics through the OTel metric API. It is a Go module
// of its own (go get github.com/flagwire/flagwire/otel), so that programs
// using the SDK without OpenTelemetry have none of it in their module graph.
//
//	tel, err := flagwireotel.New() // the global MeterProvider; see WithMeterProvider
//	if err != nil { … }
//	client, err := flagwire.New(ctx,
//		flagwire.WithEndpoint(url), flagwire.WithToken(token),
//		flagwire.WithHooks(tel.Hook()),                                          // events + evaluation counts
//		flagwire.WithHTTPClient(&http.Client{Transport: tel.Transport(nil)}), // remote latency histogram
//	)
//	reg, err := tel.Observe(client) // cache, breaker and config-age instruments
//	defer reg.Unregister()
//
// # The event
//
// Every evaluation made with a context holding a recording span adds a
// span event named feature_flag.evaluation with feature_flag.key,
// feature_flag.provider.name ("flagwire", see WithProviderName),
// feature_flag.result.reason, feature_flag.result.variant (when a variant
// was served), feature_flag.context.id (the userId attribute, see
// WithContextIDAttribute), feature_flag.version (when known), and, when the
// caller's default was served because of an error, error.type and
// feature_flag.error.message. Reasons are the semantic conventions' values:
// cached, stale, disabled, targeting_match, split, default, static,
// error, unknown (the OpenFeature provider's mapping: OFF is disabled, a
// failed prerequisite is targeting_match). The event records what the
// native API served: for a disabled flag, its off variant (the OpenFeature
// provider hands its caller the default instead). error.type is the
// OpenFeature error code in lower case (flag_not_found, type_mismatch,
// provider_not_ready, parse_error, targeting_key_missing, general); the
// message names Flagwire's code (TIMEOUT, CIRCUIT_OPEN, …). The flag value
// itself is never recorded.
//
// # The metrics
//
//	flagwire.evaluations          counter    {evaluation}  by feature_flag.key, feature_flag.result.variant, feature_flag.result.reason, error.type
//	flagwire.remote.duration      histogram  s             API calls through Transport, by http.request.method, url.template, http.response.status_code, error.type
//	flagwire.cache.hit_ratio      gauge      1             decision-cache hits / lookups since start (remote mode)
//	flagwire.cache.lookups        counter    {lookup}      by flagwire.cache.result = hit | miss
//	flagwire.cache.entries        gauge      {entry}       cached decisions
//	flagwire.remote.requests      counter    {request}     HTTP requests to the evaluate API, retries included
//	flagwire.breaker.state        gauge      1             1 for the current flagwire.breaker.state (closed, half-open, open), 0 for the others
//	flagwire.breaker.transitions  counter    {transition}  circuit breaker state changes
//	flagwire.config.age           gauge      s             age of the config in use (local and offline modes, or a bootstrap)
//
// The first two are recorded as evaluations and calls happen (Hook,
// Transport); the others are observed from Client.Stats and Client.Status
// at each collection (Observe).
package flagwireotel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	otelglobal "go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// ScopeName is the instrumentation scope of the meter.
const ScopeName = "github.com/flagwire/flagwire/otel"

// EventName is the span event's name.
const EventName = "feature_flag.evaluation"

// Metric names.
const (
	MetricEvaluations        = "flagwire.evaluations"
	MetricRemoteDuration     = "flagwire.remote.duration"
	MetricCacheHitRatio      = "flagwire.cache.hit_ratio"
	MetricCacheLookups       = "flagwire.cache.lookups"
	MetricCacheEntries       = "flagwire.cache.entries"
	MetricRemoteRequests     = "flagwire.remote.requests"
	MetricBreakerState       = "flagwire.breaker.state"
	MetricBreakerTransitions = "flagwire.breaker.transitions"
	MetricConfigAge          = "flagwire.config.age"
)

// Attribute keys Flagwire adds to the semantic conventions' (metrics only).
const (
	// CacheResultKey is "hit" or "miss" on flagwire.cache.lookups.
	CacheResultKey = attribute.Key("flagwire.cache.result")
	// BreakerStateKey is "closed", "half-open" or "open" on
	// flagwire.breaker.state.
	BreakerStateKey = attribute.Key("flagwire.breaker.state")
)

// maxAttrSets bounds the cache of evaluation attribute sets (flag ×
// variant × reason × error); beyond it, sets are built per evaluation.
const maxAttrSets = 10000

// Option configures New.
type Option func(*settings)

type settings struct {
	mp        metric.MeterProvider
	provider  string
	contextID string
}

// WithMeterProvider sets the MeterProvider. Default: the global one
// (go.opentelemetry.io/otel.GetMeterProvider), at New.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(s *settings) { s.mp = mp }
}

// WithProviderName sets feature_flag.provider.name. Default "flagwire".
func WithProviderName(name string) Option {
	return func(s *settings) { s.provider = name }
}

// WithContextIDAttribute names the attribute reported as
// feature_flag.context.id. Default "userId". "" leaves the context id out
// of events (it identifies the subject: leave it out where that is
// personal data you must not export).
func WithContextIDAttribute(attr string) Option {
	return func(s *settings) { s.contextID = attr }
}

// Telemetry holds the instruments. Create it once with New and share it;
// it is safe for concurrent use.
type Telemetry struct {
	s settings

	meter       metric.Meter
	evaluations metric.Int64Counter
	duration    metric.Float64Histogram

	hitRatio    metric.Float64ObservableGauge
	lookups     metric.Int64ObservableCounter
	entries     metric.Int64ObservableGauge
	requests    metric.Int64ObservableCounter
	breaker     metric.Int64ObservableGauge
	transitions metric.Int64ObservableCounter
	configAge   metric.Float64ObservableGauge

	setsMu sync.RWMutex
	sets   map[evalKey]metric.AddOption
}

// evalKey identifies an evaluation's metric attributes.
type evalKey struct {
	flag, variant, reason, errType string
}

// New creates the instruments. It fails only if the MeterProvider refuses
// an instrument.
func New(opts ...Option) (*Telemetry, error) {
	s := settings{provider: "flagwire", contextID: "userId"}
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	if s.mp == nil {
		s.mp = otelglobal.GetMeterProvider()
	}
	t := &Telemetry{s: s, sets: make(map[evalKey]metric.AddOption)}
	m := s.mp.Meter(ScopeName)
	t.meter = m
	var err, e error
	t.evaluations, e = m.Int64Counter(MetricEvaluations, metric.WithUnit("{evaluation}"),
		metric.WithDescription("Flag evaluations, by flag, variant, reason and error type."))
	err = errors.Join(err, e)
	t.duration, e = m.Float64Histogram(MetricRemoteDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of calls to the flag service, until the response body is read."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10))
	err = errors.Join(err, e)
	t.hitRatio, e = m.Float64ObservableGauge(MetricCacheHitRatio, metric.WithUnit("1"),
		metric.WithDescription("Decision-cache hits divided by lookups since the client started."))
	err = errors.Join(err, e)
	t.lookups, e = m.Int64ObservableCounter(MetricCacheLookups, metric.WithUnit("{lookup}"),
		metric.WithDescription("Decision-cache lookups, by result (hit, miss)."))
	err = errors.Join(err, e)
	t.entries, e = m.Int64ObservableGauge(MetricCacheEntries, metric.WithUnit("{entry}"),
		metric.WithDescription("Cached decisions."))
	err = errors.Join(err, e)
	t.requests, e = m.Int64ObservableCounter(MetricRemoteRequests, metric.WithUnit("{request}"),
		metric.WithDescription("HTTP requests to the evaluate API, retries included."))
	err = errors.Join(err, e)
	t.breaker, e = m.Int64ObservableGauge(MetricBreakerState, metric.WithUnit("1"),
		metric.WithDescription("1 for the circuit breaker's current state, 0 for the others."))
	err = errors.Join(err, e)
	t.transitions, e = m.Int64ObservableCounter(MetricBreakerTransitions, metric.WithUnit("{transition}"),
		metric.WithDescription("Circuit breaker state changes."))
	err = errors.Join(err, e)
	t.configAge, e = m.Float64ObservableGauge(MetricConfigAge, metric.WithUnit("s"),
		metric.WithDescription("Age of the flag configuration in use, since the server last confirmed it."))
	err = errors.Join(err, e)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Hook returns the flagwire.Hook that adds the feature_flag.evaluation
// event to the active span and counts flagwire.evaluations. Register it
// with flagwire.WithHooks.
func (t *Telemetry) Hook() flagwire.Hook {
	return flagwire.Hook{Finally: t.finally}
}

func (t *Telemetry) finally(ctx context.Context, key string, d flagwire.Detail) {
	if ctx == nil {
		ctx = context.Background()
	}
	reason := reasonOf(d)
	var errType, errMsg string
	if d.ErrorCode != "" {
		errMsg = "flagwire: " + string(d.ErrorCode)
		if d.Source == flagwire.SourceCallerDefault {
			errType = errorTypeOf(d.ErrorCode)
		} else {
			errMsg += "; a stale value was served"
		}
	}
	t.evaluations.Add(ctx, 1, t.attrSet(evalKey{flag: key, variant: d.Variant, reason: reason, errType: errType}))

	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs,
		semconv.FeatureFlagKey(key),
		semconv.FeatureFlagProviderName(t.s.provider),
		semconv.FeatureFlagResultReasonKey.String(reason),
	)
	if d.Variant != "" {
		attrs = append(attrs, semconv.FeatureFlagResultVariant(d.Variant))
	}
	if id, ok := t.contextID(ctx); ok {
		attrs = append(attrs, semconv.FeatureFlagContextID(id))
	}
	if d.FlagVersion != 0 {
		attrs = append(attrs, semconv.FeatureFlagVersion(strconv.FormatInt(d.FlagVersion, 10)))
	}
	if errType != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errType))
	}
	if errMsg != "" {
		attrs = append(attrs, semconv.FeatureFlagErrorMessage(errMsg))
	}
	span.AddEvent(EventName, trace.WithAttributes(attrs...))
}

// attrSet returns the cached measurement option for an evaluation's
// attributes.
func (t *Telemetry) attrSet(k evalKey) metric.AddOption {
	t.setsMu.RLock()
	opt, ok := t.sets[k]
	t.setsMu.RUnlock()
	if ok {
		return opt
	}
	kv := make([]attribute.KeyValue, 0, 4)
	kv = append(kv, semconv.FeatureFlagKey(k.flag), semconv.FeatureFlagResultReasonKey.String(k.reason))
	if k.variant != "" {
		kv = append(kv, semconv.FeatureFlagResultVariant(k.variant))
	}
	if k.errType != "" {
		kv = append(kv, semconv.ErrorTypeKey.String(k.errType))
	}
	opt = metric.WithAttributeSet(attribute.NewSet(kv...))
	t.setsMu.Lock()
	if len(t.sets) < maxAttrSets {
		t.sets[k] = opt
	}
	t.setsMu.Unlock()
	return opt
}

// contextID returns the context id attribute of ctx's evaluation context.
func (t *Telemetry) contextID(ctx context.Context) (string, bool) {
	if t.s.contextID == "" {
		return "", false
	}
	// The canonical id form bucketing uses (1, 1.0 and 1e0 are "1").
	return evaluate.CanonicalID(flagwire.AttributesFrom(ctx)[t.s.contextID])
}

// reasonOf maps a Detail to a feature_flag.result.reason value.
func reasonOf(d flagwire.Detail) string {
	switch {
	case d.Source == flagwire.SourceCallerDefault && d.ErrorCode != "":
		return "error"
	case d.Source == flagwire.SourceCallerDefault:
		return "default"
	case d.Source == flagwire.SourceStale,
		d.Source == flagwire.SourceBootstrap && d.ErrorCode != "" && d.ErrorCode != flagwire.CodeMissingBucketingAttribute:
		return "stale"
	case d.Source == flagwire.SourceCache:
		return "cached"
	}
	// The OpenFeature reason (the mapping flagserver's OFREP answers use),
	// in lower case as the semantic conventions write it.
	return strings.ToLower(wire.OFREPReason(string(d.Reason.Kind)))
}

// errorTypeOf maps a Flagwire error code to an error.type value: the
// OpenFeature error code in lower case.
func errorTypeOf(code flagwire.ErrorCode) string {
	switch code {
	case flagwire.CodeFlagNotFound:
		return "flag_not_found"
	case flagwire.CodeTypeMismatch:
		return "type_mismatch"
	case flagwire.CodeNotReady:
		return "provider_not_ready"
	case flagwire.CodeBadResponse, "PARSE_ERROR":
		return "parse_error"
	case "MISSING_BUCKETING_ATTRIBUTE", "TARGETING_KEY_MISSING":
		return "targeting_key_missing"
	case "INVALID_CONTEXT":
		return "invalid_context"
	}
	return "general"
}

// Observe registers the observable instruments for c: every collection
// reads c.Stats and c.Status. attrs are added to every observation, to
// tell several clients apart. Unregister the returned registration before
// dropping c.
func (t *Telemetry) Observe(c *flagwire.Client, attrs ...attribute.KeyValue) (metric.Registration, error) {
	base := attribute.NewSet(attrs...)
	with := func(kv ...attribute.KeyValue) metric.ObserveOption {
		all := append(base.ToSlice(), kv...)
		return metric.WithAttributeSet(attribute.NewSet(all...))
	}
	baseOpt := metric.WithAttributeSet(base)
	hit, miss := with(CacheResultKey.String("hit")), with(CacheResultKey.String("miss"))
	states := []flagwire.BreakerState{flagwire.BreakerClosed, flagwire.BreakerHalfOpen, flagwire.BreakerOpen}
	stateOpts := make([]metric.ObserveOption, len(states))
	for i, s := range states {
		stateOpts[i] = with(BreakerStateKey.String(string(s)))
	}
	return t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := c.Stats()
		o.ObserveFloat64(t.hitRatio, st.HitRatio, baseOpt)
		o.ObserveInt64(t.lookups, int64(st.CacheHits), hit)
		o.ObserveInt64(t.lookups, int64(st.CacheMisses), miss)
		o.ObserveInt64(t.entries, int64(st.CacheEntries), baseOpt)
		o.ObserveInt64(t.requests, int64(st.RemoteRequests), baseOpt)
		o.ObserveInt64(t.transitions, int64(st.BreakerTransitions), baseOpt)
		for i, s := range states {
			var v int64
			if st.Breaker == s {
				v = 1
			}
			o.ObserveInt64(t.breaker, v, stateOpts[i])
		}
		if status := c.Status(); status.ConfigSource != "" {
			o.ObserveFloat64(t.configAge, status.ConfigAge.Seconds(), baseOpt)
		}
		return nil
	}, t.hitRatio, t.lookups, t.entries, t.requests, t.breaker, t.transitions, t.configAge)
}

// Transport returns an http.RoundTripper that records
// flagwire.remote.duration for every request through base (nil means
// http.DefaultTransport), from the request until its response body is
// read or closed. Give it to the client with flagwire.WithHTTPClient.
// Event-stream requests (GET /v1/stream) are not recorded: they last as
// long as the connection. The transport's CloseIdleConnections closes
// base's.
func (t *Telemetry) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base, t: t}
}

type transport struct {
	base http.RoundTripper
	t    *Telemetry
}

// CloseIdleConnections closes the base transport's idle connections.
func (tr *transport) CloseIdleConnections() {
	if ci, ok := tr.base.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// RoundTrip implements http.RoundTripper.
func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.Contains(req.Header.Get("Accept"), "text/event-stream") {
		return tr.base.RoundTrip(req)
	}
	start := time.Now()
	resp, err := tr.base.RoundTrip(req)
	kv := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(req.Method),
		semconv.URLTemplate(routeOf(req.URL.Path)),
	}
	if err != nil {
		tr.t.duration.Record(req.Context(), time.Since(start).Seconds(),
			metric.WithAttributes(append(kv, semconv.ErrorTypeKey.String(transportErrorType(err)))...))
		return nil, err
	}
	kv = append(kv, semconv.HTTPResponseStatusCode(resp.StatusCode))
	if resp.StatusCode >= 400 {
		kv = append(kv, semconv.ErrorTypeKey.String(strconv.Itoa(resp.StatusCode)))
	}
	resp.Body = &timedBody{ReadCloser: resp.Body, done: func() {
		tr.t.duration.Record(req.Context(), time.Since(start).Seconds(), metric.WithAttributes(kv...))
	}}
	return resp, nil
}

// timedBody calls done once, at the first EOF, read error or Close.
type timedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.done)
	}
	return n, err
}

func (b *timedBody) Close() error {
	b.once.Do(b.done)
	return b.ReadCloser.Close()
}

// routeOf returns the URL template of a Flag API path.
func routeOf(path string) string {
	switch {
	case path == "/v1/evaluate", path == "/v1/flags", path == "/v1/bootstrap", path == "/ofrep/v1/evaluate/flags":
		return path
	case strings.HasPrefix(path, "/ofrep/v1/evaluate/flags/"):
		return "/ofrep/v1/evaluate/flags/{key}"
	case strings.HasPrefix(path, "/v1/flags/"):
		return "/v1/flags/{key}"
	}
	return "other"
}

// transportErrorType classifies a transport error for error.type.
func transportErrorType(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "_OTHER"
}
