package wire

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

// Bootstrap verification errors. Verify wraps them with detail.
var (
	ErrBootstrapFormat     = errors.New("bootstrap: malformed envelope")
	ErrBootstrapUnknownKey = errors.New("bootstrap: unknown key id")
	ErrBootstrapSignature  = errors.New("bootstrap: bad signature")
	ErrBootstrapExpired    = errors.New("bootstrap: expired")
	ErrBootstrapNotYet     = errors.New("bootstrap: issued in the future")
)

// KeyID derives a key id from a public key: "ed25519:" and the first 8
// bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

// SigningInput returns the bytes an envelope's signature covers: every
// field but the signature, length-prefixed so that no two envelopes share
// an input.
func (e *BootstrapEnvelope) SigningInput() []byte {
	var b []byte
	field := func(s []byte) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	field([]byte(e.Format))
	field([]byte(e.KeyID))
	field([]byte(e.Environment))
	field([]byte(e.IssuedAt.UTC().Format(time.RFC3339Nano)))
	field([]byte(e.ExpiresAt.UTC().Format(time.RFC3339Nano)))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Version))
	field(e.Payload)
	return b
}

// Sign fills in Format and KeyID and signs the envelope with priv.
func (e *BootstrapEnvelope) Sign(priv ed25519.PrivateKey) {
	e.Format = BootstrapFormat
	e.KeyID = KeyID(priv.Public().(ed25519.PublicKey))
	e.IssuedAt = e.IssuedAt.UTC()
	e.ExpiresAt = e.ExpiresAt.UTC()
	e.Signature = ed25519.Sign(priv, e.SigningInput())
}

// Verify checks the envelope against the trusted keys (by key id) at time
// now. It does not look inside the payload.
func (e *BootstrapEnvelope) Verify(keys map[string]ed25519.PublicKey, now time.Time) error {
	if e.Format != BootstrapFormat {
		return fmt.Errorf("%w: format %q, want %q", ErrBootstrapFormat, e.Format, BootstrapFormat)
	}
	if len(e.Payload) == 0 {
		return fmt.Errorf("%w: no payload", ErrBootstrapFormat)
	}
	if len(e.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrBootstrapFormat, len(e.Signature), ed25519.SignatureSize)
	}
	pub, ok := keys[e.KeyID]
	if !ok {
		return fmt.Errorf("%w %q", ErrBootstrapUnknownKey, e.KeyID)
	}
	if !ed25519.Verify(pub, e.SigningInput(), e.Signature) {
		return fmt.Errorf("%w (key %s)", ErrBootstrapSignature, e.KeyID)
	}
	if !e.ExpiresAt.IsZero() && !now.Before(e.ExpiresAt) {
		return fmt.Errorf("%w at %s", ErrBootstrapExpired, e.ExpiresAt.Format(time.RFC3339))
	}
	if e.IssuedAt.After(now.Add(5 * time.Minute)) {
		return fmt.Errorf("%w (%s)", ErrBootstrapNotYet, e.IssuedAt.Format(time.RFC3339))
	}
	return nil
}

// DecodeEnvelope parses a bootstrap envelope strictly: one JSON object,
// member names exactly as specified (case-sensitive), no unknown or
// duplicate members, nothing after it. Every consumer (the SDK, the CLI)
// uses it, so no two parsers can disagree about which bytes were signed.
func DecodeEnvelope(data []byte) (*BootstrapEnvelope, error) {
	var env BootstrapEnvelope
	if err := jsonv2.Unmarshal(data, &env, jsonv2.RejectUnknownMembers(true)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBootstrapFormat, err)
	}
	return &env, nil
}
