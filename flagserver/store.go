package flagserver

import (
	"crypto/rand"
	"crypto/sha256"
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

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// envState is one environment's published state. It is immutable: a write
// builds a new envState and swaps it in.
type envState struct {
	name string
	cfg  *evaluate.Config
	snap *evaluate.Snapshot
	size int // len of the document, known before it is assembled

	docOnce sync.Once
	body    []byte // cfg as JSON, served by GET /v1/flags: use document()
	etag    string // strong, quoted hash of body: use document()
	head    []byte // the document's scalar fields, for document()
	// warnings are advisories about the write that made this state
	// (segment bloat, a config near the size limit); nil for none.
	warnings []string
	// flagJSON and segJSON are the encoded cfg.Flags and cfg.Segments,
	// index for index: body is assembled from them, and the next write
	// re-encodes only the entity it changes (a large static segment is
	// encoded once, when it is written).
	flagJSON, segJSON [][]byte
}

func (e *envState) version() int64 { return e.cfg.Version }

// newEnvState compiles cfg and prepares its wire form.
func newEnvState(cfg *evaluate.Config) (*envState, error) {
	return nextEnvState(cfg, nil, "", "")
}

// nextEnvState compiles cfg and prepares its wire form, reusing prev's
// compiled segments and encoded parts for every flag and segment except
// the one entity (kind "flag" or "segment", key) the write changed: the
// caller guarantees that nothing else differs from prev. prev nil encodes
// everything.
func nextEnvState(cfg *evaluate.Config, prev *envState, kind, key string) (*envState, error) {
	var prevSnap *evaluate.Snapshot
	if prev != nil {
		prevSnap = prev.snap
	}
	snap, err := evaluate.CompileReusing(cfg, prevSnap)
	if err != nil {
		return nil, err
	}
	es := &envState{name: cfg.Environment, cfg: cfg, snap: snap}
	var reuseFlags, reuseSegs map[string][]byte
	if prev != nil {
		reuseFlags = make(map[string][]byte, len(prev.cfg.Flags))
		for i := range prev.cfg.Flags {
			if k := prev.cfg.Flags[i].Key; kind != "flag" || k != key {
				reuseFlags[k] = prev.flagJSON[i]
			}
		}
		reuseSegs = make(map[string][]byte, len(prev.cfg.Segments))
		for i := range prev.cfg.Segments {
			if k := prev.cfg.Segments[i].Key; kind != "segment" || k != key {
				reuseSegs[k] = prev.segJSON[i]
			}
		}
	}
	es.flagJSON = make([][]byte, len(cfg.Flags))
	for i := range cfg.Flags {
		b, ok := reuseFlags[cfg.Flags[i].Key]
		if !ok {
			if b, err = json.Marshal(&cfg.Flags[i]); err != nil {
				return nil, fmt.Errorf("flagserver: encode flag %q: %w", cfg.Flags[i].Key, err)
			}
		}
		es.flagJSON[i] = b
	}
	es.segJSON = make([][]byte, len(cfg.Segments))
	for i := range cfg.Segments {
		b, ok := reuseSegs[cfg.Segments[i].Key]
		if !ok {
			if b, err = json.Marshal(&cfg.Segments[i]); err != nil {
				return nil, fmt.Errorf("flagserver: encode segment %q: %w", cfg.Segments[i].Key, err)
			}
		}
		es.segJSON[i] = b
	}
	// The document is exactly json.Marshal(cfg): the scalar fields, then
	// "flags" (null when nil) and "segments" (omitted when empty).
	head, err := json.Marshal(configHead{cfg.Environment, cfg.Version, cfg.Salt, cfg.RequireChangeReason, cfg.Attributes})
	if err != nil {
		return nil, fmt.Errorf("flagserver: encode config %q: %w", cfg.Environment, err)
	}
	es.head = head
	es.size = len(head) - 1 + len(`,"flags":`) + 1
	if cfg.Flags == nil {
		es.size += len("null")
	} else {
		es.size += partsLen(es.flagJSON)
	}
	if len(cfg.Segments) > 0 {
		es.size += len(`,"segments":`) + partsLen(es.segJSON)
	}
	return es, nil
}

// document returns the config document (json.Marshal of cfg, assembled
// from the cached parts) and its ETag. It is built on first use, by the
// first reader (outside the write lock), and then kept.
func (e *envState) document() (body []byte, etag string) {
	e.docOnce.Do(func() {
		b := make([]byte, 0, e.size)
		b = append(b, e.head[:len(e.head)-1]...)
		b = append(b, `,"flags":`...)
		if e.cfg.Flags == nil {
			b = append(b, "null"...)
		} else {
			b = appendParts(b, e.flagJSON)
		}
		if len(e.cfg.Segments) > 0 {
			b = append(b, `,"segments":`...)
			b = appendParts(b, e.segJSON)
		}
		b = append(b, '}')
		e.body, e.etag = b, etagOf(b)
	})
	return e.body, e.etag
}

func partsLen(parts [][]byte) int {
	n := 2 + max(0, len(parts)-1) // brackets and commas
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// configHead is evaluate.Config's fields before Flags, with its JSON tags.
type configHead struct {
	Environment         string            `json:"environment"`
	Version             int64             `json:"version"`
	Salt                string            `json:"salt"`
	RequireChangeReason bool              `json:"requireChangeReason,omitempty"`
	Attributes          map[string]string `json:"attributes,omitempty"`
}

func appendParts(b []byte, parts [][]byte) []byte {
	b = append(b, '[')
	for i, p := range parts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p...)
	}
	return append(b, ']')
}

// etagOf returns a strong ETag: the quoted first 16 bytes of SHA-256, hex.
func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// cloneConfig copies cfg for modification: the Flags and Segments slices
// are new; their elements are replaced, never modified in place. The
// flags-as-code source locator is dropped (edited configs no longer match
// their files).
func cloneConfig(c *evaluate.Config) *evaluate.Config {
	return &evaluate.Config{
		Environment:         c.Environment,
		Version:             c.Version,
		Salt:                c.Salt,
		RequireChangeReason: c.RequireChangeReason,
		Attributes:          c.Attributes,
		Flags:               slices.Clone(c.Flags),
		Segments:            slices.Clone(c.Segments),
	}
}

// Persistence: a bbolt file DataDir/flagwire.db with two buckets.
var (
	bucketEnvs  = []byte("envs")  // environment name → its bucket (below); older stores: config JSON
	bucketAudit = []byte("audit") // big-endian uint64 id → AuditEntry JSON
	bucketMeta  = []byte("meta")  // the store's own facts: keyEpoch
	keyEpoch    = []byte("epoch") // the store's epoch (see wire.HeaderConfigEpoch)

	// An environment's bucket holds its config in parts, so a write
	// stores only what it changed:
	keyHead     = []byte("head")     // the config's scalar fields (configHead JSON)
	keyFlagKeys = []byte("flagKeys") // JSON array of flag keys in config order (null: Flags nil)
	keySegKeys  = []byte("segKeys")  // JSON array of segment keys in config order
	bucketFlags = []byte("flags")    // flag key → flag JSON
	bucketSegs  = []byte("segments") // segment key → segment JSON
)

// change names what a write changed, for store.commit.
type change struct {
	kind, key   string
	keysChanged bool // an entity was added or removed: the key order is rewritten
}

// store is the durable part of the server; nil db means memory only.
type store struct {
	db *bolt.DB
	// epoch names this store's version counter (wire.HeaderConfigEpoch):
	// made when the store is created, kept in the data dir.
	epoch string
}

// newEpoch returns a random store epoch: 16 bytes, hex.
func newEpoch() string {
	var b [16]byte
	rand.Read(b[:]) // crypto/rand.Read never returns an error (it crashes the program instead)
	return hex.EncodeToString(b[:])
}

// openStore opens the data dir (memory only for ""), with a new epoch
// when rotate is set (Options.NewEpoch).
func openStore(dir string, rotate bool) (*store, error) {
	if dir == "" {
		return &store{epoch: newEpoch()}, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("flagserver: data dir: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "flagwire.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("flagserver: open data dir %s: %w", dir, err)
	}
	var epoch string
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketEnvs); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketAudit); err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		// A data dir from before epochs gets one now: its versions
		// continue, so clients that hold them compare them as before
		// once they have seen it.
		if e := meta.Get(keyEpoch); len(e) > 0 && !rotate {
			epoch = string(e)
			return nil
		}
		epoch = newEpoch()
		return meta.Put(keyEpoch, []byte(epoch))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("flagserver: init data dir: %w", err)
	}
	return &store{db: db, epoch: epoch}, nil
}

// load returns the persisted configs and audit log.
func (st *store) load() (map[string]*evaluate.Config, []wire.AuditEntry, error) {
	cfgs := map[string]*evaluate.Config{}
	var audit []wire.AuditEntry
	if st.db == nil {
		return cfgs, nil, nil
	}
	err := st.db.View(func(tx *bolt.Tx) error {
		envs := tx.Bucket(bucketEnvs)
		err := envs.ForEach(func(k, v []byte) error {
			if v == nil { // a bucket: the config in parts
				var err error
				if v, err = assembleStored(envs.Bucket(k)); err != nil {
					return fmt.Errorf("environment %q: %w", k, err)
				}
			}
			// The one config decoder: numbers exactly as stored, and
			// fields a newer version wrote skipped.
			cfg := new(evaluate.Config)
			if err := evaluate.DecodeJSON(v, cfg, evaluate.JSONOptions{AllowUnknownFields: true, ExactNumbers: true}); err != nil {
				return fmt.Errorf("environment %q: %w", k, err)
			}
			cfgs[string(k)] = cfg
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketAudit).ForEach(func(_, v []byte) error {
			var e wire.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			audit = append(audit, e)
			return nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("flagserver: load data dir: %w", err)
	}
	return cfgs, audit, nil
}

// commit durably stores an environment's new config and its audit entry
// (nil for none) in one transaction; bbolt fsyncs before Update returns.
// With ch, only the changed entity, the scalar fields and (when an entity
// was added or removed) the key order are written; without ch, or for an
// environment stored whole by an older version, everything is.
func (st *store) commit(env *envState, entry *wire.AuditEntry, ch *change) error {
	if st.db == nil {
		return nil
	}
	var ab []byte
	if entry != nil {
		var err error
		if ab, err = json.Marshal(entry); err != nil {
			return err
		}
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		envs := tx.Bucket(bucketEnvs)
		b := envs.Bucket([]byte(env.name))
		if b == nil || ch == nil {
			if envs.Get([]byte(env.name)) != nil { // stored whole by an older version
				if err := envs.Delete([]byte(env.name)); err != nil {
					return err
				}
			}
			if b != nil {
				if err := envs.DeleteBucket([]byte(env.name)); err != nil {
					return err
				}
			}
			var err error
			if b, err = envs.CreateBucket([]byte(env.name)); err != nil {
				return err
			}
			if err := storeAll(b, env); err != nil {
				return err
			}
		} else if err := storeChange(b, env, ch); err != nil {
			return err
		}
		if entry != nil {
			return tx.Bucket(bucketAudit).Put(binary.BigEndian.AppendUint64(nil, uint64(entry.ID)), ab)
		}
		return nil
	})
}

func storeAll(b *bolt.Bucket, env *envState) error {
	flags, err := b.CreateBucket(bucketFlags)
	if err != nil {
		return err
	}
	segs, err := b.CreateBucket(bucketSegs)
	if err != nil {
		return err
	}
	for i := range env.cfg.Flags {
		if err := flags.Put([]byte(env.cfg.Flags[i].Key), env.flagJSON[i]); err != nil {
			return err
		}
	}
	for i := range env.cfg.Segments {
		if err := segs.Put([]byte(env.cfg.Segments[i].Key), env.segJSON[i]); err != nil {
			return err
		}
	}
	return storeHead(b, env, true)
}

func storeChange(b *bolt.Bucket, env *envState, ch *change) error {
	parts, enc := b.Bucket(bucketFlags), env.flagJSON
	keys := make([]string, 0, len(env.cfg.Flags))
	for i := range env.cfg.Flags {
		keys = append(keys, env.cfg.Flags[i].Key)
	}
	if ch.kind == "segment" {
		parts, enc = b.Bucket(bucketSegs), env.segJSON
		keys = keys[:0]
		for i := range env.cfg.Segments {
			keys = append(keys, env.cfg.Segments[i].Key)
		}
	}
	if parts == nil {
		return errors.New("flagserver: stored environment has no " + ch.kind + " bucket")
	}
	if i := slices.Index(keys, ch.key); i >= 0 {
		if err := parts.Put([]byte(ch.key), enc[i]); err != nil {
			return err
		}
	} else if err := parts.Delete([]byte(ch.key)); err != nil {
		return err
	}
	return storeHead(b, env, ch.keysChanged)
}

// storeHead writes the scalar fields and, with order, the key orders.
func storeHead(b *bolt.Bucket, env *envState, order bool) error {
	if err := b.Put(keyHead, env.head); err != nil {
		return err
	}
	if !order {
		return nil
	}
	var fk, sk []string
	if env.cfg.Flags != nil {
		fk = make([]string, len(env.cfg.Flags))
		for i := range env.cfg.Flags {
			fk[i] = env.cfg.Flags[i].Key
		}
	}
	for i := range env.cfg.Segments {
		sk = append(sk, env.cfg.Segments[i].Key)
	}
	fb, err := json.Marshal(fk)
	if err != nil {
		return err
	}
	sb, err := json.Marshal(sk)
	if err != nil {
		return err
	}
	if err := b.Put(keyFlagKeys, fb); err != nil {
		return err
	}
	return b.Put(keySegKeys, sb)
}

// assembleStored rebuilds the config document from an environment's
// bucket, in the stored order.
func assembleStored(b *bolt.Bucket) ([]byte, error) {
	head := b.Get(keyHead)
	flags, segs := b.Bucket(bucketFlags), b.Bucket(bucketSegs)
	if len(head) < 2 || head[len(head)-1] != '}' || flags == nil || segs == nil {
		return nil, errors.New("incomplete stored config")
	}
	var fk, sk []string
	if err := json.Unmarshal(b.Get(keyFlagKeys), &fk); err != nil {
		return nil, fmt.Errorf("flag keys: %w", err)
	}
	if err := json.Unmarshal(b.Get(keySegKeys), &sk); err != nil {
		return nil, fmt.Errorf("segment keys: %w", err)
	}
	parts := func(bk *bolt.Bucket, keys []string, what string) ([][]byte, error) {
		out := make([][]byte, len(keys))
		for i, k := range keys {
			if out[i] = bk.Get([]byte(k)); out[i] == nil {
				return nil, fmt.Errorf("%s %q is missing", what, k)
			}
		}
		return out, nil
	}
	fp, err := parts(flags, fk, "flag")
	if err != nil {
		return nil, err
	}
	sp, err := parts(segs, sk, "segment")
	if err != nil {
		return nil, err
	}
	doc := append([]byte(nil), head[:len(head)-1]...)
	doc = append(doc, `,"flags":`...)
	if fk == nil {
		doc = append(doc, "null"...)
	} else {
		doc = appendParts(doc, fp)
	}
	if len(sk) > 0 {
		doc = append(doc, `,"segments":`...)
		doc = appendParts(doc, sp)
	}
	return append(doc, '}'), nil
}

func (st *store) close() error {
	if st.db == nil {
		return nil
	}
	return st.db.Close()
}
