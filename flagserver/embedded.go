package flagserver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bounds of the embedded store.
const (
	// embeddedChanges is how many changes the embedded store's feed keeps
	// (in memory: nobody else writes to it, so only its own Server reads).
	embeddedChanges = 4096
	// memoryMaxTombstones, memoryMaxIdempotency and memoryMaxIdempotencyBytes
	// bound what a memory-only store keeps (oldest forgotten first).
	memoryMaxTombstones       = 10000
	memoryMaxIdempotency      = 10000
	memoryMaxIdempotencyBytes = 64 << 20
	// memoryMaxAudit bounds a memory-only store's audit log (oldest
	// entries forgotten first); a data directory keeps every entry (within
	// the retention setting).
	memoryMaxAudit = 100_000
	// pruneBatch bounds the expired records one write removes.
	pruneBatch = 64
)

// Persistence: a bbolt file DataDir/flagwire.db.
var (
	bucketEnvs  = []byte("envs")  // environment name → its bucket (below); older stores: config JSON
	bucketAudit = []byte("audit") // big-endian uint64 id → AuditRecord (storedAudit JSON)
	bucketMeta  = []byte("meta")  // the store's own facts: keyEpoch, keyHead
	bucketTombs = []byte("tombstones")
	bucketIdem  = []byte("idempotency")    // key → storedIdem JSON
	bucketIdemX = []byte("idempotency-by") // expiry (8 bytes, unix nanos) + key → nothing
	keyEpoch    = []byte("epoch")          // the store's epoch (see wire.HeaderConfigEpoch)
	keyHead     = []byte("head")           // meta: the head version, 8 bytes; env bucket: the config's scalar fields
	keyFlagKeys = []byte("flagKeys")       // JSON array of flag keys in config order (null: Flags nil)
	keySegKeys  = []byte("segKeys")        // JSON array of segment keys in config order
	bucketFlags = []byte("flags")          // flag key → flag JSON
	bucketSegs  = []byte("segments")       // segment key → segment JSON
)

// embeddedStore is the default Store: a bbolt file in a data directory,
// or (db nil) memory only.
type embeddedStore struct {
	db    *bolt.DB
	dir   string
	epoch string

	mu      sync.Mutex
	head    int64
	retired [][]byte      // memory only: the retired signing keys' seeds, newest first
	changes []ChangeEvent // the newest, oldest first
	gone    int64         // changes at or below gone are forgotten
	key     ed25519.PrivateKey

	// memory only:
	envs   map[string]*StoredEnv
	tombs  map[string]string
	tombQ  []string
	idem   map[string]*IdempotencyRecord
	idemQ  []string
	idemB  int
	audit  []AuditRecord
	nextID int64
	minted mintedMem // minted_store.go
	cr     changeMem // changes_store.go
}

// newEpoch returns a random store epoch: 16 bytes, hex.
func newEpoch() string {
	var b [16]byte
	rand.Read(b[:]) // crypto/rand.Read never returns an error (it crashes the program instead)
	return hex.EncodeToString(b[:])
}

// OpenEmbeddedStore opens the embedded store: bbolt in dir (created if
// needed; DataDir/flagwire.db, with the signing key in
// DataDir/signing-key.pem), or memory only for "". newEpoch starts a new
// epoch in dir (Options.NewEpoch).
func OpenEmbeddedStore(dir string, newEpochNow bool) (Store, error) {
	return openEmbedded(dir, newEpochNow)
}

func openEmbedded(dir string, rotate bool) (*embeddedStore, error) {
	if dir == "" {
		return &embeddedStore{epoch: newEpoch(), envs: map[string]*StoredEnv{}, tombs: map[string]string{}, idem: map[string]*IdempotencyRecord{}}, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("flagserver: data dir: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "flagwire.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("flagserver: open data dir %s: %w", dir, err)
	}
	st := &embeddedStore{db: db, dir: dir}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEnvs, bucketAudit, bucketTombs, bucketIdem, bucketIdemX} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		// Audit ids continue after the newest entry (a data dir from an
		// older version numbered them without the bucket's sequence).
		audit := tx.Bucket(bucketAudit)
		if k, _ := audit.Cursor().Last(); len(k) == 8 {
			if last := binary.BigEndian.Uint64(k); audit.Sequence() < last {
				if err := audit.SetSequence(last); err != nil {
					return err
				}
			}
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if h := meta.Get(keyHead); len(h) == 8 {
			st.head = int64(binary.BigEndian.Uint64(h))
		} else { // a data dir from before the head: the newest environment's version
			if err := tx.Bucket(bucketEnvs).ForEach(func(k, v []byte) error {
				ver, err := envVersion(tx.Bucket(bucketEnvs), k, v)
				st.head = max(st.head, ver)
				return err
			}); err != nil {
				return err
			}
			if err := meta.Put(keyHead, binary.BigEndian.AppendUint64(nil, uint64(st.head))); err != nil {
				return err
			}
		}
		// A data dir from before epochs gets one now: its versions
		// continue, so clients that hold them compare them as before
		// once they have seen it.
		if e := meta.Get(keyEpoch); len(e) > 0 && !rotate {
			st.epoch = string(e)
			return nil
		}
		st.epoch = newEpoch()
		return meta.Put(keyEpoch, []byte(st.epoch))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("flagserver: init data dir: %w", err)
	}
	st.gone = st.head
	return st, nil
}

// envVersion is the version of a stored environment (bucket or, from an
// older version, whole JSON v).
func envVersion(envs *bolt.Bucket, name, v []byte) (int64, error) {
	if v == nil {
		v = envs.Bucket(name).Get(keyHead)
	}
	var h struct {
		Version int64 `json:"version"`
	}
	if err := json.Unmarshal(v, &h); err != nil {
		return 0, fmt.Errorf("environment %q: %w", name, err)
	}
	return h.Version, nil
}

func (st *embeddedStore) Epoch() string              { return st.epoch }
func (st *embeddedStore) Shared() bool               { return false }
func (st *embeddedStore) Notify() <-chan struct{}    { return nil }
func (st *embeddedStore) Ping(context.Context) error { return nil }

func (st *embeddedStore) Head(context.Context) (int64, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.head, nil
}

func (st *embeddedStore) Close() error {
	if st.db == nil {
		return nil
	}
	return st.db.Close()
}

func cloneEnv(e *StoredEnv) StoredEnv {
	c := *e
	c.Flags, c.Segments = cloneParts(e.Flags), cloneParts(e.Segments)
	return c
}

func cloneParts(m map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (st *embeddedStore) Load(ctx context.Context) ([]StoredEnv, int64, error) {
	if st.db == nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		var out []StoredEnv
		for _, e := range st.envs {
			out = append(out, cloneEnv(e))
		}
		return out, st.head, nil
	}
	var out []StoredEnv
	var head int64
	err := st.db.View(func(tx *bolt.Tx) error {
		head = int64(binary.BigEndian.Uint64(tx.Bucket(bucketMeta).Get(keyHead)))
		envs := tx.Bucket(bucketEnvs)
		return envs.ForEach(func(k, v []byte) error {
			e, err := readEnv(envs, k, v)
			if err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("flagserver: load data dir: %w", err)
	}
	return out, head, nil
}

func (st *embeddedStore) LoadEnv(ctx context.Context, name string) (StoredEnv, bool, error) {
	if st.db == nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		e, ok := st.envs[name]
		if !ok {
			return StoredEnv{}, false, nil
		}
		return cloneEnv(e), true, nil
	}
	var out StoredEnv
	var ok bool
	err := st.db.View(func(tx *bolt.Tx) error {
		envs := tx.Bucket(bucketEnvs)
		v := envs.Get([]byte(name))
		if v == nil && envs.Bucket([]byte(name)) == nil {
			return nil
		}
		var err error
		out, err = readEnv(envs, []byte(name), v)
		ok = err == nil
		return err
	})
	return out, ok, err
}

// readEnv reads an environment's bucket; v is the whole config JSON of a
// store written by an older version (split into parts here).
func readEnv(envs *bolt.Bucket, name, v []byte) (StoredEnv, error) {
	e := StoredEnv{Name: string(name), Flags: map[string][]byte{}, Segments: map[string][]byte{}}
	if v != nil {
		return splitConfig(string(name), v)
	}
	b := envs.Bucket(name)
	e.Head = bytes.Clone(b.Get(keyHead))
	e.FlagKeys = bytes.Clone(b.Get(keyFlagKeys))
	e.SegKeys = bytes.Clone(b.Get(keySegKeys))
	for _, p := range []struct {
		name []byte
		into map[string][]byte
	}{{bucketFlags, e.Flags}, {bucketSegs, e.Segments}} {
		pb := b.Bucket(p.name)
		if pb == nil {
			return e, fmt.Errorf("flagserver: environment %q: incomplete stored config", name)
		}
		if err := pb.ForEach(func(k, v []byte) error {
			p.into[string(k)] = bytes.Clone(v)
			return nil
		}); err != nil {
			return e, err
		}
	}
	ver, err := envVersion(envs, name, nil)
	e.Version = ver
	return e, err
}

// splitConfig splits a whole config document into a StoredEnv.
func splitConfig(name string, doc []byte) (StoredEnv, error) {
	var parts struct {
		Flags    []json.RawMessage `json:"flags"`
		Segments []json.RawMessage `json:"segments"`
		Version  int64             `json:"version"`
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(doc, &all); err != nil {
		return StoredEnv{}, fmt.Errorf("flagserver: environment %q: %w", name, err)
	}
	if err := json.Unmarshal(doc, &parts); err != nil {
		return StoredEnv{}, fmt.Errorf("flagserver: environment %q: %w", name, err)
	}
	e := StoredEnv{Name: name, Version: parts.Version, Flags: map[string][]byte{}, Segments: map[string][]byte{}}
	keys := func(list []json.RawMessage, into map[string][]byte) ([]byte, error) {
		if list == nil {
			return []byte("null"), nil
		}
		ks := []string{}
		for _, raw := range list {
			var k struct {
				Key string `json:"key"`
			}
			if err := json.Unmarshal(raw, &k); err != nil {
				return nil, err
			}
			ks = append(ks, k.Key)
			into[k.Key] = bytes.Clone(raw)
		}
		return json.Marshal(ks)
	}
	var err error
	if e.FlagKeys, err = keys(parts.Flags, e.Flags); err != nil {
		return e, err
	}
	if parts.Segments == nil {
		parts.Segments = []json.RawMessage{}
	}
	if e.SegKeys, err = keys(parts.Segments, e.Segments); err != nil {
		return e, err
	}
	delete(all, "flags")
	delete(all, "segments")
	var h configHead
	hb, _ := json.Marshal(all)
	if err := json.Unmarshal(hb, &h); err != nil {
		return e, err
	}
	e.Head, err = json.Marshal(h)
	return e, err
}

func (st *embeddedStore) Seed(ctx context.Context, e StoredEnv) (bool, error) {
	if st.db == nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		if _, ok := st.envs[e.Name]; ok {
			return false, nil
		}
		c := cloneEnv(&e)
		st.envs[e.Name] = &c
		st.head = max(st.head, e.Version)
		st.gone = max(st.gone, st.head)
		return true, nil
	}
	seeded := false
	err := st.db.Update(func(tx *bolt.Tx) error {
		envs := tx.Bucket(bucketEnvs)
		if envs.Get([]byte(e.Name)) != nil || envs.Bucket([]byte(e.Name)) != nil {
			return nil
		}
		b, err := envs.CreateBucket([]byte(e.Name))
		if err != nil {
			return err
		}
		if err := putWhole(b, &e); err != nil {
			return err
		}
		seeded = true
		return st.raiseHead(tx, e.Version)
	})
	if err == nil && seeded {
		st.mu.Lock()
		st.head = max(st.head, e.Version)
		st.gone = max(st.gone, st.head)
		st.mu.Unlock()
	}
	return seeded, err
}

func (st *embeddedStore) raiseHead(tx *bolt.Tx, v int64) error {
	meta := tx.Bucket(bucketMeta)
	if h := int64(binary.BigEndian.Uint64(meta.Get(keyHead))); h >= v {
		return nil
	}
	return meta.Put(keyHead, binary.BigEndian.AppendUint64(nil, uint64(v)))
}

func putWhole(b *bolt.Bucket, e *StoredEnv) error {
	flags, err := b.CreateBucket(bucketFlags)
	if err != nil {
		return err
	}
	segs, err := b.CreateBucket(bucketSegs)
	if err != nil {
		return err
	}
	for k, v := range e.Flags {
		if err := flags.Put([]byte(k), v); err != nil {
			return err
		}
	}
	for k, v := range e.Segments {
		if err := segs.Put([]byte(k), v); err != nil {
			return err
		}
	}
	for _, kv := range [][2][]byte{{keyHead, e.Head}, {keyFlagKeys, e.FlagKeys}, {keySegKeys, e.SegKeys}} {
		if err := b.Put(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// storedIdem is an IdempotencyRecord's JSON in the data dir.
type storedIdem struct {
	Fingerprint []byte    `json:"fp"`
	Status      int       `json:"status"`
	ETag        string    `json:"etag,omitempty"`
	Location    string    `json:"location,omitempty"`
	Warning     string    `json:"warning,omitempty"`
	Body        []byte    `json:"body"`
	Omitted     int       `json:"omitted,omitempty"`
	Expires     time.Time `json:"expires"`
}

func encodeIdem(r *IdempotencyRecord) ([]byte, error) {
	return json.Marshal(storedIdem{r.Fingerprint[:], r.Status, r.ETag, r.Location, r.Warning, r.Body, r.BodyOmitted, r.Expires})
}

func decodeIdem(b []byte) (*IdempotencyRecord, error) {
	var s storedIdem
	if err := json.Unmarshal(b, &s); err != nil || len(s.Fingerprint) != 32 {
		return nil, fmt.Errorf("flagserver: corrupt idempotency record: %v", err)
	}
	r := &IdempotencyRecord{Status: s.Status, ETag: s.ETag, Location: s.Location, Warning: s.Warning, Body: s.Body, BodyOmitted: s.Omitted, Expires: s.Expires}
	copy(r.Fingerprint[:], s.Fingerprint)
	return r, nil
}

// storedAudit is an AuditRecord's JSON in the data dir.
type storedAudit struct {
	Time        time.Time       `json:"t"`
	Environment string          `json:"env"`
	Entity      string          `json:"entity"`
	Entry       json.RawMessage `json:"entry"`
}

// decodeAudit decodes an audit value: a storedAudit, or from an older
// version the entry's JSON itself (wire.AuditEntry).
func decodeAudit(v []byte) (storedAudit, error) {
	var a storedAudit
	if err := json.Unmarshal(v, &a); err != nil {
		return a, err
	}
	if len(a.Entry) > 0 {
		return a, nil
	}
	var old struct {
		Time        time.Time `json:"time"`
		Environment string    `json:"environment"`
		Entity      string    `json:"entity"`
	}
	if err := json.Unmarshal(v, &old); err != nil {
		return a, err
	}
	return storedAudit{old.Time, old.Environment, old.Entity, v}, nil
}

func tombKey(env, kind, key string) string { return env + "\x00" + kind + "\x00" + key }

func (st *embeddedStore) Write(ctx context.Context, req *WriteRequest) (*IdempotencyRecord, error) {
	if st.db == nil {
		return st.writeMemory(req)
	}
	var replay *IdempotencyRecord
	var ev ChangeEvent
	err := st.db.Update(func(tx *bolt.Tx) error {
		idem := tx.Bucket(bucketIdem)
		if req.IdempotencyKey != "" {
			if b := idem.Get([]byte(req.IdempotencyKey)); b != nil {
				r, err := decodeIdem(b)
				if err != nil {
					return err
				}
				if req.Now.Before(r.Expires) {
					replay = r
					return nil
				}
			}
		}
		envs := tx.Bucket(bucketEnvs)
		name := []byte(req.Environment)
		whole := envs.Get(name)
		b := envs.Bucket(name)
		if whole == nil && b == nil {
			return ErrStale
		}
		cur, err := envVersion(envs, name, whole)
		if err != nil {
			return err
		}
		if cur != req.Base {
			return ErrStale
		}
		meta := tx.Bucket(bucketMeta)
		version := int64(binary.BigEndian.Uint64(meta.Get(keyHead))) + 1
		ch, err := req.Build(version)
		if err != nil {
			return err
		}
		if err := st.decideInWrite(tx, ch.Decision); err != nil {
			return err
		}
		if whole != nil { // stored whole by an older version: convert it
			e, err := splitConfig(req.Environment, whole)
			if err != nil {
				return err
			}
			if err := envs.Delete(name); err != nil {
				return err
			}
			if b, err = envs.CreateBucket(name); err != nil {
				return err
			}
			if err := putWhole(b, &e); err != nil {
				return err
			}
		}
		parts := b.Bucket(bucketFlags)
		if ch.Kind == "segment" {
			parts = b.Bucket(bucketSegs)
		}
		if parts == nil {
			return errors.New("flagserver: stored environment has no " + ch.Kind + " bucket")
		}
		if ch.Entity != nil {
			err = parts.Put([]byte(ch.Key), ch.Entity)
		} else {
			err = parts.Delete([]byte(ch.Key))
		}
		if err != nil {
			return err
		}
		puts := [][2][]byte{{keyHead, ch.Head}}
		if ch.FlagKeys != nil {
			puts = append(puts, [2][]byte{keyFlagKeys, ch.FlagKeys})
		}
		if ch.SegKeys != nil {
			puts = append(puts, [2][]byte{keySegKeys, ch.SegKeys})
		}
		for _, kv := range puts {
			if err := b.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		if err := meta.Put(keyHead, binary.BigEndian.AppendUint64(nil, uint64(version))); err != nil {
			return err
		}
		tombs := tx.Bucket(bucketTombs)
		tk := []byte(tombKey(req.Environment, ch.Kind, ch.Key))
		if ch.Tombstone != "" {
			err = tombs.Put(tk, []byte(ch.Tombstone))
		} else {
			err = tombs.Delete(tk)
		}
		if err != nil {
			return err
		}
		audit := tx.Bucket(bucketAudit)
		if ch.Audit != nil {
			id, err := audit.NextSequence()
			if err != nil {
				return err
			}
			ab, err := json.Marshal(storedAudit{ch.Audit.Time, ch.Audit.Environment, ch.Audit.Entity, ch.Audit.Entry})
			if err != nil {
				return err
			}
			if err := audit.Put(binary.BigEndian.AppendUint64(nil, id), ab); err != nil {
				return err
			}
		}
		if !req.PruneAuditBefore.IsZero() {
			if err := pruneAudit(audit, req.PruneAuditBefore); err != nil {
				return err
			}
		}
		if err := pruneIdem(idem, tx.Bucket(bucketIdemX), req.Now); err != nil {
			return err
		}
		if ch.Idempotency != nil && req.IdempotencyKey != "" {
			rb, err := encodeIdem(ch.Idempotency)
			if err != nil {
				return err
			}
			if err := idem.Put([]byte(req.IdempotencyKey), rb); err != nil {
				return err
			}
			xk := binary.BigEndian.AppendUint64(nil, uint64(ch.Idempotency.Expires.UnixNano()))
			if err := tx.Bucket(bucketIdemX).Put(append(xk, req.IdempotencyKey...), nil); err != nil {
				return err
			}
		}
		ev = ChangeEvent{Version: version, Environment: req.Environment, Event: ch.Event}
		return nil
	})
	if err != nil || replay != nil {
		return replay, err
	}
	st.appendChange(ev)
	return nil, nil
}

func pruneAudit(audit *bolt.Bucket, before time.Time) error {
	var old [][]byte
	c := audit.Cursor()
	for k, v := c.First(); k != nil && len(old) < pruneBatch; k, v = c.Next() {
		a, err := decodeAudit(v)
		if err != nil || !a.Time.Before(before) {
			break
		}
		old = append(old, k)
	}
	for _, k := range old {
		if err := audit.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func pruneIdem(idem, byExp *bolt.Bucket, now time.Time) error {
	var old [][]byte
	c := byExp.Cursor()
	for k, _ := c.First(); k != nil && len(old) < pruneBatch; k, _ = c.Next() {
		if int64(binary.BigEndian.Uint64(k[:8])) > now.UnixNano() {
			break
		}
		old = append(old, k)
	}
	for _, k := range old {
		key := k[8:]
		if b := idem.Get(key); b != nil {
			if r, err := decodeIdem(b); err != nil || !now.Before(r.Expires) {
				if err := idem.Delete(key); err != nil {
					return err
				}
			}
		}
		if err := byExp.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (st *embeddedStore) appendChange(ev ChangeEvent) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.head = max(st.head, ev.Version)
	st.changes = append(st.changes, ev)
	if over := len(st.changes) - embeddedChanges; over > 0 {
		st.gone = st.changes[over-1].Version
		st.changes = append(st.changes[:0:0], st.changes[over:]...)
	}
}

// writeMemory is Write for a memory-only store.
func (st *embeddedStore) writeMemory(req *WriteRequest) (*IdempotencyRecord, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if req.IdempotencyKey != "" {
		if r := st.idem[req.IdempotencyKey]; r != nil && req.Now.Before(r.Expires) {
			return r, nil
		}
	}
	e := st.envs[req.Environment]
	if e == nil || e.Version != req.Base {
		return nil, ErrStale
	}
	version := st.head + 1
	ch, err := req.Build(version)
	if err != nil {
		return nil, err
	}
	if err := st.decideInWrite(nil, ch.Decision); err != nil {
		return nil, err
	}
	next := cloneEnv(e)
	parts := next.Flags
	if ch.Kind == "segment" {
		parts = next.Segments
	}
	if ch.Entity != nil {
		parts[ch.Key] = ch.Entity
	} else {
		delete(parts, ch.Key)
	}
	next.Version, next.Head = version, ch.Head
	if ch.FlagKeys != nil {
		next.FlagKeys = ch.FlagKeys
	}
	if ch.SegKeys != nil {
		next.SegKeys = ch.SegKeys
	}
	st.envs[req.Environment] = &next
	tk := tombKey(req.Environment, ch.Kind, ch.Key)
	if ch.Tombstone != "" {
		st.tombs[tk] = ch.Tombstone
		st.tombQ = append(st.tombQ, tk)
		for len(st.tombQ) > memoryMaxTombstones {
			old := st.tombQ[0]
			st.tombQ = st.tombQ[1:]
			if !slices.Contains(st.tombQ, old) {
				delete(st.tombs, old)
			}
		}
	} else {
		delete(st.tombs, tk)
	}
	if ch.Audit != nil {
		st.nextID++
		a := *ch.Audit
		a.ID = st.nextID
		st.audit = append(st.audit, a)
		if over := len(st.audit) - memoryMaxAudit; over > 0 {
			st.audit = append(st.audit[:0:0], st.audit[over:]...)
		}
	}
	if !req.PruneAuditBefore.IsZero() {
		i := 0
		for i < len(st.audit) && st.audit[i].Time.Before(req.PruneAuditBefore) {
			i++
		}
		st.audit = st.audit[i:]
	}
	if ch.Idempotency != nil && req.IdempotencyKey != "" {
		if old := st.idem[req.IdempotencyKey]; old != nil {
			st.idemB -= len(old.Body)
		}
		st.idem[req.IdempotencyKey] = ch.Idempotency
		st.idemQ = append(st.idemQ, req.IdempotencyKey)
		st.idemB += len(ch.Idempotency.Body)
		for len(st.idemQ) > 0 && (len(st.idem) > memoryMaxIdempotency || st.idemB > memoryMaxIdempotencyBytes ||
			!req.Now.Before(st.idem[st.idemQ[0]].Expires)) {
			old := st.idemQ[0]
			st.idemQ = st.idemQ[1:]
			if r := st.idem[old]; r != nil && !slices.Contains(st.idemQ, old) {
				st.idemB -= len(r.Body)
				delete(st.idem, old)
			}
		}
	}
	st.head = version
	st.changes = append(st.changes, ChangeEvent{Version: version, Environment: req.Environment, Event: ch.Event})
	if over := len(st.changes) - embeddedChanges; over > 0 {
		st.gone = st.changes[over-1].Version
		st.changes = append(st.changes[:0:0], st.changes[over:]...)
	}
	return nil, nil
}

func (st *embeddedStore) Changes(ctx context.Context, after int64, limit int) ([]ChangeEvent, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if after < st.gone {
		return nil, ErrChangesGone
	}
	i, _ := slices.BinarySearchFunc(st.changes, after+1, func(c ChangeEvent, v int64) int {
		return int(c.Version - v)
	})
	out := st.changes[i:]
	if len(out) > limit {
		out = out[:limit]
	}
	return slices.Clone(out), nil
}

func (st *embeddedStore) Tombstone(ctx context.Context, env, kind, key string) (string, bool, error) {
	tk := tombKey(env, kind, key)
	if st.db == nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		e, ok := st.tombs[tk]
		return e, ok, nil
	}
	var etag string
	err := st.db.View(func(tx *bolt.Tx) error {
		etag = string(tx.Bucket(bucketTombs).Get([]byte(tk)))
		return nil
	})
	return etag, etag != "", err
}

func (st *embeddedStore) Idempotency(ctx context.Context, key string, now time.Time) (*IdempotencyRecord, error) {
	if st.db == nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		if r := st.idem[key]; r != nil && now.Before(r.Expires) {
			return r, nil
		}
		return nil, nil
	}
	var rec *IdempotencyRecord
	err := st.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIdem).Get([]byte(key))
		if b == nil {
			return nil
		}
		r, err := decodeIdem(b)
		if err == nil && now.Before(r.Expires) {
			rec = r
		}
		return err
	})
	return rec, err
}

// auditMatches reports whether a record is selected by q.
func auditMatches(q *AuditQuery, env, entity string, at time.Time, entry []byte) bool {
	return (q.Entity == "" || q.Entity == entity) &&
		(q.Environment == "" || q.Environment == env) &&
		(q.Environments == nil || slices.Contains(q.Environments, env)) &&
		(q.Since.IsZero() || !at.Before(q.Since)) && (q.Until.IsZero() || at.Before(q.Until)) &&
		(q.Actor == "" || auditActorMatches(q.Actor, entry))
}

func (st *embeddedStore) Audit(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	out := []AuditRecord{}
	size := 0
	full := func(n int) bool {
		return len(out) >= q.Limit || (len(out) > 0 && q.MaxBytes > 0 && size+n > q.MaxBytes)
	}
	if st.db == nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		for i := len(st.audit) - 1; i >= 0; i-- {
			a := st.audit[i]
			if (q.Before > 0 && a.ID >= q.Before) || !auditMatches(&q, a.Environment, a.Entity, a.Time, a.Entry) {
				continue
			}
			if full(len(a.Entry)) {
				break
			}
			size += len(a.Entry)
			out = append(out, a)
		}
		return out, nil
	}
	err := st.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		var k, v []byte
		if q.Before > 0 {
			k, v = c.Seek(binary.BigEndian.AppendUint64(nil, uint64(q.Before)))
			if k == nil {
				k, v = c.Last()
			}
			for k != nil && int64(binary.BigEndian.Uint64(k)) >= q.Before {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		for ; k != nil; k, v = c.Prev() {
			a, err := decodeAudit(v)
			if err != nil {
				return fmt.Errorf("flagserver: corrupt audit entry %x: %w", k, err)
			}
			if !auditMatches(&q, a.Environment, a.Entity, a.Time, a.Entry) {
				continue
			}
			if full(len(a.Entry)) {
				return nil
			}
			size += len(a.Entry)
			out = append(out, AuditRecord{ID: int64(binary.BigEndian.Uint64(k)), Time: a.Time, Environment: a.Environment, Entity: a.Entity, Entry: a.Entry})
		}
		return nil
	})
	return out, err
}

// keyRetired holds, in the meta bucket, the signing keys a rotation
// replaced: a JSON array of their 32-byte seeds, newest first. The current
// key is DataDir/signing-key.pem.
var keyRetired = []byte("retiredSigningKeys")

func (st *embeddedStore) SigningKeys(ctx context.Context) ([]ed25519.PrivateKey, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.signingKeysLocked()
}

func (st *embeddedStore) signingKeysLocked() ([]ed25519.PrivateKey, error) {
	if st.key == nil {
		if st.dir != "" {
			k, _, err := LoadOrCreateSigningKey(st.dir)
			if err != nil {
				return nil, err
			}
			st.key = k
		} else {
			_, k, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return nil, fmt.Errorf("flagserver: generate signing key: %w", err)
			}
			st.key = k
		}
	}
	keys := []ed25519.PrivateKey{st.key}
	retired, err := st.retiredLocked()
	if err != nil {
		return nil, err
	}
	for _, k := range retired {
		if !k.Equal(st.key) { // a rotation cut short lists the current key as retired too
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// retiredLocked returns the retired keys, newest first.
func (st *embeddedStore) retiredLocked() ([]ed25519.PrivateKey, error) {
	var seeds [][]byte
	if st.db == nil {
		seeds = st.retired
	} else if err := st.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta).Get(keyRetired); b != nil {
			return json.Unmarshal(b, &seeds)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("flagserver: retired signing keys: %w", err)
	}
	keys := make([]ed25519.PrivateKey, 0, len(seeds))
	for _, s := range seeds {
		if len(s) != ed25519.SeedSize {
			return nil, fmt.Errorf("flagserver: a retired signing key is %d bytes, want a %d-byte seed", len(s), ed25519.SeedSize)
		}
		keys = append(keys, ed25519.NewKeyFromSeed(s))
	}
	return keys, nil
}

func (st *embeddedStore) RotateSigningKey(ctx context.Context) ([]ed25519.PrivateKey, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	keys, err := st.signingKeysLocked()
	if err != nil {
		return nil, err
	}
	seeds := [][]byte{keys[0].Seed()}
	for _, k := range keys[1:] {
		seeds = append(seeds, k.Seed())
	}
	_, fresh, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("flagserver: generate signing key: %w", err)
	}
	if st.db == nil {
		st.retired, st.key = seeds, fresh
		return st.signingKeysLocked()
	}
	// The current key is listed as retired first, then replaced in the
	// file: a crash in between keeps it current (and listed once).
	b, err := json.Marshal(seeds)
	if err != nil {
		return nil, err
	}
	if err := st.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyRetired, b) }); err != nil {
		return nil, fmt.Errorf("flagserver: rotate signing key: %w", err)
	}
	if err := writeSigningKey(st.dir, fresh); err != nil {
		return nil, err
	}
	st.key = fresh
	return st.signingKeysLocked()
}
