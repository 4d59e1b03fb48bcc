package bench

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/testhelpers/ldtestdata"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/memprovider"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
)

// evalFunc is one evaluation of the measured flag for the measured subject.
type evalFunc func() bool

// engine builds evalFuncs for the three workloads; a nil builder means the
// engine does not take part in that workload.
type engine struct {
	name string
	// benchflag evaluates the benchmark flag for Subject.
	benchflag func(tb testing.TB) evalFunc
	// rules evaluates a flag of n non-matching rules.
	rules func(tb testing.TB, n int) evalFunc
	// flags evaluates one benchmark flag among n.
	flags func(tb testing.TB, n int) evalFunc
}

var engines = []engine{
	{"flagwire-evaluate", fwEvaluateBench, fwEvaluateRules, fwEvaluateFlags},
	{"flagwire-evaluate-attrs", fwEvaluateAttrsBench, nil, nil},
	{"flagwire-local", fwLocalBench, fwLocalRules, fwLocalFlags},
	{"flagwire-local-subject", fwLocalSubjectBench, nil, nil},
	{"flagwire-remote-cache-hit", fwRemoteBench, nil, nil},
	{"launchdarkly-v7", ldBench, ldRules, ldFlags},
	{"openfeature-memprovider", ofMemBench, nil, nil},
	{"openfeature-flagwire", openFeatureFlagwire, nil, nil},
}

// BenchmarkCompare runs every engine on the benchmark flag
// (BenchmarkCompare/benchflag/ENGINE), on flags of 1, 10 and 100 rules
// (BenchmarkCompare/rules=N/ENGINE) and on one flag among 10, 1,000 and
// 10,000 (BenchmarkCompare/flags=N/ENGINE). cmd/table turns its output
// into the README's table.
func BenchmarkCompare(b *testing.B) {
	b.Run("benchflag", func(b *testing.B) {
		for _, e := range engines {
			b.Run(e.name, func(b *testing.B) { run(b, e.benchflag) })
		}
	})
	for _, n := range []int{1, 10, 100} {
		b.Run("rules="+strconv.Itoa(n), func(b *testing.B) {
			for _, e := range engines {
				if e.rules == nil {
					continue
				}
				b.Run(e.name, func(b *testing.B) { run(b, func(tb testing.TB) evalFunc { return e.rules(tb, n) }) })
			}
		})
	}
	for _, n := range []int{10, 1000, 10000} {
		b.Run("flags="+strconv.Itoa(n), func(b *testing.B) {
			for _, e := range engines {
				if e.flags == nil {
					continue
				}
				b.Run(e.name, func(b *testing.B) { run(b, func(tb testing.TB) evalFunc { return e.flags(tb, n) }) })
			}
		})
	}
}

func run(b *testing.B, build func(tb testing.TB) evalFunc) {
	eval := build(b)
	if eval == nil {
		b.Skip("engine not available in this build")
	}
	eval() // warm up: a remote cache hit needs one miss first
	b.ReportAllocs()
	for b.Loop() {
		eval()
	}
}

var (
	quiet   = slog.New(slog.DiscardHandler)
	fwAttrs = flagwire.WithAttributes(context.Background(), Subject)
	// fwSubject is Subject stated with flagwire.WithSubject.
	fwSubject = flagwire.WithSubject(context.Background(), SubjectAttrs()...)
)

// ---- Flagwire: the rules engine directly ----

func fwSnapshot(tb testing.TB, cfg *evaluate.Config) *evaluate.Snapshot {
	tb.Helper()
	snap, err := evaluate.Compile(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

func fwEvaluate(tb testing.TB, cfg *evaluate.Config, key string) evalFunc {
	snap := fwSnapshot(tb, cfg)
	now := time.Now()
	return func() bool {
		v, _ := snap.Evaluate(key, Subject, now).Value.(bool)
		return v
	}
}

func fwEvaluateBench(tb testing.TB) evalFunc { return fwEvaluate(tb, FlagwireConfig(0), FlagKey) }

// fwEvaluateAttrsBench evaluates the benchmark flag for Subject stated as
// a list of Attrs (evaluate.Snapshot.EvaluateAttrs), built once as
// LaunchDarkly's context is.
func fwEvaluateAttrsBench(tb testing.TB) evalFunc {
	snap := fwSnapshot(tb, FlagwireConfig(0))
	attrs := SubjectAttrs()
	now := time.Now()
	var r evaluate.Result
	return func() bool {
		snap.EvaluateAttrsTo(&r, FlagKey, attrs, now)
		v, _ := r.Value.(bool)
		return v
	}
}
func fwEvaluateRules(tb testing.TB, n int) evalFunc {
	return fwEvaluate(tb, FlagwireRulesConfig(n), "rules")
}
func fwEvaluateFlags(tb testing.TB, n int) evalFunc {
	return fwEvaluate(tb, FlagwireConfig(n-1), FlagKey+"-"+strconv.Itoa((n-1)/2))
}

// ---- Flagwire: the client, local and remote modes, against flagtest ----

func fwClient(tb testing.TB, cfg *evaluate.Config, mode flagwire.Mode) *flagwire.Client {
	tb.Helper()
	srv := flagtest.NewServer(tb, flagtest.WithConfig(cfg))
	c, err := flagwire.New(context.Background(),
		flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()),
		flagwire.WithEnvironment(cfg.Environment), flagwire.WithMode(mode),
		flagwire.WithLogger(quiet), flagwire.WithTimeout(5*time.Second))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		tb.Fatal(err)
	}
	return c
}

func fwBool(tb testing.TB, c *flagwire.Client, key string, want flagwire.Source) evalFunc {
	tb.Helper()
	return fwBoolCtx(tb, c, fwAttrs, key, want)
}

func fwBoolCtx(tb testing.TB, c *flagwire.Client, ctx context.Context, key string, want flagwire.Source) evalFunc {
	tb.Helper()
	c.Bool(ctx, key, false)
	if _, d := c.BoolDetail(ctx, key, false); d.Source != want || d.ErrorCode != "" {
		tb.Fatalf("%s: %+v, want source %v", key, d, want)
	}
	return func() bool { return c.Bool(ctx, key, false) }
}

func fwLocalBench(tb testing.TB) evalFunc {
	return fwBool(tb, fwClient(tb, FlagwireConfig(0), flagwire.ModeLocal), FlagKey, flagwire.SourceLocal)
}

// fwLocalSubjectBench is fwLocalBench with the subject stated with
// flagwire.WithSubject.
func fwLocalSubjectBench(tb testing.TB) evalFunc {
	return fwBoolCtx(tb, fwClient(tb, FlagwireConfig(0), flagwire.ModeLocal), fwSubject, FlagKey, flagwire.SourceLocal)
}

func fwLocalRules(tb testing.TB, n int) evalFunc {
	return fwBool(tb, fwClient(tb, FlagwireRulesConfig(n), flagwire.ModeLocal), "rules", flagwire.SourceLocal)
}
func fwLocalFlags(tb testing.TB, n int) evalFunc {
	return fwBool(tb, fwClient(tb, FlagwireConfig(n-1), flagwire.ModeLocal), FlagKey+"-"+strconv.Itoa((n-1)/2), flagwire.SourceLocal)
}
func fwRemoteBench(tb testing.TB) evalFunc {
	return fwBool(tb, fwClient(tb, FlagwireConfig(0), flagwire.ModeRemote), FlagKey, flagwire.SourceCache)
}

// ---- LaunchDarkly Go server SDK v7: test data source, events off ----

func ldClient(tb testing.TB, td *ldtestdata.TestDataSource) *ld.LDClient {
	tb.Helper()
	cfg := ld.Config{
		DataSource:       td,
		Events:           ldcomponents.NoEvents(),
		Logging:          ldcomponents.NoLogging(),
		DiagnosticOptOut: true,
	}
	c, err := ld.MakeCustomClient("bench-sdk-key", cfg, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func ldEval(tb testing.TB, c *ld.LDClient, key string) evalFunc {
	tb.Helper()
	lctx := LaunchDarklyContext()
	if _, detail, err := c.BoolVariationDetail(key, lctx, false); err != nil || detail.Reason.GetErrorKind() != "" {
		tb.Fatalf("%s: %v %+v", key, err, detail)
	}
	return func() bool {
		v, _ := c.BoolVariation(key, lctx, false)
		return v
	}
}

func ldBench(tb testing.TB) evalFunc {
	td := ldtestdata.DataSource()
	td.UsePreconfiguredSegment(LaunchDarklySegment())
	td.UsePreconfiguredFlag(LaunchDarklyFlag(FlagKey))
	return ldEval(tb, ldClient(tb, td), FlagKey)
}

func ldRules(tb testing.TB, n int) evalFunc {
	td := ldtestdata.DataSource()
	td.UsePreconfiguredFlag(LaunchDarklyRulesFlag(n))
	return ldEval(tb, ldClient(tb, td), "rules")
}

func ldFlags(tb testing.TB, n int) evalFunc {
	td := ldtestdata.DataSource()
	td.UsePreconfiguredSegment(LaunchDarklySegment())
	td.UsePreconfiguredFlag(LaunchDarklyFlag(FlagKey))
	for i := 0; i < n-1; i++ {
		td.UsePreconfiguredFlag(LaunchDarklyFlag(FlagKey + "-" + strconv.Itoa(i)))
	}
	return ldEval(tb, ldClient(tb, td), FlagKey+"-"+strconv.Itoa((n-1)/2))
}

// ---- OpenFeature go-sdk: an isolated API with the in-memory provider ----

func ofClient(tb testing.TB, p openfeature.FeatureProvider) *openfeature.Client {
	tb.Helper()
	api := isolated.NewAPI()
	if err := api.SetProviderAndWait(context.Background(), p); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { api.Shutdown(context.Background()) })
	return api.NewClient()
}

func ofEval(tb testing.TB, c *openfeature.Client, key string) evalFunc {
	tb.Helper()
	ectx := OpenFeatureContext()
	if d, err := c.BooleanValueDetails(context.Background(), key, false, ectx); err != nil || d.ErrorCode != "" {
		tb.Fatalf("%s: %v %+v", key, err, d)
	}
	return func() bool {
		v, _ := c.BooleanValue(Background, key, false, ectx)
		return v
	}
}

func ofMemBench(tb testing.TB) evalFunc {
	p := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{FlagKey: OpenFeatureFlag()})
	return ofEval(tb, ofClient(tb, p), FlagKey)
}

// ---- the engines agree ----

// agreeCase is a subject and, when a rule decides it, the rule's value.
type agreeCase struct {
	name  string
	attrs flagwire.Attributes
	rule  *bool // nil: the rollout decides
}

func ptr[T any](v T) *T { return &v }

// TestEnginesAgree checks that the benchmark flag means the same in every
// engine: every rule outcome is identical, Flagwire and the OpenFeature
// evaluator (same bucketing function) agree everywhere, and LaunchDarkly's
// rollout (its own hash) serves true to 25% ± 2% of subjects.
func TestEnginesAgree(t *testing.T) {
	cases := []agreeCase{
		{"enterprise EU", flagwire.Attributes{"userId": "u-1", "plan": "enterprise", "region": "EU", "appVersion": "1.0.0"}, ptr(true)},
		{"beta tester", flagwire.Attributes{"userId": "beta-0000500", "plan": "free", "region": "US", "appVersion": "1.0.0"}, ptr(true)},
		{"old app", flagwire.Attributes{"userId": "u-2", "plan": "enterprise", "region": "US", "appVersion": "1.9.9"}, ptr(false)},
		{"benchmark subject", Subject, nil},
	}
	for i := 0; i < 4000; i++ {
		cases = append(cases, agreeCase{"rollout", flagwire.Attributes{"userId": "user-" + strconv.Itoa(i), "plan": "pro", "region": "US", "appVersion": "2.3.1"}, nil})
	}
	snap := fwSnapshot(t, FlagwireConfig(0))
	td := ldtestdata.DataSource()
	td.UsePreconfiguredSegment(LaunchDarklySegment())
	td.UsePreconfiguredFlag(LaunchDarklyFlag(FlagKey))
	ldc := ldClient(t, td)
	ofc := ofClient(t, memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{FlagKey: OpenFeatureFlag()}))

	var ldTrue, fwTrue, rollouts int
	for _, c := range cases {
		fw, _ := snap.Evaluate(FlagKey, c.attrs, time.Now()).Value.(bool)
		b := ldcontext.NewBuilder(c.attrs["userId"].(string))
		for _, k := range []string{"plan", "region", "appVersion"} {
			b.SetString(k, c.attrs[k].(string))
		}
		ldv, _ := ldc.BoolVariation(FlagKey, b.Build(), false)
		attrs := map[string]any{}
		for _, k := range []string{"plan", "region", "appVersion"} {
			attrs[k] = c.attrs[k]
		}
		ofv, _ := ofc.BooleanValue(context.Background(), FlagKey, false, openfeature.NewEvaluationContext(c.attrs["userId"].(string), attrs))
		if fw != ofv {
			t.Errorf("%s %v: flagwire %v, openfeature %v", c.name, c.attrs, fw, ofv)
		}
		if c.rule != nil {
			if fw != *c.rule || ldv != *c.rule {
				t.Errorf("%s: flagwire %v, launchdarkly %v, want %v", c.name, fw, ldv, *c.rule)
			}
			continue
		}
		if c.name == "benchmark subject" {
			t.Logf("benchmark subject: flagwire %v, openfeature %v, launchdarkly %v (rollouts hash differently)", fw, ofv, ldv)
		}
		rollouts++
		if fw {
			fwTrue++
		}
		if ldv {
			ldTrue++
		}
	}
	for name, n := range map[string]int{"flagwire": fwTrue, "launchdarkly": ldTrue} {
		share := float64(n) / float64(rollouts)
		t.Logf("%s rollout: %d of %d true (%.1f%%)", name, n, rollouts, 100*share)
		if share < 0.23 || share > 0.27 {
			t.Errorf("%s serves true to %.1f%% of the rollout, want 25%% ± 2%%", name, 100*share)
		}
	}
}

// TestRulesAndFlagsFixtures checks the scaling fixtures decide alike.
func TestRulesAndFlagsFixtures(t *testing.T) {
	for _, n := range []int{1, 10, 100} {
		fw := fwEvaluateRules(t, n)()
		l := ldRules(t, n)()
		if fw || l {
			t.Fatalf("rules=%d: flagwire %v, launchdarkly %v; no rule should match", n, fw, l)
		}
	}
	for _, n := range []int{10, 1000} {
		fw := fwEvaluateFlags(t, n)()
		fw0 := fwEvaluateBench(t)()
		if fw != fw0 && n > 0 {
			// Different keys are different seeds: both are valid rollouts.
			t.Logf("flags=%d: %s decides %v, %s decides %v", n, fmt.Sprintf("%s-%d", FlagKey, (n-1)/2), fw, FlagKey, fw0)
		}
		ldFlags(t, n)()
	}
}
