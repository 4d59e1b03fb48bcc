package flagserver

import (
	"context"
	"crypto/ed25519"

	"github.com/flagwire/flagwire/internal/wire"
)

// keyring is a server's signing keys: sign signs bootstrap envelopes and
// minted tokens; all are the keys clients may trust (GET /v1/keys), sign
// first, then those a rotation replaced.
type keyring struct {
	sign ed25519.PrivateKey
	all  []ed25519.PrivateKey
}

// reloadSigningKeys reads the store's signing keys and, when another
// replica rotated them (flagwire serve --rotate-signing-key), signs with
// the new key from now on and lists every key. Replicas poll for this
// every Options.PollInterval, so a rotation reaches all of them without a
// restart. A server whose key is Options.SigningKey keeps it.
func (s *Server) reloadSigningKeys(ctx context.Context) error {
	if !s.keysFromStore {
		return nil
	}
	keys, err := s.store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	cur := s.keys.Load()
	if len(keys) == 0 || (keys[0].Equal(cur.sign) && len(keys) == len(cur.all)) {
		return nil
	}
	s.keys.Store(&keyring{sign: keys[0], all: keys})
	s.auth.mint.useKeys(keys)
	s.log.Info("flagserver: signing with the store's new key (rotated by another replica)",
		"keyId", wire.KeyID(keys[0].Public().(ed25519.PublicKey)), "keys", len(keys))
	return nil
}
