package flagfile

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
)

// TestMarshalYAMLRoundTrip marshals flags and configs and loads them back.
func TestMarshalYAMLRoundTrip(t *testing.T) {
	pct := 12.5
	at := time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC)
	rich := evaluate.Flag{
		Key:         "rich",
		Environment: "prod",
		Type:        evaluate.TypeJSON,
		State:       evaluate.StateOn,
		Variants: []evaluate.Variant{
			{Name: "small", Value: map[string]any{"size": 1.0, "tags": []any{"a", "true", true, nil}}, Payload: map[string]any{"color": "#ff4d4f"}},
			{Name: "null", Value: map[string]any{"size": 2.0, "label": "line one\nline two"}},
			{Name: "yes", Value: []any{"1.0", 1.5, "2026-12-31"}},
		},
		OffVariant:    "small",
		Targets:       []evaluate.Target{{Variant: "null", Values: []string{"u1", "true", "007"}}},
		Prerequisites: []evaluate.Prerequisite{{FlagKey: "other", Variants: []any{true}}},
		Rules: []evaluate.Rule{
			{ID: "r1", When: "plan == 'pro' and country in ['DE', 'FR']", Serve: evaluate.Serve{Variant: "yes", Percentage: &pct, Seed: "s"}},
			{ID: "r2", Segment: "seg", Serve: evaluate.Serve{Rollout: []evaluate.WeightedVariant{{Variant: "small", Weight: 33.333}, {Variant: "null", Weight: 66.667}}}},
			{ID: "r3", When: "a == 1\nor b == 2", Serve: evaluate.Serve{Progressive: &evaluate.Progressive{Variant: "yes", Steps: []evaluate.RampStep{{At: at, Percentage: 1}, {At: at.Add(24 * time.Hour), Percentage: 50}}, Paused: true, PausedAt: at.Add(time.Hour)}}},
		},
		Default:      &evaluate.Serve{Variant: "small"},
		Bucketing:    evaluate.Bucketing{Seed: "rich-seed", By: "account.id"},
		Owners:       []string{"team-a", "on"},
		Metadata:     evaluate.Metadata{Team: "t", TTL: "2027-01-01", Jira: "1234", RiskLevel: "null", KillSwitch: true, Dashboards: []string{"https://grafana.example.com/d/x"}, Description: "has: colons # and hashes"},
		FlagMetadata: map[string]any{"release": "1.0.2", "build": 2.0, "ratio": 0.1, "beta": true, "on": "true", "nothing": "null"},
		Version:      3,
	}
	demo := demoConfig(t)
	flags := append([]evaluate.Flag{rich, {Key: "minimal"}}, demo.Flags...)
	for _, f := range flags {
		t.Run(f.Key, func(t *testing.T) {
			out, err := MarshalYAML(f)
			if err != nil {
				t.Fatal(err)
			}
			back, err := LoadYAML("rt.yaml", out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if len(back.Flags) != 1 {
				t.Fatalf("%d flags", len(back.Flags))
			}
			if a, b := canonicalJSON(t, f), canonicalJSON(t, back.Flags[0]); a != b {
				t.Errorf("round trip changed the flag:\n%s\n%s\n%s", out, a, b)
			}
			again, err := MarshalYAML(back.Flags[0])
			if err != nil || string(again) != string(out) {
				t.Errorf("second marshal differs:\n%s\n%s", out, again)
			}
		})
	}
	t.Run("config", func(t *testing.T) {
		demo := *demo
		demo.Version = 9
		demo.RequireChangeReason = true
		demo.RequireApproval = true
		demo.Attributes = map[string]string{"<<": "string", "true": "bool", "": "number", "a.b": "list"}
		for k, v := range demoConfig(t).Attributes {
			demo.Attributes[k] = v
		}
		demo.Segments = append(demo.Segments, evaluate.Segment{Key: "rules", Description: "x", When: "plan == 'pro'", By: "accountId", Excluded: []string{"a"}, Version: 2})
		out, err := MarshalConfigYAML(&demo)
		if err != nil {
			t.Fatal(err)
		}
		back := mustLoad(t, "prod.yaml", string(out))["prod"]
		if a, b := canonicalJSON(t, &demo), canonicalJSON(t, back); a != b {
			t.Errorf("config round trip:\n%s\n%s", a, b)
		}
	})
}

// TestDecodeConfigJSON round-trips the demo flags, loaded from YAML,
// through the JSON wire form (evaluate's decode_test.go checks the
// decoder's errors).
func TestDecodeConfigJSON(t *testing.T) {
	demo := demoConfig(t)
	data, err := json.MarshalIndent(demo, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := evaluate.DecodeConfigJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := canonicalJSON(t, demo), canonicalJSON(t, cfg); a != b {
		t.Errorf("JSON round trip:\n%s\n%s", a, b)
	}
	if _, err := evaluate.Compile(cfg); err != nil {
		t.Error(err)
	}
}
