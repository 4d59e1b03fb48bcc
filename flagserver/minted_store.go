package flagserver

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The embedded store's minted token records (MintedTokenStore).
var (
	bucketMinted  = []byte("minted-tokens")    // id → storedMinted JSON
	bucketMintedX = []byte("minted-tokens-by") // expiry (8 bytes, unix nanos) + id → nothing
)

// memoryMaxMinted bounds the live minted token records of a memory-only
// store: beyond it the oldest are forgotten (their tokens are refused).
const memoryMaxMinted = 100_000

// mintedMem is a memory-only store's minted token records.
type mintedMem struct {
	mu    sync.Mutex
	recs  map[string]*MintedToken
	order []string // ids, oldest first
}

type storedMinted struct {
	Subject     string    `json:"subject"`
	Environment string    `json:"environment"`
	Flags       []string  `json:"flags"`
	Attributes  []string  `json:"attributes"`
	IssuedAt    time.Time `json:"issuedAt"`
	ExpiresAt   time.Time `json:"expiresAt"`
	Revoked     bool      `json:"revoked,omitempty"`
}

func (st *embeddedStore) RecordMintedToken(ctx context.Context, t MintedToken) error {
	if st.db == nil {
		m := &st.minted
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.recs == nil {
			m.recs = map[string]*MintedToken{}
		}
		now := t.IssuedAt
		for len(m.order) > 0 {
			first := m.recs[m.order[0]]
			if first != nil && len(m.order) < memoryMaxMinted && first.ExpiresAt.After(now) {
				break
			}
			delete(m.recs, m.order[0])
			m.order = m.order[1:]
		}
		c := t
		m.recs[t.ID] = &c
		m.order = append(m.order, t.ID)
		return nil
	}
	b, err := json.Marshal(storedMinted{t.Subject, t.Environment, t.Flags, t.Attributes, t.IssuedAt, t.ExpiresAt, t.Revoked})
	if err != nil {
		return err
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		recs, err := tx.CreateBucketIfNotExists(bucketMinted)
		if err != nil {
			return err
		}
		byExp, err := tx.CreateBucketIfNotExists(bucketMintedX)
		if err != nil {
			return err
		}
		// Remove a bounded number of expired records.
		now := uint64(t.IssuedAt.UnixNano())
		c := byExp.Cursor()
		var gone [][]byte
		for k, _ := c.First(); k != nil && len(gone) < pruneBatch && binary.BigEndian.Uint64(k[:8]) < now; k, _ = c.Next() {
			gone = append(gone, k)
		}
		for _, k := range gone {
			if err := byExp.Delete(k); err != nil {
				return err
			}
			if err := recs.Delete(k[8:]); err != nil {
				return err
			}
		}
		if err := recs.Put([]byte(t.ID), b); err != nil {
			return err
		}
		return byExp.Put(append(binary.BigEndian.AppendUint64(nil, uint64(t.ExpiresAt.UnixNano())), t.ID...), nil)
	})
}

func (st *embeddedStore) MintedToken(ctx context.Context, id string) (MintedToken, bool, error) {
	if st.db == nil {
		m := &st.minted
		m.mu.Lock()
		defer m.mu.Unlock()
		if r := m.recs[id]; r != nil {
			return *r, true, nil
		}
		return MintedToken{}, false, nil
	}
	var (
		out MintedToken
		ok  bool
	)
	err := st.db.View(func(tx *bolt.Tx) error {
		s, err := getMinted(tx, id)
		if s != nil {
			out, ok = MintedToken{id, s.Subject, s.Environment, s.Flags, s.Attributes, s.IssuedAt, s.ExpiresAt, s.Revoked}, true
		}
		return err
	})
	return out, ok, err
}

func (st *embeddedStore) RevokeMintedToken(ctx context.Context, id string) (bool, error) {
	if st.db == nil {
		m := &st.minted
		m.mu.Lock()
		defer m.mu.Unlock()
		r := m.recs[id]
		if r == nil {
			return false, nil
		}
		r.Revoked = true
		return true, nil
	}
	found := false
	err := st.db.Update(func(tx *bolt.Tx) error {
		s, err := getMinted(tx, id)
		if s == nil {
			return err
		}
		found = true
		s.Revoked = true
		nb, err := json.Marshal(s)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketMinted).Put([]byte(id), nb)
	})
	return found, err
}

// getMinted reads the record of id in tx: nil (and no error) when there
// is none.
func getMinted(tx *bolt.Tx, id string) (*storedMinted, error) {
	recs := tx.Bucket(bucketMinted)
	if recs == nil {
		return nil, nil
	}
	b := recs.Get([]byte(id))
	if b == nil {
		return nil, nil
	}
	var s storedMinted
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
