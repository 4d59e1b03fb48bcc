//go:build amd64 && !purego

package evaluate

//go:noescape
func sha256BlockSHANI(dig *[8]uint32, p []byte)

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

func xgetbv() (eax, edx uint32)

// hasSHA256Block reports whether sha256Block can run here: the CPU has the
// SHA extensions, SSSE3, SSE4.1 and AVX, and the OS saves the AVX state
// (the requirements of the standard library's SHA-NI path).
func hasSHA256Block() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	const (
		ssse3   = 1 << 9
		sse41   = 1 << 19
		osxsave = 1 << 27
		avx     = 1 << 28
		need    = ssse3 | sse41 | osxsave | avx
	)
	if _, _, ecx1, _ := cpuid(1, 0); ecx1&need != need {
		return false
	}
	if xcr0, _ := xgetbv(); xcr0&6 != 6 { // XMM and YMM state enabled
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<29) != 0 // SHA
}

// sha256Block runs the SHA-256 compression function over the 64-byte
// blocks of p. Only call it when hasSHA256Block reported true.
func sha256Block(h *[8]uint32, p []byte) { sha256BlockSHANI(h, p) }
