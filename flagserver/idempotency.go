package flagserver

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

// Idempotency-Key handling. A successful (2xx) write made with an
// Idempotency-Key is remembered for idempotencyTTL, keyed by the caller's
// subject and the key. A retry with the same key and the same request
// (method, path and query, body) gets the stored response again, marked
// Idempotent-Replayed: true; the same key with a different request gets 422.
// Failed writes are not remembered: they changed nothing, so a retry is
// simply evaluated again. Records are kept in the store, committed in the
// write's own transaction: a retry after a restart, or on another replica
// of a shared store, gets the same response, and the write is applied
// once.
//
// A response body above idempotencyMaxBodyBytes (a large segment) is not
// kept: the record holds its ETag and size, and a replay makes the body
// again from the entity when its ETag is still the recorded one (the same
// bytes); when the entity changed since, the replay answers the recorded
// status, ETag and Location with a short body saying the original body is
// gone.
const (
	idempotencyTTL          = 24 * time.Hour
	idempotencyMaxKeyLen    = 255
	idempotencyMaxBodyBytes = 256 << 10
)

// storedResponse is a write response as sent.
type storedResponse struct {
	status int
	etag   string
	loc    string
	body   []byte
	// warning is the X-Flagwire-Warning value ("" for none).
	warning string
}

func (sr *storedResponse) write(w http.ResponseWriter) {
	if sr.etag != "" {
		w.Header().Set("ETag", sr.etag)
	}
	if sr.loc != "" {
		w.Header().Set("Location", sr.loc)
	}
	if sr.warning != "" {
		w.Header().Set(wire.HeaderWarning, sr.warning)
	}
	writeRaw(w, sr.status, sr.body)
}

// record returns the response as an IdempotencyRecord for fp.
func (sr *storedResponse) record(fp [32]byte, expires time.Time) *IdempotencyRecord {
	r := &IdempotencyRecord{Fingerprint: fp, Status: sr.status, ETag: sr.etag, Location: sr.loc, Warning: sr.warning, Body: sr.body, Expires: expires}
	if len(sr.body) > idempotencyMaxBodyBytes && sr.etag != "" {
		r.Body, r.BodyOmitted = nil, len(sr.body)
	}
	return r
}

// replayIdempotent answers a retry: the stored response, marked
// Idempotent-Replayed, or 422 when the key was used for another request.
// now makes the response of the current state (for a body not kept).
func replayIdempotent(w http.ResponseWriter, rec *IdempotencyRecord, fp [32]byte, now func() storedResponse) {
	if rec.Fingerprint != fp {
		writeError(w, errorf(http.StatusUnprocessableEntity, wire.CodeIdempotencyKeyReused,
			"%s was already used for a different request", wire.HeaderIdempotency))
		return
	}
	w.Header().Set(wire.HeaderIdempotentReplayed, "true")
	sr := storedResponse{status: rec.Status, etag: rec.ETag, loc: rec.Location, body: rec.Body, warning: rec.Warning}
	if rec.BodyOmitted > 0 {
		if cur := now(); cur.etag == rec.ETag {
			sr.body = cur.body
		} else {
			sr.body, _ = json.Marshal(map[string]any{"etag": rec.ETag, "replayed": true, "bodyOmitted": rec.BodyOmitted,
				"message": "the write was applied; its response body was too large to keep and the entity has changed since: GET it"})
		}
	}
	sr.write(w)
}

func requestFingerprint(r *http.Request, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(r.Method))
	h.Write([]byte{0})
	h.Write([]byte(r.URL.RequestURI()))
	h.Write([]byte{0})
	h.Write(body)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// validIdempotencyKey checks the header value: 1–255 visible ASCII chars.
func validIdempotencyKey(k string) error {
	if len(k) == 0 || len(k) > idempotencyMaxKeyLen {
		return errorf(http.StatusBadRequest, wire.CodeBadRequest, "%s must be 1 to %d characters", wire.HeaderIdempotency, idempotencyMaxKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return errorf(http.StatusBadRequest, wire.CodeBadRequest, "%s must be visible ASCII", wire.HeaderIdempotency)
		}
	}
	return nil
}
