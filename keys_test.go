package flagwire

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"
)

// TestParsePublicKey: the forms Flagwire's tools write, built here with
// the standard library (PKIX PEM as keygen writes it; base64 as serve
// prints it; hex; raw), are read back as the same key; other inputs are
// refused saying what they are.
func TestParsePublicKey(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{
		"PEM (keygen's NAME.pub)": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"base64 (serve's banner)": []byte(base64.StdEncoding.EncodeToString(pub) + "\n"),
		"hex":                     []byte(hex.EncodeToString(pub)),
		"raw":                     pub,
	} {
		k, err := ParsePublicKey(in)
		if err != nil || !k.Equal(pub) {
			t.Errorf("%s: %v, %v", name, k, err)
		}
	}
	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"private key": {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), "private key"},
		"garbage":     {[]byte("not a key"), "not an Ed25519 public key"},
	} {
		if _, err := ParsePublicKey(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to say %q", name, err, tc.want)
		}
	}
}
