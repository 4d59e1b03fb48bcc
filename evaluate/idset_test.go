package evaluate

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestIDSetMatchesMap checks idSet against a Go map (the oracle) on sets
// of every size up to 300 and a few large ones, with repeats among the
// ids, empty and long ids, and queries both in and out of the set.
func TestIDSetMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	randID := func() string {
		switch r.IntN(5) {
		case 0:
			return ""
		case 1:
			return "beta-" + strconv.Itoa(r.IntN(500))
		case 2:
			b := make([]byte, r.IntN(80))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			return string(b)
		default:
			return strconv.Itoa(r.IntN(2000))
		}
	}
	sizes := []int{0, 1, 2, 3, 7, 8, 9, 1000, 20000}
	for n := 10; n <= 300; n += 7 {
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		ids := make([]string, n)
		want := map[string]struct{}{}
		for i := range ids {
			ids[i] = randID()
			if i > 0 && r.IntN(10) == 0 {
				ids[i] = ids[r.IntN(i)] // a repeat
			}
			want[ids[i]] = struct{}{}
		}
		s := newIDSet(ids)
		for id := range want {
			if !s.has([]byte(id)) {
				t.Fatalf("n=%d: member %q not found", n, id)
			}
		}
		// find: every id's first position.
		x := s
		first := map[string]int{}
		for i, id := range ids {
			if _, seen := first[id]; !seen {
				first[id] = i
			}
		}
		for id, pos := range first {
			if got := x.find([]byte(id)); got != pos {
				t.Fatalf("n=%d: find(%q) = %d, want %d", n, id, got, pos)
			}
		}
		for range 2000 {
			id := randID()
			_, in := want[id]
			if s.has([]byte(id)) != in {
				t.Fatalf("n=%d: has(%q) = %v, want %v", n, id, !in, in)
			}
			if !in && x.find([]byte(id)) != -1 {
				t.Fatalf("n=%d: %q found, but it is not a key", n, id)
			}
		}
	}
}

func TestIDSetHasDoesNotAllocate(t *testing.T) {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = "beta-" + strconv.Itoa(1e7 + i)[1:]
	}
	s := newIDSet(ids)
	hit, miss := []byte("beta-0000500"), []byte("8a7f4c91")
	if n := testing.AllocsPerRun(100, func() { s.has(hit); s.has(miss) }); n != 0 {
		t.Fatalf("has allocates %v times", n)
	}
}
