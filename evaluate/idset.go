package evaluate

import (
	"hash/maphash"
	"math/bits"
)

// indexSeed seeds the hash of strIndex; random per process, so that
// nobody can choose keys that collide.
var indexSeed = maphash.MakeSeed()

// strIndex finds a string's position in a read-only list: a segment's
// included or excluded ids. On the engine's path it answers sooner than a
// Go map of 1,000 ids (one hash of the key and, for a member, one string
// comparison), and takes a key held as bytes. (For a snapshot's flag keys
// it was slower than a small Go map, which needs no hash.)
//
// Open addressing with linear probing, at most half full. A slot holds the
// top 32 bits of the key's hash and its position in keys plus one; 0 is
// empty. A repeated key keeps its first position.
type strIndex struct {
	keys  []string
	slots []uint64
	mask  uint64
}

func newStrIndex(keys []string) strIndex {
	n := uint64(1) << bits.Len(uint(2*len(keys))) // a power of two > 2·len(keys)
	x := strIndex{keys: keys, slots: make([]uint64, n), mask: n - 1}
	for pos, k := range keys {
		h := maphash.String(indexSeed, k)
		i := h & x.mask
		for ; x.slots[i] != 0; i = (i + 1) & x.mask {
			if e := x.slots[i]; e>>32 == h>>32 && x.keys[uint32(e)-1] == k {
				break // a repeat
			}
		}
		if x.slots[i] == 0 {
			x.slots[i] = h>>32<<32 | uint64(pos+1)
		}
	}
	return x
}

// findBytes returns the position of key, held as bytes, or -1.
func (x *strIndex) findBytes(key []byte) int {
	h := maphash.Bytes(indexSeed, key)
	for i := h & x.mask; ; i = (i + 1) & x.mask {
		e := x.slots[i]
		if e == 0 {
			return -1
		}
		if e>>32 == h>>32 && x.keys[uint32(e)-1] == string(key) {
			return int(uint32(e)) - 1
		}
	}
}

// idSet is a set of canonical ids (a segment's included or excluded list);
// nil is the empty set.
type idSet struct{ strIndex }

// newIDSet returns the set of ids, or nil when ids is empty. It keeps ids
// itself, which must not be modified afterwards: it is the compiled
// Config's own list (see Compile). The index takes 8 bytes per slot, 2–4
// slots per id: 16–32 bytes per id (a map[string]struct{} of the same ids
// takes 19–39, besides the strings).
func newIDSet(ids []string) *idSet {
	if len(ids) == 0 {
		return nil
	}
	return &idSet{newStrIndex(ids)}
}

// has reports whether id is in the set.
func (s *idSet) has(id []byte) bool {
	return s != nil && s.findBytes(id) >= 0
}
