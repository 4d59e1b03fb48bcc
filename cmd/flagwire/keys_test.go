package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/wire"
)

// signBootstrap signs the flags as code in dir as a bootstrap file with a
// new key pair, and returns the file and the public key's file.
func signBootstrap(t *testing.T, dir string) (boot, pubPath string) {
	t.Helper()
	keyPath, pubPath, _ := keygen(t, "k")
	boot = filepath.Join(t.TempDir(), "bootstrap.json")
	mustRun(t, 0, "", "sign", "--key", keyPath, "-o", boot, dir)
	return boot, pubPath
}

// keygen runs `flagwire keygen` for name in a temporary directory and
// returns the key file paths and the printed key id.
func keygen(t *testing.T, name string) (keyPath, pubPath, kid string) {
	t.Helper()
	base := filepath.Join(t.TempDir(), name)
	r := mustRun(t, 0, "", "keygen", base)
	return base + ".key", base + ".pub", strings.TrimSpace(r.stdout)
}

func TestKeygen(t *testing.T) {
	keyPath, pubPath, kid := keygen(t, "prod")
	for path, want := range map[string]os.FileMode{keyPath: 0o600, pubPath: 0o644} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), want)
		}
	}
	keyPEM, _ := os.ReadFile(keyPath)
	if blk, _ := pem.Decode(keyPEM); blk == nil || blk.Type != "PRIVATE KEY" {
		t.Fatalf("private key is not PEM PRIVATE KEY:\n%s", keyPEM)
	}
	pubPEM, _ := os.ReadFile(pubPath)
	if blk, _ := pem.Decode(pubPEM); blk == nil || blk.Type != "PUBLIC KEY" {
		t.Fatalf("public key is not PEM PUBLIC KEY:\n%s", pubPEM)
	}
	// serve --signing-key reads keygen's private key (loadSigningKey), and
	// the pair matches the printed key id.
	priv, err := loadSigningKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := loadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.Public().(ed25519.PublicKey).Equal(pub) || wire.KeyID(pub) != kid || !strings.HasPrefix(kid, "ed25519:") {
		t.Fatalf("key id %q does not match the pair", kid)
	}
	srv, err := flagserver.New(flagserver.Options{SigningKey: priv})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.KeyID() != kid {
		t.Errorf("server key id %s, keygen printed %s", srv.KeyID(), kid)
	}

	t.Run("refuses to overwrite", func(t *testing.T) {
		base := strings.TrimSuffix(keyPath, ".key")
		r := mustRun(t, 2, "", "keygen", base)
		if !strings.Contains(r.stderr, "already exists (use --force") {
			t.Errorf("stderr: %s", r.stderr)
		}
		if b, _ := os.ReadFile(keyPath); !bytes.Equal(b, keyPEM) {
			t.Error("the key was overwritten")
		}
		r = mustRun(t, 0, "", "keygen", "--force", base)
		if strings.TrimSpace(r.stdout) == kid {
			t.Error("--force kept the old key")
		}
	})
	t.Run("bad name", func(t *testing.T) {
		mustRun(t, 2, "", "keygen", filepath.Join(t.TempDir(), "missing", "dir", "k"))
		mustRun(t, 2, "", "keygen", t.TempDir()+"/")
	})
}

func TestParsePublicKey(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	pubPEM, _ := marshalPublicKeyPEM(pub)
	privPEM, _ := marshalPrivateKeyPEM(priv)
	tests := []struct {
		name string
		in   []byte
		err  string
	}{
		{"pem", pubPEM, ""},
		{"raw", pub, ""},
		{"hex", []byte(hex.EncodeToString(pub) + "\n"), ""},
		{"base64 as printed by serve", []byte(base64.StdEncoding.EncodeToString(pub)), ""},
		{"private key", privPEM, "this is a private key"},
		{"other PEM", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), `PEM block "CERTIFICATE"`},
		{"garbage", []byte("not a key"), "not an Ed25519 public key"},
		{"short", pub[:31], "not an Ed25519 public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := parsePublicKey(tt.in)
			if tt.err == "" {
				if err != nil || !k.Equal(pub) {
					t.Fatalf("got %x, %v", k, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

// TestSignVerifyRoundTrip signs the example flags and verifies the file,
// from a path and from standard input.
func TestSignVerifyRoundTrip(t *testing.T) {
	keyPath, pubPath, kid := keygen(t, "prod")
	out := filepath.Join(t.TempDir(), "bootstrap.json")
	r := mustRun(t, 0, "", "sign", "--key", keyPath, "--expires", "720h", "-o", out, exampleFlags(t))
	if !strings.Contains(r.stderr, `signed environment "prod"`) || !strings.Contains(r.stderr, kid) {
		t.Errorf("stderr: %s", r.stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var env wire.BootstrapEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	if env.Format != wire.BootstrapFormat || env.KeyID != kid || env.Environment != "prod" {
		t.Errorf("envelope %+v", env)
	}
	if d := env.ExpiresAt.Sub(env.IssuedAt); d != 720*time.Hour {
		t.Errorf("validity %s, want 720h", d)
	}
	cfg, err := evaluate.DecodeConfigJSON(env.Payload)
	if err != nil || len(cfg.Flags) != 2 || cfg.Salt != "prod-salt-2026" {
		t.Fatalf("payload: %v %+v", err, cfg)
	}

	r = mustRun(t, 0, "", "verify", "--pub", pubPath, out)
	if !strings.HasPrefix(r.stdout, "ok: "+out+`: environment "prod", version 0, 2 flags, 1 segment; signed by `+kid) {
		t.Errorf("stdout: %s", r.stdout)
	}
	mustRun(t, 0, string(data), "verify", "--pub", pubPath, "-")

	t.Run("to stdout", func(t *testing.T) {
		r := mustRun(t, 0, "", "sign", "--key", keyPath, exampleFlags(t))
		mustRun(t, 0, r.stdout, "verify", "--pub", pubPath, "--env", "prod", "-")
	})
	t.Run("from a config JSON file", func(t *testing.T) {
		js := filepath.Join(t.TempDir(), "prod.json")
		writeFile(t, js, string(env.Payload))
		r := mustRun(t, 0, "", "sign", "--key", keyPath, js)
		mustRun(t, 0, r.stdout, "verify", "--pub", pubPath, "-")
	})
	t.Run("from standard input", func(t *testing.T) {
		r := mustRun(t, 0, string(env.Payload), "sign", "--key", keyPath, "-")
		mustRun(t, 0, r.stdout, "verify", "--pub", pubPath, "-")
	})
	t.Run("from one YAML file", func(t *testing.T) {
		r := mustRun(t, 0, "", "sign", "--key", keyPath, "testdata/lint/warnings/flags.yaml")
		v := mustRun(t, 0, r.stdout, "verify", "--pub", pubPath, "-")
		if !strings.Contains(v.stdout, `environment "staging", version 0, 2 flags, 0 segments`) {
			t.Errorf("verify: %s", v.stdout)
		}
	})
	t.Run("rotation: any trusted key", func(t *testing.T) {
		_, otherPub, _ := keygen(t, "next")
		mustRun(t, 0, "", "verify", "--pub", otherPub, "--pub", pubPath, out)
	})
	t.Run("server bootstrap verifies with the key serve prints", func(t *testing.T) {
		srv := startFlags(t, exampleFlags(t))
		pubFile := filepath.Join(t.TempDir(), "server.pub")
		writeFile(t, pubFile, base64.StdEncoding.EncodeToString(srv.Flagserver().PublicKey())+"\n")
		req, _ := http.NewRequest("GET", srv.URL+"/v1/bootstrap?environment=prod&ttl=1h", nil)
		req.Header.Set("Authorization", "Bearer "+srv.Token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		mustRun(t, 0, string(body), "verify", "--pub", pubFile, "-")
	})
}

// TestVerifyDetectsTampering changes a signed bootstrap in every way that
// matters and checks that verify refuses it with the reason.
func TestVerifyDetectsTampering(t *testing.T) {
	keyPath, pubPath, _ := keygen(t, "prod")
	_, otherPub, otherKid := keygen(t, "other")
	good := mustRun(t, 0, "", "sign", "--key", keyPath, "--expires", "24h", exampleFlags(t)).stdout
	var env wire.BootstrapEnvelope
	if err := json.Unmarshal([]byte(good), &env); err != nil {
		t.Fatal(err)
	}
	edit := func(fn func(e *wire.BootstrapEnvelope)) string {
		e := env
		e.Payload = bytes.Clone(env.Payload)
		e.Signature = bytes.Clone(env.Signature)
		fn(&e)
		b, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name  string
		input string
		args  []string
		want  string
	}{
		{"payload changed", edit(func(e *wire.BootstrapEnvelope) {
			e.Payload = bytes.Replace(e.Payload, []byte(`"percentage":10`), []byte(`"percentage":100`), 1)
		}), nil, "bad signature"},
		{"expiry extended", edit(func(e *wire.BootstrapEnvelope) { e.ExpiresAt = e.ExpiresAt.Add(365 * 24 * time.Hour) }), nil, "bad signature"},
		{"environment changed", edit(func(e *wire.BootstrapEnvelope) { e.Environment = "staging" }), nil, "bad signature"},
		{"version changed", edit(func(e *wire.BootstrapEnvelope) { e.Version = 7 }), nil, "bad signature"},
		{"signature flipped", edit(func(e *wire.BootstrapEnvelope) { e.Signature[0] ^= 1 }), nil, "bad signature"},
		{"key id of another trusted key", edit(func(e *wire.BootstrapEnvelope) { e.KeyID = otherKid }), []string{"--pub", otherPub}, "bad signature"},
		{"unknown key", good, []string{"--pub", otherPub}, `unknown key id "` + env.KeyID + `" (trusted: ` + otherKid + ")"},
		{"expired", good, []string{"--now", time.Now().Add(25 * time.Hour).UTC().Format(time.RFC3339)}, "bootstrap: expired at"},
		{"issued in the future", good, []string{"--now", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "issued in the future"},
		{"wrong environment", good, []string{"--env", "staging"}, `is for environment "prod", not "staging"`},
		{"truncated", good[:len(good)/2], nil, "malformed envelope"},
		{"not JSON", "hello", nil, "malformed envelope"},
		{"empty", "", nil, "malformed envelope"},
		{"no signature", edit(func(e *wire.BootstrapEnvelope) { e.Signature = nil }), nil, "signature is 0 bytes"},
		{"other format", edit(func(e *wire.BootstrapEnvelope) { e.Format = "v0" }), nil, `format "v0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"verify"}
			if !strings.Contains(strings.Join(tt.args, " "), "--pub") {
				args = append(args, "--pub", pubPath)
			}
			args = append(append(args, tt.args...), "-")
			r := mustRun(t, 1, tt.input, args...)
			if !strings.Contains(r.stderr, tt.want) || !strings.HasPrefix(r.stderr, "flagwire: verify -: ") {
				t.Errorf("stderr lacks %q: %s", tt.want, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	keyPath, _, _ := keygen(t, "k")
	twoEnvs := t.TempDir()
	writeFile(t, filepath.Join(twoEnvs, "a.yaml"), "flagKey: a\nenvironment: dev\n")
	writeFile(t, filepath.Join(twoEnvs, "b.yaml"), "flagKey: b\nenvironment: prod\n")
	broken := t.TempDir()
	writeFile(t, filepath.Join(broken, "f.yaml"), "flagKey: f\nenvironment: prod\nrules:\n  - id: r\n    segment: nobody\n    variant: true\n")
	badJSON := filepath.Join(t.TempDir(), "c.json")
	writeFile(t, badJSON, `{"environment":"prod","flags":[{"key":"x","bogus":1}]}`)
	tests := []struct {
		name string
		code int
		args []string
		want string
	}{
		{"no key", 2, []string{"sign", twoEnvs}, `required flag(s) "key" not set`},
		{"missing key", 2, []string{"sign", "--key", "/nonexistent/k.key", twoEnvs}, "--key /nonexistent/k.key"},
		{"not a key", 2, []string{"sign", "--key", badJSON, twoEnvs}, "signing key: want PEM"},
		{"too long", 2, []string{"sign", "--key", keyPath, "--expires", "9000h", twoEnvs}, "--expires 9000h0m0s"},
		{"negative", 2, []string{"sign", "--key", keyPath, "--expires", "-1h", twoEnvs}, "positive duration"},
		{"two environments", 2, []string{"sign", "--key", keyPath, twoEnvs}, "defines several environments (dev, prod): choose one with --env"},
		{"unknown environment", 2, []string{"sign", "--key", keyPath, "--env", "qa", twoEnvs}, `environment "qa" is not defined`},
		{"does not compile", 1, []string{"sign", "--key", keyPath, broken}, "/f.yaml:5:14: error: flag \"f\" rule \"r\" segment: references unknown segment"},
		{"bad config JSON", 1, []string{"sign", "--key", keyPath, badJSON}, "c.json:1:"},
		{"missing input", 2, []string{"sign", "--key", keyPath, "/nonexistent"}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, tt.code, "", tt.args...)
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr lacks %q: %s", tt.want, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout not empty: %s", r.stdout)
			}
		})
	}
	mustRun(t, 0, "", "sign", "--key", keyPath, "--env", "dev", twoEnvs)
}

func TestVerifyUsageErrors(t *testing.T) {
	_, pubPath, _ := keygen(t, "k")
	wantUsageErrors(t, []usageCase{
		{"missing file", []string{"verify", "--pub", pubPath, "/nonexistent.json"}, "no such file"},
		{"missing key", []string{"verify", "--pub", "/nonexistent.pub", "-"}, "--pub open /nonexistent.pub"},
		{"bad now", []string{"verify", "--pub", pubPath, "--now", "soon", "-"}, `--now "soon"`},
	})
}

// TestBootstrapMatchesServer checks that a bootstrap signed from flags as
// code holds the same config the server builds from the same files.
func TestBootstrapMatchesServer(t *testing.T) {
	dir := exampleFlags(t)
	srv := flagtest.NewServer(t, flagtest.WithYAMLDir(os.DirFS(dir), "."))
	keyPath, pubPath, _ := keygen(t, "k")
	boot := mustRun(t, 0, "", "sign", "--key", keyPath, dir).stdout
	pub, _ := loadPublicKey(pubPath)
	_, cfg, err := openBootstrap([]byte(boot), map[string]ed25519.PublicKey{wire.KeyID(pub): pub}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	snap, ok := srv.Flagserver().Snapshot("prod")
	if !ok {
		t.Fatal("no prod")
	}
	want, _ := json.Marshal(snap.Config())
	got, _ := json.Marshal(cfg)
	if !bytes.Equal(got, want) {
		t.Errorf("bootstrap config\n%s\nserver config\n%s", got, want)
	}
}

// TestSignedBootstrapServesTheSDK: the SDK accepts what sign writes, in
// offline mode, and decides as eval does.
func TestSignedBootstrapServesTheSDK(t *testing.T) {
	dir := exampleFlags(t)
	boot, pubPath := signBootstrap(t, dir)
	pub, err := loadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client, err := flagwire.New(ctx, flagwire.WithMode(flagwire.ModeOffline), flagwire.WithEnvironment("prod"),
		flagwire.WithBootstrapFile(boot), flagwire.WithTrustedKeys(pub))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(ctx)
	for _, attrs := range []flagwire.Attributes{
		{"userId": "8a7f4c91", "plan": "pro", "region": "US"},
		{"userId": "8a7f4c91", "plan": "free"},
		{"userId": "c0ffee42"},
	} {
		args := []string{"eval", "checkout-new-flow", "--format", "json", "--bootstrap", boot, "--pub", pubPath}
		for k, v := range attrs {
			args = append(args, "--attr", k+"="+v.(string))
		}
		var d wire.Decision
		if err := json.Unmarshal([]byte(mustRun(t, 0, "", args...).stdout), &d); err != nil {
			t.Fatal(err)
		}
		got := client.Bool(flagwire.WithAttributes(ctx, attrs), "checkout-new-flow", string(d.Variant) != "true")
		if want := string(d.Variant) == "true"; got != want {
			t.Errorf("%v: SDK says %v, eval says %s", attrs, got, d.Variant)
		}
	}
}
