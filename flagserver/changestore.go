package flagserver

import (
	"context"
	"errors"
	"time"
)

// ChangeStore keeps the change requests of protected environments (see
// Options.ProtectedEnvironments): the part of Store that the two-person
// rule needs. A change request is created pending (ProposeChange) and
// decided once: applied by an approval (a Store.Write whose Change
// carries a ChangeDecision, in the write's own transaction), or rejected
// or found stale (DecideChange). Methods are safe for concurrent use.
type ChangeStore interface {
	// ProposeChange stores a new change request with its audit entry and
	// idempotency record, all or nothing. When a record is stored under
	// p.IdempotencyKey it is returned and nothing is stored.
	ProposeChange(ctx context.Context, p *ChangeProposal) (*IdempotencyRecord, error)
	// ChangeRequest returns the change request id; ok is false when there
	// is none.
	ChangeRequest(ctx context.Context, id string) (c StoredChange, ok bool, err error)
	// ChangeRequests returns change requests matching q, newest first.
	ChangeRequests(ctx context.Context, q ChangeQuery) ([]StoredChange, error)
	// DecideChange moves a pending change request to d.Status (rejected
	// or stale) with its audit entry and idempotency record, all or
	// nothing. It returns the record stored under d.IdempotencyKey (and
	// changes nothing) when there is one, ErrChangeNotFound when there is
	// no such change request and ErrChangeDecided when it is no longer
	// pending.
	DecideChange(ctx context.Context, d *ChangeDecision) (*IdempotencyRecord, error)
}

// ErrChangeNotFound is returned by ChangeStore.DecideChange and
// Store.Write for a change request that does not exist.
var ErrChangeNotFound = errors.New("flagserver: no such change request")

// ErrChangeDecided is returned by ChangeStore.DecideChange and
// Store.Write (for a Change with a Decision) when the change request is
// no longer pending: another approval or rejection came first.
var ErrChangeDecided = errors.New("flagserver: the change request was already decided")

// StoredChange is a change request as stored: the fields queries select
// on, and its JSON (wire.ChangeRequest).
type StoredChange struct {
	// ID is the change request's id (unique, chosen by the Server).
	ID string
	// Seq orders change requests: the store assigns it (increasing) when
	// the request is proposed.
	Seq         int64
	Environment string
	Status      string
	Created     time.Time
	Record      []byte
}

// ChangeProposal is a new change request (Change.Seq is assigned by the
// store) with what is stored with it.
type ChangeProposal struct {
	Change StoredChange
	// Audit is the proposal's audit entry (nil for none); the store
	// assigns its ID.
	Audit *AuditRecord
	// IdempotencyKey and Idempotency: see WriteRequest and Change.
	IdempotencyKey string
	Idempotency    *IdempotencyRecord
	// Now is the time of the proposal: expired idempotency records are
	// ignored.
	Now time.Time
}

// ChangeDecision moves a pending change request to Status (wire.ChangeApplied
// through Store.Write; wire.ChangeRejected or wire.ChangeStale through
// ChangeStore.DecideChange) and replaces its JSON with Record.
type ChangeDecision struct {
	ID     string
	Status string
	Record []byte
	// Audit, IdempotencyKey, Idempotency and Now are used by DecideChange
	// only: a Store.Write stores its Change's.
	Audit          *AuditRecord
	IdempotencyKey string
	Idempotency    *IdempotencyRecord
	Now            time.Time
}

// ChangeQuery selects change requests: Seq below Before (0: no bound),
// Environment and Status ("" for any), newest first, at most Limit and,
// past the first, at most MaxBytes of Record JSON.
type ChangeQuery struct {
	Before      int64
	Environment string
	Status      string
	// Environments, when non-nil, limits the answer to these environments
	// (a token's allowed environments).
	Environments []string
	Limit        int
	MaxBytes     int
}
