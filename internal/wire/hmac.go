package wire

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HMAC request signing (scheme "FLAGWIRE-HMAC-SHA256-V2").
//
// A signed request carries three headers:
//
//	X-Flagwire-Timestamp: 1767225600123                    (unix milliseconds, decimal)
//	X-Flagwire-Nonce:     9f86d081884c7d659a2feaa0c55ad015 (32–64 lowercase hex: 16–32 random bytes, fresh per request)
//	X-Flagwire-Signature: keyId=ci,sig=4f1c…               (lowercase hex)
//
// where sig = hex(HMAC-SHA256(secret, SigningString(method, requestURI,
// timestamp, nonce, body))). Every send of a request — a retry, a refetch,
// a stream reconnect — is signed afresh with a new nonce, so any number of
// requests may share one millisecond. The server refuses a timestamp more
// than MaxSignatureSkew away from its clock and a (key id, nonce) pair it
// has already accepted while that timestamp is within the window (a
// replay).

// HeaderNonce carries a signed request's nonce (HeaderTimestamp and
// HeaderSignature are in wire.go).
const HeaderNonce = "X-Flagwire-Nonce"

// MaxSignatureSkew is the largest clock difference a signed request may
// have; it is also how long the server remembers a nonce.
const MaxSignatureSkew = 5 * time.Minute

// SignatureScheme is the first line of the signing string.
const SignatureScheme = "FLAGWIRE-HMAC-SHA256-V2"

// Nonce length bounds, in hex characters.
const (
	MinNonceLen = 32
	MaxNonceLen = 64
)

// ErrSignatureHeader reports a malformed X-Flagwire-Signature header.
var ErrSignatureHeader = errors.New("wire: malformed " + HeaderSignature + " header")

// SigningString returns the bytes a request signature covers, five lines
// and the body hash, each line ending in "\n" except the last:
//
//	FLAGWIRE-HMAC-SHA256-V2
//	METHOD
//	path?query              (url.URL.RequestURI: as sent on the request line)
//	timestamp               (the X-Flagwire-Timestamp value, as sent)
//	nonce                   (the X-Flagwire-Nonce value, as sent)
//	hex(SHA-256(body))      (lowercase; the body of a GET is empty)
func SigningString(method, requestURI, timestamp, nonce string, body []byte) []byte {
	sum := sha256.Sum256(body)
	b := make([]byte, 0, len(SignatureScheme)+len(method)+len(requestURI)+len(timestamp)+len(nonce)+5+64)
	for _, s := range [...]string{SignatureScheme, method, requestURI, timestamp, nonce} {
		b = append(b, s...)
		b = append(b, '\n')
	}
	return hex.AppendEncode(b, sum[:])
}

// RequestSignature returns the lowercase hex HMAC-SHA256 of the signing
// string under secret.
func RequestSignature(secret []byte, method, requestURI, timestamp, nonce string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(SigningString(method, requestURI, timestamp, nonce, body))
	return hex.EncodeToString(m.Sum(nil))
}

// NewNonce returns 16 random bytes as 32 lowercase hex characters.
func NewNonce() string {
	var b [16]byte
	rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// SignRequest signs req for the server's optional HMAC verification with a
// fresh nonce: it sets X-Flagwire-Timestamp to now in unix milliseconds,
// X-Flagwire-Nonce and X-Flagwire-Signature ("keyId=KEYID,sig=HEX"). body
// must be the exact bytes req will send (nil for none); req.URL must be
// final (its RequestURI is signed). Call it again for every send: a
// request sent twice with the same headers is a replay.
func SignRequest(req *http.Request, body []byte, keyID string, secret []byte, now time.Time) {
	SignRequestNonce(req, body, keyID, secret, now, NewNonce())
}

// SignRequestNonce is SignRequest with a given nonce (test vectors).
func SignRequestNonce(req *http.Request, body []byte, keyID string, secret []byte, now time.Time, nonce string) {
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	sig := RequestSignature(secret, req.Method, req.URL.RequestURI(), ts, nonce, body)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, "keyId="+keyID+",sig="+sig)
}

// ValidNonce reports whether n is MinNonceLen to MaxNonceLen lowercase hex
// characters.
func ValidNonce(n string) bool {
	if len(n) < MinNonceLen || len(n) > MaxNonceLen {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ParseSignatureHeader splits an X-Flagwire-Signature value into its key id
// and hex signature. Parameters may come in any order, separated by commas
// with optional spaces; unknown parameters are ignored.
func ParseSignatureHeader(v string) (keyID, sig string, err error) {
	for part := range strings.SplitSeq(v, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", "", ErrSignatureHeader
		}
		switch strings.TrimSpace(name) {
		case "keyId":
			keyID = strings.TrimSpace(value)
		case "sig":
			sig = strings.TrimSpace(value)
		}
	}
	if keyID == "" || sig == "" {
		return "", "", ErrSignatureHeader
	}
	return keyID, sig, nil
}
