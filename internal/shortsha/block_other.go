//go:build !amd64 || purego

package shortsha

// fast is false: Sum is crypto/sha256.Sum256 on this platform.
const fast = false

func blocks(h *[8]uint32, p []byte) { panic("shortsha: blocks without SHA-NI") }

func sum1(out *[32]byte, block *[64]byte) { panic("shortsha: sum1 without SHA-NI") }
