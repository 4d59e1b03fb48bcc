package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"
)

// providerCase is one OpenFeature evaluation through an official OFREP
// provider against flagwire serve, with its expected answer from
// Flagwire's documentation (README "OFREP" and the bucketing
// specification) for flags/flagwire/prod.yaml. It is also the JSON the JS
// check reads.
type providerCase struct {
	Flag    string         `json:"flag"`
	Call    string         `json:"call"` // bool, string, int, float, object
	Default any            `json:"default"`
	Context map[string]any `json:"context"`
	Want    answer         `json:"want"`
}

// experimentVariant is the bucketing specification: bucket =
// uint64(big-endian SHA-256(salt ":" seed ":" id)[0:8]) mod 100000; the
// rollout a 50 / b 50 gives a the buckets [0, 50000). Salt "peers" (the
// environment's), seed the flag key.
func experimentVariant(id string) string {
	h := sha256.Sum256([]byte("peers:experiment:" + id))
	if binary.BigEndian.Uint64(h[:8])%100000 < 50000 {
		return "a"
	}
	return "b"
}

// providerCases: through OFREP Flagwire's server reports a flag without
// targeting as STATIC, a matching rule as TARGETING_MATCH, no match as
// DEFAULT, a rollout as SPLIT (the variant from the bucketing
// specification, targetingKey as userId); a disabled flag is a code
// default (the caller's default, reason DISABLED, no error); an unknown
// flag is FLAG_NOT_FOUND and a wrong-typed call TYPE_MISMATCH, both with
// the caller's default and reason ERROR (OpenFeature). Variant names of a
// boolean flag are "true" and "false".
func providerCases(subjects int) []providerCase {
	pro := map[string]any{"targetingKey": "user-1", "plan": "pro"}
	free := map[string]any{"targetingKey": "user-2", "plan": "free"}
	cs := []providerCase{
		{"bool-static", "bool", false, pro, answer{true, "true", "STATIC", ""}},
		{"theme", "string", "none", pro, answer{"dark", "dark", "TARGETING_MATCH", ""}},
		{"theme", "string", "none", free, answer{"light", "light", "DEFAULT", ""}},
		{"max-items", "int", -1, pro, answer{25, "twenty-five", "STATIC", ""}},
		{"discount", "float", -1.0, pro, answer{0.15, "standard", "STATIC", ""}},
		{"banner", "object", map[string]any{}, pro, answer{map[string]any{"text": "hello", "size": 3}, "hello", "STATIC", ""}},
		{"old-feature", "bool", false, pro, answer{false, "", "DISABLED", ""}},
		{"no-such-flag", "bool", true, pro, answer{true, "", "ERROR", "FLAG_NOT_FOUND"}},
		{"bool-static", "string", "none", pro, answer{"none", "", "ERROR", "TYPE_MISMATCH"}},
	}
	for i := range subjects {
		id := fmt.Sprintf("subject-%d", i)
		v := experimentVariant(id)
		cs = append(cs, providerCase{"experiment", "string", "none", map[string]any{"targetingKey": id}, answer{v, v, "SPLIT", ""}})
	}
	return cs
}

// disabledCases: a disabled flag on flagd and the relay proxy, which answer
// it with OFREP's code default (no value): OpenFeature then returns the
// caller's default with reason DISABLED and the server's variant, if any.
func disabledCases(peer string) []providerCase {
	variant := ""
	if peer == "relay" {
		variant = "SdkDefault"
	}
	ctx := map[string]any{"targetingKey": "user-1", "plan": "pro"}
	return []providerCase{{"old-feature", "bool", false, ctx, answer{false, variant, "DISABLED", ""}}}
}

// checkGoProvider evaluates the cases through go-sdk-contrib's OFREP
// provider and the OpenFeature Go SDK.
func checkGoProvider(ctx context.Context, s *server, cases []providerCase) (*results, error) {
	opts := []ofrep.Option{ofrep.WithHeader("X-Flagwire-Environment", "prod"), ofrep.WithTimeout(5 * time.Second)}
	if tok := s.token(); tok != "" {
		opts = append(opts, ofrep.WithBearerToken(tok))
	}
	if err := openfeature.SetNamedProviderAndWait("peers", ofrep.NewProvider(s.base, opts...)); err != nil {
		return nil, err
	}
	defer openfeature.Shutdown()
	client := openfeature.NewClient("peers")
	got := make([]answer, len(cases))
	for i, c := range cases {
		ec := openfeature.NewEvaluationContext(fmt.Sprint(c.Context["targetingKey"]), without(c.Context, "targetingKey"))
		var v any
		var d openfeature.ResolutionDetail
		switch c.Call {
		case "bool":
			det, _ := client.BooleanValueDetails(ctx, c.Flag, c.Default.(bool), ec)
			v, d = det.Value, det.ResolutionDetail
		case "string":
			det, _ := client.StringValueDetails(ctx, c.Flag, c.Default.(string), ec)
			v, d = det.Value, det.ResolutionDetail
		case "int":
			det, _ := client.IntValueDetails(ctx, c.Flag, int64(c.Default.(int)), ec)
			v, d = det.Value, det.ResolutionDetail
		case "float":
			det, _ := client.FloatValueDetails(ctx, c.Flag, c.Default.(float64), ec)
			v, d = det.Value, det.ResolutionDetail
		case "object":
			det, _ := client.ObjectValueDetails(ctx, c.Flag, c.Default, ec)
			v, d = det.Value, det.ResolutionDetail
		}
		got[i] = answer{Value: v, Variant: d.Variant, Reason: string(d.Reason), ErrorCode: string(d.ErrorCode)}
	}
	return compareProvider(fmt.Sprintf("OpenFeature Go SDK + go-sdk-contrib OFREP provider → %s at %s", s.label, s.base), cases, got, nil), nil
}

func without(m map[string]any, key string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// compareProvider prints every named case and sums up the split cases in
// one line each (they are many). known, if not nil, names a documented
// limitation of the provider that explains a failed case.
func compareProvider(title string, cases []providerCase, got []answer, known func(providerCase, answer) string) *results {
	r := &results{title: title}
	splitN, splitOK := 0, 0
	var firstBad string
	for i, c := range cases {
		ok := sameAnswer(got[i], c.Want)
		if c.Flag == "experiment" {
			splitN++
			if ok {
				splitOK++
			} else if firstBad == "" {
				firstBad = fmt.Sprintf(" (first: %v want %s got %s)", c.Context["targetingKey"], c.Want, got[i])
			}
			continue
		}
		ctxText := ""
		if p, ok := c.Context["plan"]; ok {
			ctxText = fmt.Sprintf(" (plan=%v)", p)
		}
		call := fmt.Sprintf("%s(default %s)%s", c.Call, jsonText(c.Default), ctxText)
		if !ok && known != nil {
			if why := known(c, got[i]); why != "" {
				r.addKnown(c.Flag, call, c.Want.String(), got[i].String(), why)
				continue
			}
		}
		r.add(c.Flag, call, c.Want.String(), got[i].String(), ok)
	}
	if splitN > 0 {
		r.add("experiment", "string, one per subject", fmt.Sprintf("%d subjects: variant by the bucketing spec, SPLIT", splitN),
			fmt.Sprintf("%d/%d as expected%s", splitOK, splitN, firstBad), splitOK == splitN)
	}
	return r
}

// checkJSProvider runs js/check.mjs (the OpenFeature server SDK with
// @openfeature/ofrep-provider, installed in jsDir) on the cases and
// compares its answers.
func checkJSProvider(ctx context.Context, s *server, cases []providerCase, jsDir, work string) (*results, error) {
	casesPath := filepath.Join(work, s.name+"-provider-cases.json")
	data, err := json.Marshal(cases)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(casesPath, data, 0o600); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(jsDir, "check.mjs"), s.base, casesPath)
	cmd.Env = append(os.Environ(), "FLAGWIRE_TOKEN="+s.token())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("node check.mjs: %w", err)
	}
	var res struct {
		Versions map[string]string `json:"versions"`
		Answers  []answer          `json:"answers"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("node check.mjs output: %w: %s", err, out)
	}
	if len(res.Answers) != len(cases) {
		return nil, fmt.Errorf("node check.mjs: %d answers for %d cases", len(res.Answers), len(cases))
	}
	var vs []string
	for _, k := range []string{"node", "@openfeature/server-sdk", "@openfeature/ofrep-provider"} {
		vs = append(vs, k+" "+res.Versions[k])
	}
	var known func(providerCase, answer) string
	if res.Versions["@openfeature/ofrep-provider"] == "0.1.3" {
		// 0.1.3 (the newest release) predates OFREP's code-default answer
		// (a 200 without a value, ADR-0006): it reports an error (GENERAL
		// for an absent value, TYPE_MISMATCH for null, as GO Feature Flag
		// sends) with the caller's default, for any server's
		// disabled flag (the harness runs it on flagd's and GO Feature
		// Flag's too).
		known = func(c providerCase, got answer) string {
			if c.Want.Reason == "DISABLED" && got.Reason == "ERROR" && (got.ErrorCode == "GENERAL" || got.ErrorCode == "TYPE_MISMATCH") && sameJSON(got.Value, c.Default) {
				return "@openfeature/ofrep-provider 0.1.3 does not implement OFREP code-default answers (a 200 without a value): " +
					"it returns the caller's default as an error, GENERAL when the value is absent, TYPE_MISMATCH when it is null"
			}
			return ""
		}
	}
	return compareProvider(fmt.Sprintf("OpenFeature JS server SDK + OFREP provider (%s) → %s at %s",
		strings.Join(vs, ", "), s.label, s.base), cases, res.Answers, known), nil
}
