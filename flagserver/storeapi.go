package flagserver

import (
	"context"
	"crypto/ed25519"
	"errors"
	"time"
)

// Store keeps everything durable of a Server: the environments (their
// configs in parts, with versions), delete tombstones, the audit log,
// idempotency records with their stored responses, the bootstrap signing
// key, the store's epoch and a changes feed ordered by version.
//
// Two implementations exist: the embedded store (OpenEmbeddedStore: bbolt
// in a data directory, or memory only), the default, and the PostgreSQL
// store (module github.com/flagwire/flagwire/pgstore), which several
// servers share. The package flagserver/storetest holds the one test suite
// both pass.
//
// Versions are one counter for the whole store: every write gets a version
// above every version before it (not necessarily the next integer), and an
// environment's version is the version of its last write. Methods are safe
// for concurrent use.
type Store interface {
	MintedTokenStore // minted public-client token ids (mintedapi.go)
	// Epoch names the store's version counter (wire.HeaderConfigEpoch):
	// made when the store is created, kept while it lives.
	Epoch() string
	// Shared reports whether other processes may write to the store: a
	// Server then follows Changes (woken by Notify) and checks Head before
	// it answers a read.
	Shared() bool
	// Head returns the version of the newest committed write (or seed).
	Head(ctx context.Context) (int64, error)
	// Load returns every environment and the head version they are at.
	Load(ctx context.Context) (envs []StoredEnv, head int64, err error)
	// LoadEnv returns one environment; ok is false when it does not exist.
	LoadEnv(ctx context.Context, name string) (env StoredEnv, ok bool, err error)
	// Seed stores env (whole) unless an environment of that name exists,
	// and reports whether it did. The head becomes at least env.Version.
	Seed(ctx context.Context, env StoredEnv) (bool, error)
	// Write commits one change atomically, see WriteRequest. It returns
	// the idempotency record already stored under req.IdempotencyKey (and
	// commits nothing) when there is one, ErrStale when the environment's
	// version is no longer req.Base, and what req.Build returns when it
	// fails (nothing is committed then either).
	Write(ctx context.Context, req *WriteRequest) (*IdempotencyRecord, error)
	// Changes returns the committed changes with versions above after,
	// oldest first, at most limit.
	Changes(ctx context.Context, after int64, limit int) ([]ChangeEvent, error)
	// Tombstone returns the last ETag of a deleted entity (kind "flag" or
	// "segment"); ok is false when it was not deleted or exists again.
	Tombstone(ctx context.Context, env, kind, key string) (etag string, ok bool, err error)
	// Idempotency returns the record stored under key, nil when there is
	// none or it expired at now.
	Idempotency(ctx context.Context, key string, now time.Time) (*IdempotencyRecord, error)
	// Audit returns entries matching q, newest first.
	Audit(ctx context.Context, q AuditQuery) ([]AuditRecord, error)
	// SigningKeys returns the bootstrap signing keys: the current one
	// first, then those it replaced, newest first. The first call on a new
	// store creates the current one (concurrent creators agree on it).
	SigningKeys(ctx context.Context) ([]ed25519.PrivateKey, error)
	// RotateSigningKey makes a new current signing key and returns the
	// keys as SigningKeys does: the replaced ones stay listed, so clients
	// that trust them keep verifying what they signed.
	RotateSigningKey(ctx context.Context) ([]ed25519.PrivateKey, error)
	// Notify returns a channel that receives (coalesced) after another
	// process may have committed a write; nil for a store nobody else
	// writes to.
	Notify() <-chan struct{}
	// Ping reports whether the store answers now (/readyz).
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
	ChangeStore // change requests of protected environments (changestore.go)
}

// ErrStale is returned by Store.Write when the environment's version is
// no longer the one the change was computed from: another writer came
// first. The Server reloads the environment and computes the change again.
var ErrStale = errors.New("flagserver: the environment changed since the write was prepared")

// ErrStoreUnavailable wraps a store failure that may pass (a database
// restarting): the Server answers writes with 503 and Retry-After.
var ErrStoreUnavailable = errors.New("flagserver: the store is unavailable")

// StoredEnv is an environment as stored: the config's scalar fields
// (Head: the JSON object of environment, version, salt,
// requireChangeReason, attributes), the flag and segment keys in config
// order (JSON arrays; FlagKeys "null" for a config whose flags are null),
// and each entity's JSON by key.
type StoredEnv struct {
	Name     string
	Version  int64
	Head     []byte
	FlagKeys []byte
	SegKeys  []byte
	Flags    map[string][]byte
	Segments map[string][]byte
}

// WriteRequest is one write. Inside its transaction the store checks
// IdempotencyKey (a stored record ends the write) and that Environment is
// at version Base, takes the next version, calls Build with it and stores
// the Change Build returns: the entity, the config's head and key orders,
// the tombstone, the audit entry, the idempotency record and the event of
// the changes feed, all or nothing.
type WriteRequest struct {
	Environment    string
	Base           int64
	IdempotencyKey string
	Build          func(version int64) (*Change, error)
	// Now is the write's time: idempotency records that expired by then
	// are ignored and may be removed.
	Now time.Time
	// PruneAuditBefore, when set, lets the store remove audit entries
	// older than it (the retention setting), a bounded number per write.
	PruneAuditBefore time.Time
}

// Change is what one write stores.
type Change struct {
	// Kind is "flag" or "segment", Key the entity's key.
	Kind, Key string
	// Entity is the entity's JSON after the write; nil deletes it.
	Entity []byte
	// Head is the config's scalar fields (see StoredEnv).
	Head []byte
	// FlagKeys and SegKeys are the new key orders; nil keeps them.
	FlagKeys, SegKeys []byte
	// Tombstone is the deleted entity's last ETag (Entity nil), else "".
	Tombstone string
	// Event is the stream event announcing the change (JSON).
	Event []byte
	// Audit is the audit entry; the store assigns its ID (increasing),
	// which overrides any "id" in its JSON. nil for none.
	Audit *AuditRecord
	// Idempotency is stored under WriteRequest.IdempotencyKey (nil for none).
	Idempotency *IdempotencyRecord
	// Decision, when set, is the approval this write applies: the store
	// moves the change request Decision.ID from pending to Decision.Status
	// in the write's transaction, and fails the write with
	// ErrChangeDecided (ErrChangeNotFound) when it is no longer pending
	// (does not exist).
	Decision *ChangeDecision
}

// ErrChangesGone is returned by Store.Changes when changes after the
// given version are no longer kept: the caller reloads everything.
var ErrChangesGone = errors.New("flagserver: the changes feed no longer holds that version")

// ChangeEvent is an entry of the changes feed.
type ChangeEvent struct {
	Version     int64
	Environment string
	Event       []byte
}

// AuditRecord is one audit entry as stored: the fields queries select on,
// and the entry's JSON (wire.AuditEntry; the entry's id is ID).
type AuditRecord struct {
	ID          int64
	Time        time.Time
	Environment string
	Entity      string
	Entry       []byte
}

// AuditQuery selects audit entries: ids below Before (0: no bound),
// Entity and Environment ("" for any), Actor ("" for any), times in
// [Since, Until) (zero for no bound), newest first, at most Limit entries
// and, past the first entry, at most MaxBytes of Entry JSON.
type AuditQuery struct {
	Before      int64
	Entity      string
	Environment string
	// Actor selects entries whose subject, requestedBy or approvedBy
	// (wire.AuditEntry) is Actor.
	Actor        string
	Since, Until time.Time
	// Environments, when non-nil, limits the answer to these environments
	// (a token's allowed environments).
	Environments []string
	Limit        int
	MaxBytes     int
}

// IdempotencyRecord is a write's response, kept for retries with the same
// Idempotency-Key: the request's fingerprint (a retry with another request
// gets 422) and the response as sent. Stores keep Expires to the
// microsecond.
type IdempotencyRecord struct {
	Fingerprint [32]byte
	Status      int
	ETag        string
	Location    string
	Warning     string
	Body        []byte
	// BodyOmitted is the size of a body too large to keep (Body is then
	// nil): a replay makes it again from the entity when that is
	// unchanged.
	BodyOmitted int
	Expires     time.Time
}
