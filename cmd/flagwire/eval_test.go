package main

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/internal/wire"
)

// TestEvalAgreesWithServer evaluates the example flags for a table of
// contexts from the server, from the flags as code and from a signed
// bootstrap of them, and checks that the three decisions agree: value,
// variant, reason, bucket and payload.
func TestEvalAgreesWithServer(t *testing.T) {
	dir := exampleFlags(t)
	srv := startFlags(t, dir)
	boot, pubPath := signBootstrap(t, dir)

	tests := []struct {
		name       string
		flag       string
		attrs      []string
		wantValue  string
		wantReason string
	}{
		{"seed: pro in the US", "checkout-new-flow", []string{"userId=8a7f4c91", "plan=pro", "region=US"}, "true", "RULE_MATCH"},
		{"beta tester", "checkout-new-flow", []string{"userId=c0ffee42", "plan=free"}, "true", "SEGMENT_MATCH"},
		{"rollout", "checkout-new-flow", []string{"userId=8a7f4c91", "plan=free"}, "", "ROLLOUT"},
		{"rollout, other user", "checkout-new-flow", []string{"userId=u-42", "region=EU"}, "", "ROLLOUT"},
		{"no bucketing attribute", "checkout-new-flow", []string{"plan=free"}, "false", "DEFAULT"},
		{"seed: pricing in DE", "pricing-experiment", []string{"accountId=acme-co-1337", "country=DE", "currency=EUR"}, "", "RULE_MATCH"},
		{"pricing outside the test", "pricing-experiment", []string{"accountId=acme-co-1337", "country=US"}, `"control"`, "DEFAULT"},
		{"typed attributes", "checkout-new-flow", []string{"userId:=12345", "plan=pro", "region=US", "beta:=true"}, "true", "RULE_MATCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			for _, a := range tt.attrs {
				args = append(args, "--attr", a)
			}
			decide := func(source ...string) wire.Decision {
				t.Helper()
				r := mustRun(t, 0, "", append(append([]string{"eval", tt.flag, "--format", "json"}, args...), source...)...)
				var d wire.Decision
				if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
					t.Fatalf("%v: %s", err, r.stdout)
				}
				return d
			}
			remote := decide("--server", srv.URL)
			local := decide("--flags", dir)
			fromBoot := decide("--bootstrap", boot, "--pub", pubPath)
			if remote.Reason == nil || remote.Reason.Kind != tt.wantReason {
				t.Errorf("server reason %+v, want %s", remote.Reason, tt.wantReason)
			}
			if tt.wantValue != "" && string(remote.Variant) != tt.wantValue {
				t.Errorf("server value %s, want %s", remote.Variant, tt.wantValue)
			}
			for name, d := range map[string]wire.Decision{"--flags": local, "--bootstrap": fromBoot} {
				if string(d.Variant) != string(remote.Variant) || d.VariantKey != remote.VariantKey ||
					!reflect.DeepEqual(d.Reason, remote.Reason) || !reflect.DeepEqual(d.Bucketing, remote.Bucketing) ||
					compactJSON(d.Payload) != compactJSON(remote.Payload) {
					t.Errorf("%s disagrees with the server:\n local  %+v %+v %+v\n server %+v %+v %+v",
						name, d, d.Reason, d.Bucketing, remote, remote.Reason, remote.Bucketing)
				}
			}
			if tt.wantReason == "ROLLOUT" && (remote.Bucketing == nil || remote.Reason.Bucket == nil) {
				t.Errorf("a rollout without its bucket: %+v", remote)
			}
		})
	}
}

// TestEvalHuman checks the readable output and --explain.
func TestEvalHuman(t *testing.T) {
	dir := exampleFlags(t)
	srv := startFlags(t, dir)
	for _, source := range [][]string{{"--flags", dir}, {"--server", srv.URL}} {
		t.Run(source[0], func(t *testing.T) {
			r := mustRun(t, 0, "", append([]string{"eval", "checkout-new-flow", "--attr", "userId=8a7f4c91", "--attr", "plan=free", "--explain"}, source...)...)
			for _, want := range []string{
				"checkout-new-flow = false\n",
				"  reason   ROLLOUT\n",
				"  bucket   74328 of 100000 (seed \"checkout-new-flow\", by userId, hash ",
				"explain:\n  1. - rule rule-1: condition false: plan == 'pro' and region == 'US'\n",
				"  2. - rule rule-2: not in segment beta_testers\n",
				"  3. ✓ default: no rule matched: serving false (bucket 74328 of 100000)\n",
				"  source   ",
			} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("output lacks %q:\n%s", want, r.stdout)
				}
			}
			r = mustRun(t, 0, "", append([]string{"eval", "pricing-experiment", "--attr", "accountId=acme-co-1337", "--attr", "country=DE"}, source...)...)
			if !strings.Contains(r.stdout, `  payload  {"currency":"EUR","price":`) || !strings.Contains(r.stdout, "(rule eu-price-test)") {
				t.Errorf("output:\n%s", r.stdout)
			}
		})
	}
}

func TestEvalErrors(t *testing.T) {
	dir := exampleFlags(t)
	srv := startFlags(t, dir)
	boot, pubPath := signBootstrap(t, dir)
	_, otherPub, _ := keygen(t, "other")
	tests := []struct {
		name string
		code int
		args []string
		want string
	}{
		{"unknown flag offline", 1, []string{"eval", "nope", "--flags", dir}, `FLAG_NOT_FOUND: flag "nope" not found in environment "prod"`},
		{"unknown flag on the server", 1, []string{"eval", "nope", "--server", srv.URL}, `FLAG_NOT_FOUND: flag "nope" not found in environment "prod"`},
		{"no source", 2, []string{"eval", "x"}, "at least one of the flags in the group [server flags bootstrap] is required"},
		{"two sources", 2, []string{"eval", "x", "--flags", dir, "--server", srv.URL}, "none of the others can be"},
		{"no flag", 2, []string{"eval", "--flags", dir}, "accepts 1 arg"},
		{"bad attr", 2, []string{"eval", "x", "--flags", dir, "--attr", "plan"}, `--attr "plan": want NAME=VALUE`},
		{"bad JSON attr", 2, []string{"eval", "x", "--flags", dir, "--attr", "age:=forty"}, "not a JSON value"},
		{"now on the server", 2, []string{"eval", "x", "--server", srv.URL, "--now", "2026-01-01"}, "--now works offline only"},
		{"pub without bootstrap", 2, []string{"eval", "x", "--flags", dir, "--pub", pubPath}, "--pub goes with --bootstrap"},
		{"bootstrap without pub", 2, []string{"eval", "x", "--bootstrap", boot}, "--pub is required"},
		{"bootstrap untrusted", 1, []string{"eval", "x", "--bootstrap", boot, "--pub", otherPub}, "unknown key id"},
		{"bootstrap other env", 2, []string{"eval", "x", "--bootstrap", boot, "--pub", pubPath, "--env", "dev"}, `is for environment "prod", not "dev"`},
		{"unknown env on the server", 1, []string{"eval", "x", "--server", srv.URL, "--env", "qa"}, "environment_not_found"},
		{"bad format", 2, []string{"eval", "x", "--flags", dir, "--format", "yaml"}, `--format "yaml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, tt.code, "", tt.args...)
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, r.stderr)
			}
		})
	}
}

// TestEvalTokenHints: a 401 says how to give a token when none was sent,
// and that the one sent was refused otherwise.
func TestEvalTokenHints(t *testing.T) {
	srv := startFlags(t, exampleFlags(t))
	t.Setenv(tokenEnv, "")
	r := mustRun(t, 1, "", "eval", "checkout-new-flow", "--server", srv.URL)
	if want := "no token sent: set FLAGWIRE_TOKEN"; !strings.Contains(r.stderr, want) {
		t.Errorf("without a token, stderr lacks %q:\n%s", want, r.stderr)
	}
	t.Setenv(tokenEnv, "wrong")
	r = mustRun(t, 1, "", "eval", "checkout-new-flow", "--server", srv.URL)
	if want := "the server refused the token in FLAGWIRE_TOKEN"; !strings.Contains(r.stderr, want) {
		t.Errorf("with a wrong token, stderr lacks %q:\n%s", want, r.stderr)
	}
}

func TestParseAttrs(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string // JSON, or "error: …"
	}{
		{"strings", []string{"userId=8a7f4c91", "plan=pro"}, `{"plan":"pro","userId":"8a7f4c91"}`},
		{"string that looks like a number", []string{"userId=12345"}, `{"userId":"12345"}`},
		{"empty value", []string{"note="}, `{"note":""}`},
		{"equals in value", []string{"q=a=b"}, `{"q":"a=b"}`},
		{"json number", []string{"age:=42"}, `{"age":42}`},
		{"json bool and list", []string{"beta:=true", "tags:=[\"a\",\"b\"]"}, `{"beta":true,"tags":["a","b"]}`},
		{"json string", []string{`plan:="pro"`}, `{"plan":"pro"}`},
		{"nested", []string{"device.os=ios", "device.version:=17"}, `{"device":{"os":"ios","version":17}}`},
		{"no equals", []string{"plan"}, "error: want NAME=VALUE"},
		{"no name", []string{"=x"}, "error: want NAME=VALUE"},
		{"bad json", []string{"age:=forty"}, "error: not a JSON value"},
		{"trailing json", []string{"age:=1 2"}, "error: not a JSON value"},
		{"twice", []string{"a=1", "a=2"}, "error: a is set twice"},
		{"object and value", []string{"a=1", "a.b=2"}, "error: a is already set to a value"},
		{"empty segment", []string{"a..b=1"}, "error: empty name segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAttrs(tt.in)
			if msg, isErr := strings.CutPrefix(tt.want, "error: "); isErr {
				if err == nil || !strings.Contains(err.Error(), msg) || exitCode(err) != exitUsage {
					t.Fatalf("err = %v, want %q", err, msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(got)
			if string(b) != tt.want {
				t.Errorf("got %s, want %s", b, tt.want)
			}
		})
	}
}

// FuzzParseAttrs: --attr parsing never panics.
func FuzzParseAttrs(f *testing.F) {
	f.Add("userId=8a7f4c91", "device.os:=\"ios\"")
	f.Add("a.b=1", "a=2")
	f.Fuzz(func(t *testing.T, a, b string) {
		parseAttrs([]string{a, b})
	})
}

// TestEvalFlagMetadata: "flagwire eval" shows a flag's flagMetadata, the
// same from the files and from a server.
func TestEvalFlagMetadata(t *testing.T) {
	dir := exampleFlags(t)
	writeFile(t, filepath.Join(dir, "release-gate.yaml"), "flagKey: release-gate\nenvironment: prod\nowners: [web]\ndefault: {variant: true}\nflagMetadata:\n  release: 1.0.2\n  build: 2\n  beta: true\n")
	srv := startFlags(t, dir)
	for _, source := range [][]string{{"--flags", dir}, {"--server", srv.URL}} {
		t.Run(source[0], func(t *testing.T) {
			r := mustRun(t, 0, "", append([]string{"eval", "release-gate", "--attr", "userId=u1"}, source...)...)
			if want := "  metadata {\"beta\":true,\"build\":2,\"release\":\"1.0.2\"}\n"; !strings.Contains(r.stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, r.stdout)
			}
		})
	}
}
