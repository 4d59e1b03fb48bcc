package flagserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// ofrepConfig is the seed's environment plus a flag for each OpenFeature
// reason.
func ofrepConfig() *evaluate.Config {
	c := seedConfig()
	c.Flags = append(c.Flags,
		evaluate.Flag{Key: "kill-switch", State: evaluate.StateOff},
		evaluate.Flag{Key: "vip-banner", Type: evaluate.TypeString,
			Variants: []evaluate.Variant{{Name: "plain"}, {Name: "gold"}},
			Targets:  []evaluate.Target{{Variant: "gold", Values: []string{"vip-1"}}},
			Default:  &evaluate.Serve{Variant: "plain"}},
		evaluate.Flag{Key: "max-items", Type: evaluate.TypeNumber,
			Variants: []evaluate.Variant{{Name: "small", Value: 10.0}, {Name: "large", Value: 50.0}},
			Default:  &evaluate.Serve{Variant: "small"}},
		evaluate.Flag{Key: "theme", Type: evaluate.TypeJSON,
			Variants: []evaluate.Variant{{Name: "dark", Value: map[string]any{"bg": "black"}}},
			Default:  &evaluate.Serve{Variant: "dark"}},
		evaluate.Flag{Key: "needs-checkout", Prerequisites: []evaluate.Prerequisite{{FlagKey: "checkout-new-flow", Variants: []any{true}}},
			Default: &evaluate.Serve{Variant: true}},
	)
	return c
}

// ofrepKeys returns the top-level keys of a JSON object, sorted.
func ofrepKeys(t *testing.T, body []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("not a JSON object: %s", body)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ofrepExtendedHeader asks for Flagwire's detail in OFREP metadata.
const ofrepExtendedHeader = "X-Flagwire-OFREP-Metadata: extended"

// ofrepKindOf is the Flagwire reason kind of an extended OFREP answer:
// metadata reasonKind, or the kind its OpenFeature reason reads as when
// the server left it out.
func ofrepKindOf(a testkit.OFREPAnswer) string {
	if k, ok := a.Metadata["reasonKind"].(string); ok {
		return k
	}
	return ofrepReadBack(a.Reason)
}

// TestOFREPSingle checks the single-flag endpoint's success shape and
// every reason mapping, with Flagwire's detail in metadata when asked and
// only the flag's own metadata (none here) when not.
func TestOFREPSingle(t *testing.T) {
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{ofrepConfig()}})
	cases := []struct {
		name, key, context string
		wantValue          string
		wantReason         string
		wantVariant        string
		wantMeta           map[string]any
	}{
		{"segment match", "checkout-new-flow", `{"targetingKey":"8a7f4c91","plan":"pro"}`, `true`, "TARGETING_MATCH", "true",
			map[string]any{"reasonKind": "SEGMENT_MATCH", "ruleId": "rule-2", "segment": "beta_testers"}},
		{"rule match", "checkout-new-flow", `{"region":"EU","plan":"free"}`, `false`, "TARGETING_MATCH", "false",
			map[string]any{"reasonKind": "RULE_MATCH", "ruleId": "rule-1"}},
		{"default", "checkout-new-flow", `{"plan":"free"}`, `false`, "DEFAULT", "false", map[string]any{"reasonKind": "DEFAULT"}},
		{"split with payload", "pricing-experiment", `{"accountId":"acme-co-1337"}`, `"B"`, "SPLIT", "B",
			map[string]any{"reasonKind": "ROLLOUT", "payload": `{"currency":"EUR","price":23}`}},
		{"disabled", "kill-switch", `{}`, ``, "DISABLED", "", map[string]any{"reasonKind": "OFF"}},
		{"prerequisite failed", "needs-checkout", `{"plan":"free"}`, `false`, "TARGETING_MATCH", "false",
			map[string]any{"reasonKind": "PREREQUISITE_FAILED", "prerequisite": "checkout-new-flow"}},
		{"target by targetingKey", "vip-banner", `{"targetingKey":"vip-1"}`, `"gold"`, "TARGETING_MATCH", "gold", map[string]any{"reasonKind": "TARGET_MATCH"}},
		{"userId wins over targetingKey", "vip-banner", `{"targetingKey":"vip-1","userId":"u2"}`, `"plain"`, "DEFAULT", "plain", nil},
		{"number", "max-items", `{}`, `10`, "STATIC", "small", nil},
		{"object", "theme", `{}`, `{"bg":"black"}`, "STATIC", "dark", nil},
		{"no context", "max-items", ``, `10`, "STATIC", "small", nil},
		{"null context", "max-items", `null`, `10`, "STATIC", "small", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := `{}`
			if tc.context != "" {
				body = `{"context":` + tc.context + `}`
			}
			r := ts.do("POST", "/ofrep/v1/evaluate/flags/"+tc.key, body, ofrepExtendedHeader)
			r.wantStatus(t, http.StatusOK)
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := r.header.Get("Cache-Control"); cc != "private, max-age=60" {
				t.Errorf("Cache-Control %q", cc)
			}
			keys := ofrepKeys(t, r.body)
			allowed := []string{"cacheable", "key", "metadata", "reason", "value", "variant"}
			for _, k := range keys {
				if !slices.Contains(allowed, k) {
					t.Errorf("unexpected field %q in %s", k, r.body)
				}
			}
			var a testkit.OFREPAnswer
			r.json(t, &a)
			if a.Key != tc.key || string(a.Value) != tc.wantValue || a.Reason != tc.wantReason || a.Variant != tc.wantVariant || !a.Cacheable {
				t.Errorf("got %s", r.body)
			}
			for k, v := range tc.wantMeta {
				got := a.Metadata[k]
				if k == "reasonKind" {
					got = ofrepKindOf(a)
				}
				if got != v {
					t.Errorf("metadata %s = %#v, want %#v", k, got, v)
				}
			}
			for k, v := range a.Metadata {
				switch v.(type) {
				case string, float64, bool:
				default:
					t.Errorf("metadata %s is a %T: OFREP metadata values are scalars", k, v)
				}
			}
			// Without the header: the same answer, no Flagwire metadata.
			plain := ts.do("POST", "/ofrep/v1/evaluate/flags/"+tc.key, body)
			plain.wantStatus(t, http.StatusOK)
			var p testkit.OFREPAnswer
			plain.json(t, &p)
			if p.Metadata != nil || slices.Contains(ofrepKeys(t, plain.body), "metadata") {
				t.Errorf("standard answer has metadata: %s", plain.body)
			}
			a.Metadata = nil
			if !reflect.DeepEqual(p, a) {
				t.Errorf("standard answer %s, extended %s", plain.body, r.body)
			}
		})
	}
}

// TestOFREPFailures checks the failure shapes and status codes.
func TestOFREPFailures(t *testing.T) {
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{ofrepConfig()}})
	cases := []struct {
		name, path, body string
		headers          []string
		status           int
		wantCode         string // OFREP errorCode; "" for the /v1 error body
		wantKey          string
	}{
		{"flag not found", "/ofrep/v1/evaluate/flags/nope", `{"context":{}}`, nil, 404, "FLAG_NOT_FOUND", "nope"},
		{"malformed JSON", "/ofrep/v1/evaluate/flags/max-items", `{"context":`, nil, 400, "PARSE_ERROR", "max-items"},
		{"trailing data", "/ofrep/v1/evaluate/flags/max-items", `{"context":{}} {}`, nil, 400, "PARSE_ERROR", "max-items"},
		{"context not an object", "/ofrep/v1/evaluate/flags/max-items", `{"context":"x"}`, nil, 400, "INVALID_CONTEXT", "max-items"},
		{"context an array", "/ofrep/v1/evaluate/flags/max-items", `{"context":[1]}`, nil, 400, "INVALID_CONTEXT", "max-items"},
		{"unknown environment", "/ofrep/v1/evaluate/flags/max-items", `{}`, []string{"X-Flagwire-Environment: staging"}, 400, "GENERAL", "max-items"},
		{"bulk malformed", "/ofrep/v1/evaluate/flags", `[`, nil, 400, "PARSE_ERROR", ""},
		{"bulk invalid context", "/ofrep/v1/evaluate/flags", `{"context":5}`, nil, 400, "INVALID_CONTEXT", ""},
		{"bulk unknown environment", "/ofrep/v1/evaluate/flags?environment=staging", `{}`, nil, 400, "GENERAL", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do("POST", tc.path, tc.body, tc.headers...)
			r.wantStatus(t, tc.status)
			var a testkit.OFREPAnswer
			r.json(t, &a)
			if a.ErrorCode != tc.wantCode || a.Key != tc.wantKey || a.ErrorDetails == "" {
				t.Errorf("got %s", r.body)
			}
			want := []string{"errorCode", "errorDetails"}
			if tc.wantKey != "" {
				want = []string{"errorCode", "errorDetails", "key"}
			}
			if got := ofrepKeys(t, r.body); !reflect.DeepEqual(got, want) {
				t.Errorf("fields %v, want %v", got, want)
			}
		})
	}
	t.Run("GET is 405", func(t *testing.T) {
		r := ts.do("GET", "/ofrep/v1/evaluate/flags/max-items", "")
		r.wantError(t, http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed)
		if r.header.Get("Allow") != "POST" {
			t.Errorf("Allow %q", r.header.Get("Allow"))
		}
	})
	t.Run("not JSON is 415", func(t *testing.T) {
		r := ts.do("POST", "/ofrep/v1/evaluate/flags/max-items", "context", "Content-Type: text/plain")
		r.wantStatus(t, http.StatusUnsupportedMediaType)
	})
}

// TestOFREPSecurity: bearer tokens, scopes, environments and rate limits
// apply as on /v1; the environment comes from the header, the query, a
// single-environment token, or the default.
func TestOFREPSecurity(t *testing.T) {
	staging := ofrepConfig()
	staging.Environment = "staging"
	staging.Flags = []evaluate.Flag{{Key: "max-items", Type: evaluate.TypeNumber,
		Variants: []evaluate.Variant{{Name: "tiny", Value: 1.0}}, Default: &evaluate.Serve{Variant: "tiny"}}}
	ts := newTestServer(t, Options{
		Configs: []*evaluate.Config{ofrepConfig(), staging},
		Tokens: []Token{
			{Secret: "reader", Scopes: []string{wire.ScopeRead}},
			{Secret: "writer", Scopes: []string{wire.ScopeWrite}},
			{Secret: "staging-reader", Scopes: []string{wire.ScopeRead}, Environments: []string{"staging"}},
		},
		ReadLimit: RateLimit{PerSecond: 0.001, Burst: 8},
	})
	cases := []struct {
		name      string
		path      string
		headers   []string
		status    int
		wantValue string
	}{
		{"no token", "/ofrep/v1/evaluate/flags/max-items", nil, 401, ""},
		{"unknown token", "/ofrep/v1/evaluate/flags/max-items", []string{"Authorization: Bearer nope"}, 401, ""},
		{"no read scope", "/ofrep/v1/evaluate/flags/max-items", []string{"Authorization: Bearer writer"}, 403, ""},
		{"default environment", "/ofrep/v1/evaluate/flags/max-items", []string{"Authorization: Bearer reader"}, 200, "10"},
		{"environment header", "/ofrep/v1/evaluate/flags/max-items", []string{"Authorization: Bearer reader", "X-Flagwire-Environment: staging"}, 200, "1"},
		{"environment query", "/ofrep/v1/evaluate/flags/max-items?environment=staging", []string{"Authorization: Bearer reader"}, 200, "1"},
		{"single-environment token", "/ofrep/v1/evaluate/flags/max-items", []string{"Authorization: Bearer staging-reader"}, 200, "1"},
		{"environment not allowed", "/ofrep/v1/evaluate/flags/max-items", []string{"Authorization: Bearer staging-reader", "X-Flagwire-Environment: prod"}, 403, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do("POST", tc.path, `{"context":{}}`, tc.headers...)
			r.wantStatus(t, tc.status)
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.wantValue != "" {
				var a testkit.OFREPAnswer
				r.json(t, &a)
				if string(a.Value) != tc.wantValue {
					t.Errorf("value %s, want %s", a.Value, tc.wantValue)
				}
			}
		})
	}
	t.Run("429 with Retry-After", func(t *testing.T) {
		var r *response
		for range 20 {
			r = ts.do("POST", "/ofrep/v1/evaluate/flags", `{}`, "Authorization: Bearer reader")
			if r.status == http.StatusTooManyRequests {
				break
			}
		}
		r.wantStatus(t, http.StatusTooManyRequests)
		if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 {
			t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
		}
	})
}

// TestOFREPBulk checks the bulk endpoint: every flag, sorted, the same
// answers as the single endpoint, and ETag / If-None-Match → 304.
func TestOFREPBulk(t *testing.T) {
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{ofrepConfig()}})
	body := `{"context":{"targetingKey":"8a7f4c91","plan":"pro","accountId":"acme-co-1337"}}`
	r := ts.do("POST", "/ofrep/v1/evaluate/flags", body)
	r.wantStatus(t, http.StatusOK)
	if got := ofrepKeys(t, r.body); !reflect.DeepEqual(got, []string{"flags", "metadata"}) {
		t.Errorf("fields %v", got)
	}
	var bulk struct {
		Flags    []testkit.OFREPAnswer `json:"flags"`
		Metadata map[string]any        `json:"metadata"`
	}
	r.json(t, &bulk)
	if bulk.Metadata["environment"] != "prod" || bulk.Metadata["version"] == nil {
		t.Errorf("metadata %v", bulk.Metadata)
	}
	var keys []string
	for _, f := range bulk.Flags {
		keys = append(keys, f.Key)
		if f.Metadata != nil {
			t.Errorf("%s: metadata %v without %s", f.Key, f.Metadata, ofrepExtendedHeader)
		}
		single := ts.do("POST", "/ofrep/v1/evaluate/flags/"+f.Key, body)
		single.wantStatus(t, http.StatusOK)
		var s testkit.OFREPAnswer
		single.json(t, &s)
		s.Cacheable = false
		if !reflect.DeepEqual(s, f) {
			t.Errorf("%s: bulk %+v, single %+v", f.Key, f, s)
		}
	}
	// Extended: the same answers, with Flagwire's detail, in bulk and one
	// by one; the ETag is the extended answer's own.
	ext := ts.do("POST", "/ofrep/v1/evaluate/flags", body, ofrepExtendedHeader)
	ext.wantStatus(t, http.StatusOK)
	var extBulk struct {
		Flags []testkit.OFREPAnswer `json:"flags"`
	}
	ext.json(t, &extBulk)
	if len(extBulk.Flags) != len(bulk.Flags) || ext.header.Get("ETag") == r.header.Get("ETag") {
		t.Errorf("extended bulk: %d flags, ETag %s (standard: %d, %s)", len(extBulk.Flags), ext.header.Get("ETag"), len(bulk.Flags), r.header.Get("ETag"))
	}
	for i, f := range extBulk.Flags {
		single := ts.do("POST", "/ofrep/v1/evaluate/flags/"+f.Key, body, ofrepExtendedHeader)
		var s testkit.OFREPAnswer
		single.json(t, &s)
		s.Cacheable = false
		if !reflect.DeepEqual(s, f) {
			t.Errorf("%s: extended bulk %+v, single %+v", f.Key, f, s)
		}
		if i < len(bulk.Flags) {
			std := bulk.Flags[i]
			f.Metadata = nil
			if !reflect.DeepEqual(std, f) {
				t.Errorf("%s: extended %+v, standard %+v", f.Key, f, std)
			}
		}
	}
	want := ofrepConfig().Flags
	wantKeys := make([]string, len(want))
	for i, f := range want {
		wantKeys[i] = f.Key
	}
	sort.Strings(wantKeys)
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("keys %v, want %v", keys, wantKeys)
	}

	etag := r.header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
		t.Fatalf("ETag %q", etag)
	}
	cases := []struct {
		name, body, inm string
		status          int
	}{
		{"same context, same ETag", body, etag, http.StatusNotModified},
		{"unquoted ETag", body, strings.Trim(etag, `"`), http.StatusNotModified},
		{"one of several", body, `"other", ` + etag, http.StatusNotModified},
		{"star", body, `*`, http.StatusNotModified},
		{"other ETag", body, `"0123"`, http.StatusOK},
		{"other context", `{"context":{"targetingKey":"someone-else"}}`, etag, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do("POST", "/ofrep/v1/evaluate/flags", tc.body, "If-None-Match: "+tc.inm)
			r.wantStatus(t, tc.status)
			if tc.status == http.StatusNotModified && (len(r.body) != 0 || r.header.Get("ETag") != etag) {
				t.Errorf("304 with body %q, ETag %q", r.body, r.header.Get("ETag"))
			}
		})
	}
	t.Run("a change changes the ETag", func(t *testing.T) {
		if _, err := ts.PutFlag("prod", evaluate.Flag{Key: "kill-switch"}, "test", "turn on"); err != nil {
			t.Fatal(err)
		}
		r := ts.do("POST", "/ofrep/v1/evaluate/flags", body, "If-None-Match: "+etag)
		r.wantStatus(t, http.StatusOK)
		if r.header.Get("ETag") == etag {
			t.Error("ETag unchanged after a change")
		}
	})
}

// TestOFREPMatchesEvaluate: for many contexts, OFREP answers carry the
// same value, variant and reason as POST /v1/evaluate.
func TestOFREPMatchesEvaluate(t *testing.T) {
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{ofrepConfig()}})
	contexts := []map[string]any{
		{"userId": "8a7f4c91", "plan": "pro"},
		{"userId": "u2", "plan": "free", "region": "EU"},
		{"accountId": "acme-co-1337"},
		{"accountId": "other-account", "userId": "vip-1"},
		{},
	}
	for i := range 20 {
		contexts = append(contexts, map[string]any{"accountId": "acct-" + strconv.Itoa(i), "userId": "user-" + strconv.Itoa(i)})
	}
	for _, f := range ofrepConfig().Flags {
		for i, ctx := range contexts {
			t.Run(f.Key+"/"+strconv.Itoa(i), func(t *testing.T) {
				req := wire.EvaluateRequest{Environment: "prod", Requests: []wire.EvaluationInput{{FlagKey: f.Key, Context: ctx}},
					Options: wire.EvaluateOptions{IncludeReasons: true, ReturnPayloads: true}}
				r := ts.do("POST", "/v1/evaluate", mustJSON(req))
				r.wantStatus(t, 200)
				var ev wire.EvaluateResponse
				r.json(t, &ev)
				d := ev.Decisions[0]
				o := ts.do("POST", "/ofrep/v1/evaluate/flags/"+f.Key, mustJSON(map[string]any{"context": ctx}), ofrepExtendedHeader)
				o.wantStatus(t, 200)
				var a testkit.OFREPAnswer
				o.json(t, &a)
				wantValue, wantVariant := string(d.Variant), d.VariantKey
				if d.Reason.Kind == "OFF" { // OFREP's code default (see TestOFREPDisabledServesCodeDefault)
					wantValue, wantVariant = "", ""
				}
				if string(a.Value) != wantValue || a.Variant != wantVariant || ofrepKindOf(a) != d.Reason.Kind ||
					a.Reason != wire.OFREPReason(d.Reason.Kind) || (d.Reason.RuleID != "" && a.Metadata["ruleId"] != d.Reason.RuleID) {
					t.Errorf("/v1/evaluate %s\nOFREP %s", mustJSON(d), o.body)
				}
				if d.Bucketing != nil && a.Metadata["bucket"] != float64(d.Bucketing.Bucket) {
					t.Errorf("bucket %v, want %d", a.Metadata["bucket"], d.Bucketing.Bucket)
				}
			})
		}
	}
}

// TestOFREPDisabledServesCodeDefault: a disabled flag of every type answers
// OFREP with a 200 success without "value" or "variant" and reason
// DISABLED (OFREP ADR-0006: the provider returns the caller's default, as
// OpenFeature's evaluation_v2.feature expects for DISABLED), in the single
// and the bulk form; POST /v1/evaluate still serves the off variant with
// reason OFF.
func TestOFREPDisabledServesCodeDefault(t *testing.T) {
	cfg := &evaluate.Config{Environment: "prod", Flags: []evaluate.Flag{
		{Key: "boolean-disabled-flag", State: evaluate.StateOff},
		{Key: "string-disabled-flag", State: evaluate.StateOff, Type: evaluate.TypeString,
			Variants: []evaluate.Variant{{Name: "hi"}, {Name: "there"}}, OffVariant: "there"},
		{Key: "integer-disabled-flag", State: evaluate.StateOff, Type: evaluate.TypeNumber,
			Variants: []evaluate.Variant{{Name: "ten", Value: 10.0}}},
		{Key: "object-disabled-flag", State: evaluate.StateOff, Type: evaluate.TypeJSON,
			Variants: []evaluate.Variant{{Name: "obj", Value: map[string]any{"a": 2.0}}}},
	}}
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{cfg}})
	check := func(t *testing.T, item []byte, key string) {
		t.Helper()
		keys := ofrepKeys(t, item)
		if slices.Contains(keys, "value") || slices.Contains(keys, "variant") || slices.Contains(keys, "errorCode") {
			t.Fatalf("%s: fields %v, want no value, variant or errorCode: %s", key, keys, item)
		}
		var a testkit.OFREPAnswer
		if err := json.Unmarshal(item, &a); err != nil {
			t.Fatal(err)
		}
		if a.Key != key || a.Reason != "DISABLED" || a.Metadata != nil {
			t.Fatalf("%s: %s", key, item)
		}
	}
	want := map[string]string{ // the off variants /v1/evaluate serves
		"boolean-disabled-flag": "false", "string-disabled-flag": `"there"`,
		"integer-disabled-flag": "10", "object-disabled-flag": `{"a":2}`,
	}
	for key, off := range want {
		t.Run(key, func(t *testing.T) {
			r := ts.do("POST", "/ofrep/v1/evaluate/flags/"+key, `{"context":{"targetingKey":"u1"}}`)
			r.wantStatus(t, http.StatusOK)
			check(t, r.body, key)
			req := wire.EvaluateRequest{Environment: "prod", Requests: []wire.EvaluationInput{{FlagKey: key}},
				Options: wire.EvaluateOptions{IncludeReasons: true}}
			var ev wire.EvaluateResponse
			ts.do("POST", "/v1/evaluate", mustJSON(req)).json(t, &ev)
			if d := ev.Decisions[0]; string(d.Variant) != off || d.Reason == nil || d.Reason.Kind != "OFF" || d.Error != nil {
				t.Fatalf("/v1/evaluate %s, want the off variant %s with reason OFF", mustJSON(d), off)
			}
		})
	}
	r := ts.do("POST", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u1"}}`)
	r.wantStatus(t, http.StatusOK)
	var bulk struct{ Flags []json.RawMessage }
	r.json(t, &bulk)
	if len(bulk.Flags) != len(want) {
		t.Fatalf("bulk has %d flags: %s", len(bulk.Flags), r.body)
	}
	for _, item := range bulk.Flags {
		var a testkit.OFREPAnswer
		json.Unmarshal(item, &a)
		check(t, item, a.Key)
	}
}

// ofrepContextBodies are request bodies for the context decoding checks.
var ofrepContextBodies = []string{
	``, `  `, `null`, `{}`, `{"context":null}`, `{"context":{}}`,
	`{"context":{"targetingKey":"u1","plan":"pro"}}`,
	`{"context":{"targetingKey":"u1","userId":"other"}}`,
	`{"context":{"id":12345678901234567890,"f":1.5,"nested":{"a":[1,"x",null,true]}}}`,
	`{"Context":{"a":1}}`, `{"context":{"a":1},"context":{"b":2}}`, `{"context":{"a":1},"context":null}`,
	`{"context":{"a":1},"other":[1,2,3]}`,
	`{"context":5}`, `{"context":"x"}`, `{"context":[1]}`, `{"context":true}`,
	`[1]`, `"x"`, `5`, `{`, `{"context":{"a":}}`, `{"context":{}} {"context":{}}`,
	`{"context":{}} }`, `{"context":{}}]`, `{"context":{}} x`, "{\"context\":{\"s\":\"\xff\"}}",
	`{"context":{"a":1e400}}`, `{"context":{"":1}}`,
}

// TestOFREPContextOnePass: the one-pass decoding of an OFREP body gives
// what the two-pass decoding gives — the same context or the same failure.
func TestOFREPContextOnePass(t *testing.T) {
	for _, body := range ofrepContextBodies {
		checkOFREPContext(t, []byte(body))
	}
}

func checkOFREPContext(t *testing.T, body []byte) {
	t.Helper()
	got, gotFail := ofrepContext(body)
	var want map[string]any
	var wantFail *ofrepFailure
	if len(bytes.TrimSpace(body)) > 0 {
		want, wantFail = ofrepContextSlow(body)
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotFail, wantFail) {
		t.Errorf("body %q: one pass %v %+v, two passes %v %+v", body, got, gotFail, want, wantFail)
	}
}

func FuzzOFREPContext(f *testing.F) {
	for _, body := range ofrepContextBodies {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkOFREPContext(t, body) })
}
