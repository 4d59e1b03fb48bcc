package flagwireof_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	flagwireof "github.com/flagwire/flagwire/openfeature"
)

// testConfig has one flag per type and per reason.
func testConfig() *evaluate.Config {
	return &evaluate.Config{
		Environment: "test",
		Salt:        "of-test-salt",
		Segments:    []evaluate.Segment{{Key: "beta_testers", Included: []string{"beta-1"}}},
		Flags: []evaluate.Flag{
			{Key: "new-ui", Rules: []evaluate.Rule{{ID: "pro-users", When: "plan == 'pro'", Serve: evaluate.Serve{Variant: true}}}},
			{Key: "beta", Rules: []evaluate.Rule{{ID: "beta-rule", Segment: "beta_testers", Serve: evaluate.Serve{Variant: true}}}},
			{
				Key: "banner", Type: evaluate.TypeString,
				Variants: []evaluate.Variant{{Name: "blue"}, {Name: "green"}},
				Targets:  []evaluate.Target{{Variant: "green", Values: []string{"vip"}}},
				Default:  &evaluate.Serve{Variant: "blue"},
			},
			{
				Key: "max-items", Type: evaluate.TypeNumber,
				Variants: []evaluate.Variant{{Name: "small", Value: 10.0}, {Name: "large", Value: 50.0}},
				Rules:    []evaluate.Rule{{ID: "pro-limit", When: "plan == 'pro'", Serve: evaluate.Serve{Variant: "large"}}},
				Default:  &evaluate.Serve{Variant: "small"},
			},
			{
				Key: "ratio", Type: evaluate.TypeNumber,
				Variants: []evaluate.Variant{{Name: "quarter", Value: 0.25}},
				Default:  &evaluate.Serve{Variant: "quarter"},
			},
			{
				Key: "theme", Type: evaluate.TypeJSON,
				Variants: []evaluate.Variant{{Name: "dark", Value: map[string]any{"bg": "black", "contrast": 7.0}}},
				Default:  &evaluate.Serve{Variant: "dark"},
			},
			{Key: "rollout", Default: &evaluate.Serve{Rollout: []evaluate.WeightedVariant{{Variant: true, Weight: 50}, {Variant: false, Weight: 50}}}},
			{Key: "killed", State: evaluate.StateOff},
			{Key: "account-gate", Bucketing: evaluate.Bucketing{By: "accountId"}, Targets: []evaluate.Target{{Variant: true, Values: []string{"acme"}}}},
			{Key: "signup-gate", Rules: []evaluate.Rule{{ID: "early", When: "signedUp == '2026-01-02T03:04:05Z'", Serve: evaluate.Serve{Variant: true}}}},
		},
	}
}

// fixture is a flagtest server, a Flagwire client on it, the provider, and
// an OpenFeature client bound to the provider through the global API.
type fixture struct {
	srv    *flagtest.Server
	p      *flagwireof.Provider
	of     *openfeature.Client
	domain string
	// initErr is the provider's initialization error, if any.
	initErr error
}

// baseOptions are the client options every fixture uses: the server, and
// no retries so that failure tests are quick.
func baseOptions(srv *flagtest.Server) []flagwire.Option {
	return []flagwire.Option{
		flagwire.WithEndpoint(srv.URL),
		flagwire.WithToken(srv.Token()),
		flagwire.WithEnvironment("test"),
		flagwire.WithRetry(flagwire.RetrySettings{MaxAttempts: -1}),
		flagwire.WithTimeout(2 * time.Second),
		flagwire.WithLogger(slog.New(slog.DiscardHandler)),
	}
}

// newFixture starts everything; extra client options come after the base
// ones. The provider is shut down (closing the client) at cleanup through
// openfeature.ShutdownWithContext.
func newFixture(t *testing.T, srv *flagtest.Server, clientOpts []flagwire.Option, provOpts ...flagwireof.Option) *fixture {
	t.Helper()
	if srv == nil {
		srv = flagtest.NewServer(t, flagtest.WithConfig(testConfig()))
	}
	client, err := flagwire.New(context.Background(), append(baseOptions(srv), clientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv, p: flagwireof.NewProvider(client, provOpts...), domain: t.Name()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := openfeature.ShutdownWithContext(ctx); err != nil {
			t.Errorf("openfeature shutdown: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	f.initErr = openfeature.SetNamedProviderWithContextAndWait(ctx, f.domain, f.p)
	f.of = openfeature.NewClient(f.domain)
	return f
}

// result is one evaluation through the OpenFeature client.
type result struct {
	value any
	det   openfeature.EvaluationDetails
	err   error
}

type evalFunc func(ctx context.Context, c *openfeature.Client, ec openfeature.EvaluationContext) result

func boolEval(key string, def bool) evalFunc {
	return func(ctx context.Context, c *openfeature.Client, ec openfeature.EvaluationContext) result {
		d, err := c.BooleanValueDetails(ctx, key, def, ec)
		return result{d.Value, d.EvaluationDetails, err}
	}
}

func stringEval(key, def string) evalFunc {
	return func(ctx context.Context, c *openfeature.Client, ec openfeature.EvaluationContext) result {
		d, err := c.StringValueDetails(ctx, key, def, ec)
		return result{d.Value, d.EvaluationDetails, err}
	}
}

func intEval(key string, def int64) evalFunc {
	return func(ctx context.Context, c *openfeature.Client, ec openfeature.EvaluationContext) result {
		d, err := c.IntValueDetails(ctx, key, def, ec)
		return result{d.Value, d.EvaluationDetails, err}
	}
}

func floatEval(key string, def float64) evalFunc {
	return func(ctx context.Context, c *openfeature.Client, ec openfeature.EvaluationContext) result {
		d, err := c.FloatValueDetails(ctx, key, def, ec)
		return result{d.Value, d.EvaluationDetails, err}
	}
}

func objectEval(key string, def any) evalFunc {
	return func(ctx context.Context, c *openfeature.Client, ec openfeature.EvaluationContext) result {
		d, err := c.ObjectValueDetails(ctx, key, def, ec)
		return result{d.Value, d.EvaluationDetails, err}
	}
}

// TestEvaluationTypes evaluates every type through openfeature.Client and
// checks value, variant, reason and flag metadata.
func TestEvaluationTypes(t *testing.T) {
	f := newFixture(t, nil, nil)
	if f.initErr != nil {
		t.Fatal(f.initErr)
	}
	pro := openfeature.NewEvaluationContext("u1", map[string]any{"plan": "pro"})
	free := openfeature.NewEvaluationContext("u2", map[string]any{"plan": "free"})
	cases := []struct {
		name        string
		eval        evalFunc
		ec          openfeature.EvaluationContext
		wantValue   any
		wantVariant string
		wantReason  openfeature.Reason
		wantMeta    map[string]any // subset of the flag metadata
	}{
		{"bool/rule", boolEval("new-ui", false), pro, true, "true", openfeature.TargetingMatchReason,
			map[string]any{"source": "REMOTE", "reasonKind": "RULE_MATCH", "ruleId": "pro-users"}},
		{"bool/cached", boolEval("new-ui", false), pro, true, "true", openfeature.CachedReason,
			map[string]any{"source": "CACHE", "reasonKind": "RULE_MATCH", "ruleId": "pro-users"}},
		{"bool/default", boolEval("new-ui", true), free, false, "false", openfeature.DefaultReason,
			map[string]any{"source": "REMOTE", "reasonKind": "DEFAULT"}},
		{"bool/segment", boolEval("beta", false), openfeature.NewEvaluationContext("beta-1", nil), true, "true", openfeature.TargetingMatchReason,
			map[string]any{"reasonKind": "SEGMENT_MATCH", "ruleId": "beta-rule", "segment": "beta_testers"}},
		{"bool/split", boolEval("rollout", false), pro, nil, "", openfeature.SplitReason,
			map[string]any{"reasonKind": "ROLLOUT"}},
		// A disabled flag gives the caller's default (OpenFeature), not the
		// off variant the native API serves: see TestDisabledFlagServesCallerDefault.
		{"bool/disabled", boolEval("killed", true), pro, true, "", openfeature.DisabledReason,
			map[string]any{"reasonKind": "OFF"}},
		{"string/target", stringEval("banner", "none"), openfeature.NewEvaluationContext("vip", nil), "green", "green", openfeature.TargetingMatchReason,
			map[string]any{"reasonKind": "TARGET_MATCH"}},
		{"string/default", stringEval("banner", "none"), free, "blue", "blue", openfeature.DefaultReason, nil},
		{"int/rule", intEval("max-items", 1), pro, int64(50), "large", openfeature.TargetingMatchReason,
			map[string]any{"ruleId": "pro-limit"}},
		{"int/default", intEval("max-items", 1), free, int64(10), "small", openfeature.DefaultReason, nil},
		{"float", floatEval("ratio", 1), free, 0.25, "quarter", openfeature.StaticReason, nil},
		{"object", objectEval("theme", map[string]any{}), free, map[string]any{"bg": "black", "contrast": 7.0}, "dark", openfeature.StaticReason, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.eval(context.Background(), f.of, tc.ec)
			if r.err != nil {
				t.Fatalf("error %v (details %+v)", r.err, r.det)
			}
			if tc.wantValue != nil && !reflect.DeepEqual(r.value, tc.wantValue) {
				t.Errorf("value %#v, want %#v", r.value, tc.wantValue)
			}
			if tc.wantVariant != "" && r.det.Variant != tc.wantVariant {
				t.Errorf("variant %q, want %q", r.det.Variant, tc.wantVariant)
			}
			if r.det.Reason != tc.wantReason {
				t.Errorf("reason %q, want %q", r.det.Reason, tc.wantReason)
			}
			if r.det.ErrorCode != "" {
				t.Errorf("error code %q", r.det.ErrorCode)
			}
			for k, want := range tc.wantMeta {
				if got := r.det.FlagMetadata[k]; got != want {
					t.Errorf("metadata %s = %#v, want %#v (all: %v)", k, got, want, r.det.FlagMetadata)
				}
			}
			if tc.wantReason == openfeature.SplitReason {
				if b, err := r.det.FlagMetadata.GetInt("bucket"); err != nil || b < 0 || b >= 100000 {
					t.Errorf("bucket metadata %d, %v", b, err)
				}
			}
		})
	}
	if md := openfeature.NamedProviderMetadata(f.domain); md.Name != "flagwire" {
		t.Errorf("provider metadata %+v", md)
	}
}

// TestErrors covers each error path: the OpenFeature client returns the
// default, reason ERROR, the mapped error code and an error.
func TestErrors(t *testing.T) {
	cases := []struct {
		name       string
		clientOpts []flagwire.Option
		// prepare runs before the evaluation.
		prepare  func(t *testing.T, f *fixture)
		eval     evalFunc
		def      any
		wantCode openfeature.ErrorCode
		wantMsg  string // substring of the error message
	}{
		{name: "flag not found", eval: boolEval("no-such-flag", true), def: true, wantCode: openfeature.FlagNotFoundCode},
		{name: "type mismatch/server", eval: stringEval("new-ui", "x"), def: "x", wantCode: openfeature.TypeMismatchCode},
		{name: "type mismatch/not an integer", eval: intEval("ratio", 7), def: int64(7), wantCode: openfeature.TypeMismatchCode},
		{
			name: "unavailable", eval: boolEval("new-ui", true), def: true, wantCode: openfeature.GeneralCode, wantMsg: "UNAVAILABLE",
			prepare: func(t *testing.T, f *fixture) {
				f.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: http.StatusServiceUnavailable})
			},
		},
		{
			name: "timeout", eval: boolEval("new-ui", true), def: true, wantCode: openfeature.GeneralCode, wantMsg: "TIMEOUT",
			clientOpts: []flagwire.Option{flagwire.WithTimeout(50 * time.Millisecond)},
			prepare: func(t *testing.T, f *fixture) {
				f.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Latency: 2 * time.Second})
			},
		},
		{
			name: "rate limited", eval: boolEval("new-ui", true), def: true, wantCode: openfeature.GeneralCode, wantMsg: "RATE_LIMITED",
			prepare: func(t *testing.T, f *fixture) {
				f.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: http.StatusTooManyRequests, RetryAfter: time.Minute})
			},
		},
		{
			name: "unauthorized", eval: boolEval("new-ui", true), def: true, wantCode: openfeature.GeneralCode, wantMsg: "UNAUTHORIZED",
			clientOpts: []flagwire.Option{flagwire.WithToken("wrong-token")},
		},
		{
			name: "circuit open", eval: boolEval("new-ui", true), def: true, wantCode: openfeature.GeneralCode, wantMsg: "CIRCUIT_OPEN",
			clientOpts: []flagwire.Option{flagwire.WithBreaker(flagwire.BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Hour})},
			prepare: func(t *testing.T, f *fixture) {
				f.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: http.StatusServiceUnavailable, Count: 1})
				// The first failure opens the breaker.
				f.p.Client().Bool(context.Background(), "banner-trip", false)
			},
		},
		{
			name: "malformed answer", eval: boolEval("new-ui", true), def: true, wantCode: openfeature.ParseErrorCode, wantMsg: "BAD_RESPONSE",
			prepare: func(t *testing.T, f *fixture) {
				f.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Body: []byte(`{"decisions": [`)})
			},
		},
		{
			name: "client closed", eval: stringEval("banner", "none"), def: "none", wantCode: openfeature.GeneralCode, wantMsg: "CLIENT_CLOSED",
			prepare: func(t *testing.T, f *fixture) {
				if err := f.p.Client().Close(context.Background()); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil, append([]flagwire.Option{flagwire.WithStreaming(false)}, tc.clientOpts...))
			if f.initErr != nil {
				t.Fatal(f.initErr)
			}
			if tc.prepare != nil {
				tc.prepare(t, f)
			}
			r := tc.eval(context.Background(), f.of, openfeature.NewEvaluationContext("u1", map[string]any{"plan": "pro"}))
			if r.err == nil {
				t.Fatalf("no error; details %+v", r.det)
			}
			if !reflect.DeepEqual(r.value, tc.def) {
				t.Errorf("value %#v, want the default %#v", r.value, tc.def)
			}
			if r.det.Reason != openfeature.ErrorReason || r.det.ErrorCode != tc.wantCode {
				t.Errorf("reason %q code %q, want ERROR %q (message %q)", r.det.Reason, r.det.ErrorCode, tc.wantCode, r.det.ErrorMessage)
			}
			if !strings.Contains(r.det.ErrorMessage, tc.wantMsg) {
				t.Errorf("message %q lacks %q", r.det.ErrorMessage, tc.wantMsg)
			}
			if r.det.Variant != "" {
				t.Errorf("variant %q on an error", r.det.Variant)
			}
		})
	}
}

// TestNotReady: in local mode with the config endpoint failing, Init fails
// (the SDK reports ERROR) and evaluations say PROVIDER_NOT_READY.
func TestNotReady(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(testConfig()))
	srv.InjectFault(flagtest.Fault{Path: "/v1/flags", Status: http.StatusServiceUnavailable})
	client, err := flagwire.New(context.Background(), append(baseOptions(srv), flagwire.WithMode(flagwire.ModeLocal), flagwire.WithStreaming(false))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { openfeature.ShutdownWithContext(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := openfeature.SetNamedProviderWithContextAndWait(ctx, t.Name(), flagwireof.NewProvider(client, flagwireof.WithStatusInterval(-1))); err == nil {
		t.Fatal("Init succeeded without a config")
	}
	c := openfeature.NewClient(t.Name())
	waitFor(t, "state ERROR", func() bool { return c.State() == openfeature.ErrorState })
	d, err := c.BooleanValueDetails(context.Background(), "new-ui", true, openfeature.NewEvaluationContext("u1", nil))
	if err == nil || !d.Value || d.ErrorCode != openfeature.ProviderNotReadyCode || d.Reason != openfeature.ErrorReason {
		t.Errorf("got %v %+v (%v), want the default with PROVIDER_NOT_READY", d.Value, d.EvaluationDetails, err)
	}
}

// TestStale: when the API fails, an expired cached decision is served
// with reason STALE and no error; metadata says why. (An invalidated one is
// never served again.)
func TestStale(t *testing.T) {
	// A 1 ns TTL: the decision expires at once.
	f := newFixture(t, nil, []flagwire.Option{flagwire.WithStreaming(false), flagwire.WithCache(flagwire.CacheSettings{MinTTL: time.Nanosecond, MaxTTL: time.Nanosecond})})
	ec := openfeature.NewEvaluationContext("u1", map[string]any{"plan": "pro"})
	if v, err := f.of.BooleanValue(context.Background(), "new-ui", false, ec); err != nil || !v {
		t.Fatalf("first evaluation: %v %v", v, err)
	}
	f.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: http.StatusServiceUnavailable})
	var d openfeature.BooleanEvaluationDetails
	var err error
	waitFor(t, "the cached decision to expire", func() bool {
		d, err = f.of.BooleanValueDetails(context.Background(), "new-ui", false, ec)
		return d.FlagMetadata["source"] != "CACHE"
	})
	if err != nil || !d.Value {
		t.Fatalf("stale evaluation: %v %+v %v", d.Value, d.EvaluationDetails, err)
	}
	if d.Reason != flagwireof.StaleReason || d.ErrorCode != "" {
		t.Errorf("reason %q code %q, want STALE without error", d.Reason, d.ErrorCode)
	}
	if d.FlagMetadata["source"] != "STALE" || d.FlagMetadata["errorCode"] != "UNAVAILABLE" {
		t.Errorf("metadata %v", d.FlagMetadata)
	}
}

// TestContextMapping: the targeting key becomes userId (or the configured
// attribute), an explicit attribute wins, times become RFC 3339 strings,
// and attributes already in ctx (flagwire.Middleware) are kept.
func TestContextMapping(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(testConfig()))
	signup := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name     string
		provOpts []flagwireof.Option
		ctx      context.Context
		ec       openfeature.EvaluationContext
		eval     evalFunc
		want     any
	}{
		{"targetingKey is userId", nil, context.Background(),
			openfeature.NewEvaluationContext("vip", nil), stringEval("banner", "none"), "green"},
		{"explicit userId wins", nil, context.Background(),
			openfeature.NewEvaluationContext("vip", map[string]any{"userId": "someone"}), stringEval("banner", "none"), "blue"},
		{"configured attribute", []flagwireof.Option{flagwireof.WithTargetingKey("accountId")}, context.Background(),
			openfeature.NewEvaluationContext("acme", nil), boolEval("account-gate", false), true},
		{"configured attribute is not userId", []flagwireof.Option{flagwireof.WithTargetingKey("accountId")}, context.Background(),
			openfeature.NewEvaluationContext("vip", nil), stringEval("banner", "none"), "blue"},
		{"targetingKey kept as is", []flagwireof.Option{flagwireof.WithTargetingKey("")}, context.Background(),
			openfeature.NewEvaluationContext("vip", nil), stringEval("banner", "none"), "blue"},
		{"time attribute", nil, context.Background(),
			openfeature.NewEvaluationContext("u1", map[string]any{"signedUp": signup}), boolEval("signup-gate", false), true},
		{"attributes from ctx", nil, flagwire.WithAttributes(context.Background(), flagwire.Attributes{"plan": "pro"}),
			openfeature.NewEvaluationContext("u1", nil), boolEval("new-ui", false), true},
		{"context over ctx", nil, flagwire.WithAttributes(context.Background(), flagwire.Attributes{"plan": "pro"}),
			openfeature.NewEvaluationContext("u1", map[string]any{"plan": "free"}), boolEval("new-ui", true), false},
		{"transaction context", nil, openfeature.WithTransactionContext(context.Background(), openfeature.NewEvaluationContext("vip", nil)),
			openfeature.EvaluationContext{}, stringEval("banner", "none"), "green"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, srv, []flagwire.Option{flagwire.WithStreaming(false)}, tc.provOpts...)
			r := tc.eval(tc.ctx, f.of, tc.ec)
			if r.err != nil || !reflect.DeepEqual(r.value, tc.want) {
				t.Errorf("got %#v (%v, %+v), want %#v", r.value, r.err, r.det, tc.want)
			}
		})
	}
}

// recordingHook records what OpenFeature hooks see.
type recordingHook struct {
	openfeature.UnimplementedHook
	addPlan  bool
	after    atomic.Pointer[openfeature.InterfaceEvaluationDetails]
	errs     atomic.Int32
	finally  atomic.Int32
	provider atomic.Value // provider name seen in the hook context
}

func (h *recordingHook) Before(ctx context.Context, hc openfeature.HookContext, _ openfeature.HookHints) (*openfeature.EvaluationContext, error) {
	h.provider.Store(hc.ProviderMetadata().Name)
	if h.addPlan {
		ec := openfeature.NewTargetlessEvaluationContext(map[string]any{"plan": "pro"})
		return &ec, nil
	}
	return nil, nil
}

func (h *recordingHook) After(ctx context.Context, hc openfeature.HookContext, d openfeature.InterfaceEvaluationDetails, _ openfeature.HookHints) error {
	h.after.Store(&d)
	return nil
}

func (h *recordingHook) Error(context.Context, openfeature.HookContext, error, openfeature.HookHints) {
	h.errs.Add(1)
}

func (h *recordingHook) Finally(context.Context, openfeature.HookContext, openfeature.InterfaceEvaluationDetails, openfeature.HookHints) {
	h.finally.Add(1)
}

// TestHooks: client hooks, invocation hooks and provider hooks run; a
// Before hook's context reaches the evaluation; After sees the resolution
// details; Flagwire's own hooks run as well.
func TestHooks(t *testing.T) {
	var flagwireHooks atomic.Int32
	provHook := &recordingHook{}
	f := newFixture(t, nil,
		[]flagwire.Option{flagwire.WithStreaming(false), flagwire.WithHooks(flagwire.Hook{
			Finally: func(context.Context, string, flagwire.Detail) { flagwireHooks.Add(1) },
		})},
		flagwireof.WithHooks(provHook))
	clientHook := &recordingHook{addPlan: true}
	f.of.AddHooks(clientHook)
	invocationHook := &recordingHook{}

	ec := openfeature.NewEvaluationContext("u1", nil) // no plan: the client hook adds it
	d, err := f.of.BooleanValueDetails(context.Background(), "new-ui", false, ec, openfeature.WithHooks(invocationHook))
	if err != nil || !d.Value {
		t.Fatalf("got %v %v: the Before hook's plan=pro did not reach the evaluation", d.Value, err)
	}
	for name, h := range map[string]*recordingHook{"client": clientHook, "invocation": invocationHook, "provider": provHook} {
		a := h.after.Load()
		if a == nil {
			t.Errorf("%s hook: After not called", name)
			continue
		}
		if a.Variant != "true" || a.Reason != openfeature.TargetingMatchReason || a.FlagMetadata["ruleId"] != "pro-users" {
			t.Errorf("%s hook saw %+v", name, a.EvaluationDetails)
		}
		if h.finally.Load() != 1 || h.errs.Load() != 0 {
			t.Errorf("%s hook: finally %d errors %d", name, h.finally.Load(), h.errs.Load())
		}
		if got, _ := h.provider.Load().(string); got != flagwireof.Name {
			t.Errorf("%s hook saw provider %q", name, got)
		}
	}
	if _, err := f.of.BooleanValue(context.Background(), "no-such-flag", false, ec); err == nil {
		t.Fatal("no error for a missing flag")
	}
	if clientHook.errs.Load() != 1 || provHook.errs.Load() != 1 {
		t.Errorf("Error hooks: client %d provider %d, want 1 each", clientHook.errs.Load(), provHook.errs.Load())
	}
	if n := flagwireHooks.Load(); n != 2 {
		t.Errorf("flagwire hook ran %d times, want 2", n)
	}
}

// events subscribes to an event type on the OpenFeature client.
func events(c *openfeature.Client, typ openfeature.EventType) <-chan openfeature.EventDetails {
	ch := make(chan openfeature.EventDetails, 16)
	cb := func(d openfeature.EventDetails) {
		select {
		case ch <- d:
		default:
		}
	}
	c.AddHandler(typ, &cb)
	return ch
}

// waitEvent waits up to 5 s for an event matching ok.
func waitEvent(t *testing.T, ch <-chan openfeature.EventDetails, what string, ok func(openfeature.EventDetails) bool) openfeature.EventDetails {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case d := <-ch:
			if ok == nil || ok(d) {
				return d
			}
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
			return openfeature.EventDetails{}
		}
	}
}

// waitFor waits up to 5 s for cond, checking it every millisecond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// wantState checks the client's provider state. The SDK stores it before
// running event handlers, so it is current once an event was received.
func wantState(t *testing.T, c *openfeature.Client, want openfeature.State) {
	t.Helper()
	if got := c.State(); got != want {
		t.Errorf("state %q, want %q", got, want)
	}
}

func changed(key string) func(openfeature.EventDetails) bool {
	return func(d openfeature.EventDetails) bool {
		for _, k := range d.FlagChanges {
			if k == key {
				return true
			}
		}
		return false
	}
}

// TestConfigurationChanged: a change on the server (SetFlag, and a PATCH
// over HTTP) reaches OpenFeature handlers as
// PROVIDER_CONFIGURATION_CHANGED with the changed key, in remote mode (SSE
// invalidation) and local mode (new config live), and the next evaluation
// sees the new value.
func TestConfigurationChanged(t *testing.T) {
	for _, mode := range []flagwire.Mode{flagwire.ModeRemote, flagwire.ModeLocal} {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixture(t, nil, []flagwire.Option{flagwire.WithMode(mode)})
			if f.initErr != nil {
				t.Fatal(f.initErr)
			}
			ready := events(f.of, openfeature.ProviderReady)
			waitEvent(t, ready, "PROVIDER_READY", nil) // handlers added when ready run at once
			ch := events(f.of, openfeature.ProviderConfigChange)
			ec := openfeature.NewEvaluationContext("u1", map[string]any{"plan": "pro"})
			if v, _ := f.of.BooleanValue(context.Background(), "new-ui", false, ec); !v {
				t.Fatal("new-ui is off before the change")
			}
			waitStreams(t, f.srv)

			if _, err := f.srv.SetFlag("test", evaluate.Flag{Key: "new-ui", State: evaluate.StateOff}); err != nil {
				t.Fatal(err)
			}
			d := waitEvent(t, ch, "CONFIGURATION_CHANGED for new-ui", changed("new-ui"))
			if d.ProviderName != flagwireof.Name {
				t.Errorf("provider name %q", d.ProviderName)
			}
			det, err := f.of.BooleanValueDetails(context.Background(), "new-ui", true, ec)
			// Off: the caller's default (true) with reason DISABLED.
			if err != nil || !det.Value || det.Reason != openfeature.DisabledReason || det.Variant != "" {
				t.Errorf("after the change: %v %q %v", det.Value, det.Reason, err)
			}

			patchFlag(t, f.srv, "banner", `{"state":"off"}`)
			waitEvent(t, ch, "CONFIGURATION_CHANGED for banner", changed("banner"))
		})
	}
}

// waitStreams waits until the server has an SSE subscriber.
func waitStreams(t *testing.T, srv *flagtest.Server) {
	t.Helper()
	waitFor(t, "an SSE subscriber", func() bool { return srv.Streams() > 0 })
}

// patchFlag PATCHes a flag over HTTP with the If-Match its GET returned.
func patchFlag(t *testing.T, srv *flagtest.Server, key, body string) {
	t.Helper()
	get, _ := http.NewRequest("GET", srv.URL+"/v1/flags/"+key+"?environment=test", nil)
	get.Header.Set("Authorization", "Bearer "+srv.Token())
	res, err := http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	etag := res.Header.Get("ETag")
	req, _ := http.NewRequest("PATCH", srv.URL+"/v1/flags/"+key+"?environment=test", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("If-Match", etag)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("PATCH %s: %s", key, res.Status)
	}
}

// TestStatusEvents: data-source failures and recovery reach OpenFeature as
// PROVIDER_ERROR, PROVIDER_STALE and PROVIDER_READY, and the client's state
// follows.
func TestStatusEvents(t *testing.T) {
	t.Run("local/error and recovery", func(t *testing.T) {
		f := newFixture(t, nil, []flagwire.Option{flagwire.WithMode(flagwire.ModeLocal)}, flagwireof.WithStatusInterval(-1))
		if f.initErr != nil {
			t.Fatal(f.initErr)
		}
		errs := events(f.of, openfeature.ProviderError)
		ready := events(f.of, openfeature.ProviderReady)
		waitEvent(t, ready, "PROVIDER_READY", nil)
		waitStreams(t, f.srv)
		remove := f.srv.InjectFault(flagtest.Fault{Path: "/v1/flags", Status: http.StatusServiceUnavailable})
		f.srv.SetFlag("test", evaluate.Flag{Key: "killed"}) // the stream triggers a sync, which fails
		d := waitEvent(t, errs, "PROVIDER_ERROR", nil)
		if !strings.Contains(d.Message, "503") && !strings.Contains(d.Message, "UNAVAILABLE") {
			t.Errorf("error event message %q", d.Message)
		}
		wantState(t, f.of, openfeature.ErrorState)
		remove()
		f.srv.SetFlag("test", evaluate.Flag{Key: "killed", State: evaluate.StateOff})
		waitEvent(t, ready, "PROVIDER_READY after recovery", nil)
		wantState(t, f.of, openfeature.ReadyState)
	})
	t.Run("local/stale", func(t *testing.T) {
		// Without the stream: its first connection triggers a sync whose
		// 304 confirms the config, making it fresh (READY) again right
		// after it went STALE, so the state read after the STALE event
		// could be either (the test's flake). Polling (60 s) confirms
		// nothing within the test.
		f := newFixture(t, nil, []flagwire.Option{flagwire.WithMode(flagwire.ModeLocal), flagwire.WithStaleAfter(time.Millisecond), flagwire.WithStreaming(false)},
			flagwireof.WithStatusInterval(10*time.Millisecond))
		if f.initErr != nil {
			t.Fatal(f.initErr)
		}
		stale := events(f.of, openfeature.ProviderStale)
		waitEvent(t, stale, "PROVIDER_STALE", nil)
		wantState(t, f.of, openfeature.StaleState)
	})
	t.Run("remote/breaker", func(t *testing.T) {
		f := newFixture(t, nil, []flagwire.Option{
			flagwire.WithStreaming(false),
			flagwire.WithBreaker(flagwire.BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 200 * time.Millisecond}),
		}, flagwireof.WithStatusInterval(10*time.Millisecond))
		if f.initErr != nil {
			t.Fatal(f.initErr)
		}
		errs := events(f.of, openfeature.ProviderError)
		ready := events(f.of, openfeature.ProviderReady)
		waitEvent(t, ready, "PROVIDER_READY", nil)
		f.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: http.StatusServiceUnavailable, Count: 1})
		f.of.Boolean(context.Background(), "new-ui", false, openfeature.NewEvaluationContext("u1", nil))
		waitEvent(t, errs, "PROVIDER_ERROR (breaker open)", nil)
		waitEvent(t, ready, "PROVIDER_READY (breaker half-open)", nil)
	})
}

// TestShutdown: openfeature.Shutdown shuts the provider down, which closes
// the Flagwire client; the provider cannot be initialized again.
func TestShutdown(t *testing.T) {
	f := newFixture(t, nil, nil)
	if f.initErr != nil {
		t.Fatal(f.initErr)
	}
	if err := openfeature.ShutdownWithContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, d := f.p.Client().BoolDetail(context.Background(), "new-ui", false); d.ErrorCode != flagwire.CodeClosed {
		t.Errorf("client not closed: %+v", d)
	}
	err := f.p.InitWithContext(context.Background(), openfeature.EvaluationContext{})
	var ie *openfeature.ProviderInitError
	if !errors.As(err, &ie) || ie.ErrorCode != openfeature.ProviderFatalCode {
		t.Errorf("Init after Shutdown: %v", err)
	}
	if err := f.p.ShutdownWithContext(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// initAfterStale is a provider whose InitWithContext returns only once the
// SDK has recorded the STALE the provider sent as its Init ended: the
// interleaving a busy machine produces now and then, made certain.
type initAfterStale struct {
	*flagwireof.Provider
	domain string
}

func (p initAfterStale) InitWithContext(ctx context.Context, ec openfeature.EvaluationContext) error {
	if err := p.Provider.InitWithContext(ctx, ec); err != nil {
		return err
	}
	c := openfeature.NewClient(p.domain)
	for c.State() != openfeature.StaleState {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond): // polling the SDK's state, bounded by ctx
		}
	}
	return nil
}

// A config already stale when Init ends: the SDK records the provider's
// STALE, then Init's own READY; the provider asserts STALE again after
// that READY, so the SDK ends at STALE rather than READY.
func TestStaleAtInitSurvivesTheSDKsReady(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(testConfig()))
	client, err := flagwire.New(context.Background(), append(baseOptions(srv),
		flagwire.WithMode(flagwire.ModeLocal), flagwire.WithStaleAfter(time.Nanosecond), flagwire.WithStreaming(false))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	domain := t.Name()
	p := initAfterStale{Provider: flagwireof.NewProvider(client, flagwireof.WithStatusInterval(-1)), domain: domain}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := openfeature.ShutdownWithContext(ctx); err != nil {
			t.Errorf("openfeature shutdown: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := openfeature.SetNamedProviderWithContextAndWait(ctx, domain, p); err != nil {
		t.Fatal(err)
	}
	c := openfeature.NewClient(domain)
	stale := events(c, openfeature.ProviderStale) // runs at once if the state is STALE
	waitEvent(t, stale, "PROVIDER_STALE after Init's READY", nil)
	wantState(t, c, openfeature.StaleState)
}
