package testkit

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// Signer signs bootstrap (and last-known) envelopes with a fresh Ed25519
// key: trust Pub in the client under test. Two Signers never share a key.
type Signer struct {
	Pub  ed25519.PublicKey
	Priv ed25519.PrivateKey
}

// NewSigner returns a Signer with a new random key.
func NewSigner() Signer {
	pub, priv, err := ed25519.GenerateKey(nil) // crypto/rand: never fails
	if err != nil {
		panic("testkit: " + err.Error())
	}
	return Signer{Pub: pub, Priv: priv}
}

// Envelope signs cfg as a flagwire-bootstrap/v1 envelope valid from issued
// for ttl, with cfg's Environment and Version. Unlike bootstrap.Sign it
// does not compile cfg, so a test can sign a config the client must
// refuse. It fails t if cfg does not marshal.
func (s Signer) Envelope(t testing.TB, cfg *evaluate.Config, issued time.Time, ttl time.Duration) []byte {
	t.Helper()
	payload, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := wire.BootstrapEnvelope{Environment: cfg.Environment, IssuedAt: issued, ExpiresAt: issued.Add(ttl), Version: cfg.Version, Payload: payload}
	e.Sign(s.Priv)
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
