//go:build !amd64 || purego

package evaluate

// hasSHA256Block reports false: bucketing uses crypto/sha256 here.
func hasSHA256Block() bool { return false }

// sha256Block is never called where hasSHA256Block is false.
func sha256Block(*[8]uint32, []byte) {}
