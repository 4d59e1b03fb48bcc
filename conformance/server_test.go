package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// caseEnv is the environment every case config is served in: not the
// server's or the SDK's default, so a path that drops it shows.
const caseEnv = "conformance"

// groupServer is a flagtest server loaded with one group's config, whose
// clock is the current case's evaluation time.
type groupServer struct {
	srv *flagtest.Server
	now atomic.Pointer[time.Time]
	cfg *evaluate.Config
}

func (g *groupServer) setTime(tm time.Time) { g.now.Store(&tm) }

// startGroupServer starts a server for cf's group config (nil when the group
// has none, as for compile-error groups).
func startGroupServer(t *testing.T, cf *caseFile) *groupServer {
	t.Helper()
	if len(cf.Config) == 0 {
		return nil
	}
	g := &groupServer{cfg: decodeConfig(t, cf.Config)}
	g.cfg.Environment = caseEnv
	g.setTime(time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC))
	g.srv = flagtest.NewServer(t, flagtest.WithConfig(g.cfg), flagtest.WithClock(func() time.Time { return *g.now.Load() }))
	return g
}

// forEachGroupCase is forEachCase with a server per group, started lazily.
func forEachGroupCase(t *testing.T, files []*caseFile, skip func(cf *caseFile, c *tcase) string,
	fn func(t *testing.T, g *groupServer, cf *caseFile, c *tcase)) {
	for _, cf := range files {
		t.Run(cf.file, func(t *testing.T) {
			g := startGroupServer(t, cf)
			for i := range cf.Cases {
				c := &cf.Cases[i]
				t.Run(c.Name, func(t *testing.T) {
					if why := skip(cf, c); why != "" {
						t.Skip(why)
					}
					if c.Expect.CompileError || len(c.Config) > 0 {
						fn(t, nil, cf, c)
						return
					}
					if g == nil {
						t.Fatal("group server did not start")
					}
					g.setTime(c.when(t))
					fn(t, g, cf, c)
				})
			}
		})
	}
}

// forEachServedCase runs fn for every case on its group's server, with
// the case's default value; for a case whose config must not compile, it
// checks instead that the server refuses the config.
func forEachServedCase(t *testing.T, fn func(t *testing.T, g *groupServer, c *tcase, def any)) {
	files := loadCases(t)
	skip := func(*caseFile, *tcase) string { return "" }
	forEachGroupCase(t, files, skip, func(t *testing.T, g *groupServer, cf *caseFile, c *tcase) {
		if c.Expect.CompileError {
			checkCompileErrorServed(t, cf, c)
			return
		}
		fn(t, g, c, c.defaultValue(t))
	})
}

// checkCompileErrorServed checks that the server refuses a config that must
// not compile.
func checkCompileErrorServed(t *testing.T, cf *caseFile, c *tcase) {
	t.Helper()
	cfg := decodeConfig(t, cf.config(c))
	cfg.Environment = caseEnv
	s, err := flagtest.Start(flagtest.WithConfig(cfg))
	if err == nil {
		s.Close()
	}
	checkCompileError(t, c, "server start", err)
}

// sendJSON sends body as JSON with the bearer token and the headers in
// hdr, and returns the status and body of the answer.
func sendJSON(t *testing.T, method, u, token string, hdr map[string]string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// decision is the part of a /v1/evaluate decision the suite reads.
type decision struct {
	FlagKey    string          `json:"flagKey"`
	Variant    json.RawMessage `json:"variant"`
	VariantKey string          `json:"variantKey"`
	Payload    json.RawMessage `json:"payload"`
	Reason     *struct {
		Kind         string `json:"kind"`
		RuleID       string `json:"ruleId"`
		Segment      string `json:"segment"`
		Prerequisite string `json:"prerequisite"`
		Bucket       *int   `json:"bucket"`
		ErrorCode    string `json:"errorCode"`
	} `json:"reason"`
	Bucketing *struct {
		Bucket int `json:"bucket"`
	} `json:"bucketing"`
	Error *struct {
		Code string `json:"code"`
	} `json:"error"`
}

// TestServerEvaluate runs every case through the reference server's
// POST /v1/evaluate over loopback (server clock = the case's time). The
// default sent is the case's, except for object requests, whose typed
// access (payload of a non-JSON flag) is the client's job: they send null.
func TestServerEvaluate(t *testing.T) {
	forEachServedCase(t, func(t *testing.T, g *groupServer, c *tcase, def any) {
		sent := json.RawMessage(c.Default)
		if c.Type == "object" {
			sent = json.RawMessage("null")
		}
		body := map[string]any{
			"environment": caseEnv,
			"requests":    []any{map[string]any{"flagKey": c.Flag, "defaultValue": sent, "context": c.wireContext(t)}},
			"options":     map[string]any{"includeReasons": true, "returnPayloads": true},
		}
		status, data := sendJSON(t, http.MethodPost, g.srv.URL+"/v1/evaluate", g.srv.Token(), nil, body)
		if status != http.StatusOK {
			t.Fatalf("POST /v1/evaluate: %d %s", status, data)
		}
		var resp struct {
			Decisions []decision `json:"decisions"`
		}
		if err := json.Unmarshal(data, &resp); err != nil || len(resp.Decisions) != 1 {
			t.Fatalf("response %s: %v", data, err)
		}
		check(t, c, c.Expect, decisionOutcome(t, g.cfg, c, def, resp.Decisions[0]))
	})
}

func decisionOutcome(t *testing.T, cfg *evaluate.Config, c *tcase, def any, d decision) outcome {
	t.Helper()
	if d.Error != nil {
		o := errorOutcome(mustJSON(t, d.Variant), d.Error.Code)
		if d.Reason == nil || d.Reason.Kind != string(evaluate.ReasonError) || d.Reason.ErrorCode != d.Error.Code {
			o.Reason = fmt.Sprintf("error %s with reason %+v", d.Error.Code, d.Reason)
		}
		if c.Type == "object" { // we sent null; the caller's default stands in
			o.Value = def
		}
		return o
	}
	ft, _ := flagTypeOf(cfg, c.Flag)
	var payload any
	if len(d.Payload) > 0 {
		payload = mustJSON(t, d.Payload)
	}
	v, ok := typedAccess(c.Type, ft, mustJSON(t, d.Variant), payload)
	if !ok {
		return errorOutcome(def, string(evaluate.ErrorTypeMismatch))
	}
	o := outcome{Value: v, Variant: d.VariantKey, Bucket: -1, Payload: payload}
	if r := d.Reason; r != nil {
		o.Reason, o.RuleID, o.Segment, o.ErrorCode, o.Prerequisite = r.Kind, r.RuleID, r.Segment, r.ErrorCode, r.Prerequisite
		if r.Bucket != nil {
			o.Bucket = *r.Bucket
		}
	}
	if d.Bucketing != nil && d.Bucketing.Bucket != o.Bucket {
		o.Reason += fmt.Sprintf(" (bucketing.bucket %d differs from reason.bucket %d)", d.Bucketing.Bucket, o.Bucket)
	}
	return o
}

// ofrepReason maps a Flagwire reason kind to OpenFeature's, as flagserver
// documents for OFREP.
func ofrepReason(kind string) string {
	switch evaluate.ReasonKind(kind) {
	case evaluate.ReasonOff:
		return "DISABLED"
	case evaluate.ReasonTargetMatch, evaluate.ReasonRuleMatch, evaluate.ReasonSegmentMatch,
		evaluate.ReasonPrerequisiteFailed: // the flag is on; this subject gets its off variant
		return "TARGETING_MATCH"
	case evaluate.ReasonRollout:
		return "SPLIT"
	case evaluate.ReasonStatic:
		return "STATIC"
	case evaluate.ReasonError:
		return "ERROR"
	}
	return "DEFAULT"
}

// ofrepReadBack is the Flagwire reason kind an OpenFeature reason reads
// as when an extended OFREP answer leaves reasonKind out (the server sends
// it only when the reason does not map back to it).
func ofrepReadBack(reason string) string {
	switch reason {
	case "DISABLED":
		return string(evaluate.ReasonOff)
	case "TARGETING_MATCH":
		return string(evaluate.ReasonRuleMatch)
	case "SPLIT":
		return string(evaluate.ReasonRollout)
	}
	return reason
}

// ofrepExpectation adapts a case's expectation to an OFREP-backed path:
// a disabled (off) flag resolves successfully with reason DISABLED and no
// value or variant, so the caller's default is served (OpenFeature's
// DISABLED; OFREP's value is optional for it). A type mismatch on an off
// flag cannot show: the default is served as DISABLED.
func ofrepExpectation(t *testing.T, cfg *evaluate.Config, c *tcase) expectation {
	exp := c.Expect
	if exp.Reason == string(evaluate.ReasonOff) || (cfg != nil && flagIsOff(cfg, c.Flag) && str(exp.ErrorCode) == string(evaluate.ErrorTypeMismatch)) {
		exp.Value = c.Default
		exp.Variant, exp.ErrorCode, exp.RuleID, exp.Segment, exp.Bucket = nil, nil, nil, nil, nil
		exp.Payload = nil
		exp.Reason = string(evaluate.ReasonOff)
	}
	return exp
}

// TestServerOFREP runs every case through POST /ofrep/v1/evaluate/flags/{key}
// and maps the answer to OpenFeature semantics: reason mapped as documented,
// Flagwire's detail from metadata, asked for with X-Flagwire-OFREP-Metadata
// (reasonKind, or the kind the reason reads as; ruleId, segment, bucket,
// payload, errorCode for MISSING_BUCKETING_ATTRIBUTE), typed access by the
// provider, errors to the caller's default.
func TestServerOFREP(t *testing.T) {
	forEachServedCase(t, func(t *testing.T, g *groupServer, c *tcase, def any) {
		exp := ofrepExpectation(t, g.cfg, c)
		u := g.srv.URL + "/ofrep/v1/evaluate/flags/" + url.PathEscape(c.Flag)
		status, data := sendJSON(t, http.MethodPost, u, g.srv.Token(), map[string]string{"X-Flagwire-Environment": caseEnv, "X-Flagwire-OFREP-Metadata": "extended"},
			map[string]any{"context": c.wireContext(t)})
		var r testkit.OFREPAnswer
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("OFREP %d %s: %v", status, data, err)
		}
		var o outcome
		switch {
		case status == http.StatusNotFound && r.ErrorCode == "FLAG_NOT_FOUND":
			o = errorOutcome(def, "FLAG_NOT_FOUND")
		case status != http.StatusOK:
			o = errorOutcome(def, fmt.Sprintf("OFREP %d %s", status, r.ErrorCode))
		default:
			if want := ofrepReason(exp.Reason); r.Reason != want && exp.Reason != string(evaluate.ReasonError) {
				t.Errorf("OpenFeature reason = %q, want %q (Flagwire %s)", r.Reason, want, exp.Reason)
			}
			md := r.Metadata
			mds := func(k string) string { s, _ := md[k].(string); return s }
			var payload any
			if p := mds("payload"); p != "" {
				payload = mustJSON(t, json.RawMessage(p))
			}
			kind := mds("reasonKind")
			if _, sent := md["reasonKind"]; !sent {
				kind = ofrepReadBack(r.Reason)
			}
			o = outcome{Variant: r.Variant, Reason: kind, RuleID: mds("ruleId"), Segment: mds("segment"),
				Prerequisite: mds("prerequisite"), Bucket: -1, Payload: payload, ErrorCode: mds("errorCode")}
			if b, ok := md["bucket"].(float64); ok {
				o.Bucket = int(b)
			}
			if len(r.Value) == 0 || string(r.Value) == "null" {
				o.Value = def // no value: the caller's default (DISABLED)
				break
			}
			ft, _ := flagTypeOf(g.cfg, c.Flag)
			v, ok := typedAccess(c.Type, ft, mustJSON(t, r.Value), payload)
			if !ok {
				o = errorOutcome(def, string(evaluate.ErrorTypeMismatch))
				break
			}
			o.Value = v
		}
		check(t, c, exp, o)
	})
}
