package wire

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Key32 reads the 32 bytes of an Ed25519 key given raw, as hex or as
// base64 (surrounding space ignored): a public key, or a private key's
// seed. ok is false for anything else.
func Key32(b []byte) (key []byte, ok bool) {
	if len(b) == 32 {
		return b, true
	}
	s := strings.TrimSpace(string(b))
	if k, err := hex.DecodeString(s); err == nil && len(k) == 32 {
		return k, true
	}
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) == 32 {
		return k, true
	}
	return nil, false
}

// PrivateKeyPKCS8 reads the DER body of a "PRIVATE KEY" PEM block as an
// Ed25519 private key.
func PrivateKeyPKCS8(der []byte) (ed25519.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%T is not Ed25519", k)
	}
	return ek, nil
}
