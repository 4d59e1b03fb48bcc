package evaluate

import (
	"hash/maphash"
	"math/bits"
)

// idSeed seeds the hash of idSet; random per process, so that nobody can
// choose ids that collide.
var idSeed = maphash.MakeSeed()

// idSet is a read-only set of canonical ids: a segment's included or
// excluded list. Open addressing with linear probing, at most half full.
// A slot holds the top 32 bits of the id's hash and its index in ids plus
// one; 0 is empty.
type idSet struct {
	ids   []string
	slots []uint64
	mask  uint64
}

// newIDSet returns the set of ids (repeats count once), or nil when ids is
// empty.
func newIDSet(ids []string) *idSet {
	if len(ids) == 0 {
		return nil
	}
	n := uint64(1) << bits.Len(uint(2*len(ids)-1)) // a power of two ≥ 2·len(ids)
	s := &idSet{ids: make([]string, 0, len(ids)), slots: make([]uint64, n), mask: n - 1}
	for _, id := range ids {
		h := maphash.String(idSeed, id)
		i := h & s.mask
		for ; s.slots[i] != 0; i = (i + 1) & s.mask {
			if e := s.slots[i]; e>>32 == h>>32 && s.ids[uint32(e)-1] == id {
				break // a repeat
			}
		}
		if s.slots[i] == 0 {
			s.ids = append(s.ids, id)
			s.slots[i] = h>>32<<32 | uint64(len(s.ids))
		}
	}
	return s
}

// has reports whether id is in the set; a nil set is empty.
func (s *idSet) has(id []byte) bool {
	if s == nil {
		return false
	}
	h := maphash.Bytes(idSeed, id)
	for i := h & s.mask; ; i = (i + 1) & s.mask {
		e := s.slots[i]
		if e == 0 {
			return false
		}
		if e>>32 == h>>32 && s.ids[uint32(e)-1] == string(id) {
			return true
		}
	}
}
