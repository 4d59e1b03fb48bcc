package flagwireof_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	flagwireof "github.com/flagwire/flagwire/openfeature"
)

// semanticsConfig has a disabled flag of every type and a rollout that
// buckets by accountId.
func semanticsConfig() *evaluate.Config {
	obj := map[string]any{"k": "on"}
	return &evaluate.Config{
		Environment: "test",
		Salt:        "of-semantics",
		Flags: []evaluate.Flag{
			{Key: "off-bool", State: evaluate.StateOff, Default: &evaluate.Serve{Variant: true}},
			{
				Key: "off-string", Type: evaluate.TypeString, State: evaluate.StateOff,
				Variants: []evaluate.Variant{{Name: "a", Value: "A"}, {Name: "b", Value: "B"}}, Default: &evaluate.Serve{Variant: "b"},
			},
			{
				Key: "off-number", Type: evaluate.TypeNumber, State: evaluate.StateOff,
				Variants: []evaluate.Variant{{Name: "one", Value: 1.0}, {Name: "two", Value: 2.0}}, Default: &evaluate.Serve{Variant: "two"},
			},
			{
				Key: "off-object", Type: evaluate.TypeJSON, State: evaluate.StateOff,
				Variants: []evaluate.Variant{{Name: "x", Value: obj}}, Default: &evaluate.Serve{Variant: "x"},
			},
			{Key: "plain-bool", Default: &evaluate.Serve{Variant: true}},
			{
				Key: "by-account", Bucketing: evaluate.Bucketing{By: "accountId"},
				Default: &evaluate.Serve{Rollout: []evaluate.WeightedVariant{{Variant: true, Weight: 50}, {Variant: false, Weight: 50}}},
			},
		},
	}
}

// TestDisabledFlagServesCallerDefault: OpenFeature's DISABLED reason
// (spec 1.4.7; evaluation_v2.feature "DISABLED reason") comes with the
// caller's default value and no variant, for every type and also when the
// decision is served from the cache; the native API keeps serving the
// flag's off variant with reason OFF.
func TestDisabledFlagServesCallerDefault(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(semanticsConfig()))
	f := newFixture(t, srv, nil)
	if f.initErr != nil {
		t.Fatal(f.initErr)
	}
	ec := openfeature.NewEvaluationContext("u1", nil)
	cases := []struct {
		name string
		eval evalFunc
		def  any
	}{
		{"bool", boolEval("off-bool", true), true},
		{"string", stringEval("off-string", "mine"), "mine"},
		{"int", intEval("off-number", 7), int64(7)},
		{"float", floatEval("off-number", 0.5), 0.5},
		{"object", objectEval("off-object", map[string]any{"a": 1.0}), map[string]any{"a": 1.0}},
	}
	for _, tc := range cases {
		for _, round := range []string{"first", "cached"} {
			t.Run(tc.name+"/"+round, func(t *testing.T) {
				r := tc.eval(context.Background(), f.of, ec)
				if r.err != nil {
					t.Fatalf("error %v", r.err)
				}
				if !reflect.DeepEqual(r.value, tc.def) || r.det.Variant != "" || r.det.Reason != openfeature.DisabledReason || r.det.ErrorCode != "" {
					t.Errorf("got value %#v variant %q reason %q code %q; want %#v, no variant, DISABLED, no code",
						r.value, r.det.Variant, r.det.Reason, r.det.ErrorCode, tc.def)
				}
				if got := r.det.FlagMetadata["reasonKind"]; got != "OFF" {
					t.Errorf("metadata reasonKind %v, want OFF", got)
				}
			})
		}
	}

	// The native API: the off variant ("false" for a boolean flag without
	// an off variant), reason OFF.
	v, d := f.p.Client().BoolDetail(flagwire.WithAttributes(context.Background(), flagwire.Attributes{"userId": "u2"}), "off-bool", true)
	if v || d.Variant != "false" || d.Reason.Kind != "OFF" || d.ErrorCode != "" {
		t.Errorf("native: %v %q %q %q, want false \"false\" OFF no error", v, d.Variant, d.Reason.Kind, d.ErrorCode)
	}
}

// TestMissingBucketingAttributeIsTargetingKeyMissing: a rollout that
// cannot bucket the subject (Flagwire's MISSING_BUCKETING_ATTRIBUTE, with
// the flag's off variant on the native API) is OpenFeature's
// TARGETING_KEY_MISSING: the caller's default, reason ERROR.
func TestMissingBucketingAttributeIsTargetingKeyMissing(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(semanticsConfig()))
	f := newFixture(t, srv, nil)
	if f.initErr != nil {
		t.Fatal(f.initErr)
	}
	// The native API reports the code (flagwire.CodeMissingBucketingAttribute).
	if _, d := f.p.Client().BoolDetail(flagwire.WithAttributes(context.Background(), flagwire.Attributes{"userId": "n1"}), "by-account", true); d.ErrorCode != "MISSING_BUCKETING_ATTRIBUTE" {
		t.Fatalf("the SDK does not report MISSING_BUCKETING_ATTRIBUTE (native detail %+v)", d)
	}
	ec := openfeature.NewEvaluationContext("u1", map[string]any{"plan": "pro"}) // no accountId
	for _, round := range []string{"first", "cached"} {
		d, err := f.of.BooleanValueDetails(context.Background(), "by-account", true, ec)
		if err == nil || !d.Value || d.Reason != openfeature.ErrorReason || d.ErrorCode != openfeature.TargetingKeyMissingCode || d.Variant != "" {
			t.Errorf("%s: value %v variant %q reason %q code %q err %v; want true, no variant, ERROR, TARGETING_KEY_MISSING, an error",
				round, d.Value, d.Variant, d.Reason, d.ErrorCode, err)
		}
	}
	// With the attribute, the rollout serves a variant.
	d, err := f.of.BooleanValueDetails(context.Background(), "by-account", true,
		openfeature.NewEvaluationContext("u1", map[string]any{"accountId": "acme"}))
	if err != nil || d.Reason != openfeature.SplitReason || d.ErrorCode != "" {
		t.Errorf("with accountId: reason %q code %q err %v", d.Reason, d.ErrorCode, err)
	}
}

// TestInitWithClosedClientIsFatal: a provider whose Flagwire client is
// already closed fails Init with PROVIDER_FATAL, every time (the client's
// WaitReady used to pick at random between "ready" and ErrClosed for a
// closed remote-mode client, whose configuration is ready at once).
func TestInitWithClosedClientIsFatal(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(semanticsConfig()))
	for i := range 50 {
		c, err := flagwire.New(context.Background(), baseOptions(srv)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		p := flagwireof.NewProvider(c)
		err = p.InitWithContext(context.Background(), openfeature.EvaluationContext{})
		p.Shutdown()
		var initErr *openfeature.ProviderInitError
		if !errors.As(err, &initErr) || initErr.ErrorCode != openfeature.ProviderFatalCode {
			t.Fatalf("attempt %d: Init error %v, want a ProviderInitError with PROVIDER_FATAL", i, err)
		}
	}
}

// TestObjectEvaluationOfScalarFlagIsTypeMismatch: OpenFeature's object
// flags are structures; asking a boolean flag (no JSON payload) for an
// object is TYPE_MISMATCH with the caller's default (evaluation_v2.feature
// "Type mismatch error", Object row), not the flag's scalar value.
func TestObjectEvaluationOfScalarFlagIsTypeMismatch(t *testing.T) {
	// Remote mode had it right (the server checks the default's type);
	// local mode served the boolean.
	for _, mode := range []flagwire.Mode{flagwire.ModeRemote, flagwire.ModeLocal} {
		t.Run(string(mode), func(t *testing.T) {
			srv := flagtest.NewServer(t, flagtest.WithConfig(semanticsConfig()))
			f := newFixture(t, srv, []flagwire.Option{flagwire.WithMode(mode)})
			if f.initErr != nil {
				t.Fatal(f.initErr)
			}
			def := map[string]any{"a": 1.0}
			d, err := f.of.ObjectValueDetails(context.Background(), "plain-bool", def, openfeature.NewEvaluationContext("u1", nil))
			if err == nil || !reflect.DeepEqual(d.Value, def) || d.Reason != openfeature.ErrorReason || d.ErrorCode != openfeature.TypeMismatchCode || d.Variant != "" {
				t.Errorf("value %#v variant %q reason %q code %q err %v; want the default, no variant, ERROR, TYPE_MISMATCH, an error",
					d.Value, d.Variant, d.Reason, d.ErrorCode, err)
			}
		})
	}
}
