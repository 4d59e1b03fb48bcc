//go:build !purego

package shortsha

//go:generate sh -c "go run gen.go > block_amd64.s"

// blocks runs the SHA-256 compression function over each 64-byte block of
// p, updating h. len(p) must be a multiple of 64. It needs the SHA, SSSE3
// and SSE4.1 instruction set extensions (fast).
//
//go:noescape
func blocks(h *[8]uint32, p []byte)

// sum1 writes to out the SHA-256 digest of the message padded into block
// (one block: a message of up to 55 bytes, 0x80, zeros, its bit length).
// It needs the same extensions as blocks.
//
//go:noescape
func sum1(out *[32]byte, block *[64]byte)

func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// fast reports whether this CPU has the extensions blocks uses: SHA
// (CPUID.(EAX=7,ECX=0):EBX bit 29), SSSE3 and SSE4.1 (CPUID.1:ECX bits 9
// and 19).
var fast = func() bool {
	if max, _, _, _ := cpuid(0, 0); max < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<29) != 0 && ecx1&(1<<9) != 0 && ecx1&(1<<19) != 0
}()
