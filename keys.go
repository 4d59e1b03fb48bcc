package flagwire

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/flagwire/flagwire/internal/wire"
)

// ParsePublicKey reads an Ed25519 public key for WithTrustedKeys in the
// forms Flagwire's tools write: the PEM "PUBLIC KEY" (PKIX) file that
// `flagwire keygen` writes (NAME.pub), or the 32-byte key raw, as hex, or
// as base64 (what `flagwire serve` prints at start). A private key, another
// key type or anything else is an error saying what it is.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "PUBLIC KEY" {
			if strings.Contains(blk.Type, "PRIVATE") {
				return nil, errors.New("this is a private key: pass the public key (the .pub file written by flagwire keygen)")
			}
			return nil, fmt.Errorf("PEM block %q, want %q", blk.Type, "PUBLIC KEY")
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		ek, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key: %T is not Ed25519", k)
		}
		return ek, nil
	}
	if k, ok := wire.Key32(b); ok {
		return ed25519.PublicKey(k), nil
	}
	return nil, errors.New("not an Ed25519 public key: want PEM (PUBLIC KEY) or 32 bytes (raw, hex or base64)")
}
