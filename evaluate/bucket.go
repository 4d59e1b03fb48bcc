package evaluate

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
)

// BucketCount is the number of rollout buckets. A percentage p (0–100, up to
// three decimals) covers buckets [0, p*1000).
const BucketCount = 100000

// Bucket is Flagwire's bucketing function, the same in every mode, server and
// region, and specified here so that SDKs in other languages can reproduce it:
//
//	hash   = SHA-256( UTF-8(salt) || ":" || UTF-8(seed) || ":" || UTF-8(id) )
//	bucket = uint64(big-endian hash[0:8]) mod 100000
//
// salt is the environment's salt, seed the flag's bucketing seed (the flag
// key unless set), and id the value of the bucketing attribute (userId by
// default). Numbers used as ids are formatted in their shortest decimal form
// (strconv 'f', -1), booleans as "true"/"false".
//
// A rollout with weights w1, w2, … (percent) gives variant i the buckets
// [1000·(w1+…+w(i−1)), 1000·(w1+…+wi)). Because thresholds are cumulative
// and a subject's bucket never changes, ramping a percentage up never moves
// a subject out of the treatment, and changing weights moves only subjects
// in the slices that changed. The vectors in testdata/bucketing_vectors.json
// pin this function down.
func Bucket(salt, seed, id string) (hash [32]byte, bucket uint32) {
	var buf [160]byte
	b := append(buf[:0], salt...)
	b = append(b, ':')
	b = append(b, seed...)
	b = append(b, ':')
	b = append(b, id...)
	hash = sha256.Sum256(b)
	return hash, bucketOf(&hash)
}

func bucketOf(hash *[32]byte) uint32 {
	return uint32(binary.BigEndian.Uint64(hash[:8]) % BucketCount)
}

// bucketValue hashes a bucketing attribute value of any supported type
// without allocating for ids that fit the stack buffer.
func bucketValue(salt, seed string, v any) (hash [32]byte, bucket uint32, ok bool) {
	var buf [160]byte
	b := append(buf[:0], salt...)
	b = append(b, ':')
	b = append(b, seed...)
	b = append(b, ':')
	switch x := v.(type) {
	case string:
		if x == "" {
			return hash, 0, false
		}
		b = append(b, x...)
	case bool:
		b = strconv.AppendBool(b, x)
	case int:
		b = strconv.AppendInt(b, int64(x), 10)
	case int64:
		b = strconv.AppendInt(b, x, 10)
	case int32:
		b = strconv.AppendInt(b, int64(x), 10)
	case uint:
		b = strconv.AppendUint(b, uint64(x), 10)
	case uint64:
		b = strconv.AppendUint(b, x, 10)
	case uint32:
		b = strconv.AppendUint(b, uint64(x), 10)
	case float64:
		b = strconv.AppendFloat(b, x, 'f', -1, 64)
	case float32:
		b = strconv.AppendFloat(b, float64(x), 'f', -1, 32)
	case interface{ String() string }: // json.Number and friends
		s := x.String()
		if s == "" {
			return hash, 0, false
		}
		b = append(b, s...)
	default:
		return hash, 0, false
	}
	hash = sha256.Sum256(b)
	return hash, bucketOf(&hash), true
}

// percentToBuckets converts a percentage (0–100) to a bucket threshold.
func percentToBuckets(p float64) uint32 {
	if p <= 0 {
		return 0
	}
	if p >= 100 {
		return BucketCount
	}
	return uint32(p*1000 + 0.5)
}
