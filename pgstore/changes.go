package pgstore

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/flagwire/flagwire/flagserver"
)

// Change requests (flagserver.ChangeStore) live in flagwire_change_requests
// (migration 3): one row per request, seq ordering them. A proposal or a
// decision takes the store's write lock (the flagwire_meta row), as Write
// does, so that its idempotency check and its insert are one step for
// every replica; the decision itself is a compare-and-set on the row's
// status (pending → applied, rejected or stale), inside Write's
// transaction for an approval.

// ProposeChange implements flagserver.ChangeStore.
func (st *Store) ProposeChange(ctx context.Context, p *flagserver.ChangeProposal) (*flagserver.IdempotencyRecord, error) {
	var replay *flagserver.IdempotencyRecord
	err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM flagwire_meta WHERE id = 1 FOR UPDATE`); err != nil {
			return err
		}
		if p.IdempotencyKey != "" {
			r, err := idempotency(ctx, tx, p.IdempotencyKey, p.Now)
			if err != nil || r != nil {
				replay = r
				return err
			}
		}
		c := p.Change
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO flagwire_change_requests (id, env, status, created, record) VALUES ($1, $2, $3, $4, $5)`,
			c.ID, c.Environment, c.Status, c.Created, c.Record)
		queueSideRecords(b, p.Audit, p.IdempotencyKey, p.Idempotency)
		return tx.SendBatch(ctx, b).Close()
	})
	return replay, st.wrap(err)
}

// queueSideRecords queues an audit entry and an idempotency record (each
// when not nil).
func queueSideRecords(b *pgx.Batch, a *flagserver.AuditRecord, key string, r *flagserver.IdempotencyRecord) {
	queueAudit(b, a)
	queueIdempotency(b, key, r)
}

// queueAudit queues the insert of a, when not nil.
func queueAudit(b *pgx.Batch, a *flagserver.AuditRecord) {
	if a != nil {
		b.Queue(`INSERT INTO flagwire_audit (at, env, entity, entry) VALUES ($1, $2, $3, $4)`, a.Time, a.Environment, a.Entity, a.Entry)
	}
}

// queueIdempotency queues the upsert of r under key, when r is not nil and
// key not empty.
func queueIdempotency(b *pgx.Batch, key string, r *flagserver.IdempotencyRecord) {
	if r == nil || key == "" {
		return
	}
	body := r.Body
	if body == nil {
		body = []byte{}
	}
	b.Queue(`INSERT INTO flagwire_idempotency (key, fingerprint, status, etag, location, warning, body, body_omitted, expires)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, etag = EXCLUDED.etag,
		location = EXCLUDED.location, warning = EXCLUDED.warning, body = EXCLUDED.body, body_omitted = EXCLUDED.body_omitted,
		expires = EXCLUDED.expires`,
		[]byte(key), r.Fingerprint[:], r.Status, r.ETag, r.Location, r.Warning, body, r.BodyOmitted, r.Expires)
}

// ChangeRequest implements flagserver.ChangeStore.
func (st *Store) ChangeRequest(ctx context.Context, id string) (flagserver.StoredChange, bool, error) {
	c := flagserver.StoredChange{ID: id}
	err := st.pool.QueryRow(ctx, `SELECT seq, env, status, created, record FROM flagwire_change_requests WHERE id = $1`, id).
		Scan(&c.Seq, &c.Environment, &c.Status, &c.Created, &c.Record)
	if errors.Is(err, pgx.ErrNoRows) {
		return flagserver.StoredChange{}, false, nil
	}
	if err != nil {
		return flagserver.StoredChange{}, false, st.wrap(err)
	}
	return c, true, nil
}

// ChangeRequests implements flagserver.ChangeStore.
func (st *Store) ChangeRequests(ctx context.Context, q flagserver.ChangeQuery) ([]flagserver.StoredChange, error) {
	var f filter
	if q.Before > 0 {
		f.and("seq < " + f.arg(q.Before))
	}
	f.environments(q.Environment, q.Environments)
	if q.Status != "" {
		f.and("status = " + f.arg(q.Status))
	}
	rows, err := st.pool.Query(ctx, `SELECT id, seq, env, status, created, record FROM flagwire_change_requests WHERE `+
		f.sql()+` ORDER BY seq DESC LIMIT `+f.arg(q.Limit), f.args...)
	if err != nil {
		return nil, st.wrap(err)
	}
	out, err := page(rows, q.MaxBytes, func(rows pgx.Rows, c *flagserver.StoredChange) (int, error) {
		err := rows.Scan(&c.ID, &c.Seq, &c.Environment, &c.Status, &c.Created, &c.Record)
		return len(c.Record), err
	})
	return out, st.wrap(err)
}

// DecideChange implements flagserver.ChangeStore.
func (st *Store) DecideChange(ctx context.Context, d *flagserver.ChangeDecision) (*flagserver.IdempotencyRecord, error) {
	var replay *flagserver.IdempotencyRecord
	err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM flagwire_meta WHERE id = 1 FOR UPDATE`); err != nil {
			return err
		}
		if d.IdempotencyKey != "" {
			r, err := idempotency(ctx, tx, d.IdempotencyKey, d.Now)
			if err != nil || r != nil {
				replay = r
				return err
			}
		}
		if err := decide(ctx, tx, d); err != nil {
			return err
		}
		b := &pgx.Batch{}
		queueSideRecords(b, d.Audit, d.IdempotencyKey, d.Idempotency)
		return tx.SendBatch(ctx, b).Close()
	})
	if errors.Is(err, flagserver.ErrChangeDecided) || errors.Is(err, flagserver.ErrChangeNotFound) {
		return nil, err
	}
	return replay, st.wrap(err)
}

// decide moves a pending change request to d.Status in tx:
// ErrChangeNotFound or ErrChangeDecided when it is not there or not
// pending.
func decide(ctx context.Context, tx pgx.Tx, d *flagserver.ChangeDecision) error {
	tag, err := tx.Exec(ctx, `UPDATE flagwire_change_requests SET status = $2, record = $3 WHERE id = $1 AND status = 'pending'`,
		d.ID, d.Status, d.Record)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM flagwire_change_requests WHERE id = $1)`, d.ID).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return flagserver.ErrChangeDecided
	}
	return flagserver.ErrChangeNotFound
}

// migrationChangeRequests is migration 3: the change requests table.
const migrationChangeRequests = `
CREATE TABLE flagwire_change_requests (
	seq     bigserial   PRIMARY KEY,
	id      text        NOT NULL UNIQUE,
	env     text        NOT NULL,
	status  text        NOT NULL,
	created timestamptz NOT NULL,
	record  bytea       NOT NULL
);
CREATE INDEX flagwire_change_requests_env ON flagwire_change_requests (env, seq);
CREATE INDEX flagwire_change_requests_status ON flagwire_change_requests (status, seq);
`

// auditWhere adds the audit filters of migration-free columns: actor
// (the entry's subject, requestedBy or approvedBy) and the time window.
func auditWhere(q *flagserver.AuditQuery, f *filter) {
	if q.Actor != "" {
		a := f.arg(q.Actor)
		f.and("(e.doc->>'subject' = " + a + " OR e.doc->>'requestedBy' = " + a + " OR e.doc->>'approvedBy' = " + a + ")")
	}
	if !q.Since.IsZero() {
		f.and("at >= " + f.arg(q.Since))
	}
	if !q.Until.IsZero() {
		f.and("at < " + f.arg(q.Until))
	}
}
