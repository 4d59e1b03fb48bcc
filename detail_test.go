package flagwire

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// TestReasonKindsAreTheDocumentedNames: Reason.Kind is the engine's typed
// kind, and each constant a caller compares with prints the name the Flag
// API documents for it (the reason kinds of POST /v1/evaluate).
func TestReasonKindsAreTheDocumentedNames(t *testing.T) {
	for doc, kind := range map[string]evaluate.ReasonKind{
		"OFF": evaluate.ReasonOff, "TARGET_MATCH": evaluate.ReasonTargetMatch,
		"RULE_MATCH": evaluate.ReasonRuleMatch, "SEGMENT_MATCH": evaluate.ReasonSegmentMatch,
		"ROLLOUT": evaluate.ReasonRollout, "PREREQUISITE_FAILED": evaluate.ReasonPrerequisiteFailed,
		"DEFAULT": evaluate.ReasonDefault, "STATIC": evaluate.ReasonStatic, "ERROR": evaluate.ReasonError,
	} {
		var r Reason
		r.Kind = kind
		if string(r.Kind) != doc {
			t.Errorf("%q != documented %q", r.Kind, doc)
		}
	}
}

// TestMissingBucketingAttributeSurfaced: a rollout without the bucketing
// attribute serves the flag's off variant with MISSING_BUCKETING_ATTRIBUTE
// in every mode; it is the flag's answer (After hooks, no fallback, no
// error in Status).
func TestMissingBucketingAttributeSurfaced(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(typesConfig()))
	s := testkit.NewSigner()
	cfg := typesConfig()
	cfg.Version = 3
	env := s.Envelope(t, cfg, time.Now(), time.Hour)
	modes := []struct {
		name string
		make func(t *testing.T, hook Hook) *Client
		src  Source
	}{
		{"remote", func(t *testing.T, hook Hook) *Client { return modeClient(t, srv, ModeRemote, false, WithHooks(hook)) }, SourceRemote},
		{"ofrep", func(t *testing.T, hook Hook) *Client { return modeClient(t, srv, ModeRemote, true, WithHooks(hook)) }, SourceRemote},
		{"local", func(t *testing.T, hook Hook) *Client { return modeClient(t, srv, ModeLocal, false, WithHooks(hook)) }, SourceLocal},
		{"offline", func(t *testing.T, hook Hook) *Client {
			c, err := New(context.Background(), WithMode(ModeOffline), WithEnvironment("prod"), WithBootstrap(env), WithTrustedKeys(s.Pub),
				WithLogger(quietLogger()), WithHooks(hook))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close(context.Background()) })
			return c
		}, SourceBootstrap},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			var hc hookCounter
			c := m.make(t, hc.hook())
			ctx := WithAttributes(context.Background(), Attributes{"plan": "pro"}) // no userId
			v, d := c.BoolDetail(ctx, "half-rollout", true)
			if v || d.ErrorCode != CodeMissingBucketingAttribute || d.Variant != "false" || d.Reason.Kind != "DEFAULT" || d.Source != m.src {
				t.Fatalf("got %v %+v; want the off variant false from %s with MISSING_BUCKETING_ATTRIBUTE", v, d, m.src)
			}
			if got := hc.counts("half-rollout"); got != [4]int{1, 1, 0, 1} {
				t.Errorf("hooks before/after/error/finally = %v, want [1 1 0 1]", got)
			}
			if st := c.Status(); st.LastError != "" || st.State == StateError {
				t.Errorf("status %+v", st)
			}
			if errs := c.Stats().Errors; len(errs) != 0 {
				t.Errorf("counted as errors: %v", errs)
			}
			// With a userId the rollout buckets: no code.
			if _, d := c.BoolDetail(WithAttributes(context.Background(), Attributes{"userId": "u1"}), "half-rollout", true); d.ErrorCode != "" || d.Reason.Kind != "ROLLOUT" {
				t.Errorf("with userId: %+v", d)
			}
		})
	}
}

// TestDetailFlagMetadataEveryMode: Detail.FlagMetadata carries the flag's
// flagMetadata in remote mode (fresh and from the cache), through OFREP, in
// local mode and in offline mode, the same map in each: numbers as
// float64, and nothing of the governance metadata; serving it allocates
// nothing. A flag without any, an
// unknown flag and a type mismatch have none.
func TestDetailFlagMetadataEveryMode(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(flagMetadataConfig()))
	s := testkit.NewSigner()
	env := s.Envelope(t, flagMetadataConfig(), time.Now(), time.Hour)
	// From Flag.FlagMetadata's documented rule: every number a float64.
	want := map[string]any{"release": "1.0.2", "build": 2.0, "ratio": 0.1, "beta": true}
	modes := []struct {
		name       string
		make       func(t *testing.T) *Client
		src, again Source // of the first and the second evaluation
	}{
		{"remote", func(t *testing.T) *Client { return modeClient(t, srv, ModeRemote, false) }, SourceRemote, SourceCache},
		{"ofrep", func(t *testing.T) *Client { return modeClient(t, srv, ModeRemote, true) }, SourceRemote, SourceCache},
		{"local", func(t *testing.T) *Client { return modeClient(t, srv, ModeLocal, false) }, SourceLocal, SourceLocal},
		{"offline", func(t *testing.T) *Client {
			c, err := New(context.Background(), WithMode(ModeOffline), WithEnvironment("prod"), WithBootstrap(env), WithTrustedKeys(s.Pub), WithLogger(quietLogger()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close(context.Background()) })
			return c
		}, SourceBootstrap, SourceBootstrap},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			c := m.make(t)
			ctx := WithAttributes(context.Background(), Attributes{"userId": "u1", "plan": "pro"})
			for i, src := range []Source{m.src, m.again} {
				v, d := c.BoolDetail(ctx, "release-gate", false)
				if !v || d.Variant != "true" || d.Reason.Kind != "DEFAULT" || d.Source != src || d.ErrorCode != "" {
					t.Fatalf("evaluation %d: %v %+v; want true, DEFAULT from %s", i+1, v, d, src)
				}
				if !reflect.DeepEqual(d.FlagMetadata, want) {
					t.Errorf("evaluation %d: FlagMetadata %#v, want %#v", i+1, d.FlagMetadata, want)
				}
			}
			// Serving it costs nothing: the map is shared, not copied.
			if n := testing.AllocsPerRun(200, func() { c.BoolDetail(ctx, "release-gate", false) }); n != 0 {
				t.Errorf("%v allocations per evaluation of a flag with metadata, want 0", n)
			}
			// Another rule, the same metadata.
			free := WithAttributes(context.Background(), Attributes{"userId": "u2", "plan": "free"})
			if v, d := c.BoolDetail(free, "release-gate", true); v || d.Reason.Kind != "RULE_MATCH" || !reflect.DeepEqual(d.FlagMetadata, want) {
				t.Errorf("free plan: %v %+v", v, d)
			}
			if _, d := c.BoolDetail(ctx, "plain", false); d.FlagMetadata != nil || d.ErrorCode != "" {
				t.Errorf("flag without metadata: %+v", d)
			}
			if _, d := c.BoolDetail(ctx, "missing", false); d.FlagMetadata != nil || d.ErrorCode != CodeFlagNotFound {
				t.Errorf("unknown flag: %+v", d)
			}
			if _, d := c.StringDetail(ctx, "release-gate", "x"); d.FlagMetadata != nil || d.ErrorCode != CodeTypeMismatch {
				t.Errorf("type mismatch: %+v", d)
			}
		})
	}
}

// TestScalarMetadata: a decision's flag metadata keeps the entries
// Detail.FlagMetadata promises (strings, booleans, numbers) and drops the
// rest, such as objects a foreign OFREP server might send.
func TestScalarMetadata(t *testing.T) {
	for _, tc := range []struct {
		in, want map[string]any
	}{
		{nil, nil},
		{map[string]any{}, nil},
		{map[string]any{"a": "x", "b": true, "c": 1.5}, map[string]any{"a": "x", "b": true, "c": 1.5}},
		{map[string]any{"a": "x", "o": map[string]any{}, "l": []any{1.0}, "n": nil}, map[string]any{"a": "x"}},
		{map[string]any{"o": map[string]any{}}, nil},
	} {
		if got := scalarMetadata(tc.in); !reflect.DeepEqual(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("scalarMetadata(%v) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

// flagMetadataConfig has a flag with user-defined metadata of every kind
// and one without.
func flagMetadataConfig() *evaluate.Config {
	return &evaluate.Config{
		Environment: "prod",
		Salt:        "md-salt",
		Version:     3,
		Flags: []evaluate.Flag{
			{Key: "release-gate", Default: &evaluate.Serve{Variant: true},
				Rules:        []evaluate.Rule{{ID: "free", When: "plan == 'free'", Serve: evaluate.Serve{Variant: false}}},
				Metadata:     evaluate.Metadata{Team: "growth", Jira: "GRO-77"}, // governance: never served
				FlagMetadata: map[string]any{"release": "1.0.2", "build": 2, "ratio": 0.1, "beta": true}},
			{Key: "plain", Default: &evaluate.Serve{Variant: true}},
		},
	}
}
