package pgstore

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/flagwire/flagwire/flagserver"
)

// mintedMigration creates the table of minted public-client token ids
// (flagserver.MintedTokenStore): schema version 4.
const mintedMigration = `
CREATE TABLE IF NOT EXISTS flagwire_minted_tokens (
	id          text        PRIMARY KEY,
	subject     text        NOT NULL,
	env         text        NOT NULL,
	flags       text[]      NOT NULL,
	attributes  text[]      NOT NULL,
	issued_at   timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL,
	revoked     boolean     NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS flagwire_minted_tokens_expires ON flagwire_minted_tokens (expires_at);
`

// RecordMintedToken implements flagserver.MintedTokenStore. It removes a
// bounded number of records that expired before t.IssuedAt first.
func (st *Store) RecordMintedToken(ctx context.Context, t flagserver.MintedToken) error {
	err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM flagwire_minted_tokens WHERE id IN
			(SELECT id FROM flagwire_minted_tokens WHERE expires_at < $1 ORDER BY expires_at LIMIT 64)`, t.IssuedAt); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO flagwire_minted_tokens (id, subject, env, flags, attributes, issued_at, expires_at, revoked)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			t.ID, t.Subject, t.Environment, nonNil(t.Flags), nonNil(t.Attributes), t.IssuedAt, t.ExpiresAt, t.Revoked)
		return err
	})
	return st.wrap(err)
}

// MintedToken implements flagserver.MintedTokenStore.
func (st *Store) MintedToken(ctx context.Context, id string) (flagserver.MintedToken, bool, error) {
	t := flagserver.MintedToken{ID: id}
	err := st.pool.QueryRow(ctx, `SELECT subject, env, flags, attributes, issued_at, expires_at, revoked
		FROM flagwire_minted_tokens WHERE id = $1`, id).
		Scan(&t.Subject, &t.Environment, &t.Flags, &t.Attributes, &t.IssuedAt, &t.ExpiresAt, &t.Revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return flagserver.MintedToken{}, false, nil
	}
	if err != nil {
		return flagserver.MintedToken{}, false, st.wrap(err)
	}
	return t, true, nil
}

// RevokeMintedToken implements flagserver.MintedTokenStore.
func (st *Store) RevokeMintedToken(ctx context.Context, id string) (bool, error) {
	tag, err := st.pool.Exec(ctx, `UPDATE flagwire_minted_tokens SET revoked = true WHERE id = $1`, id)
	if err != nil {
		return false, st.wrap(err)
	}
	return tag.RowsAffected() == 1, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
