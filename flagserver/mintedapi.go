package flagserver

import (
	"context"
	"time"
)

// MintedTokenStore keeps the ids of the public-client tokens a Server
// minted (POST /v1/tokens), so that every replica on the store accepts
// them and a revoked one is refused everywhere. It is part of Store.
type MintedTokenStore interface {
	// RecordMintedToken stores t under t.ID (a new, random id). Stores
	// may remove records that expired before t.IssuedAt (the server's
	// clock).
	RecordMintedToken(ctx context.Context, t MintedToken) error
	// MintedToken returns the record stored under id; ok is false when
	// there is none (never minted, or expired and removed).
	MintedToken(ctx context.Context, id string) (t MintedToken, ok bool, err error)
	// RevokeMintedToken marks the record of id revoked and reports
	// whether there was one.
	RevokeMintedToken(ctx context.Context, id string) (bool, error)
}

// MintedToken is the record of a minted public-client token: everything
// but the token itself, which is never stored.
type MintedToken struct {
	// ID is the token's "jti".
	ID string
	// Subject is the principal that minted it.
	Subject     string
	Environment string
	Flags       []string
	Attributes  []string
	IssuedAt    time.Time
	ExpiresAt   time.Time
	Revoked     bool
}
