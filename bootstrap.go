package flagwire

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// SignBootstrap builds a signed bootstrap envelope for cfg — the format of
// GET /v1/bootstrap and `flagwire sign` — valid from issued for ttl. Use it
// to ship a bootstrap file with a service or to make one in tests. cfg must
// compile; its Environment and Version go into the envelope.
func SignBootstrap(cfg *evaluate.Config, priv ed25519.PrivateKey, issued time.Time, ttl time.Duration) ([]byte, error) {
	if cfg == nil {
		return nil, errors.New("flagwire: SignBootstrap: nil config")
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("flagwire: SignBootstrap: not an Ed25519 private key")
	}
	if _, err := evaluate.Compile(cfg); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	env := wire.BootstrapEnvelope{Environment: cfg.Environment, Version: cfg.Version, IssuedAt: issued, ExpiresAt: issued.Add(ttl), Payload: payload}
	env.Sign(priv)
	return json.Marshal(env)
}

// KeyID returns the key id under which pub verifies bootstrap files
// ("ed25519:" and 16 hex digits), as printed by `flagwire keygen`.
func KeyID(pub ed25519.PublicKey) string { return wire.KeyID(pub) }
