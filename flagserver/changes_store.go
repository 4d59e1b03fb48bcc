package flagserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/flagwire/flagwire/internal/wire"
)

// The embedded store's change requests (ChangeStore).
//
// In a data directory: bucket "changes" maps a change request's id to its
// storedChange JSON, bucket "changes-by-seq" its Seq (8 bytes, big-endian,
// the bucket's sequence) to its id. Every change request is kept.
//
// In memory: at most memoryMaxChanges; beyond that the oldest decided ones
// are forgotten first, and a proposal is refused while that many are
// pending.
var (
	bucketChanges      = []byte("changes")
	bucketChangesBySeq = []byte("changes-by-seq")
)

// memoryMaxChanges bounds the change requests a memory-only store keeps.
const memoryMaxChanges = 10_000

// errTooManyPending refuses a proposal to a memory-only store holding
// memoryMaxChanges pending change requests.
var errTooManyPending = fmt.Errorf("%w: %d change requests are pending; approve or reject some first", ErrStoreUnavailable, memoryMaxChanges)

// changeMem is a memory-only store's change requests.
type changeMem struct {
	byID  map[string]*StoredChange
	order []string // ids by Seq, oldest first
	seq   int64
}

// storedChange is a StoredChange's JSON in the data dir.
type storedChange struct {
	Seq         int64           `json:"seq"`
	Environment string          `json:"env"`
	Status      string          `json:"status"`
	Created     time.Time       `json:"created"`
	Record      json.RawMessage `json:"record"`
}

func (sc *storedChange) to(id string) StoredChange {
	return StoredChange{ID: id, Seq: sc.Seq, Environment: sc.Environment, Status: sc.Status, Created: sc.Created, Record: sc.Record}
}

// ProposeChange implements ChangeStore.
func (st *embeddedStore) ProposeChange(ctx context.Context, p *ChangeProposal) (*IdempotencyRecord, error) {
	if st.db == nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		if r := st.memIdem(p.IdempotencyKey, p.Now); r != nil {
			return r, nil
		}
		m := &st.cr
		if m.byID == nil {
			m.byID = map[string]*StoredChange{}
		}
		if _, dup := m.byID[p.Change.ID]; dup {
			return nil, fmt.Errorf("flagserver: change request %q exists", p.Change.ID)
		}
		if len(m.order) >= memoryMaxChanges && !m.forgetDecided() {
			return nil, errTooManyPending
		}
		m.seq++
		c := p.Change
		c.Seq = m.seq
		m.byID[c.ID] = &c
		m.order = append(m.order, c.ID)
		st.memAudit(p.Audit)
		st.memPutIdem(p.IdempotencyKey, p.Idempotency, p.Now)
		return nil, nil
	}
	var replay *IdempotencyRecord
	err := st.db.Update(func(tx *bolt.Tx) error {
		if r, err := boltIdem(tx, p.IdempotencyKey, p.Now); err != nil || r != nil {
			replay = r
			return err
		}
		byID, bySeq, err := changeBuckets(tx)
		if err != nil {
			return err
		}
		if byID.Get([]byte(p.Change.ID)) != nil {
			return fmt.Errorf("flagserver: change request %q exists", p.Change.ID)
		}
		seq, err := bySeq.NextSequence()
		if err != nil {
			return err
		}
		b, err := json.Marshal(storedChange{int64(seq), p.Change.Environment, p.Change.Status, p.Change.Created, p.Change.Record})
		if err != nil {
			return err
		}
		if err := byID.Put([]byte(p.Change.ID), b); err != nil {
			return err
		}
		if err := bySeq.Put(binary.BigEndian.AppendUint64(nil, seq), []byte(p.Change.ID)); err != nil {
			return err
		}
		if err := boltAudit(tx, p.Audit); err != nil {
			return err
		}
		return boltPutIdem(tx, p.IdempotencyKey, p.Idempotency)
	})
	return replay, err
}

// forgetDecided drops the oldest decided change request; false when all
// are pending.
func (m *changeMem) forgetDecided() bool {
	for i, id := range m.order {
		if m.byID[id].Status != wire.ChangePending {
			delete(m.byID, id)
			m.order = slices.Delete(m.order, i, i+1)
			return true
		}
	}
	return false
}

func changeBuckets(tx *bolt.Tx) (byID, bySeq *bolt.Bucket, err error) {
	if byID, err = tx.CreateBucketIfNotExists(bucketChanges); err != nil {
		return nil, nil, err
	}
	bySeq, err = tx.CreateBucketIfNotExists(bucketChangesBySeq)
	return byID, bySeq, err
}

// ChangeRequest implements ChangeStore.
func (st *embeddedStore) ChangeRequest(ctx context.Context, id string) (StoredChange, bool, error) {
	if st.db == nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		if c := st.cr.byID[id]; c != nil {
			return *c, true, nil
		}
		return StoredChange{}, false, nil
	}
	var out StoredChange
	var ok bool
	err := st.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketChanges)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(id))
		if v == nil {
			return nil
		}
		var sc storedChange
		if err := json.Unmarshal(v, &sc); err != nil {
			return fmt.Errorf("flagserver: corrupt change request %q: %w", id, err)
		}
		out, ok = sc.to(id), true
		return nil
	})
	return out, ok, err
}

func changeMatches(q *ChangeQuery, c *StoredChange) bool {
	return (q.Before <= 0 || c.Seq < q.Before) &&
		(q.Environment == "" || q.Environment == c.Environment) &&
		(q.Status == "" || q.Status == c.Status) &&
		(q.Environments == nil || slices.Contains(q.Environments, c.Environment))
}

// ChangeRequests implements ChangeStore.
func (st *embeddedStore) ChangeRequests(ctx context.Context, q ChangeQuery) ([]StoredChange, error) {
	out := []StoredChange{}
	size := 0
	// add appends c unless the page is full (false then).
	add := func(c StoredChange) bool {
		if len(out) >= q.Limit || (len(out) > 0 && q.MaxBytes > 0 && size+len(c.Record) > q.MaxBytes) {
			return false
		}
		size += len(c.Record)
		out = append(out, c)
		return true
	}
	if st.db == nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		for i := len(st.cr.order) - 1; i >= 0; i-- {
			if c := st.cr.byID[st.cr.order[i]]; changeMatches(&q, c) && !add(*c) {
				break
			}
		}
		return out, nil
	}
	err := st.db.View(func(tx *bolt.Tx) error {
		byID, bySeq := tx.Bucket(bucketChanges), tx.Bucket(bucketChangesBySeq)
		if byID == nil || bySeq == nil {
			return nil
		}
		c := bySeq.Cursor()
		var k, id []byte
		if q.Before > 0 {
			k, id = c.Seek(binary.BigEndian.AppendUint64(nil, uint64(q.Before)))
			if k == nil {
				k, id = c.Last()
			}
			for k != nil && int64(binary.BigEndian.Uint64(k)) >= q.Before {
				k, id = c.Prev()
			}
		} else {
			k, id = c.Last()
		}
		for ; k != nil; k, id = c.Prev() {
			var sc storedChange
			if err := json.Unmarshal(byID.Get(id), &sc); err != nil {
				return fmt.Errorf("flagserver: corrupt change request %q: %w", id, err)
			}
			if c := sc.to(string(id)); changeMatches(&q, &c) && !add(c) {
				return nil
			}
		}
		return nil
	})
	return out, err
}

// DecideChange implements ChangeStore.
func (st *embeddedStore) DecideChange(ctx context.Context, d *ChangeDecision) (*IdempotencyRecord, error) {
	if st.db == nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		if r := st.memIdem(d.IdempotencyKey, d.Now); r != nil {
			return r, nil
		}
		if err := st.decideMemLocked(d); err != nil {
			return nil, err
		}
		st.memAudit(d.Audit)
		st.memPutIdem(d.IdempotencyKey, d.Idempotency, d.Now)
		return nil, nil
	}
	var replay *IdempotencyRecord
	err := st.db.Update(func(tx *bolt.Tx) error {
		if r, err := boltIdem(tx, d.IdempotencyKey, d.Now); err != nil || r != nil {
			replay = r
			return err
		}
		if err := decideBolt(tx, d); err != nil {
			return err
		}
		if err := boltAudit(tx, d.Audit); err != nil {
			return err
		}
		return boltPutIdem(tx, d.IdempotencyKey, d.Idempotency)
	})
	return replay, err
}

// decideMemLocked moves a pending change request to d.Status (st.mu held).
func (st *embeddedStore) decideMemLocked(d *ChangeDecision) error {
	c := st.cr.byID[d.ID]
	switch {
	case c == nil:
		return ErrChangeNotFound
	case c.Status != wire.ChangePending:
		return ErrChangeDecided
	}
	c.Status, c.Record = d.Status, d.Record
	return nil
}

// decideBolt moves a pending change request to d.Status in tx.
func decideBolt(tx *bolt.Tx, d *ChangeDecision) error {
	byID, _, err := changeBuckets(tx)
	if err != nil {
		return err
	}
	v := byID.Get([]byte(d.ID))
	if v == nil {
		return ErrChangeNotFound
	}
	var sc storedChange
	if err := json.Unmarshal(v, &sc); err != nil {
		return fmt.Errorf("flagserver: corrupt change request %q: %w", d.ID, err)
	}
	if sc.Status != wire.ChangePending {
		return ErrChangeDecided
	}
	sc.Status, sc.Record = d.Status, d.Record
	b, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	return byID.Put([]byte(d.ID), b)
}

// decideInWrite is the embedded Store.Write's hook: the approval a write
// applies, in its transaction (tx nil: memory, st.mu held).
func (st *embeddedStore) decideInWrite(tx *bolt.Tx, d *ChangeDecision) error {
	if d == nil {
		return nil
	}
	if tx == nil {
		return st.decideMemLocked(d)
	}
	return decideBolt(tx, d)
}

// ---- audit entries and idempotency records outside Write ----

func boltAudit(tx *bolt.Tx, a *AuditRecord) error {
	if a == nil {
		return nil
	}
	audit := tx.Bucket(bucketAudit)
	id, err := audit.NextSequence()
	if err != nil {
		return err
	}
	ab, err := json.Marshal(storedAudit{a.Time, a.Environment, a.Entity, a.Entry})
	if err != nil {
		return err
	}
	return audit.Put(binary.BigEndian.AppendUint64(nil, id), ab)
}

func boltIdem(tx *bolt.Tx, key string, now time.Time) (*IdempotencyRecord, error) {
	if key == "" {
		return nil, nil
	}
	b := tx.Bucket(bucketIdem).Get([]byte(key))
	if b == nil {
		return nil, nil
	}
	r, err := decodeIdem(b)
	if err != nil || !now.Before(r.Expires) {
		return nil, err
	}
	return r, nil
}

func boltPutIdem(tx *bolt.Tx, key string, r *IdempotencyRecord) error {
	if r == nil || key == "" {
		return nil
	}
	rb, err := encodeIdem(r)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketIdem).Put([]byte(key), rb); err != nil {
		return err
	}
	xk := binary.BigEndian.AppendUint64(nil, uint64(r.Expires.UnixNano()))
	return tx.Bucket(bucketIdemX).Put(append(xk, key...), nil)
}

// memIdem returns the live record under key (st.mu held).
func (st *embeddedStore) memIdem(key string, now time.Time) *IdempotencyRecord {
	if key == "" {
		return nil
	}
	if r := st.idem[key]; r != nil && now.Before(r.Expires) {
		return r
	}
	return nil
}

// memAudit appends an audit entry, within memoryMaxAudit (st.mu held).
func (st *embeddedStore) memAudit(a *AuditRecord) {
	if a == nil {
		return
	}
	st.nextID++
	rec := *a
	rec.ID = st.nextID
	st.audit = append(st.audit, rec)
	if over := len(st.audit) - memoryMaxAudit; over > 0 {
		st.audit = append(st.audit[:0:0], st.audit[over:]...)
	}
}

// memPutIdem keeps r under key within the memory bounds, as Write does
// (st.mu held).
func (st *embeddedStore) memPutIdem(key string, r *IdempotencyRecord, now time.Time) {
	if r == nil || key == "" {
		return
	}
	if old := st.idem[key]; old != nil {
		st.idemB -= len(old.Body)
	}
	st.idem[key] = r
	st.idemQ = append(st.idemQ, key)
	st.idemB += len(r.Body)
	for len(st.idemQ) > 0 && (len(st.idem) > memoryMaxIdempotency || st.idemB > memoryMaxIdempotencyBytes ||
		!now.Before(st.idem[st.idemQ[0]].Expires)) {
		old := st.idemQ[0]
		st.idemQ = st.idemQ[1:]
		if rec := st.idem[old]; rec != nil && !slices.Contains(st.idemQ, old) {
			st.idemB -= len(rec.Body)
			delete(st.idem, old)
		}
	}
}

// auditActorMatches reports whether an audit entry's subject, requester
// or approver is actor. An actor that JSON writes as is (printable ASCII
// but for ", \, <, > and &) must appear in the entry's bytes: entries
// without it are passed over without decoding them.
func auditActorMatches(actor string, entry []byte) bool {
	if plainJSON(actor) && !bytes.Contains(entry, []byte(actor)) {
		return false
	}
	var e struct {
		Subject     string `json:"subject"`
		RequestedBy string `json:"requestedBy"`
		ApprovedBy  string `json:"approvedBy"`
	}
	if json.Unmarshal(entry, &e) != nil {
		return false
	}
	return e.Subject == actor || e.RequestedBy == actor || e.ApprovedBy == actor
}

// plainJSON reports whether encoding/json writes s's bytes unchanged
// inside a string.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
