package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/clockhook"
	"github.com/flagwire/flagwire/internal/testkit"
)

// sdkMode is one way the SDK can decide a flag.
type sdkMode struct {
	name string
	// subject states the context with flagwire.WithSubject instead of
	// flagwire.WithAttributes.
	subject bool
	source  flagwire.Source // the Source of a decided flag
	// inProcess: the mode evaluates in the SDK with its own wall clock
	// (local, offline), which the suite sets to the case's time through
	// the module-internal clockhook (a user cannot set it); the other
	// modes evaluate with the server's clock, set the same way.
	inProcess bool
	ofrep     bool
	opts      func(t *testing.T, g *groupServer, cf *caseFile) []flagwire.Option
}

// signer signs the offline and bootstrap modes' envelopes.
var signer = testkit.NewSigner()

// signedBootstrap is a flagwire-bootstrap/v1 envelope of cfg, valid from a
// minute ago for an hour.
func signedBootstrap(t *testing.T, cfg *evaluate.Config) []byte {
	t.Helper()
	cfg.Version = max(cfg.Version, 1) // the envelope's version is the payload's
	return signer.Envelope(t, cfg, time.Now().Add(-time.Minute), time.Hour+time.Minute)
}

func serverOpts(g *groupServer) []flagwire.Option {
	return []flagwire.Option{
		flagwire.WithEndpoint(g.srv.URL), flagwire.WithToken(g.srv.Token()), flagwire.WithEnvironment(caseEnv),
		flagwire.WithStreaming(false), flagwire.WithTimeout(5 * time.Second),
	}
}

var sdkModes = []sdkMode{
	{name: "remote", source: flagwire.SourceRemote,
		opts: func(t *testing.T, g *groupServer, _ *caseFile) []flagwire.Option { return serverOpts(g) }},
	{name: "local", source: flagwire.SourceLocal, inProcess: true,
		opts: func(t *testing.T, g *groupServer, _ *caseFile) []flagwire.Option {
			return append(serverOpts(g), flagwire.WithMode(flagwire.ModeLocal))
		}},
	{name: "offline", source: flagwire.SourceBootstrap, inProcess: true,
		opts: func(t *testing.T, g *groupServer, cf *caseFile) []flagwire.Option {
			cfg := decodeConfig(t, cf.Config)
			cfg.Environment = caseEnv
			return []flagwire.Option{flagwire.WithMode(flagwire.ModeOffline), flagwire.WithEnvironment(caseEnv),
				flagwire.WithBootstrap(signedBootstrap(t, cfg)), flagwire.WithTrustedKeys(signer.Pub)}
		}},
	{name: "ofrep", source: flagwire.SourceRemote, ofrep: true,
		opts: func(t *testing.T, g *groupServer, _ *caseFile) []flagwire.Option {
			return append(serverOpts(g), flagwire.WithOFREP(true))
		}},
}

// sdkEval makes the case's typed …Detail call and returns the outcome and
// the Source.
func sdkEval(t *testing.T, client *flagwire.Client, c *tcase, attrs map[string]any, subject bool) (outcome, flagwire.Source) {
	t.Helper()
	ctx := flagwire.WithAttributes(context.Background(), flagwire.Attributes(attrs))
	if subject {
		ctx = flagwire.WithSubject(context.Background(), attrList(attrs)...)
	}
	def := c.defaultValue(t)
	var (
		v   any
		det flagwire.Detail
	)
	// The plain call (which answers its success path without a Detail)
	// must serve what the …Detail call serves.
	var plain any
	switch c.Type {
	case "bool":
		v, det = client.BoolDetail(ctx, c.Flag, def.(bool))
		plain = client.Bool(ctx, c.Flag, def.(bool))
	case "string":
		v, det = client.StringDetail(ctx, c.Flag, def.(string))
		plain = client.String(ctx, c.Flag, def.(string))
	case "number":
		v, det = client.FloatDetail(ctx, c.Flag, def.(float64))
		plain = client.Float(ctx, c.Flag, def.(float64))
	case "object":
		dst := def
		det = client.JSON(ctx, c.Flag, &dst)
		v = dst
	default:
		t.Fatalf("unknown type %q", c.Type)
	}
	if c.Type != "object" && plain != v {
		t.Errorf("plain call serves %v, the Detail call %v", plain, v)
	}
	o := outcome{Value: v, Variant: det.Variant, Reason: string(det.Reason.Kind), RuleID: det.Reason.RuleID,
		Segment: det.Reason.Segment, Prerequisite: det.Reason.Prerequisite, Bucket: det.Reason.Bucket, ErrorCode: string(det.ErrorCode)}
	if len(det.Payload) > 0 {
		o.Payload = mustJSON(t, det.Payload)
	}
	return o, det.Source
}

func newClient(t *testing.T, opts []flagwire.Option, local bool) *flagwire.Client {
	t.Helper()
	return newClientAt(t, opts, local, nil)
}

// newClientAt is newClient with the SDK's evaluation wall clock set to
// now (internal/clockhook), for local and offline modes; nil keeps the
// real clock.
func newClientAt(t *testing.T, opts []flagwire.Option, local bool, now func() time.Time) *flagwire.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(clockhook.With(context.Background(), now), 20*time.Second)
	defer cancel()
	client, err := flagwire.New(ctx, opts...)
	if err != nil {
		t.Fatalf("flagwire.New: %v", err)
	}
	t.Cleanup(func() { _ = client.Close(context.Background()) })
	if local {
		if err := client.WaitReady(ctx); err != nil {
			t.Fatalf("WaitReady: %v", err)
		}
	}
	return client
}

func runSDK(t *testing.T, m sdkMode) {
	files := loadCases(t)
	skip := func(cf *caseFile, c *tcase) string {
		if c.Expect.CompileError && m.name != "offline" {
			return "compile errors are checked through the engine, the server and offline bootstraps"
		}
		return ""
	}
	forEachGroupCase(t, files, skip, func(t *testing.T, g *groupServer, cf *caseFile, c *tcase) {
		if c.Expect.CompileError {
			cfg := decodeConfig(t, cf.config(c))
			cfg.Environment = caseEnv
			client, err := flagwire.New(context.Background(), flagwire.WithMode(flagwire.ModeOffline), flagwire.WithEnvironment(caseEnv),
				flagwire.WithBootstrap(signedBootstrap(t, cfg)), flagwire.WithTrustedKeys(signer.Pub))
			if err == nil {
				_ = client.Close(context.Background())
			} else if !errors.Is(err, flagwire.ErrInvalidConfig) {
				t.Errorf("offline New: %v, want an error wrapping ErrInvalidConfig", err)
			}
			checkCompileError(t, c, "offline New", err)
			return
		}
		var now func() time.Time
		if m.inProcess {
			at := c.when(t)
			now = func() time.Time { return at }
		}
		client := newClientAt(t, m.opts(t, g, cf), m.name == "local", now)
		exp := c.Expect
		if m.ofrep {
			exp = ofrepExpectation(t, g.cfg, c)
		}
		got, src := sdkEval(t, client, c, c.attrs(t, true), m.subject)
		check(t, c, exp, got)
		wantSrc := m.source
		if exp.Reason == string(evaluate.ReasonError) {
			wantSrc = flagwire.SourceCallerDefault
		}
		if src != wantSrc {
			t.Errorf("Source = %v, want %v", src, wantSrc)
		}
	})
}

// TestSDKRemote runs every case through the SDK in remote mode
// (POST /v1/evaluate behind the decision cache), one client per case.
func TestSDKRemote(t *testing.T) { runSDK(t, sdkModes[0]) }

// TestSDKLocal runs every case through the SDK in local mode (config synced
// from GET /v1/flags, evaluated in-process).
func TestSDKLocal(t *testing.T) { runSDK(t, sdkModes[1]) }

// TestSDKOffline runs every case through the SDK in offline mode, from a
// signed bootstrap of the group's config; configs that must not compile
// must make New fail.
func TestSDKOffline(t *testing.T) { runSDK(t, sdkModes[2]) }

// TestSDKLocalSubject is TestSDKLocal with the context stated with
// flagwire.WithSubject, which local mode evaluates without building a map.
func TestSDKLocalSubject(t *testing.T) {
	m := sdkModes[1]
	m.subject = true
	runSDK(t, m)
}

// TestSDKOfflineSubject is TestSDKOffline with flagwire.WithSubject.
func TestSDKOfflineSubject(t *testing.T) {
	m := sdkModes[2]
	m.subject = true
	runSDK(t, m)
}

// TestSDKRemoteSubject is TestSDKRemote with flagwire.WithSubject: the
// decision cache key and the API request come from the Attrs.
func TestSDKRemoteSubject(t *testing.T) {
	m := sdkModes[0]
	m.subject = true
	runSDK(t, m)
}

// TestSDKOFREP runs every case through the SDK with WithOFREP (the
// reference server's OFREP endpoints as the backend).
func TestSDKOFREP(t *testing.T) { runSDK(t, sdkModes[3]) }
