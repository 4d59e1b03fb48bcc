package shortsha

import (
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// TestSumMatchesCryptoSHA256 compares Sum with crypto/sha256 (the oracle)
// for every message length up to three blocks, with random contents, and
// for the FIPS 180-4 example messages.
func TestSumMatchesCryptoSHA256(t *testing.T) {
	t.Logf("SHA-NI path: %v", fast)
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 3*64; n++ {
		for range 50 {
			msg := make([]byte, n)
			for i := range msg {
				msg[i] = byte(r.Uint32())
			}
			want := sha256.Sum256(msg)
			if got := Sum(msg); got != want {
				t.Fatalf("len %d: Sum(%x) = %x, want %x", n, msg, got, want)
			}
			cut := r.IntN(n + 1)
			var got [32]byte
			if SumTo(&got, string(msg[:cut]), msg[cut:]); got != want {
				t.Fatalf("len %d: SumTo(%x, %x) = %x, want %x", n, msg[:cut], msg[cut:], got, want)
			}
		}
	}
	for _, m := range []string{"", "abc", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"} {
		if got, want := Sum([]byte(m)), sha256.Sum256([]byte(m)); got != want {
			t.Errorf("Sum(%q) = %x, want %x", m, got, want)
		}
	}
}

// TestKnownDigest checks one digest written out from FIPS 180-4's
// example, independently of crypto/sha256.
func TestKnownDigest(t *testing.T) {
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := Sum([]byte("abc")); hexString(got[:]) != want {
		t.Fatalf("Sum(abc) = %x, want %s", got, want)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}

func TestSumDoesNotAllocate(t *testing.T) {
	msg := []byte("prod-salt-2026:bench-flag:8a7f4c91")
	var out [32]byte
	prefix := string(msg[:15])
	if n := testing.AllocsPerRun(100, func() { Sum(msg); SumTo(&out, prefix, msg[15:]) }); n != 0 {
		t.Fatalf("Sum allocates %v times", n)
	}
}

func FuzzSum(f *testing.F) {
	f.Add([]byte("prod-salt-2026:bench-flag:8a7f4c91"))
	f.Add(make([]byte, 55))
	f.Add(make([]byte, 56))
	f.Add(make([]byte, 119))
	f.Fuzz(func(t *testing.T, msg []byte) {
		want := sha256.Sum256(msg)
		if got := Sum(msg); got != want {
			t.Fatalf("Sum(%x) = %x, want %x", msg, got, want)
		}
		var got [32]byte
		if SumTo(&got, string(msg[:len(msg)/3]), msg[len(msg)/3:]); got != want {
			t.Fatalf("SumTo(%x, %x) = %x, want %x", msg[:len(msg)/3], msg[len(msg)/3:], got, want)
		}
	})
}

func BenchmarkSum(b *testing.B) {
	msg := []byte("prod-salt-2026:bench-flag:8a7f4c91")
	b.Run("shortsha", func(b *testing.B) {
		for b.Loop() {
			Sum(msg)
		}
	})
	b.Run("shortsha-to", func(b *testing.B) {
		var out [32]byte
		prefix := string(msg[:15])
		for b.Loop() {
			SumTo(&out, prefix, msg[15:])
		}
	})
	b.Run("crypto-sha256", func(b *testing.B) {
		for b.Loop() {
			sha256.Sum256(msg)
		}
	})
}
