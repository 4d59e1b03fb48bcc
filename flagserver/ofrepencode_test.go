package flagserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// ofrepReadBack is the reason kind an OFREP client of Flagwire reads
// from an OpenFeature reason alone (the SDK's documented OFREP mapping):
// the server sends reasonKind only when it differs.
func ofrepReadBack(reason string) string {
	switch reason {
	case "TARGETING_MATCH":
		return "RULE_MATCH"
	case "SPLIT":
		return "ROLLOUT"
	case "DISABLED":
		return "OFF"
	case "":
		return "UNKNOWN"
	}
	return reason
}

// ofrepSuccessReference maps a decision to an OFREP success, as the
// server did before it wrote answers by hand: the reference its encoder
// must match byte for byte once encoding/json writes it. Its metadata is
// the flag's own, plus Flagwire's detail when extended.
func ofrepSuccessReference(d wire.Decision, extended bool) ofrepSuccess {
	res := ofrepSuccess{Key: d.FlagKey, Value: d.Variant, Variant: d.VariantKey, Reason: "DEFAULT"}
	md := make(map[string]any, len(d.FlagMetadata)+4)
	// The flag's own metadata first: Flagwire's entries below take
	// precedence (Compile rejects them as flagMetadata keys, so a compiled
	// config never has both).
	for k, v := range d.FlagMetadata {
		md[k] = v
	}
	if d.Reason != nil {
		res.Reason = wire.OFREPReason(d.Reason.Kind)
	}
	if d.Reason != nil && evaluate.ReasonKind(d.Reason.Kind) == evaluate.ReasonOff {
		// A disabled flag defers to the caller's default: OpenFeature
		// expects the default with reason DISABLED (evaluation_v2.feature,
		// spec 1.4.7), which OFREP expresses as a success without a value
		// (ADR-0006, "code default"). No variant: the default is not one
		// of the flag's variants.
		res.Value, res.Variant = nil, ""
	}
	if !extended {
		if len(md) > 0 {
			res.Metadata = md
		}
		return res
	}
	if r := d.Reason; r != nil {
		if ofrepReadBack(res.Reason) != r.Kind {
			md["reasonKind"] = r.Kind
		}
		if r.RuleID != "" {
			md["ruleId"] = r.RuleID
		}
		if r.Segment != "" {
			md["segment"] = r.Segment
		}
		if r.Prerequisite != "" {
			md["prerequisite"] = r.Prerequisite
		}
		if r.Bucket != nil {
			md["bucket"] = *r.Bucket
		}
		if r.ErrorCode != "" { // MISSING_BUCKETING_ATTRIBUTE alongside the answer
			md["errorCode"] = r.ErrorCode
		}
	}
	if d.Bucketing != nil {
		md["bucket"] = d.Bucketing.Bucket
	}
	if d.FlagVersion != 0 {
		md["flagVersion"] = d.FlagVersion
	}
	if d.Type == "json" {
		md["flagType"] = "json"
	}
	if len(d.Payload) > 0 && string(d.Payload) != "null" {
		md["payload"] = string(d.Payload)
	}
	if len(md) > 0 {
		res.Metadata = md
	}
	return res
}

// referenceSuccessJSON is the reference answer as encoding/json writes it.
func referenceSuccessJSON(t *testing.T, d wire.Decision, cacheable, extended bool) string {
	t.Helper()
	res := ofrepSuccessReference(d, extended)
	if cacheable {
		c := true
		res.Cacheable = &c
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOFREPEncodingMatchesEncodingJSON: the hand-written encoder writes
// exactly the bytes encoding/json writes for the reference answer, for
// every flag of the test configs under many contexts and for decisions
// built to reach every branch (escapes, non-ASCII, flag metadata of every
// scalar type, reserved keys, disabled flags).
func TestOFREPEncodingMatchesEncodingJSON(t *testing.T) {
	var decisions []wire.Decision
	now := time.Date(2026, 6, 25, 12, 0, 0, 0, time.UTC)
	for _, cfg := range []*evaluate.Config{ofrepConfig(), seedConfig()} {
		snap, err := evaluate.Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			ctx := map[string]any{"targetingKey": fmt.Sprintf("u-%d", i), "userId": fmt.Sprintf("u-%d", i),
				"accountId": fmt.Sprintf("acct-%d", i%7), "plan": []string{"pro", "free", "enterprise"}[i%3], "region": []string{"EU", "US"}[i%2]}
			if i%5 == 0 {
				delete(ctx, "userId")
				delete(ctx, "accountId")
			}
			for _, key := range snap.Keys() {
				in := wire.EvaluationInput{FlagKey: key, Context: ctx}
				d := decide(snap, &in, wire.EvaluateOptions{IncludeReasons: true, ReturnPayloads: true}, now, 60)
				if d.Error == nil {
					decisions = append(decisions, d)
				}
			}
		}
	}
	bucket := 4242
	decisions = append(decisions,
		wire.Decision{FlagKey: "a<b>&c", Variant: json.RawMessage(`"\u003cx\u003e"`), VariantKey: "v\"q\u2028",
			Reason:       &wire.Reason{Kind: "RULE_MATCH", RuleID: "r\n1", Segment: "seg/é", Prerequisite: "p", Bucket: &bucket, ErrorCode: "MISSING_BUCKETING_ATTRIBUTE"},
			Bucketing:    &wire.Bucketing{Bucket: bucket},
			FlagVersion:  -7,
			Payload:      json.RawMessage(`{"price":23,"html":"<b>"}`),
			FlagMetadata: map[string]any{"team": "payments", "zeta": 1.5, "alpha": true, "big": 1e21, "tiny": 1e-7, "neg": -0.0, "int": float64(12), "s": "ü\x00\xff"}},
		wire.Decision{FlagKey: "off-flag", Variant: json.RawMessage("false"), VariantKey: "off", Reason: &wire.Reason{Kind: string(evaluate.ReasonOff)}},
		wire.Decision{FlagKey: "no-reason", Variant: json.RawMessage("null")},
		wire.Decision{FlagKey: "meta-only", Variant: json.RawMessage("1"), FlagMetadata: map[string]any{"k": "v"}},
		wire.Decision{FlagKey: "null-payload", Variant: json.RawMessage("true"), Payload: json.RawMessage("null"), Reason: &wire.Reason{Kind: "DEFAULT"}},
	)
	if len(decisions) < 500 {
		t.Fatalf("only %d decisions", len(decisions))
	}
	for _, d := range decisions {
		for _, cacheable := range []bool{false, true} {
			for _, extended := range []bool{false, true} {
				got := string(appendOFREPSuccess(nil, &d, cacheable, extended))
				if want := referenceSuccessJSON(t, d, cacheable, extended); got != want {
					t.Fatalf("decision %+v (extended %v):\n got %s\nwant %s", d, extended, got, want)
				}
			}
		}
	}
}

// TestOFREPBulkBytes: a bulk answer is, byte for byte, encoding/json's
// encoding of wire.OFREPBulk with the reference answers, standard and
// extended (X-Flagwire-OFREP-Metadata: extended, in any case).
func TestOFREPBulkBytes(t *testing.T) {
	clock := time.Date(2026, 6, 25, 12, 0, 0, 0, time.UTC)
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{ofrepConfig()}, Now: func() time.Time { return clock }})
	modes := []struct {
		headers  []string
		extended bool
	}{
		{nil, false},
		{[]string{"X-Flagwire-OFREP-Metadata: extended"}, true},
		{[]string{"x-flagwire-ofrep-metadata: Extended"}, true},
		{[]string{"X-Flagwire-OFREP-Metadata: full"}, false}, // only "extended" asks
	}
	for _, m := range modes {
		for _, body := range []string{
			`{"context":{"targetingKey":"8a7f4c91","plan":"pro","accountId":"acme-co-1337"}}`,
			`{"context":{"targetingKey":"someone","region":"EU","plan":"free"}}`,
			`{}`,
		} {
			checkBulkBytes(t, ts, clock, body, m.headers, m.extended)
		}
	}
}

// checkBulkBytes compares one bulk answer with the reference.
func checkBulkBytes(t *testing.T, ts *testServer, clock time.Time, body string, headers []string, extended bool) {
	t.Helper()
	r := ts.do("POST", "/ofrep/v1/evaluate/flags", body, headers...)
	r.wantStatus(t, http.StatusOK)
	ctx, fail := ofrepContext([]byte(body))
	if fail != nil {
		t.Fatal(fail)
	}
	es := ts.env("prod")
	want := wire.OFREPBulk{Flags: []wire.OFREPEvaluation{}, Metadata: map[string]any{"environment": "prod", "version": es.version()}}
	for _, key := range es.snap.Keys() {
		in := wire.EvaluationInput{FlagKey: key, Context: ctx}
		d := decide(es.snap, &in, wire.EvaluateOptions{IncludeReasons: true, ReturnPayloads: true}, clock, int(DefaultDecisionTTL.Seconds()))
		if d.Error != nil {
			f, _ := ofrepFailureOf(d)
			want.Flags = append(want.Flags, f)
			continue
		}
		want.Flags = append(want.Flags, ofrepSuccessReference(d, extended))
	}
	wb, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.body) != string(wb) {
		t.Errorf("context %s, headers %q:\n got %s\nwant %s", body, headers, r.body, wb)
	}
	if r.header.Get("ETag") != etagOf(wb) {
		t.Errorf("ETag %s, want %s", r.header.Get("ETag"), etagOf(wb))
	}
}
