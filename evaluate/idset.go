package evaluate

import (
	"hash/maphash"
	"math/bits"
)

// idSeed seeds the hash of idSet; random per process, so that nobody can
// choose ids that collide.
var idSeed = maphash.MakeSeed()

// idSet is a read-only set of canonical ids: a segment's included or
// excluded list; nil is the empty set. On the engine's path it answers
// sooner than a Go map of 1,000 ids (one hash of the id and, for a member,
// one string comparison), and takes an id held as bytes. (For a snapshot's
// flag keys it was slower than a small Go map, which needs no hash.)
//
// Open addressing with linear probing, at most half full. A slot holds the
// top 32 bits of the id's hash and its position in ids plus one; 0 is
// empty. A repeated id keeps its first position.
type idSet struct {
	ids   []string
	slots []uint64
	mask  uint64
}

// newIDSet returns the set of ids, or nil when ids is empty. It keeps ids
// itself, which must not be modified afterwards: it is the compiled
// Config's own list (see Compile). The index takes 8 bytes per slot, 2–4
// slots per id: 16–32 bytes per id (a map[string]struct{} of the same ids
// takes 19–39, besides the strings).
func newIDSet(ids []string) *idSet {
	if len(ids) == 0 {
		return nil
	}
	n := uint64(1) << bits.Len(uint(2*len(ids))) // a power of two > 2·len(ids)
	s := &idSet{ids: ids, slots: make([]uint64, n), mask: n - 1}
	for pos, id := range ids {
		h := maphash.String(idSeed, id)
		i := h & s.mask
		for ; s.slots[i] != 0; i = (i + 1) & s.mask {
			if e := s.slots[i]; e>>32 == h>>32 && s.ids[uint32(e)-1] == id {
				break // a repeat
			}
		}
		if s.slots[i] == 0 {
			s.slots[i] = h>>32<<32 | uint64(pos+1)
		}
	}
	return s
}

// find returns the position of id in the list, or -1.
func (s *idSet) find(id []byte) int {
	if s == nil {
		return -1
	}
	h := maphash.Bytes(idSeed, id)
	for i := h & s.mask; ; i = (i + 1) & s.mask {
		e := s.slots[i]
		if e == 0 {
			return -1
		}
		if e>>32 == h>>32 && s.ids[uint32(e)-1] == string(id) {
			return int(uint32(e)) - 1
		}
	}
}

// has reports whether id is in the set.
func (s *idSet) has(id []byte) bool { return s.find(id) >= 0 }
