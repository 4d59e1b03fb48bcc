package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HMAC request signing.
//
// A signed request carries two headers:
//
//	X-Flagwire-Timestamp: 1767225600          (unix seconds)
//	X-Flagwire-Signature: keyId=ci,sig=4f1c…  (lowercase hex)
//
// where sig = hex(HMAC-SHA256(secret, SigningString(method, requestURI,
// timestamp, body))). The server rejects a timestamp more than
// MaxSignatureSkew away from its clock and a signature it has already seen
// within that window (a replay).

// MaxSignatureSkew is the largest clock difference a signed request may have.
const MaxSignatureSkew = 5 * time.Minute

// ErrSignatureHeader reports a malformed X-Flagwire-Signature header.
var ErrSignatureHeader = errors.New("wire: malformed " + HeaderSignature + " header")

// SigningString returns the bytes a request signature covers:
//
//	METHOD "\n" path?query "\n" timestamp "\n" hex(SHA-256(body))
//
// requestURI is the request's path and query as sent (url.URL.RequestURI).
func SigningString(method, requestURI, timestamp string, body []byte) []byte {
	sum := sha256.Sum256(body)
	b := make([]byte, 0, len(method)+len(requestURI)+len(timestamp)+3+64)
	b = append(b, method...)
	b = append(b, '\n')
	b = append(b, requestURI...)
	b = append(b, '\n')
	b = append(b, timestamp...)
	b = append(b, '\n')
	return hex.AppendEncode(b, sum[:])
}

// RequestSignature returns the lowercase hex HMAC-SHA256 of the signing
// string under secret.
func RequestSignature(secret []byte, method, requestURI, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(SigningString(method, requestURI, timestamp, body))
	return hex.EncodeToString(m.Sum(nil))
}

// SignRequest signs req for the server's optional HMAC verification: it sets
// X-Flagwire-Timestamp to now and X-Flagwire-Signature to
// "keyId=KEYID,sig=HEX". body must be the exact bytes req will send (nil
// for none); req.URL must be final (its RequestURI is signed).
func SignRequest(req *http.Request, body []byte, keyID string, secret []byte, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := RequestSignature(secret, req.Method, req.URL.RequestURI(), ts, body)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, "keyId="+keyID+",sig="+sig)
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
