package flagwireof_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	flagwireof "github.com/flagwire/flagwire/openfeature"
)

// The OpenFeature specification's gherkin suites (testdata/gherkin, see
// SOURCE.md there), run against the Flagwire provider over a flagtest
// server on loopback. The flags the scenarios assume
// (testdata/gherkin/test-flags.json, and the go-sdk e2e tests' in-memory
// "context-aware" flag for evaluation.feature) are written below as
// Flagwire flags; the expected answers come from the feature files.

// gherkinLocalExcluded is what local mode leaves out of
// evaluation_v2.feature: @reason-codes-cached ("CACHED reason") expects
// the second evaluation to come from a cache, and local mode evaluates the
// synced config in-process every time (reason STATIC), with no decision
// cache to serve from. Remote mode runs every scenario.
const gherkinLocalExcluded = "~@reason-codes-cached"

// TestGherkinEvaluation runs evaluation.feature: every scenario, with
// the "stable provider" in remote mode (the evaluate API behind the
// decision cache) and in local mode (synced config evaluated in-process).
func TestGherkinEvaluation(t *testing.T) {
	t.Run("remote", func(t *testing.T) { runGherkin(t, "testdata/gherkin/evaluation.feature", "", flagwire.ModeRemote) })
	t.Run("local", func(t *testing.T) { runGherkin(t, "testdata/gherkin/evaluation.feature", "", flagwire.ModeLocal) })
}

// TestGherkinEvaluationV2 runs evaluation_v2.feature: every scenario in
// remote mode, all but gherkinLocalExcluded in local mode.
func TestGherkinEvaluationV2(t *testing.T) {
	t.Run("remote", func(t *testing.T) {
		runGherkin(t, "testdata/gherkin/evaluation_v2.feature", "", flagwire.ModeRemote)
	})
	t.Run("local", func(t *testing.T) {
		runGherkin(t, "testdata/gherkin/evaluation_v2.feature", gherkinLocalExcluded, flagwire.ModeLocal)
	})
}

func runGherkin(t *testing.T, path, tags string, mode flagwire.Mode) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(gherkinConfig()))
	suite := godog.TestSuite{
		Name:                path,
		ScenarioInitializer: func(sc *godog.ScenarioContext) { newGherkinScenario(srv, mode).register(sc) },
		Options: &godog.Options{
			Format:   "progress",
			Paths:    []string{path},
			Tags:     tags,
			Strict:   true, // an undefined or pending step fails
			NoColors: true,
			Output:   gherkinOutput(),
			TestingT: t,
		},
	}
	if status := suite.Run(); status != 0 {
		t.Fatalf("%s: godog status %d", path, status)
	}
}

// gherkinOutput is where godog writes its progress and summary: stdout
// with go test -v, nowhere otherwise (failures reach the test log through
// TestingT either way).
func gherkinOutput() io.Writer {
	if testing.Verbose() {
		return os.Stdout
	}
	return io.Discard
}

// gherkinConfig is test-flags.json (and evaluation.feature's
// context-aware flag) as Flagwire flags: each flag's variants and default
// variant; a flag with a contextEvaluator gets a rule serving the variant
// the CEL expression names, in Flagwire's rule language.
func gherkinConfig() *evaluate.Config {
	template := map[string]any{"showImages": true, "title": "Check out these pics!", "imagesPerPage": 100.0}
	type v = evaluate.Variant
	flag := func(key string, typ evaluate.FlagType, def string, variants ...v) evaluate.Flag {
		return evaluate.Flag{Key: key, Type: typ, Variants: variants, Default: &evaluate.Serve{Variant: def}}
	}
	targeted := func(f evaluate.Flag, when, serve string) evaluate.Flag {
		f.Rules = []evaluate.Rule{{ID: "context-evaluator", When: when, Serve: evaluate.Serve{Variant: serve}}}
		return f
	}
	off := func(f evaluate.Flag) evaluate.Flag { f.State = evaluate.StateOff; return f }
	const ballmer = "email == 'ballmer@macrosoft.com'"

	boolFlag := flag("boolean-flag", evaluate.TypeBoolean, "on", v{Name: "on", Value: true}, v{Name: "off", Value: false})
	stringFlag := flag("string-flag", evaluate.TypeString, "greeting", v{Name: "greeting", Value: "hi"}, v{Name: "parting", Value: "bye"})
	intFlag := flag("integer-flag", evaluate.TypeNumber, "ten", v{Name: "one", Value: 1.0}, v{Name: "ten", Value: 10.0})
	floatFlag := flag("float-flag", evaluate.TypeNumber, "half", v{Name: "tenth", Value: 0.1}, v{Name: "half", Value: 0.5})
	objectFlag := flag("object-flag", evaluate.TypeJSON, "template", v{Name: "empty", Value: map[string]any{}}, v{Name: "template", Value: template})

	zero := func(key string, typ evaluate.FlagType, zero, nonZero any) evaluate.Flag {
		return flag(key, typ, "zero", v{Name: "zero", Value: zero}, v{Name: "non-zero", Value: nonZero})
	}
	flags := []evaluate.Flag{
		boolFlag, stringFlag, intFlag, floatFlag, objectFlag,
		zero("boolean-zero-flag", evaluate.TypeBoolean, false, true),
		zero("string-zero-flag", evaluate.TypeString, "", "str"),
		zero("integer-zero-flag", evaluate.TypeNumber, 0.0, 1.0),
		zero("float-zero-flag", evaluate.TypeNumber, 0.0, 1.0),
		zero("object-zero-flag", evaluate.TypeJSON, map[string]any{}, template),
		targeted(zero("boolean-targeted-zero-flag", evaluate.TypeBoolean, false, true), ballmer, "zero"),
		targeted(zero("string-targeted-zero-flag", evaluate.TypeString, "", "str"), ballmer, "zero"),
		targeted(zero("integer-targeted-zero-flag", evaluate.TypeNumber, 0.0, 1.0), ballmer, "zero"),
		targeted(zero("float-targeted-zero-flag", evaluate.TypeNumber, 0.0, 1.0), ballmer, "zero"),
		targeted(zero("object-targeted-zero-flag", evaluate.TypeJSON, map[string]any{}, template), ballmer, "zero"),
		renamed(off(boolFlag), "boolean-disabled-flag"),
		renamed(off(stringFlag), "string-disabled-flag"),
		renamed(off(intFlag), "integer-disabled-flag"),
		renamed(off(floatFlag), "float-disabled-flag"),
		renamed(off(objectFlag), "object-disabled-flag"),
		// !customer && email == 'ballmer@macrosoft.com' && age > 10 ? 'internal' : ''
		targeted(flag("complex-targeted", evaluate.TypeString, "external", v{Name: "internal", Value: "INTERNAL"}, v{Name: "external", Value: "EXTERNAL"}),
			"customer == false and "+ballmer+" and age > 10", "internal"),
		flag("wrong-flag", evaluate.TypeString, "one", v{Name: "one", Value: "uno"}, v{Name: "two", Value: "dos"}),
		withMetadata(flag("metadata-flag", evaluate.TypeBoolean, "on", v{Name: "on", Value: true}, v{Name: "off", Value: false}),
			map[string]any{"string": "1.0.2", "integer": 2, "boolean": true, "float": 0.1}),
		// evaluation.feature's context-aware flag (the go-sdk e2e tests'
		// in-memory flag): INTERNAL for exactly this context.
		targeted(flag("context-aware", evaluate.TypeString, "external", v{Name: "internal", Value: "INTERNAL"}, v{Name: "external", Value: "EXTERNAL"}),
			"fn == 'Sulisław' and ln == 'Świętopełk' and age == 29 and customer == false", "internal"),
	}
	return &evaluate.Config{Environment: "test", Salt: "gherkin", Flags: flags}
}

func renamed(f evaluate.Flag, key string) evaluate.Flag { f.Key = key; return f }

func withMetadata(f evaluate.Flag, md map[string]any) evaluate.Flag { f.FlagMetadata = md; return f }

// gherkinScenario is one scenario's state: its own OpenFeature API
// (isolated from the global one and from other scenarios), provider and
// the last evaluation.
type gherkinScenario struct {
	srv  *flagtest.Server
	mode flagwire.Mode // of the stable provider

	api      *openfeature.EvaluationAPI
	client   *openfeature.Client
	provider *flagwireof.Provider
	// broken is a server whose config endpoint fails, for providers that
	// never become ready.
	broken *flagtest.Server

	flagType string // Boolean, String, Integer, Float, Object
	key      string
	def      any
	attrs    map[string]any
	hooks    *stageHook

	value   any
	details openfeature.EvaluationDetails
	err     error
	// async is closed when the asynchronous evaluation returned.
	async chan struct{}

	ecBefore map[string]any // a copy of the modifiable context's data
	ecData   map[string]any // the data given to the context
}

func newGherkinScenario(srv *flagtest.Server, mode flagwire.Mode) *gherkinScenario {
	return &gherkinScenario{srv: srv, mode: mode, attrs: map[string]any{}}
}

func (s *gherkinScenario) register(sc *godog.ScenarioContext) {
	sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
		err = errors.Join(err, s.shutdown())
		if s.broken != nil {
			s.broken.Close()
		}
		return ctx, err
	})

	// Providers.
	sc.Step(`^a stable provider$`, s.stableProvider)
	sc.Step(`^a not ready provider$`, s.notReadyProvider)
	sc.Step(`^a fatal provider$`, s.fatalProvider)
	sc.Step(`^a error provider$`, s.errorProvider)
	sc.Step(`^a stale provider$`, s.staleProvider)
	sc.Step(`^the provider status should be "([^"]*)"$`, s.providerStatus)

	// evaluation_v2.feature.
	sc.Step(`^a (Boolean|String|Integer|Float|Object)-flag with key "([^"]*)" and a fallback value "(.*)"$`, s.aFlag)
	sc.Step(`^a context containing a key "([^"]*)", with type "([^"]*)" and with value "(.*)"$`, s.contextKey)
	sc.Step(`^a context containing a key "([^"]*)" with null value$`, func(key string) { s.attrs[key] = nil })
	sc.Step(`^the flag was evaluated with details$`, func() { s.evaluate(context.Background()) })
	sc.Step(`^the resolved details value should be "(.*)"$`, s.valueShouldBe)
	sc.Step(`^the reason should be "([^"]*)"$`, s.reasonShouldBe)
	sc.Step(`^the error-code should be "([^"]*)"$`, s.errorCodeShouldBe)
	sc.Step(`^the flag key should be "([^"]*)"$`, s.flagKeyShouldBe)
	sc.Step(`^the variant should be "([^"]*)"$`, s.variantShouldBe)
	sc.Step(`^evaluation options containing specific hooks$`, func() { s.hooks = &stageHook{} })
	sc.Step(`^the flag was evaluated with details using the evaluation options$`, func() { s.evaluate(context.Background()) })
	sc.Step(`^the specified hooks should execute during evaluation$`, s.hooksRan)
	sc.Step(`^the hook order should be maintained$`, s.hookOrder)
	sc.Step(`^an evaluation context with modifiable data$`, s.modifiableContext)
	sc.Step(`^the original evaluation context should remain unmodified$`, s.contextUnmodified)
	sc.Step(`^the evaluation details should be immutable$`, s.detailsImmutable)
	sc.Step(`^the resolved metadata should contain$`, s.metadataContains)
	sc.Step(`^the flag was evaluated with details asynchronously$`, s.evaluateAsync)
	sc.Step(`^the evaluation should complete without blocking$`, s.asyncCompleted)

	// evaluation.feature.
	v1Eval := func(typ string) func(key, def string) error {
		return func(key, def string) error {
			if err := s.aFlag(typ, key, def); err != nil {
				return err
			}
			s.evaluate(context.Background())
			return nil
		}
	}
	sc.Step(`^a boolean flag with key "([^"]*)" is evaluated with default value "([^"]*)"$`, v1Eval("Boolean"))
	sc.Step(`^a string flag with key "([^"]*)" is evaluated with default value "([^"]*)"$`, v1Eval("String"))
	sc.Step(`^an integer flag with key "([^"]*)" is evaluated with default value (\d+)$`, v1Eval("Integer"))
	sc.Step(`^a float flag with key "([^"]*)" is evaluated with default value (-?\d+\.\d+)$`, v1Eval("Float"))
	sc.Step(`^a boolean flag with key "([^"]*)" is evaluated with details and default value "([^"]*)"$`, v1Eval("Boolean"))
	sc.Step(`^a string flag with key "([^"]*)" is evaluated with details and default value "([^"]*)"$`, v1Eval("String"))
	sc.Step(`^an integer flag with key "([^"]*)" is evaluated with details and default value (\d+)$`, v1Eval("Integer"))
	sc.Step(`^a float flag with key "([^"]*)" is evaluated with details and default value (-?\d+\.\d+)$`, v1Eval("Float"))
	sc.Step(`^an object flag with key "([^"]*)" is evaluated with (?:details and )?a null default value$`, func(key string) {
		s.flagType, s.key, s.def = "Object", key, nil
		s.evaluate(context.Background())
	})
	sc.Step(`^the resolved (?:boolean|string|integer|float) value should be "?([^"]*)"?$`, s.valueShouldBe)
	sc.Step(`^the resolved (?:boolean|string|integer|float) details value should be "?([^",]*)"?, the variant should be "([^"]*)", and the reason should be "([^"]*)"$`,
		func(value, variant, reason string) error {
			return errors.Join(s.valueShouldBe(value), s.variantShouldBe(variant), s.reasonShouldBe(reason))
		})
	sc.Step(`^the resolved object (?:details )?value should be contain fields "([^"]*)", "([^"]*)", and "([^"]*)", with values "([^"]*)", "([^"]*)" and (\d+), respectively$`, s.objectFields)
	sc.Step(`^the variant should be "([^"]*)", and the reason should be "([^"]*)"$`, func(variant, reason string) error {
		return errors.Join(s.variantShouldBe(variant), s.reasonShouldBe(reason))
	})
	sc.Step(`^context contains keys "([^"]*)", "([^"]*)", "([^"]*)", "([^"]*)" with values "([^"]*)", "([^"]*)", (\d+), "([^"]*)"$`,
		func(k1, k2, k3, k4, v1, v2 string, v3 int64, v4 string) error {
			b, err := strconv.ParseBool(v4)
			if err != nil {
				return err
			}
			s.attrs = map[string]any{k1: v1, k2: v2, k3: v3, k4: b}
			return nil
		})
	sc.Step(`^a flag with key "([^"]*)" is evaluated with default value "([^"]*)"$`, v1Eval("String"))
	sc.Step(`^the resolved string response should be "([^"]*)"$`, s.valueShouldBe)
	sc.Step(`^the resolved flag value is "([^"]*)" when the context is empty$`, func(want string) error {
		s.attrs = map[string]any{}
		s.evaluate(context.Background())
		return s.valueShouldBe(want)
	})
	sc.Step(`^a non-existent string flag with key "([^"]*)" is evaluated with details and a fallback value "([^"]*)"$`, v1Eval("String"))
	sc.Step(`^a string flag with key "([^"]*)" is evaluated as an integer, with details and a fallback value (\d+)$`, v1Eval("Integer"))
	sc.Step(`^the default (?:string|integer) value should be returned$`, func() error {
		if !reflect.DeepEqual(s.value, s.def) {
			return fmt.Errorf("value %#v, want the default %#v", s.value, s.def)
		}
		return nil
	})
	sc.Step(`^the reason should indicate an error and the error code should indicate a (?:missing flag|type mismatch) with "([^"]*)"$`, func(code string) error {
		return errors.Join(s.reasonShouldBe("ERROR"), s.errorCodeShouldBe(code))
	})
}

// newClient is a Flagwire client of srv in the given mode.
func (s *gherkinScenario) newClient(srv *flagtest.Server, opts ...flagwire.Option) (*flagwire.Client, error) {
	return flagwire.New(context.Background(), append(baseOptions(srv), opts...)...)
}

// setProvider replaces the scenario's API (shutting the previous one
// down) by one serving p, initialized with ctx.
func (s *gherkinScenario) setProvider(ctx context.Context, p *flagwireof.Provider, wait bool) error {
	if err := s.shutdown(); err != nil {
		return err
	}
	s.api, s.provider = isolated.NewAPI(), p
	s.client = s.api.NewClient()
	if wait {
		return s.api.SetProviderAndWait(ctx, p)
	}
	return s.api.SetProvider(ctx, p)
}

func (s *gherkinScenario) shutdown() error {
	if s.api == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.api.Shutdown(ctx)
	s.api = nil
	return err
}

// stableProvider: a client of the flag server in the suite's mode, ready.
func (s *gherkinScenario) stableProvider() error {
	c, err := s.newClient(s.srv, flagwire.WithMode(s.mode))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.setProvider(ctx, flagwireof.NewProvider(c), true)
}

// brokenServer is a flag server whose config endpoint always fails: a
// local-mode client of it never has a configuration.
func (s *gherkinScenario) brokenServer() (*flagtest.Server, error) {
	if s.broken == nil {
		srv, err := flagtest.Start(flagtest.WithConfig(gherkinConfig()))
		if err != nil {
			return nil, err
		}
		srv.InjectFault(flagtest.Fault{Path: "/v1/flags", Status: http.StatusServiceUnavailable})
		s.broken = srv
	}
	return s.broken, nil
}

// brokenClient is a local-mode client of brokenServer.
func (s *gherkinScenario) brokenClient() (*flagwire.Client, error) {
	srv, err := s.brokenServer()
	if err != nil {
		return nil, err
	}
	return s.newClient(srv, flagwire.WithMode(flagwire.ModeLocal))
}

// notReadyProvider: a local-mode client that never gets its first
// configuration; Init is still waiting when the scenario evaluates.
func (s *gherkinScenario) notReadyProvider() error {
	c, err := s.brokenClient()
	if err != nil {
		return err
	}
	return s.setProvider(context.Background(), flagwireof.NewProvider(c), false)
}

// errorProvider: the same client, with Init bounded: it fails (not
// fatally) and the SDK reports ERROR.
func (s *gherkinScenario) errorProvider() error {
	c, err := s.brokenClient()
	if err != nil {
		return err
	}
	return s.initFails(c, 50*time.Millisecond, "the provider initialized without a configuration")
}

// initFails sets a provider of c, its initialization bounded by timeout,
// and returns an error saying what happened unless the initialization failed.
func (s *gherkinScenario) initFails(c *flagwire.Client, timeout time.Duration, what string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.setProvider(ctx, flagwireof.NewProvider(c), true); err == nil {
		return errors.New(what)
	}
	return nil
}

// fatalProvider: the Flagwire client is closed before the provider is
// initialized, which Init reports as PROVIDER_FATAL.
func (s *gherkinScenario) fatalProvider() error {
	c, err := s.newClient(s.srv)
	if err != nil {
		return err
	}
	if err := c.Close(context.Background()); err != nil {
		return err
	}
	return s.initFails(c, 10*time.Second, "the provider initialized with a closed client")
}

// staleProvider: a local-mode client whose data counts as stale after a
// millisecond; the provider reports PROVIDER_STALE when it looks.
func (s *gherkinScenario) staleProvider() error {
	c, err := s.newClient(s.srv, flagwire.WithMode(flagwire.ModeLocal), flagwire.WithStaleAfter(time.Millisecond))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.setProvider(ctx, flagwireof.NewProvider(c, flagwireof.WithStatusInterval(5*time.Millisecond)), true)
}

// providerStatus waits (events are asynchronous) until the client's
// provider status is want.
func (s *gherkinScenario) providerStatus(want string) error {
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		got := s.client.State()
		if string(got) == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("provider status %q, want %q", got, want)
		}
		<-tick.C
	}
}

// parseTyped parses a feature file's value of the scenario's type.
func parseTyped(typ, s string) (any, error) {
	switch typ {
	case "Boolean":
		return strconv.ParseBool(s)
	case "String":
		return s, nil
	case "Integer":
		return strconv.ParseInt(s, 10, 64)
	case "Float":
		return strconv.ParseFloat(s, 64)
	case "Object":
		var v any
		if err := json.Unmarshal([]byte(strings.ReplaceAll(s, `\"`, `"`)), &v); err != nil {
			return nil, fmt.Errorf("object %q: %w", s, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("unknown type %q", typ)
}

func (s *gherkinScenario) aFlag(typ, key, def string) error {
	d, err := parseTyped(typ, def)
	if err != nil {
		return err
	}
	s.flagType, s.key, s.def = typ, key, d
	return nil
}

func (s *gherkinScenario) contextKey(key, typ, value string) error {
	v, err := parseTyped(typ, value)
	if err != nil {
		return err
	}
	s.attrs[key] = v
	return nil
}

// evaluationContext is the scenario's context, without a targeting key.
func (s *gherkinScenario) evaluationContext() openfeature.EvaluationContext {
	if s.ecData != nil {
		return openfeature.NewEvaluationContext("subject-1", s.ecData)
	}
	return openfeature.NewTargetlessEvaluationContext(s.attrs)
}

// evaluate evaluates the scenario's flag through the OpenFeature client
// with the typed method of its type.
func (s *gherkinScenario) evaluate(ctx context.Context) {
	ec := s.evaluationContext()
	var opts []openfeature.Option
	if s.hooks != nil {
		opts = append(opts, openfeature.WithHooks(s.hooks))
	}
	c := s.client
	switch s.flagType {
	case "Boolean":
		d, err := c.BooleanValueDetails(ctx, s.key, s.def.(bool), ec, opts...)
		s.value, s.details, s.err = d.Value, d.EvaluationDetails, err
	case "String":
		d, err := c.StringValueDetails(ctx, s.key, s.def.(string), ec, opts...)
		s.value, s.details, s.err = d.Value, d.EvaluationDetails, err
	case "Integer":
		d, err := c.IntValueDetails(ctx, s.key, s.def.(int64), ec, opts...)
		s.value, s.details, s.err = d.Value, d.EvaluationDetails, err
	case "Float":
		d, err := c.FloatValueDetails(ctx, s.key, s.def.(float64), ec, opts...)
		s.value, s.details, s.err = d.Value, d.EvaluationDetails, err
	case "Object":
		d, err := c.ObjectValueDetails(ctx, s.key, s.def, ec, opts...)
		s.value, s.details, s.err = d.Value, d.EvaluationDetails, err
	default:
		s.err = fmt.Errorf("no flag type set")
	}
}

func (s *gherkinScenario) valueShouldBe(want string) error {
	w, err := parseTyped(s.flagType, want)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(s.value, w) {
		return fmt.Errorf("value %#v, want %#v (details %+v, error %v)", s.value, w, s.details, s.err)
	}
	return nil
}

func (s *gherkinScenario) reasonShouldBe(want string) error {
	if string(s.details.Reason) != want {
		return fmt.Errorf("reason %q, want %q (details %+v, error %v)", s.details.Reason, want, s.details, s.err)
	}
	return nil
}

func (s *gherkinScenario) errorCodeShouldBe(want string) error {
	if string(s.details.ErrorCode) != want {
		return fmt.Errorf("error code %q, want %q (details %+v)", s.details.ErrorCode, want, s.details)
	}
	if s.err == nil {
		return fmt.Errorf("error code %q but no error returned", want)
	}
	return nil
}

func (s *gherkinScenario) flagKeyShouldBe(want string) error {
	if s.details.FlagKey != want {
		return fmt.Errorf("flag key %q, want %q", s.details.FlagKey, want)
	}
	return nil
}

func (s *gherkinScenario) variantShouldBe(want string) error {
	if s.details.Variant != want {
		return fmt.Errorf("variant %q, want %q (details %+v)", s.details.Variant, want, s.details)
	}
	return nil
}

func (s *gherkinScenario) objectFields(k1, k2, k3, v1, v2 string, v3 int) error {
	m, ok := s.value.(map[string]any)
	if !ok {
		return fmt.Errorf("value %#v is not an object (details %+v, error %v)", s.value, s.details, s.err)
	}
	b, err := strconv.ParseBool(v1)
	if err != nil {
		return err
	}
	want := map[string]any{k1: b, k2: v2, k3: float64(v3)}
	for k, w := range want {
		if !reflect.DeepEqual(m[k], w) {
			return fmt.Errorf("field %s = %#v, want %#v", k, m[k], w)
		}
	}
	return nil
}

// stageHook records the stages it runs in.
type stageHook struct {
	openfeature.UnimplementedHook
	mu     sync.Mutex
	stages []string
}

func (h *stageHook) record(stage string) {
	h.mu.Lock()
	h.stages = append(h.stages, stage)
	h.mu.Unlock()
}

func (h *stageHook) Before(context.Context, openfeature.HookContext, openfeature.HookHints) (*openfeature.EvaluationContext, error) {
	h.record("before")
	return nil, nil
}

func (h *stageHook) After(context.Context, openfeature.HookContext, openfeature.InterfaceEvaluationDetails, openfeature.HookHints) error {
	h.record("after")
	return nil
}

func (h *stageHook) Error(context.Context, openfeature.HookContext, error, openfeature.HookHints) {
	h.record("error")
}

func (h *stageHook) Finally(context.Context, openfeature.HookContext, openfeature.InterfaceEvaluationDetails, openfeature.HookHints) {
	h.record("finally")
}

func (s *gherkinScenario) hooksRan() error {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	for _, stage := range []string{"before", "after", "finally"} {
		if !strings.Contains(strings.Join(s.hooks.stages, " "), stage) {
			return fmt.Errorf("hook stage %s did not run (ran: %v)", stage, s.hooks.stages)
		}
	}
	return nil
}

func (s *gherkinScenario) hookOrder() error {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	if want := []string{"before", "after", "finally"}; !reflect.DeepEqual(s.hooks.stages, want) {
		return fmt.Errorf("hook stages %v, want %v", s.hooks.stages, want)
	}
	return nil
}

func (s *gherkinScenario) modifiableContext() {
	s.ecData = map[string]any{"email": "someone@example.com", "age": int64(30), "tags": []any{"a", "b"}, "nested": map[string]any{"k": "v"}}
	s.ecBefore = deepCopy(s.ecData)
}

func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case map[string]any:
			out[k] = deepCopy(v)
		case []any:
			out[k] = append([]any(nil), v...)
		default:
			out[k] = v
		}
	}
	return out
}

func (s *gherkinScenario) contextUnmodified() error {
	if !reflect.DeepEqual(s.ecData, s.ecBefore) {
		return fmt.Errorf("context data %v after the evaluation, was %v", s.ecData, s.ecBefore)
	}
	return nil
}

// detailsImmutable: changing the returned details (a value; its flag
// metadata is a map) changes neither the provider's answers nor a later
// evaluation's details.
func (s *gherkinScenario) detailsImmutable() error {
	first := s.details
	want := maps.Clone(first.FlagMetadata)
	for k := range first.FlagMetadata {
		first.FlagMetadata[k] = "changed by the caller"
	}
	first.FlagMetadata["added"] = "by the caller"
	first.Variant = "changed"
	s.evaluate(context.Background())
	if s.err != nil {
		return s.err
	}
	if s.details.Variant == "changed" {
		return errors.New("a change to returned details reached the next evaluation's variant")
	}
	for k, v := range s.details.FlagMetadata {
		if k == "added" || v == "changed by the caller" {
			return fmt.Errorf("a change to returned flag metadata reached the next evaluation: %v", s.details.FlagMetadata)
		}
	}
	if len(want) == 0 {
		return errors.New("no flag metadata to check")
	}
	return nil
}

// metadataContains checks the table's rows (key, metadata_type, value)
// against the evaluation's flag metadata, each with the FlagMetadata
// getter of its type, as a Go application reads it: Integer with GetInt
// (int64), Float with GetFloat (float64), and so on.
func (s *gherkinScenario) metadataContains(table *godog.Table) error {
	if len(table.Rows) < 2 {
		return errors.New("the metadata table has no rows")
	}
	col := map[string]int{}
	for i, c := range table.Rows[0].Cells {
		col[c.Value] = i
	}
	md := s.details.FlagMetadata
	for _, row := range table.Rows[1:] {
		key, typ, want := row.Cells[col["key"]].Value, row.Cells[col["metadata_type"]].Value, row.Cells[col["value"]].Value
		var (
			got, exp any
			err      error
		)
		switch typ {
		case "String":
			got, err = md.GetString(key)
			exp = want
		case "Integer":
			got, err = md.GetInt(key)
			exp, _ = strconv.ParseInt(want, 10, 64)
		case "Float":
			got, err = md.GetFloat(key)
			exp, _ = strconv.ParseFloat(want, 64)
		case "Boolean":
			got, err = md.GetBool(key)
			exp, _ = strconv.ParseBool(want)
		default:
			return fmt.Errorf("unknown metadata_type %q", typ)
		}
		if err != nil {
			return fmt.Errorf("metadata %q as %s: %v (metadata %v)", key, typ, err, md)
		}
		if got != exp {
			return fmt.Errorf("metadata %q = %v, want %v", key, got, exp)
		}
	}
	return nil
}

// evaluateAsync starts the evaluation on a goroutine (Go's asynchronous
// mechanism) and returns at once.
func (s *gherkinScenario) evaluateAsync() {
	s.async = make(chan struct{})
	go func() {
		defer close(s.async)
		s.evaluate(context.Background())
	}()
}

// asyncCompleted waits, with a generous deadline, for the asynchronous
// evaluation to deliver its result.
func (s *gherkinScenario) asyncCompleted() error {
	select {
	case <-s.async:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("the asynchronous evaluation did not complete")
	}
}
