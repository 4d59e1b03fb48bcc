// Package pgstore is a flagserver.Store on PostgreSQL: several `flagwire
// serve` processes (replicas) on one database serve the same flags.
//
// Everything durable is in the database: environments (each flag and
// segment a row, so a write stores only what it changed), the store's
// version counter and epoch, delete tombstones, the audit log, idempotency
// records with their responses, the bootstrap signing key and a changes
// table ordered by version. Every write is one transaction that takes the
// store's write lock (the flagwire_meta row), checks the environment's
// version and the idempotency key, and commits the change with its audit
// entry, tombstone, idempotency record and changes row; exactly one of
// several concurrent writes computed from one version wins, the others get
// flagserver.ErrStale and are computed again (then answered 412 when their
// If-Match no longer holds). A commit sends NOTIFY on the store's channel:
// replicas LISTEN and catch up from the changes table, which also finds
// what a lost notification or a reconnect missed.
//
// The schema is created and migrated by Open (versioned migrations under
// an advisory lock, so replicas may start at once). It lives in the DSN's
// search_path schema (default "public"), or Options.Schema.
//
// This package is a Go module of its own so that programs that use only
// the SDK, flagtest or flagserver never have pgx in their module graph.
package pgstore

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flagwire/flagwire/flagserver"
)

// Defaults of Options, and of the pool unless the DSN sets them
// (pool_max_conns, pool_max_conn_idle_time, pool_health_check_period,
// connect_timeout, statement_timeout).
const (
	DefaultMaxConns          = 10
	DefaultMaxConnIdleTime   = 5 * time.Minute
	DefaultHealthCheckPeriod = 15 * time.Second
	DefaultConnectTimeout    = 5 * time.Second
	DefaultStatementTimeout  = 10 * time.Second
	// DefaultChangesKept is how many changes the changes table keeps: a
	// replica further behind reloads everything.
	DefaultChangesKept = 100_000
)

// Options configures a Store. The zero Options is valid.
type Options struct {
	// Schema is the PostgreSQL schema of the store's tables, created if
	// needed; "" uses the DSN's search_path (normally "public").
	Schema string
	// ChangesKept bounds the changes table. Zero means DefaultChangesKept.
	ChangesKept int64
}

// Store is a flagserver.Store on PostgreSQL. Create one with Open.
type Store struct {
	pool    *pgxpool.Pool
	connCfg *pgx.ConnConfig
	channel string
	epoch   string
	kept    int64

	notify chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ flagserver.Store = (*Store)(nil)

// Open connects to the database named by dsn (a PostgreSQL URL or
// key=value string), migrates its schema and starts listening for other
// replicas' changes. Errors never contain the DSN's password. A database
// that cannot be reached is an error wrapping
// flagserver.ErrStoreUnavailable: callers retry with a backoff.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: invalid PostgreSQL DSN: %s", redact(err.Error(), dsn))
	}
	set := func(param string) bool { return strings.Contains(dsn, param) }
	if !set("pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	if !set("pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = DefaultMaxConnIdleTime
	}
	if !set("pool_health_check_period") {
		cfg.HealthCheckPeriod = DefaultHealthCheckPeriod
	}
	if !set("connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if !set("statement_timeout") {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.Itoa(int(DefaultStatementTimeout / time.Millisecond))
	}
	schema := opts.Schema
	if schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
	} else if sp := cfg.ConnConfig.RuntimeParams["search_path"]; sp != "" {
		schema = strings.TrimSpace(strings.Split(sp, ",")[0])
	} else {
		schema = "public"
	}
	st := &Store{connCfg: cfg.ConnConfig.Copy(), channel: "flagwire_changes:" + schema, kept: opts.ChangesKept, notify: make(chan struct{}, 1)}
	if st.kept <= 0 {
		st.kept = DefaultChangesKept
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, st.classify(err, dsn)
	}
	st.pool = pool
	if err := st.migrate(ctx, schema); err != nil {
		pool.Close()
		return nil, st.classify(err, dsn)
	}
	if err := pool.QueryRow(ctx, `SELECT epoch FROM flagwire_meta WHERE id = 1`).Scan(&st.epoch); err != nil {
		pool.Close()
		return nil, st.classify(err, dsn)
	}
	lctx, cancel := context.WithCancel(context.Background())
	st.cancel = cancel
	st.wg.Add(1)
	go st.listen(lctx)
	return st, nil
}

var passwordParam = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)

// redact removes the DSN's password from msg.
func redact(msg, dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
			if esc := url.QueryEscape(pw); esc != pw {
				msg = strings.ReplaceAll(msg, esc, "xxxxx")
			}
		}
	}
	for _, m := range passwordParam.FindAllStringSubmatch(dsn, -1) {
		if pw := strings.Trim(m[2], "'"); pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return passwordParam.ReplaceAllString(msg, "${1}xxxxx")
}

// classify wraps errors of an unreachable database (connection failures,
// a server shutting down or starting) as flagserver.ErrStoreUnavailable,
// and redacts the password.
func (st *Store) classify(err error, dsn string) error {
	if err == nil {
		return nil
	}
	if dsn != "" {
		if msg := redact(err.Error(), dsn); msg != err.Error() {
			err = errors.New(msg)
		}
	}
	if unavailable(err) {
		return fmt.Errorf("%w: %w", flagserver.ErrStoreUnavailable, err)
	}
	return err
}

func unavailable(err error) bool {
	if errors.Is(err, flagserver.ErrStoreUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 08: connection exception; 57P01-57P03: shutdown, crash,
		// cannot connect now; 53300: too many connections; 40001 and
		// 40P01: serialization failure, deadlock (retry).
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P") || pe.Code == "53300" ||
			pe.Code == "40001" || pe.Code == "40P01"
	}
	// Not an answer of the server: the network, a closed connection, a
	// dial failure.
	return true
}

// wrap classifies a query error (no DSN at hand: it is never in them).
func (st *Store) wrap(err error) error {
	if err == nil || errors.Is(err, flagserver.ErrStale) {
		return err
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) && !isNetwork(err) {
		return err
	}
	return st.classify(err, "")
}

func isNetwork(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "connection refused") ||
		strings.Contains(err.Error(), "unexpected EOF") || strings.Contains(err.Error(), "broken pipe") ||
		strings.Contains(err.Error(), "connection reset")
}

// Epoch implements flagserver.Store.
func (st *Store) Epoch() string { return st.epoch }

// Shared implements flagserver.Store: other replicas write too.
func (st *Store) Shared() bool { return true }

// Notify implements flagserver.Store.
func (st *Store) Notify() <-chan struct{} { return st.notify }

// Ping implements flagserver.Store.
func (st *Store) Ping(ctx context.Context) error {
	var one int
	return st.wrap(st.pool.QueryRow(ctx, `SELECT 1 FROM flagwire_meta WHERE id = 1`).Scan(&one))
}

// Close stops listening and closes the pool.
func (st *Store) Close() error {
	if st.cancel != nil {
		st.cancel()
	}
	st.wg.Wait()
	st.pool.Close()
	return nil
}

func (st *Store) wake() {
	select {
	case st.notify <- struct{}{}:
	default:
	}
}

// listen holds a connection of its own LISTENing on the store's channel
// and wakes Notify at each notification, and after each (re)connection
// (notifications sent while it was away are lost: the catch-up finds
// their changes).
func (st *Store) listen(ctx context.Context) {
	defer st.wg.Done()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, st.connCfg.Copy())
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+pgx.Identifier{st.channel}.Sanitize())
			if err == nil {
				backoff = 100 * time.Millisecond
				st.wake()
				for err == nil {
					_, err = conn.WaitForNotification(ctx)
					if err == nil {
						st.wake()
					}
				}
			}
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			conn.Close(cctx)
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// Head implements flagserver.Store.
func (st *Store) Head(ctx context.Context) (int64, error) {
	var h int64
	err := st.pool.QueryRow(ctx, `SELECT head FROM flagwire_meta WHERE id = 1`).Scan(&h)
	return h, st.wrap(err)
}

// Load implements flagserver.Store. It reads in one repeatable-read
// transaction, so the environments are those of the head it returns.
func (st *Store) Load(ctx context.Context) ([]flagserver.StoredEnv, int64, error) {
	var envs []flagserver.StoredEnv
	var head int64
	err := pgx.BeginTxFunc(ctx, st.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT head FROM flagwire_meta WHERE id = 1`).Scan(&head); err != nil {
			return err
		}
		byName := map[string]int{}
		rows, err := tx.Query(ctx, `SELECT name, version, head, flag_keys, seg_keys FROM flagwire_envs ORDER BY name`)
		if err != nil {
			return err
		}
		for rows.Next() {
			e := flagserver.StoredEnv{Flags: map[string][]byte{}, Segments: map[string][]byte{}}
			if err := rows.Scan(&e.Name, &e.Version, &e.Head, &e.FlagKeys, &e.SegKeys); err != nil {
				return err
			}
			byName[e.Name] = len(envs)
			envs = append(envs, e)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT env, kind, key, doc FROM flagwire_entities`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var env, kind, key string
			var doc []byte
			if err := rows.Scan(&env, &kind, &key, &doc); err != nil {
				return err
			}
			if i, ok := byName[env]; ok {
				partsOf(&envs[i], kind)[key] = doc
			}
		}
		return rows.Err()
	})
	return envs, head, st.wrap(err)
}

func partsOf(e *flagserver.StoredEnv, kind string) map[string][]byte {
	if kind == "segment" {
		return e.Segments
	}
	return e.Flags
}

// LoadEnv implements flagserver.Store.
func (st *Store) LoadEnv(ctx context.Context, name string) (flagserver.StoredEnv, bool, error) {
	e := flagserver.StoredEnv{Name: name, Flags: map[string][]byte{}, Segments: map[string][]byte{}}
	found := false
	err := pgx.BeginTxFunc(ctx, st.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT version, head, flag_keys, seg_keys FROM flagwire_envs WHERE name = $1`, name).
			Scan(&e.Version, &e.Head, &e.FlagKeys, &e.SegKeys)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		rows, err := tx.Query(ctx, `SELECT kind, key, doc FROM flagwire_entities WHERE env = $1`, name)
		if err != nil {
			return err
		}
		for rows.Next() {
			var kind, key string
			var doc []byte
			if err := rows.Scan(&kind, &key, &doc); err != nil {
				return err
			}
			partsOf(&e, kind)[key] = doc
		}
		return rows.Err()
	})
	if err != nil || !found {
		return flagserver.StoredEnv{}, false, st.wrap(err)
	}
	return e, true, nil
}

// Seed implements flagserver.Store.
func (st *Store) Seed(ctx context.Context, e flagserver.StoredEnv) (bool, error) {
	seeded := false
	err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		var head int64
		if err := tx.QueryRow(ctx, `SELECT head FROM flagwire_meta WHERE id = 1 FOR UPDATE`).Scan(&head); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO flagwire_envs (name, version, head, flag_keys, seg_keys) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (name) DO NOTHING`, e.Name, e.Version, e.Head, e.FlagKeys, e.SegKeys)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		seeded = true
		b := &pgx.Batch{}
		for kind, parts := range map[string]map[string][]byte{"flag": e.Flags, "segment": e.Segments} {
			for k, v := range parts {
				b.Queue(`INSERT INTO flagwire_entities (env, kind, key, doc) VALUES ($1, $2, $3, $4)`, e.Name, kind, k, v)
			}
		}
		b.Queue(`UPDATE flagwire_meta SET head = GREATEST(head, $1) WHERE id = 1`, e.Version)
		return tx.SendBatch(ctx, b).Close()
	})
	return seeded, st.wrap(err)
}

// Write implements flagserver.Store.
func (st *Store) Write(ctx context.Context, req *flagserver.WriteRequest) (*flagserver.IdempotencyRecord, error) {
	var replay *flagserver.IdempotencyRecord
	err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		// The store's write lock: one write at a time, in version order.
		var head int64
		if err := tx.QueryRow(ctx, `SELECT head FROM flagwire_meta WHERE id = 1 FOR UPDATE`).Scan(&head); err != nil {
			return err
		}
		if req.IdempotencyKey != "" {
			r, err := idempotency(ctx, tx, req.IdempotencyKey, req.Now)
			if err != nil || r != nil {
				replay = r
				return err
			}
		}
		var cur int64
		err := tx.QueryRow(ctx, `SELECT version FROM flagwire_envs WHERE name = $1`, req.Environment).Scan(&cur)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && cur != req.Base) {
			return flagserver.ErrStale
		}
		if err != nil {
			return err
		}
		version := head + 1
		ch, err := req.Build(version)
		if err != nil {
			return &buildError{err}
		}
		if ch.Decision != nil { // an approval (changes.go): applied only while pending
			if err := decide(ctx, tx, ch.Decision); err != nil {
				return &buildError{err}
			}
		}
		b := &pgx.Batch{}
		if ch.Entity != nil {
			b.Queue(`INSERT INTO flagwire_entities (env, kind, key, doc) VALUES ($1, $2, $3, $4)
				ON CONFLICT (env, kind, key) DO UPDATE SET doc = EXCLUDED.doc`, req.Environment, ch.Kind, ch.Key, ch.Entity)
		} else {
			b.Queue(`DELETE FROM flagwire_entities WHERE env = $1 AND kind = $2 AND key = $3`, req.Environment, ch.Kind, ch.Key)
		}
		b.Queue(`UPDATE flagwire_envs SET version = $2, head = $3, flag_keys = COALESCE($4, flag_keys), seg_keys = COALESCE($5, seg_keys)
			WHERE name = $1`, req.Environment, version, ch.Head, nullable(ch.FlagKeys), nullable(ch.SegKeys))
		b.Queue(`UPDATE flagwire_meta SET head = $1 WHERE id = 1`, version)
		if ch.Tombstone != "" {
			b.Queue(`INSERT INTO flagwire_tombstones (env, kind, key, etag) VALUES ($1, $2, $3, $4)
				ON CONFLICT (env, kind, key) DO UPDATE SET etag = EXCLUDED.etag`, req.Environment, ch.Kind, ch.Key, ch.Tombstone)
		} else {
			b.Queue(`DELETE FROM flagwire_tombstones WHERE env = $1 AND kind = $2 AND key = $3`, req.Environment, ch.Kind, ch.Key)
		}
		queueAudit(b, ch.Audit) // changes.go
		if !req.PruneAuditBefore.IsZero() {
			b.Queue(`DELETE FROM flagwire_audit WHERE id IN (SELECT id FROM flagwire_audit WHERE at < $1 ORDER BY id LIMIT 64)`, req.PruneAuditBefore)
		}
		b.Queue(`DELETE FROM flagwire_idempotency WHERE key IN (SELECT key FROM flagwire_idempotency WHERE expires <= $1 LIMIT 64)`, req.Now)
		queueIdempotency(b, req.IdempotencyKey, ch.Idempotency)
		b.Queue(`INSERT INTO flagwire_changes (version, env, event) VALUES ($1, $2, $3)`, version, req.Environment, ch.Event)
		if version%1000 == 0 { // keep the newest ChangesKept
			b.Queue(`DELETE FROM flagwire_changes WHERE version <= $1`, version-st.kept)
			b.Queue(`UPDATE flagwire_meta SET changes_floor = GREATEST(changes_floor, $1) WHERE id = 1`, version-st.kept)
		}
		b.Queue(`SELECT pg_notify($1, $2)`, st.channel, strconv.FormatInt(version, 10))
		return tx.SendBatch(ctx, b).Close()
	})
	var be *buildError
	if errors.As(err, &be) {
		return nil, be.err
	}
	return replay, st.wrap(err)
}

// buildError carries WriteRequest.Build's error through the transaction
// unclassified.
type buildError struct{ err error }

func (e *buildError) Error() string { return e.err.Error() }

func nullable(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func idempotency(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, key string, now time.Time) (*flagserver.IdempotencyRecord, error) {
	r := &flagserver.IdempotencyRecord{}
	var fp []byte
	err := q.QueryRow(ctx, `SELECT fingerprint, status, etag, location, warning, body, body_omitted, expires FROM flagwire_idempotency
		WHERE key = $1 AND expires > $2`, []byte(key), now).Scan(&fp, &r.Status, &r.ETag, &r.Location, &r.Warning, &r.Body, &r.BodyOmitted, &r.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	copy(r.Fingerprint[:], fp)
	return r, nil
}

// Idempotency implements flagserver.Store.
func (st *Store) Idempotency(ctx context.Context, key string, now time.Time) (*flagserver.IdempotencyRecord, error) {
	r, err := idempotency(ctx, st.pool, key, now)
	return r, st.wrap(err)
}

// Changes implements flagserver.Store.
func (st *Store) Changes(ctx context.Context, after int64, limit int) ([]flagserver.ChangeEvent, error) {
	var out []flagserver.ChangeEvent
	err := pgx.BeginTxFunc(ctx, st.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var floor int64
		if err := tx.QueryRow(ctx, `SELECT changes_floor FROM flagwire_meta WHERE id = 1`).Scan(&floor); err != nil {
			return err
		}
		if after < floor {
			return flagserver.ErrChangesGone
		}
		rows, err := tx.Query(ctx, `SELECT version, env, event FROM flagwire_changes WHERE version > $1 ORDER BY version LIMIT $2`, after, limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c flagserver.ChangeEvent
			if err := rows.Scan(&c.Version, &c.Environment, &c.Event); err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	if errors.Is(err, flagserver.ErrChangesGone) {
		return nil, err
	}
	return out, st.wrap(err)
}

// Tombstone implements flagserver.Store.
func (st *Store) Tombstone(ctx context.Context, env, kind, key string) (string, bool, error) {
	var etag string
	err := st.pool.QueryRow(ctx, `SELECT etag FROM flagwire_tombstones WHERE env = $1 AND kind = $2 AND key = $3`, env, kind, key).Scan(&etag)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return etag, err == nil, st.wrap(err)
}

// Audit implements flagserver.Store.
func (st *Store) Audit(ctx context.Context, q flagserver.AuditQuery) ([]flagserver.AuditRecord, error) {
	var f filter
	if q.Before > 0 {
		f.and("id < " + f.arg(q.Before))
	}
	if q.Entity != "" {
		f.and("entity = " + f.arg(q.Entity))
	}
	f.environments(q.Environment, q.Environments)
	auditWhere(&q, &f) // changes.go: actor and time
	from := "flagwire_audit"
	if q.Actor != "" {
		from += ", LATERAL (SELECT convert_from(entry, 'UTF8')::jsonb AS doc) e"
	}
	rows, err := st.pool.Query(ctx, `SELECT id, at, env, entity, entry FROM `+from+` WHERE `+f.sql()+
		` ORDER BY id DESC LIMIT `+f.arg(q.Limit), f.args...)
	if err != nil {
		return nil, st.wrap(err)
	}
	out, err := page(rows, q.MaxBytes, func(rows pgx.Rows, r *flagserver.AuditRecord) (int, error) {
		err := rows.Scan(&r.ID, &r.Time, &r.Environment, &r.Entity, &r.Entry)
		return len(r.Entry), err
	})
	return out, st.wrap(err)
}

// filter builds a WHERE clause whose values are numbered placeholders.
type filter struct {
	conds []string
	args  []any
}

// arg adds v to the query's arguments and returns its placeholder.
func (f *filter) arg(v any) string {
	f.args = append(f.args, v)
	return "$" + strconv.Itoa(len(f.args))
}

// and adds a condition that every row must meet.
func (f *filter) and(cond string) { f.conds = append(f.conds, cond) }

// environments keeps the rows of env, when not empty, and of the
// environments in envs, when not nil (a caller's allowed ones).
func (f *filter) environments(env string, envs []string) {
	if env != "" {
		f.and("env = " + f.arg(env))
	}
	if envs != nil {
		f.and("env = ANY(" + f.arg(envs) + ")")
	}
}

// sql is the conjunction of the conditions, TRUE when there are none.
func (f *filter) sql() string {
	return strings.Join(append([]string{"TRUE"}, f.conds...), " AND ")
}

// page reads the rows of a newest-first listing, scanning each with scan,
// which returns the row's size in bytes; it stops before the page would
// pass maxBytes (when positive), though the first row is always kept.
func page[T any](rows pgx.Rows, maxBytes int, scan func(pgx.Rows, *T) (int, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	size := 0
	for rows.Next() {
		var v T
		n, err := scan(rows, &v)
		if err != nil {
			return nil, err
		}
		if len(out) > 0 && maxBytes > 0 && size+n > maxBytes {
			break
		}
		size += n
		out = append(out, v)
	}
	return out, rows.Err()
}

// SigningKeys implements flagserver.Store: the first key is made once, by
// the first replica that asks, and kept in flagwire_signing_keys; the
// current key is the one with the highest id.
func (st *Store) SigningKeys(ctx context.Context) ([]ed25519.PrivateKey, error) {
	_, fresh, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pgstore: generate signing key: %w", err)
	}
	if _, err := st.pool.Exec(ctx, `INSERT INTO flagwire_signing_keys (id, seed) SELECT 1, $1
		WHERE NOT EXISTS (SELECT 1 FROM flagwire_signing_keys) ON CONFLICT (id) DO NOTHING`, fresh.Seed()); err != nil {
		return nil, st.wrap(err)
	}
	return st.keys(ctx)
}

func (st *Store) keys(ctx context.Context) ([]ed25519.PrivateKey, error) {
	rows, err := st.pool.Query(ctx, `SELECT seed FROM flagwire_signing_keys ORDER BY id DESC`)
	if err != nil {
		return nil, st.wrap(err)
	}
	defer rows.Close()
	var keys []ed25519.PrivateKey
	for rows.Next() {
		var seed []byte
		if err := rows.Scan(&seed); err != nil {
			return nil, st.wrap(err)
		}
		if len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("pgstore: a stored signing key is %d bytes, want a %d-byte seed", len(seed), ed25519.SeedSize)
		}
		keys = append(keys, ed25519.NewKeyFromSeed(seed))
	}
	if err := rows.Err(); err != nil {
		return nil, st.wrap(err)
	}
	if len(keys) == 0 {
		return nil, errors.New("pgstore: no signing key")
	}
	return keys, nil
}

// RotateSigningKey implements flagserver.Store: a new key with the next
// id becomes current; the others stay listed.
func (st *Store) RotateSigningKey(ctx context.Context) ([]ed25519.PrivateKey, error) {
	if _, err := st.SigningKeys(ctx); err != nil {
		return nil, err
	}
	_, fresh, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pgstore: generate signing key: %w", err)
	}
	if _, err := st.pool.Exec(ctx, `INSERT INTO flagwire_signing_keys (id, seed)
		SELECT max(id) + 1, $1 FROM flagwire_signing_keys`, fresh.Seed()); err != nil {
		return nil, st.wrap(err)
	}
	return st.keys(ctx)
}

// migrations are the schema's versions, applied in order, each once.
var migrations = []string{
	1: `
CREATE TABLE flagwire_meta (
	id            integer PRIMARY KEY CHECK (id = 1),
	epoch         text    NOT NULL,
	head          bigint  NOT NULL,
	changes_floor bigint  NOT NULL DEFAULT 0
);
CREATE TABLE flagwire_envs (
	name      text   PRIMARY KEY,
	version   bigint NOT NULL,
	head      bytea  NOT NULL,
	flag_keys bytea  NOT NULL,
	seg_keys  bytea  NOT NULL
);
CREATE TABLE flagwire_entities (
	env  text  NOT NULL REFERENCES flagwire_envs (name),
	kind text  NOT NULL,
	key  text  NOT NULL,
	doc  bytea NOT NULL,
	PRIMARY KEY (env, kind, key)
);
CREATE TABLE flagwire_changes (
	version bigint PRIMARY KEY,
	env     text   NOT NULL,
	event   bytea  NOT NULL
);
CREATE TABLE flagwire_audit (
	id     bigserial   PRIMARY KEY,
	at     timestamptz NOT NULL,
	env    text        NOT NULL,
	entity text        NOT NULL,
	entry  bytea       NOT NULL
);
CREATE INDEX flagwire_audit_entity ON flagwire_audit (entity, id);
CREATE INDEX flagwire_audit_env ON flagwire_audit (env, id);
CREATE INDEX flagwire_audit_at ON flagwire_audit (at);
CREATE TABLE flagwire_tombstones (
	env  text NOT NULL,
	kind text NOT NULL,
	key  text NOT NULL,
	etag text NOT NULL,
	PRIMARY KEY (env, kind, key)
);
CREATE TABLE flagwire_idempotency (
	key         bytea       PRIMARY KEY,
	fingerprint bytea       NOT NULL,
	status      integer     NOT NULL,
	etag        text        NOT NULL,
	location    text        NOT NULL,
	warning     text        NOT NULL,
	body        bytea       NOT NULL,
	expires     timestamptz NOT NULL
);
CREATE INDEX flagwire_idempotency_expires ON flagwire_idempotency (expires);
CREATE TABLE flagwire_signing_keys (
	id      bigint      PRIMARY KEY,
	seed    bytea       NOT NULL,
	created timestamptz NOT NULL DEFAULT now()
);
`,
	2: `ALTER TABLE flagwire_idempotency ADD COLUMN body_omitted integer NOT NULL DEFAULT 0;`,
	3: migrationChangeRequests, // changes.go
	4: mintedMigration,         // minted.go
}

// migrate creates the schema and applies the migrations it lacks, under
// an advisory lock (replicas starting at once wait for each other), and
// makes the store's epoch.
func (st *Store) migrate(ctx context.Context, schema string) error {
	conn, err := st.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	lock := "flagwire migrate " + schema
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1))`, lock); err != nil {
		return err
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock(hashtext($1))`, lock); err != nil {
			conn.Conn().Close(uctx) // the lock goes with the session
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS flagwire_schema (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM flagwire_schema`).Scan(&have); err != nil {
		return err
	}
	if have >= len(migrations) {
		return fmt.Errorf("pgstore: the database's schema is version %d, newer than this flagwire's %d: upgrade flagwire", have, len(migrations)-1)
	}
	for v := have + 1; v < len(migrations); v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("pgstore: migration %d: %w", v, err)
			}
			if v == 1 {
				var b [16]byte
				rand.Read(b[:])
				if _, err := tx.Exec(ctx, `INSERT INTO flagwire_meta (id, epoch, head) VALUES (1, $1, 0)`, hex.EncodeToString(b[:])); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, `INSERT INTO flagwire_schema (version) VALUES ($1)`, v)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// NewEpoch gives the store a new epoch, for a database restored from a
// backup (see flagserver.Options.NewEpoch); servers started afterwards
// announce it.
func (st *Store) NewEpoch(ctx context.Context) (string, error) {
	var b [16]byte
	rand.Read(b[:])
	e := hex.EncodeToString(b[:])
	if _, err := st.pool.Exec(ctx, `UPDATE flagwire_meta SET epoch = $1 WHERE id = 1`, e); err != nil {
		return "", st.wrap(err)
	}
	st.epoch = e
	return e, nil
}

// Describe returns the database a DSN names, for messages: user, host,
// port and database, never the password ("an invalid DSN" if it does not
// parse).
func Describe(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "(an invalid DSN)"
	}
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}
