// Package bootstrap makes signed bootstrap files: the Ed25519-signed config
// snapshots that a Flagwire client serves before its first good answer
// from the server, and that offline mode serves alone
// (flagwire.WithBootstrapFile, flagwire.WithBootstrap).
//
// The format is the one of the server's GET /v1/bootstrap and of
// `flagwire sign`. It is tooling for build pipelines, tests and the
// server: a service that only evaluates flags does not need this package.
package bootstrap

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// Sign builds a signed bootstrap envelope for cfg, valid from issued for
// ttl. cfg must compile; its Environment and Version go into the envelope,
// and a client refuses an envelope older than the config it holds.
func Sign(cfg *evaluate.Config, priv ed25519.PrivateKey, issued time.Time, ttl time.Duration) ([]byte, error) {
	if cfg == nil {
		return nil, errors.New("bootstrap: Sign: nil config")
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("bootstrap: Sign: not an Ed25519 private key")
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
// ("ed25519:" and 16 hex digits), as `flagwire keygen` prints it and as
// envelopes name their signing key.
func KeyID(pub ed25519.PublicKey) string { return wire.KeyID(pub) }
