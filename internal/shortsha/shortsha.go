// Package shortsha computes SHA-256 of short messages, such as the
// "salt:seed:id" input of rollout bucketing, with less overhead than
// crypto/sha256.
//
// For a message of a few dozen bytes, crypto/sha256.Sum256 spends about as
// long copying the message and its padding through its streaming digest as
// it does in the compression function itself. Sum pads the message in one
// stack buffer and runs the compression function directly: on x86-64 with
// the SHA extensions it uses its own SHA-NI code (block_amd64.s, generated
// by gen.go); everywhere else, and for messages longer than MaxFast, it is
// crypto/sha256.Sum256. Either way the result is SHA-256 (FIPS 180-4): the
// tests compare it with crypto/sha256 for every length up to 3 blocks and
// for fuzzed inputs.
//
// Build with the purego tag to use crypto/sha256 only.
package shortsha

import (
	"crypto/sha256"
	"encoding/binary"
)

// MaxFast is the longest message that Sum hashes without crypto/sha256: a
// message of up to 55 bytes fits with its padding in one 64-byte block,
// and up to 119 bytes in two.
const MaxFast = 119

// iv is SHA-256's initial hash value (FIPS 180-4, 5.3.3).
var iv = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

// Sum returns the SHA-256 digest of msg.
func Sum(msg []byte) [32]byte {
	var sum [32]byte
	SumTo(&sum, "", msg)
	return sum
}

// fastHook, when non-nil, is called each time SumTo hashes with the SHA-NI
// code, with the number of blocks it compressed (1 or 2). Only tests set
// it (sha_ni_amd64_test.go), to show that a CPU with the SHA extensions
// takes that path.
var fastHook func(blocks int)

// SumTo writes the SHA-256 digest of prefix followed by b to out, so that
// a caller with a fixed prefix need not join the two first.
func SumTo(out *[32]byte, prefix string, b []byte) {
	a := prefix
	n := len(a) + len(b)
	switch {
	case fast && n <= 55:
		var blk [64]byte
		copy(blk[:], a)
		copy(blk[len(a):], b)
		blk[n] = 0x80
		binary.BigEndian.PutUint64(blk[56:], uint64(n)*8)
		sum1(out, &blk)
		if fastHook != nil {
			fastHook(1)
		}
	case fast && n <= MaxFast:
		var buf [128]byte
		copy(buf[:], a)
		copy(buf[len(a):], b)
		buf[n] = 0x80
		binary.BigEndian.PutUint64(buf[120:], uint64(n)*8)
		h := iv
		blocks(&h, buf[:])
		for i, v := range h {
			binary.BigEndian.PutUint32(out[4*i:], v)
		}
		if fastHook != nil {
			fastHook(2)
		}
	case n <= 128:
		var buf [128]byte
		copy(buf[:], a)
		copy(buf[len(a):], b)
		*out = sha256.Sum256(buf[:n])
	default:
		h := sha256.New()
		h.Write([]byte(a))
		h.Write(b)
		h.Sum(out[:0])
	}
}
