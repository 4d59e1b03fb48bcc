//go:build !purego

package shortsha

import (
	"crypto/sha256"
	"testing"
)

// TestFallbackWithoutSHANI runs Sum and SumTo as on an x86-64 CPU without
// the SHA extensions (fast false: crypto/sha256 throughout) and compares
// them with crypto/sha256, so the branch a CPU without SHA-NI takes is
// tested on this one too.
func TestFallbackWithoutSHANI(t *testing.T) {
	saved := fast
	fast = false
	defer func() { fast = saved }()
	for n := 0; n <= 200; n++ {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(i*7 + n)
		}
		want := sha256.Sum256(msg)
		if got := Sum(msg); got != want {
			t.Fatalf("len %d: Sum = %x, want %x", n, got, want)
		}
		var got [32]byte
		if SumTo(&got, string(msg[:n/2]), msg[n/2:]); got != want {
			t.Fatalf("len %d: SumTo = %x, want %x", n, got, want)
		}
	}
}
