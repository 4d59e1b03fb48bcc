package conformance

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

func caseFileNamed(t *testing.T, name string) *caseFile {
	t.Helper()
	for _, cf := range loadCases(t) {
		if cf.file == name {
			return cf
		}
	}
	t.Fatalf("no case file %s", name)
	return nil
}

// forEachTypesClient runs fn in a subtest per SDK mode, with a client of
// that mode on a server of its own for the types group.
func forEachTypesClient(t *testing.T, fn func(t *testing.T, m sdkMode, cf *caseFile, g *groupServer, client *flagwire.Client)) {
	cf := caseFileNamed(t, "types")
	for _, m := range sdkModes {
		t.Run(m.name, func(t *testing.T) {
			g := startGroupServer(t, cf)
			fn(t, m, cf, g, newClient(t, m.opts(t, g, cf), m.name == "local"))
		})
	}
}

// TestSequenceSharedClient runs the types group (every requested type on
// every flag type, JSON on every flag type, unknown flags) through ONE
// client per mode, in file order and then a second time: a wrong-typed call
// must not poison the cache for the right-typed call that follows, and a
// cached answer must equal the fresh one.
func TestSequenceSharedClient(t *testing.T) {
	forEachTypesClient(t, func(t *testing.T, m sdkMode, cf *caseFile, g *groupServer, client *flagwire.Client) {
		for pass := 1; pass <= 2; pass++ {
			for i := range cf.Cases {
				c := &cf.Cases[i]
				exp := c.Expect
				if m.ofrep {
					exp = ofrepExpectation(t, g.cfg, c)
				}
				got, src := sdkEval(t, client, c, c.attrs(t, true), false)
				t.Run(map[int]string{1: "first/", 2: "again/"}[pass]+c.Name, func(t *testing.T) {
					check(t, c, exp, got)
					want := []flagwire.Source{m.source}
					if m.source == flagwire.SourceRemote {
						want = append(want, flagwire.SourceCache)
					}
					if exp.Reason == string(evaluate.ReasonError) {
						want = []flagwire.Source{flagwire.SourceCallerDefault}
					}
					if !containsSource(want, src) {
						t.Errorf("Source = %v, want one of %v", src, want)
					}
				})
			}
		}
	})
}

func containsSource(list []flagwire.Source, s flagwire.Source) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestSequenceWrongTypeThenRight: a String call on a boolean flag is a
// TYPE_MISMATCH; the Bool call right after it on the same client and
// context gets the flag's real decision, in every mode.
func TestSequenceWrongTypeThenRight(t *testing.T) {
	forEachTypesClient(t, func(t *testing.T, m sdkMode, cf *caseFile, g *groupServer, client *flagwire.Client) {
		ctx := flagwire.WithAttributes(context.Background(), flagwire.Attributes{"userId": "seq-1"})
		s, det := client.StringDetail(ctx, "t-bool", "d")
		if s != "d" || det.ErrorCode != flagwire.CodeTypeMismatch || det.Source != flagwire.SourceCallerDefault || det.Variant != "" {
			t.Errorf("String on a boolean flag = %q, %+v; want the default with TYPE_MISMATCH from DEFAULT", s, det)
		}
		for i := 0; i < 2; i++ {
			b, det := client.BoolDetail(ctx, "t-bool", false)
			if !b || det.ErrorCode != "" || det.Variant != "true" || det.Reason.Kind != "RULE_MATCH" || det.Reason.RuleID != "r1" {
				t.Errorf("Bool after a wrong-typed call (#%d) = %v, %+v; want true, variant true, RULE_MATCH r1, no error", i+1, b, det)
			}
		}
		f, det := client.FloatDetail(ctx, "t-bool", 7)
		if f != 7 || det.ErrorCode != flagwire.CodeTypeMismatch || det.Source != flagwire.SourceCallerDefault {
			t.Errorf("Float on a boolean flag after a cached Bool = %v, %+v; want 7 with TYPE_MISMATCH from DEFAULT", f, det)
		}
	})
}

// TestSequenceInvalidateAllThenOutage: Invalidate("") drops every cached
// decision, so during an outage that follows there is no stale decision:
// the bootstrap answers (BOOTSTRAP) when there is one, else the default
// (DEFAULT), both with UNAVAILABLE.
func TestSequenceInvalidateAllThenOutage(t *testing.T) {
	serverCfg := &evaluate.Config{Environment: caseEnv, Salt: "s", Flags: []evaluate.Flag{
		{Key: "seq", Default: &evaluate.Serve{Variant: true}}}}
	bootCfg := &evaluate.Config{Environment: caseEnv, Salt: "s", Flags: []evaluate.Flag{
		{Key: "seq", Rules: []evaluate.Rule{{ID: "boot", When: "true", Serve: evaluate.Serve{Variant: "false"}}}}}}
	for _, withBootstrap := range []bool{false, true} {
		name := map[bool]string{false: "no-bootstrap", true: "bootstrap"}[withBootstrap]
		t.Run(name, func(t *testing.T) {
			srv := flagtest.NewServer(t, flagtest.WithConfig(serverCfg))
			opts := []flagwire.Option{flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()), flagwire.WithEnvironment(caseEnv),
				flagwire.WithStreaming(false), flagwire.WithTimeout(2 * time.Second)}
			if withBootstrap {
				opts = append(opts, flagwire.WithBootstrap(signedBootstrap(t, bootCfg)), flagwire.WithTrustedKeys(signer.Pub))
			}
			client := newClient(t, opts, false)
			ctx := flagwire.WithAttributes(context.Background(), flagwire.Attributes{"userId": "u1"})
			if v, det := client.BoolDetail(ctx, "seq", false); !v || det.Source != flagwire.SourceRemote || det.Reason.Kind != "STATIC" {
				t.Fatalf("first call = %v, %+v; want true STATIC from REMOTE", v, det)
			}
			if v, det := client.BoolDetail(ctx, "seq", false); !v || det.Source != flagwire.SourceCache {
				t.Fatalf("second call = %v, %+v; want true from CACHE", v, det)
			}
			client.Invalidate("")
			srv.Down()
			v, det := client.BoolDetail(ctx, "seq", false)
			if withBootstrap {
				if v || det.Source != flagwire.SourceBootstrap || det.ErrorCode != flagwire.CodeUnavailable || det.Variant != "false" || det.Reason.RuleID != "boot" {
					t.Errorf("after Invalidate of every flag and an outage = %v, %+v; want false (rule boot) from BOOTSTRAP with UNAVAILABLE", v, det)
				}
			} else if v || det.Source != flagwire.SourceCallerDefault || det.ErrorCode != flagwire.CodeUnavailable || det.Variant != "" {
				t.Errorf("after Invalidate of every flag and an outage = %v, %+v; want the default false from DEFAULT with UNAVAILABLE", v, det)
			}
			if err := srv.Up(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSequencePrerequisiteChangeOverSSE: child depends on base through a
// prerequisite. Turning base off on the server reaches the client over SSE;
// once the client reports base changed, child must be decided anew
// (PREREQUISITE_FAILED), never served from a cached decision made before.
func TestSequencePrerequisiteChangeOverSSE(t *testing.T) {
	base := evaluate.Flag{Key: "base", Rules: []evaluate.Rule{{ID: "r1", When: "plan == 'pro'", Serve: evaluate.Serve{Variant: true}}},
		Default: &evaluate.Serve{Variant: false}}
	child := evaluate.Flag{Key: "child", Prerequisites: []evaluate.Prerequisite{{FlagKey: "base", Variants: []any{true}}},
		Default: &evaluate.Serve{Variant: true}}
	grandchild := evaluate.Flag{Key: "grandchild", Prerequisites: []evaluate.Prerequisite{{FlagKey: "child", Variants: []any{true}}},
		Default: &evaluate.Serve{Variant: true}}
	for _, m := range []struct {
		name string
		mode flagwire.Mode
		src  flagwire.Source
	}{{"remote", flagwire.ModeRemote, flagwire.SourceRemote}, {"local", flagwire.ModeLocal, flagwire.SourceLocal}} {
		t.Run(m.name, func(t *testing.T) {
			cfg := &evaluate.Config{Environment: caseEnv, Salt: "s", Flags: []evaluate.Flag{base, child, grandchild}}
			srv := flagtest.NewServer(t, flagtest.WithConfig(cfg))
			client := newClient(t, []flagwire.Option{flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()),
				flagwire.WithEnvironment(caseEnv), flagwire.WithMode(m.mode), flagwire.WithTimeout(5 * time.Second)}, true)
			ctx := flagwire.WithAttributes(context.Background(), flagwire.Attributes{"userId": "u1", "plan": "pro"})
			for _, key := range []string{"child", "grandchild", "child", "grandchild"} { // decided, then cached
				if v, det := client.BoolDetail(ctx, key, false); !v || det.Reason.Kind != "DEFAULT" || det.ErrorCode != "" {
					t.Fatalf("%s before the change = %v, %+v; want true DEFAULT", key, v, det)
				}
			}
			changed := make(chan struct{}, 16)
			cancel := client.OnFlagChange("base", func(flagwire.FlagChange) {
				select {
				case changed <- struct{}{}:
				default:
				}
			})
			defer cancel()
			testkit.WaitFor(t, 30*time.Second, "the client's SSE stream to connect", func() bool { return srv.Streams() > 0 })
			off := base
			off.State = evaluate.StateOff
			if _, err := srv.SetFlag(caseEnv, off); err != nil {
				t.Fatal(err)
			}
			select {
			case <-changed:
			case <-time.After(30 * time.Second):
				t.Fatal("no change of base reported within 30s")
			}
			if v, det := client.BoolDetail(ctx, "base", true); v || det.Reason.Kind != "OFF" {
				t.Errorf("base after the change = %v, %+v; want false OFF", v, det)
			}
			for _, key := range []string{"child", "grandchild"} {
				v, det := client.BoolDetail(ctx, key, true)
				if v || det.Reason.Kind != "PREREQUISITE_FAILED" || det.Variant != "false" || !reflect.DeepEqual(det.Source, m.src) {
					t.Errorf("%s after its prerequisite changed = %v, %+v; want false PREREQUISITE_FAILED from %v (not a cached decision)", key, v, det, m.src)
				}
			}
		})
	}
}

// TestSequenceUnknownEnvironment: a client for an environment the server
// does not have serves the caller's default with an error code, in every
// mode that talks to the server; in remote mode the code is
// UNKNOWN_ENVIRONMENT (the API's environment_not_found), never
// FLAG_NOT_FOUND.
func TestSequenceUnknownEnvironment(t *testing.T) {
	cf := caseFileNamed(t, "types")
	for _, m := range sdkModes {
		if m.name == "offline" {
			continue
		}
		t.Run(m.name, func(t *testing.T) {
			g := startGroupServer(t, cf)
			opts := append(m.opts(t, g, cf), flagwire.WithEnvironment("no-such-environment"), flagwire.WithTimeout(time.Second))
			client, err := flagwire.New(context.Background(), opts...)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer client.Close(context.Background())
			ctx := flagwire.WithAttributes(context.Background(), flagwire.Attributes{"userId": "u1"})
			v, det := client.BoolDetail(ctx, "t-bool", false)
			if v || det.Source != flagwire.SourceCallerDefault || det.ErrorCode == "" || det.Variant != "" {
				t.Errorf("Bool in an unknown environment = %v, %+v; want the default false from DEFAULT with an error code", v, det)
			}
			if m.name == "remote" && det.ErrorCode != "UNKNOWN_ENVIRONMENT" {
				t.Errorf("remote mode, unknown environment: ErrorCode = %s, want UNKNOWN_ENVIRONMENT", det.ErrorCode)
			}
			t.Logf("unknown environment: %+v", det)
		})
	}
}
