package flagserver

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

// TestDataDirKeepsSigningKey: a Server with DataDir and no SigningKey keeps
// its bootstrap key in DataDir/signing-key.pem (0600) and reuses it.
func TestDataDirKeepsSigningKey(t *testing.T) {
	dir := t.TempDir()
	s1, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	pub1 := s1.PublicKey()
	s1.Close()
	fi, err := os.Stat(filepath.Join(dir, SigningKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", fi, err)
	}
	s2, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !s2.PublicKey().Equal(pub1) {
		t.Fatal("a restart changed the signing key")
	}
	key, created, err := LoadOrCreateSigningKey(dir)
	if err != nil || created || !key.Public().(ed25519.PublicKey).Equal(pub1) {
		t.Fatalf("LoadOrCreateSigningKey: created %v err %v", created, err)
	}
	for name, body := range map[string]string{
		"not PEM":      "garbage",
		"bad PKCS #8":  "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"wrong blocks": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	} {
		t.Run(name, func(t *testing.T) {
			d := t.TempDir()
			os.WriteFile(filepath.Join(d, SigningKeyFile), []byte(body), 0o600)
			if _, err := New(Options{DataDir: d}); err == nil || !strings.Contains(err.Error(), filepath.Join(d, SigningKeyFile)) {
				t.Fatalf("err %v, want one naming the key file", err)
			}
		})
	}
}

// TestRotateSigningKey: Options.RotateSigningKey makes a new current key
// in the data dir; GET /v1/keys lists it first and the replaced one after
// it, across restarts, so an envelope signed before the rotation verifies
// with a listed key.
func TestRotateSigningKey(t *testing.T) {
	dir := t.TempDir()
	ts := newTestServer(t, Options{DataDir: dir})
	old := ts.PublicKey()
	r := ts.do("GET", "/v1/bootstrap?environment=prod", "")
	r.wantStatus(t, 200)
	var env wire.BootstrapEnvelope
	r.json(t, &env)
	ts.close()

	keysOf := func(ts *testServer) wire.KeysResponse {
		var k wire.KeysResponse
		ts.do("GET", "/v1/keys", "").json(t, &k)
		return k
	}
	ts = newTestServer(t, Options{DataDir: dir, RotateSigningKey: true})
	if ts.PublicKey().Equal(old) {
		t.Fatal("the rotation kept the key")
	}
	for restart := range 2 {
		k := keysOf(ts)
		if len(k.Keys) != 2 || !k.Keys[0].Current || k.Keys[1].Current ||
			!ed25519.PublicKey(k.Keys[0].PublicKey).Equal(ts.PublicKey()) || !ed25519.PublicKey(k.Keys[1].PublicKey).Equal(old) ||
			k.Keys[1].KeyID != wire.KeyID(old) {
			t.Fatalf("restart %d: GET /v1/keys %s", restart, mustJSON(k))
		}
		trusted := map[string]ed25519.PublicKey{}
		for _, key := range k.Keys {
			trusted[key.KeyID] = key.PublicKey
		}
		if err := env.Verify(trusted, time.Now()); err != nil {
			t.Fatalf("an envelope signed before the rotation: %v", err)
		}
		ts.close()
		ts = newTestServer(t, Options{DataDir: dir})
	}
	if _, err := New(Options{DataDir: t.TempDir(), RotateSigningKey: true, SigningKey: ed25519.NewKeyFromSeed(make([]byte, 32))}); err == nil {
		t.Fatal("RotateSigningKey with SigningKey set was accepted")
	}
}
