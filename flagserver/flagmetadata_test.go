package flagserver

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/internal/wire"
)

// TestFlagMetadataOverTheAPI: flagMetadata written through PATCH comes
// back with every /v1/evaluate decision of the flag (and with none of a
// flag that has none) and as an OFREP answer's metadata, beside
// Flagwire's own entries when the client asks for them; invalid flag
// metadata is a compile error.
func TestFlagMetadataOverTheAPI(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.do("PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"x","flagMetadata":{"release":"1.0.2","build":2,"beta":true}}`,
		"If-Match: "+getETag(t, ts, "/v1/flags/checkout-new-flow")).wantStatus(t, 200)
	want := map[string]any{"release": "1.0.2", "build": 2.0, "beta": true} // as encoding/json decodes them

	r := ts.do("POST", "/v1/evaluate", `{"environment":"prod","options":{"includeReasons":true},"requests":[
		{"flagKey":"checkout-new-flow","defaultValue":false,"context":{"userId":"u1","plan":"pro"}},
		{"flagKey":"checkout-new-flow","defaultValue":false,"context":{"userId":"u2","plan":"free","region":"EU"}},
		{"flagKey":"pricing-experiment","defaultValue":"control","context":{"accountId":"a1"}}]}`)
	r.wantStatus(t, 200)
	var resp wire.EvaluateResponse
	r.json(t, &resp)
	for i, wantKind := range []string{"SEGMENT_MATCH", "RULE_MATCH"} {
		d := resp.Decisions[i]
		if d.Reason == nil || d.Reason.Kind != wantKind || !reflect.DeepEqual(d.FlagMetadata, want) {
			t.Errorf("decision %d: %s", i, mustJSON(d))
		}
	}
	var raw struct {
		Decisions []map[string]json.RawMessage `json:"decisions"`
	}
	r.json(t, &raw)
	if _, ok := raw.Decisions[2]["flagMetadata"]; ok {
		t.Errorf("a flag without metadata sent flagMetadata: %s", r.body)
	}

	r = ts.do("POST", "/ofrep/v1/evaluate/flags/checkout-new-flow", `{"context":{"targetingKey":"u1","plan":"pro"}}`, ofrepExtendedHeader)
	r.wantStatus(t, 200)
	var of wire.OFREPEvaluation
	r.json(t, &of)
	wantMD := map[string]any{"release": "1.0.2", "build": 2.0, "beta": true, "reasonKind": "SEGMENT_MATCH", "ruleId": "rule-2", "segment": "beta_testers", "flagVersion": of.Metadata["flagVersion"]}
	if of.Metadata["flagVersion"] == nil || !reflect.DeepEqual(of.Metadata, wantMD) {
		t.Errorf("OFREP metadata %v, want %v", of.Metadata, wantMD)
	}
	// An OpenFeature client that does not ask for Flagwire's detail gets
	// the flag's own metadata alone.
	r = ts.do("POST", "/ofrep/v1/evaluate/flags/checkout-new-flow", `{"context":{"targetingKey":"u1","plan":"pro"}}`)
	r.wantStatus(t, 200)
	of = wire.OFREPEvaluation{}
	r.json(t, &of)
	if !reflect.DeepEqual(of.Metadata, want) {
		t.Errorf("standard OFREP metadata %v, want %v", of.Metadata, want)
	}

	for _, tc := range []struct{ body, want string }{
		{`{"changeReason":"x","flagMetadata":{"ruleId":"mine"}}`, `flagMetadata key \"ruleId\" is reserved`},
		{`{"changeReason":"x","flagMetadata":{"owner":{"team":"a"}}}`, `flagMetadata \"owner\": map[string]interface {} is not allowed`},
		{`{"changeReason":"x","flagMetadata":{"n":null}}`, `flagMetadata \"n\": null is not allowed`},
	} {
		r := ts.do("PATCH", "/v1/flags/checkout-new-flow", tc.body, "If-Match: "+getETag(t, ts, "/v1/flags/checkout-new-flow"))
		r.wantError(t, 400, wire.CodeCompileError)
		if !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: %s lacks %s", tc.body, r.body, tc.want)
		}
	}
}
