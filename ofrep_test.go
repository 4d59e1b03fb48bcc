package flagwire

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// TestOFREPCodeDefaultIsSuccess: an OFREP 200 without a value (flagd and
// GO Feature Flag answer so for a disabled flag; OFREP ADR-0006) serves
// the caller's default as a success, with the server's reason and variant;
// foreign OpenFeature reasons are kept.
func TestOFREPCodeDefaultIsSuccess(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(typesConfig()))
	const single = "/ofrep/v1/evaluate/flags/"
	answer := func(key, body string) {
		srv.InjectFault(flagtest.Fault{Method: http.MethodPost, Path: single + key, Body: []byte(body)})
	}
	answer("disabled-flag", `{"key":"disabled-flag","reason":"DISABLED","variant":"off"}`)
	answer("static-flag", `{"key":"static-flag","value":"blue","reason":"STATIC","variant":"b"}`)
	answer("split-flag", `{"key":"split-flag","value":"green","reason":"TARGETING_MATCH_SPLIT","variant":"g"}`)
	answer("cached-flag", `{"key":"cached-flag","value":"red","reason":"CACHED","variant":"r"}`)
	answer("unknown-flag", `{"key":"unknown-flag","value":"grey","reason":"UNKNOWN"}`)
	answer("default-flag", `{"key":"default-flag","reason":"DEFAULT","variant":"control","metadata":{"team":"growth"}}`)
	c := modeClient(t, srv, ModeRemote, true)
	ctx := WithAttributes(context.Background(), Attributes{"userId": "u1"})

	for _, src := range []Source{SourceRemote, SourceCache} {
		v, d := c.BoolDetail(ctx, "disabled-flag", true)
		if !v || d.ErrorCode != "" || d.Variant != "off" || d.Reason.Kind != "OFF" || d.Source != src {
			t.Errorf("disabled-flag (%s): %v %+v; want the default true, variant off, reason OFF, no error", src, v, d)
		}
	}
	var dst = map[string]int{"keep": 1}
	if d := c.JSON(ctx, "default-flag", &dst); dst["keep"] != 1 || len(dst) != 1 || d.ErrorCode != "" || d.Variant != "control" || d.Reason.Kind != "DEFAULT" {
		t.Errorf("default-flag JSON: %v %+v", dst, d)
	}
	for _, tc := range []struct {
		key, value, variant string
		kind                evaluate.ReasonKind
	}{
		{"static-flag", "blue", "b", "STATIC"},
		{"split-flag", "green", "g", "TARGETING_MATCH_SPLIT"},
		{"cached-flag", "red", "r", "CACHED"},
		{"unknown-flag", "grey", "grey", "UNKNOWN"},
	} {
		if v, d := c.StringDetail(ctx, tc.key, "x"); v != tc.value || d.Variant != tc.variant || d.Reason.Kind != tc.kind || d.ErrorCode != "" {
			t.Errorf("%s: %q %+v; want %q variant %q reason %q", tc.key, v, d, tc.value, tc.variant, tc.kind)
		}
	}

	// In a bulk answer too.
	srv.ClearFaults()
	srv.InjectFault(flagtest.Fault{Method: http.MethodPost, Path: "/ofrep/v1/evaluate/flags", Count: 1,
		Body: []byte(`{"flags":[{"key":"a","reason":"DISABLED","variant":"off"},{"key":"b","value":3,"reason":"SPLIT","variant":"three"}]}`)})
	res := c.Evaluate(WithAttributes(context.Background(), Attributes{"userId": "u2"}), []Request{{FlagKey: "a", Default: "dflt"}, {FlagKey: "b", Default: 0.0}})
	if res[0].Value != "dflt" || res[0].Detail.ErrorCode != "" || res[0].Detail.Variant != "off" || res[0].Detail.Reason.Kind != "OFF" || res[0].Detail.Source != SourceRemote {
		t.Errorf("bulk a: %+v", res[0])
	}
	if res[1].Value != 3.0 || res[1].Detail.Reason.Kind != "ROLLOUT" || res[1].Detail.Variant != "three" {
		t.Errorf("bulk b: %+v", res[1])
	}
	if !slices.Equal([]string{res[0].Detail.FlagKey, res[1].Detail.FlagKey}, []string{"a", "b"}) {
		t.Errorf("keys %+v", res)
	}
}

// ofrepTestConfig has a flag for each type and reason, with payloads,
// segments, targets and a rollout.
func ofrepTestConfig() *evaluate.Config {
	half := 50.0
	return &evaluate.Config{
		Environment: "test",
		Salt:        "ofrep-salt",
		Segments:    []evaluate.Segment{{Key: "beta_testers", Included: []string{"beta-1"}}},
		Flags: []evaluate.Flag{
			{Key: "checkout-new-flow", Rules: []evaluate.Rule{
				{ID: "rule-1", When: "plan == 'pro' and region == 'US'", Serve: evaluate.Serve{Variant: true}},
				{ID: "rule-2", Segment: "beta_testers", Serve: evaluate.Serve{Variant: true}},
			}, Default: &evaluate.Serve{Percentage: &half}},
			{Key: "pricing-experiment", Type: evaluate.TypeString,
				Variants:  []evaluate.Variant{{Name: "control"}, {Name: "B", Payload: map[string]any{"price": 23.0, "currency": "EUR"}}},
				Bucketing: evaluate.Bucketing{By: "accountId"},
				Default:   &evaluate.Serve{Rollout: []evaluate.WeightedVariant{{Variant: "control", Weight: 50}, {Variant: "B", Weight: 50}}}},
			{Key: "banner", Type: evaluate.TypeString, Variants: []evaluate.Variant{{Name: "blue"}, {Name: "gold"}},
				Targets: []evaluate.Target{{Variant: "gold", Values: []string{"vip-1"}}}, Default: &evaluate.Serve{Variant: "blue"}},
			{Key: "max-items", Type: evaluate.TypeNumber, Variants: []evaluate.Variant{{Name: "small", Value: 10.0}, {Name: "large", Value: 50.0}},
				Rules: []evaluate.Rule{{ID: "pro", When: "plan == 'pro'", Serve: evaluate.Serve{Variant: "large"}}}, Default: &evaluate.Serve{Variant: "small"}},
			{Key: "ratio", Type: evaluate.TypeNumber, Variants: []evaluate.Variant{{Name: "quarter", Value: 0.25}}, Default: &evaluate.Serve{Variant: "quarter"}},
			{Key: "theme", Type: evaluate.TypeJSON, Variants: []evaluate.Variant{{Name: "dark", Value: map[string]any{"bg": "black", "accent": []any{"red"}}}},
				Default: &evaluate.Serve{Variant: "dark"}},
			{Key: "kill-switch", State: evaluate.StateOff},
			{Key: "needs-checkout", Prerequisites: []evaluate.Prerequisite{{FlagKey: "checkout-new-flow", Variants: []any{true}}},
				Default: &evaluate.Serve{Variant: true}},
		},
	}
}

// ofrepClient returns a remote-mode client on srv: through OFREP when
// ofrep is set, else through /v1/evaluate.
func ofrepClient(t *testing.T, srv *flagtest.Server, ofrep bool, extra ...Option) *Client {
	t.Helper()
	return modeClient(t, srv, ModeRemote, ofrep, append([]Option{WithEnvironment("test"), WithTimeout(2 * time.Second)}, extra...)...)
}

// ofrepEval is one typed evaluation: the value and the Detail.
type ofrepEval func(c *Client, ctx context.Context) (any, Detail)

func ofrepBool(key string, def bool) ofrepEval {
	return func(c *Client, ctx context.Context) (any, Detail) { return c.BoolDetail(ctx, key, def) }
}

func ofrepString(key, def string) ofrepEval {
	return func(c *Client, ctx context.Context) (any, Detail) { return c.StringDetail(ctx, key, def) }
}

func ofrepInt(key string, def int64) ofrepEval {
	return func(c *Client, ctx context.Context) (any, Detail) { return c.IntDetail(ctx, key, def) }
}

func ofrepFloat(key string, def float64) ofrepEval {
	return func(c *Client, ctx context.Context) (any, Detail) { return c.FloatDetail(ctx, key, def) }
}

func ofrepJSON(key string) ofrepEval {
	return func(c *Client, ctx context.Context) (any, Detail) {
		var v map[string]any
		d := c.JSON(ctx, key, &v)
		return v, d
	}
}

// TestOFREPSameAnswers: a client on the OFREP endpoints returns the same
// value and the same Detail (variant, reason, rule, segment, bucket,
// payload, version, source, error code) as a client on /v1/evaluate, for
// every type, reason and per-flag error, fresh and from the cache — except
// a disabled flag, where OFREP serves the caller's default (OpenFeature).
func TestOFREPSameAnswers(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(ofrepTestConfig()))
	v1 := ofrepClient(t, srv, false)
	of := ofrepClient(t, srv, true)
	attrs := func(kv ...any) context.Context {
		a := Attributes{}
		for i := 0; i < len(kv); i += 2 {
			a[kv[i].(string)] = kv[i+1]
		}
		return WithAttributes(context.Background(), a)
	}
	cases := []struct {
		name string
		ctx  context.Context
		eval ofrepEval
	}{
		{"rule match", attrs("userId", "u1", "plan", "pro", "region", "US"), ofrepBool("checkout-new-flow", false)},
		{"segment match", attrs("userId", "beta-1"), ofrepBool("checkout-new-flow", false)},
		{"percentage default", attrs("userId", "u-2"), ofrepBool("checkout-new-flow", false)},
		{"percentage default, no id", attrs("plan", "free"), ofrepBool("checkout-new-flow", true)},
		{"rollout with payload", attrs("accountId", "acme-co-1337"), ofrepString("pricing-experiment", "control")},
		{"rollout other bucket", attrs("accountId", "globex"), ofrepString("pricing-experiment", "control")},
		{"target", attrs("userId", "vip-1"), ofrepString("banner", "none")},
		{"int rule", attrs("plan", "pro"), ofrepInt("max-items", 1)},
		{"int default", attrs("plan", "free"), ofrepInt("max-items", 1)},
		{"float", attrs(), ofrepFloat("ratio", 1)},
		{"json", attrs(), ofrepJSON("theme")},
		{"json payload of a string flag", attrs("accountId", "acme-co-1337"), ofrepJSON("pricing-experiment")},
		{"off", attrs("userId", "u1"), ofrepBool("kill-switch", true)},
		{"prerequisite failed", attrs("userId", "nobody", "plan", "free"), ofrepBool("needs-checkout", false)},
		{"not found", attrs("userId", "u1"), ofrepBool("no-such-flag", true)},
		{"type mismatch: server decides", attrs("userId", "u1"), ofrepString("checkout-new-flow", "x")},
		{"type mismatch: not an integer", attrs(), ofrepInt("ratio", 7)},
		{"type mismatch: json default", attrs("userId", "u1"), ofrepFloat("banner", 2)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, round := range []string{"fresh", "cached"} {
				wantV, wantD := tc.eval(v1, tc.ctx)
				if tc.name == "off" {
					// By design the two APIs differ here: OFREP follows
					// OpenFeature (a disabled flag is a code-default answer,
					// so the caller's default, true, with no variant);
					// /v1/evaluate serves the flag's off variant.
					wantV, wantD.Variant = true, ""
				}
				gotV, gotD := tc.eval(of, tc.ctx)
				if !reflect.DeepEqual(gotV, wantV) || !reflect.DeepEqual(gotD, wantD) {
					t.Errorf("%s:\n OFREP %#v %+v\n    v1 %#v %+v", round, gotV, gotD, wantV, wantD)
				}
			}
		})
	}
	if n := srv.Requests("POST", "/v1/evaluate"); n == 0 {
		t.Error("the /v1 client made no request")
	}
	if n := srv.Requests("POST", "/ofrep/v1/evaluate/flags/checkout-new-flow"); n == 0 {
		t.Error("the OFREP client made no single-flag request")
	}
}

// TestOFREPBatch: Evaluate and the prefetch use one bulk request per distinct
// context, with the same results as /v1/evaluate.
func TestOFREPBatch(t *testing.T) {
	srvV1 := flagtest.NewServer(t, flagtest.WithConfig(ofrepTestConfig()))
	srvOF := flagtest.NewServer(t, flagtest.WithConfig(ofrepTestConfig()))
	v1 := ofrepClient(t, srvV1, false)
	of := ofrepClient(t, srvOF, true)
	ctx := WithAttributes(context.Background(), Attributes{"userId": "u1", "plan": "pro", "region": "US", "accountId": "acme-co-1337"})
	reqs := []Request{
		{FlagKey: "checkout-new-flow", Default: false},
		{FlagKey: "pricing-experiment", Default: "control"},
		{FlagKey: "max-items", Default: 1},
		{FlagKey: "theme"},
		{FlagKey: "no-such-flag", Default: "d"},
		{FlagKey: "banner", Default: 3}, // the wrong type
		{FlagKey: "banner", Default: "none", Attributes: Attributes{"userId": "vip-1"}},
		{FlagKey: "checkout-new-flow", Default: false, Attributes: Attributes{"userId": "beta-1"}},
	}
	want := v1.Evaluate(ctx, reqs)
	got := of.Evaluate(ctx, reqs)
	for i := range reqs {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("%d %s:\n OFREP %#v\n    v1 %#v", i, reqs[i].FlagKey, got[i], want[i])
		}
	}
	// Three contexts: ctx's, vip-1's, beta-1's.
	if n := srvOF.Requests("POST", "/ofrep/v1/evaluate/flags"); n != 3 {
		t.Errorf("%d bulk requests, want 3 (one per context)", n)
	}
	if n := srvOF.Requests("POST", "/v1/evaluate"); n != 0 {
		t.Errorf("%d /v1/evaluate requests through OFREP", n)
	}

	// The prefetch fills the cache in one bulk request; evaluations then hit.
	ctx2 := WithAttributes(context.Background(), Attributes{"userId": "u7", "plan": "free"})
	srvOF.ResetCounts()
	if failed := of.prefetch(ctx2, "checkout-new-flow", "max-items", "banner"); failed != 0 {
		t.Errorf("%d prefetches failed", failed)
	}
	if _, d := of.IntDetail(ctx2, "max-items", 1); d.Source != SourceCache {
		t.Errorf("after the prefetch: %+v", d)
	}
	if n := srvOF.Requests("POST", "/ofrep/v1/evaluate/flags"); n != 1 || len(srvOF.RequestCounts()) != 1 {
		t.Errorf("requests after the prefetch: %v", srvOF.RequestCounts())
	}
}

// TestOFREPCoalescing: concurrent cold misses of one key make one OFREP
// request; the answer is cached.
func TestOFREPCoalescing(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(ofrepTestConfig()))
	srv.InjectFault(flagtest.Fault{Path: "/ofrep/", Latency: 50 * time.Millisecond, Count: 1})
	c := ofrepClient(t, srv, true)
	ctx := WithAttributes(context.Background(), Attributes{"plan": "pro"})
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			<-start
			if v := c.Int(ctx, "max-items", 1); v != 50 {
				t.Errorf("value %d", v)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := srv.Requests("POST", "/ofrep/v1/evaluate/flags/max-items"); n != 1 {
		t.Errorf("%d requests for 200 concurrent misses, want 1", n)
	}
}

// TestOFREPFailures: the breaker, retries, Retry-After, timeouts and
// fallbacks work on the OFREP path as on /v1/evaluate.
func TestOFREPFailures(t *testing.T) {
	const path = "/ofrep/v1/evaluate/flags/max-items"
	staleClock := testkit.NewClock()
	pro := WithAttributes(context.Background(), Attributes{"plan": "pro"})
	cases := []struct {
		name     string
		opts     []Option
		prepare  func(t *testing.T, srv *flagtest.Server, c *Client)
		wantV    int64
		wantSrc  Source
		wantCode ErrorCode
		wantReqs int64 // requests to path, counted after prepare; -1: any
	}{
		{name: "5xx retried", opts: []Option{WithRetry(RetrySettings{MaxAttempts: 3, Base: time.Millisecond, Cap: time.Millisecond})},
			prepare: func(t *testing.T, srv *flagtest.Server, c *Client) {
				srv.InjectFault(flagtest.Fault{Path: path, Status: http.StatusServiceUnavailable})
			}, wantV: 1, wantCode: CodeUnavailable, wantReqs: 3},
		{name: "5xx then success", opts: []Option{WithRetry(RetrySettings{MaxAttempts: 3, Base: time.Millisecond, Cap: time.Millisecond})},
			prepare: func(t *testing.T, srv *flagtest.Server, c *Client) {
				srv.InjectFault(flagtest.Fault{Path: path, Status: http.StatusBadGateway, Count: 1})
			}, wantV: 50, wantSrc: SourceRemote, wantReqs: 2},
		{name: "429 gates later calls", opts: []Option{WithRetry(RetrySettings{MaxAttempts: -1})},
			prepare: func(t *testing.T, srv *flagtest.Server, c *Client) {
				srv.InjectFault(flagtest.Fault{Path: "/ofrep/", Status: http.StatusTooManyRequests, RetryAfter: time.Minute, Count: 1})
				if _, d := c.BoolDetail(pro, "checkout-new-flow", false); d.ErrorCode != CodeRateLimited {
					t.Errorf("first call: %+v", d)
				}
			}, wantV: 1, wantCode: CodeRateLimited, wantReqs: 0},
		{name: "unauthorized", opts: []Option{WithToken("wrong")}, wantV: 1, wantCode: CodeUnauthorized, wantReqs: 1},
		{name: "breaker open", opts: []Option{WithRetry(RetrySettings{MaxAttempts: -1}), WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Hour})},
			prepare: func(t *testing.T, srv *flagtest.Server, c *Client) {
				srv.InjectFault(flagtest.Fault{Path: "/ofrep/", Status: http.StatusServiceUnavailable, Count: 1})
				c.Bool(pro, "checkout-new-flow", false)
			}, wantV: 1, wantCode: CodeCircuitOpen, wantReqs: 0},
		{name: "timeout", opts: []Option{WithTimeout(30 * time.Millisecond)},
			prepare: func(t *testing.T, srv *flagtest.Server, c *Client) {
				srv.InjectFault(flagtest.Fault{Path: path, Latency: time.Second})
			}, wantV: 1, wantCode: CodeTimeout, wantReqs: -1},
		{name: "malformed", opts: []Option{WithRetry(RetrySettings{MaxAttempts: -1})},
			prepare: func(t *testing.T, srv *flagtest.Server, c *Client) {
				srv.InjectFault(flagtest.Fault{Path: path, Body: []byte(`{"value":`)})
			}, wantV: 1, wantCode: CodeBadResponse, wantReqs: 1},
		{name: "stale served", opts: []Option{WithRetry(RetrySettings{MaxAttempts: -1}), withClock(staleClock)},
			prepare: func(t *testing.T, srv *flagtest.Server, c *Client) {
				if v := c.Int(pro, "max-items", 1); v != 50 {
					t.Fatalf("first call %d", v)
				}
				staleClock.Advance(2 * time.Minute) // past the 60 s TTL, within max stale
				srv.InjectFault(flagtest.Fault{Path: path, Status: http.StatusServiceUnavailable})
			}, wantV: 50, wantSrc: SourceStale, wantCode: CodeUnavailable, wantReqs: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := flagtest.NewServer(t, flagtest.WithConfig(ofrepTestConfig()))
			c := ofrepClient(t, srv, true, tc.opts...)
			if tc.prepare != nil {
				tc.prepare(t, srv, c)
			}
			before := srv.Requests("POST", path)
			v, d := c.IntDetail(pro, "max-items", 1)
			if tc.wantSrc == "" { // a case that names no source expects the caller's default
				tc.wantSrc = SourceCallerDefault
			}
			if v != tc.wantV || d.Source != tc.wantSrc || d.ErrorCode != tc.wantCode {
				t.Errorf("got %d %+v, want %d from %s with %q", v, d, tc.wantV, tc.wantSrc, tc.wantCode)
			}
			if n := srv.Requests("POST", path) - before; tc.wantReqs >= 0 && n != tc.wantReqs {
				t.Errorf("%d requests, want %d", n, tc.wantReqs)
			}
		})
	}
}

// TestOFREPOtherServer: the SDK works against an OFREP server that is not
// Flagwire's (plain OFREP answers, no metadata), and sends the OFREP
// context with targetingKey and the environment header.
func TestOFREPOtherServer(t *testing.T) {
	type seen struct {
		path, env, auth string
		context         map[string]any
	}
	var mu sync.Mutex
	var reqs []seen
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Context map[string]any `json:"context"`
		}
		json.Unmarshal(body, &req)
		mu.Lock()
		reqs = append(reqs, seen{r.URL.Path, r.Header.Get("X-Flagwire-Environment"), r.Header.Get("Authorization"), req.Context})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/ofrep/v1/evaluate/flags/color":
			w.Header().Set("Cache-Control", "max-age=30")
			io.WriteString(w, `{"key":"color","value":"red","reason":"TARGETING_MATCH","variant":"red-variant"}`)
		case "/ofrep/v1/evaluate/flags/split":
			io.WriteString(w, `{"key":"split","value":true,"reason":"SPLIT","variant":"on","cacheable":false}`)
		case "/ofrep/v1/evaluate/flags/disabled":
			io.WriteString(w, `{"key":"disabled","reason":"DISABLED"}`)
		case "/ofrep/v1/evaluate/flags/needs-key":
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"key":"needs-key","errorCode":"TARGETING_KEY_MISSING","errorDetails":"no targeting key"}`)
		case "/ofrep/v1/evaluate/flags":
			io.WriteString(w, `{"flags":[{"key":"color","value":"blue","reason":"STATIC","variant":"b"},{"key":"broken","errorCode":"PARSE_ERROR","errorDetails":"bad config"}]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"key":"x","errorCode":"FLAG_NOT_FOUND","errorDetails":"no such flag"}`)
		}
	}))
	defer hs.Close()
	c, err := New(context.Background(), WithEndpoint(hs.URL), WithToken("secret"), WithEnvironment("staging"), WithOFREP(true),
		WithStreaming(false), WithLogger(quietLogger()), WithRetry(RetrySettings{MaxAttempts: -1}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx := WithAttributes(context.Background(), Attributes{"userId": "u1", "plan": "pro"})

	cases := []struct {
		name     string
		eval     ofrepEval
		wantV    any
		wantVar  string
		wantKind evaluate.ReasonKind
		wantCode ErrorCode
	}{
		{"targeting match", ofrepString("color", "none"), "red", "red-variant", "RULE_MATCH", ""},
		{"split", ofrepBool("split", false), true, "on", "ROLLOUT", ""},
		{"no value", ofrepBool("disabled", true), true, "", "OFF", ""},
		{"400 error code", ofrepBool("needs-key", false), false, "", "ERROR", CodeMissingBucketingAttribute},
		{"not found", ofrepBool("nope", false), false, "", "ERROR", CodeFlagNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, d := tc.eval(c, ctx)
			if v != tc.wantV || d.Variant != tc.wantVar || d.Reason.Kind != tc.wantKind || d.ErrorCode != tc.wantCode {
				t.Errorf("got %#v %+v", v, d)
			}
		})
	}
	res := c.Evaluate(WithAttributes(context.Background(), Attributes{"userId": "u2"}), []Request{
		{FlagKey: "color", Default: "none"}, {FlagKey: "broken", Default: "d"}, {FlagKey: "absent", Default: "d"},
	})
	if res[0].Value != "blue" || res[0].Detail.Reason.Kind != "STATIC" || res[0].Detail.Variant != "b" {
		t.Errorf("bulk color: %+v", res[0])
	}
	if res[1].Value != "d" || res[1].Detail.ErrorCode != "PARSE_ERROR" {
		t.Errorf("bulk broken: %+v", res[1])
	}
	if res[2].Value != "d" || res[2].Detail.ErrorCode != CodeFlagNotFound {
		t.Errorf("bulk absent: %+v", res[2])
	}

	mu.Lock()
	defer mu.Unlock()
	for _, r := range reqs {
		if r.env != "staging" || r.auth != "Bearer secret" {
			t.Errorf("%s: environment %q, auth %q", r.path, r.env, r.auth)
		}
		if r.context["targetingKey"] != r.context["userId"] || r.context["userId"] == nil {
			t.Errorf("%s: context %v lacks targetingKey = userId", r.path, r.context)
		}
	}
}

// TestOFREPNoEndpoint: a server without OFREP routes fails the call with
// GENERAL (not FLAG_NOT_FOUND), and the caller gets the default.
func TestOFREPNoEndpoint(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"code":"not_found","message":"no such endpoint"}}`)
	}))
	defer hs.Close()
	c, err := New(context.Background(), WithEndpoint(hs.URL), WithOFREP(true), WithStreaming(false), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if v, d := c.BoolDetail(context.Background(), "x", true); !v || d.ErrorCode != CodeGeneral {
		t.Errorf("single: %v %+v", v, d)
	}
	res := c.Evaluate(context.Background(), []Request{{FlagKey: "a", Default: 1.0}, {FlagKey: "b", Default: 2.0}})
	if res[0].Value != 1.0 || res[0].Detail.ErrorCode != CodeGeneral || res[1].Detail.ErrorCode != CodeGeneral {
		t.Errorf("bulk: %+v", res)
	}
}

func TestOFREPHelpers(t *testing.T) {
	t.Run("ttl", func(t *testing.T) {
		f := false
		cases := []struct {
			cc        string
			cacheable *bool
			want      int
		}{
			{"", nil, ofrepDefaultTTL},
			{"private, max-age=30", nil, 30},
			{`max-age="15"`, nil, 15},
			{"no-store", nil, 0},
			{"", &f, 0},
			{"max-age=bogus", nil, ofrepDefaultTTL},
		}
		for _, tc := range cases {
			h := http.Header{}
			if tc.cc != "" {
				h.Set("Cache-Control", tc.cc)
			}
			if got := ofrepTTL(h, tc.cacheable); got != tc.want {
				t.Errorf("ofrepTTL(%q, %v) = %d, want %d", tc.cc, tc.cacheable, got, tc.want)
			}
		}
	})
	t.Run("context", func(t *testing.T) {
		in := map[string]any{"userId": "u1"}
		out := ofrepContext(in)
		if out["targetingKey"] != "u1" || len(in) != 1 {
			t.Errorf("out %v, in %v (must stay unmodified)", out, in)
		}
		if out := ofrepContext(map[string]any{"userId": 42.0}); out["targetingKey"] != "42" {
			t.Errorf("numeric id: %v", out)
		}
		if out := ofrepContext(map[string]any{"userId": "u1", "targetingKey": "t"}); out["targetingKey"] != "t" {
			t.Errorf("explicit targetingKey: %v", out)
		}
		if out := ofrepContext(nil); out == nil || len(out) != 0 {
			t.Errorf("nil: %v", out)
		}
	})
	t.Run("reason kind", func(t *testing.T) {
		for in, want := range map[string]string{
			"TARGETING_MATCH": "RULE_MATCH", "SPLIT": "ROLLOUT", "DISABLED": "OFF", "STATIC": "STATIC",
			"UNKNOWN": "UNKNOWN", "": "UNKNOWN", "SEGMENT_MATCH": "SEGMENT_MATCH", "CUSTOM": "CUSTOM",
			"CACHED": "CACHED", "TARGETING_MATCH_SPLIT": "TARGETING_MATCH_SPLIT", "DEFAULT": "DEFAULT",
		} {
			if got := wire.ReasonKindOfOFREP(in); got != want {
				t.Errorf("ReasonKindOfOFREP(%q) = %q, want %q", in, got, want)
			}
		}
	})
	if !strings.HasPrefix(wire.OFREPFlagPath, wire.OFREPBulkPath) {
		t.Error("paths")
	}
}

// TestOFREPOnlyServerStreamIsNotAnError: flagd and GO Feature Flag serve
// OFREP but no /v1/stream. In OFREP mode their 404 on the stream is
// expected: the client stops streaming quietly and Status reports no error.
func TestOFREPOnlyServerStreamIsNotAnError(t *testing.T) {
	var streamCalls atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/ofrep/v1/evaluate/flags/on" {
			io.WriteString(w, `{"key":"on","value":true,"reason":"STATIC","variant":"enabled"}`)
			return
		}
		if r.URL.Path == "/v1/stream" {
			streamCalls.Add(1)
		}
		w.WriteHeader(http.StatusNotFound) // flagd: a plain 404, no Flagwire error body
	}))
	defer hs.Close()
	c, err := New(context.Background(), WithEndpoint(hs.URL), WithOFREP(true), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if v, d := c.BoolDetail(context.Background(), "on", false); !v || d.Reason.Kind != "STATIC" || d.ErrorCode != "" {
		t.Fatalf("on: %v %+v", v, d)
	}
	testkit.WaitFor(t, 30*time.Second, "the stream's stop", func() bool {
		c.local.mu.Lock()
		defer c.local.mu.Unlock()
		return c.local.stream != nil && c.local.stream.stopped.Load()
	})
	if st := c.Status(); st.LastError != "" || st.State == StateError {
		t.Errorf("Status after an OFREP-only server's stream 404: %+v; want no error", st)
	}
	if n := streamCalls.Load(); n != 1 {
		t.Errorf("%d stream attempts, want 1 (a 404 is not retried)", n)
	}
}

// TestOFREPTargetingKeyCanonicalNumericID: a numeric userId becomes the
// targetingKey in the bucketing specification's canonical form, so an
// OFREP server buckets 1, 1.0 and 1e0 alike (and large ids stay exact).
func TestOFREPTargetingKeyCanonicalNumericID(t *testing.T) {
	for _, tc := range []struct {
		id   any
		want string
	}{
		{json.Number("1.0"), "1"},
		{json.Number("1e3"), "1000"},
		{1.0, "1"},
		{float64(1 << 60), "1152921504606846976"},
		{int64(42), "42"},
		{json.Number("12.50"), "12.5"},
		{"u1", "u1"},
	} {
		got := ofrepContext(map[string]any{"userId": tc.id})["targetingKey"]
		if got != tc.want {
			t.Errorf("userId %#v: targetingKey %#v, want %q", tc.id, got, tc.want)
		}
	}
}
