package flagserver

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
