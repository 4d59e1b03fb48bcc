package flagserver

import (
	"container/list"
	"crypto/sha256"
	"net/http"
	"sync"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

// Idempotency-Key handling. A successful (2xx) write made with an
// Idempotency-Key is remembered for idempotencyTTL, keyed by the caller's
// subject and the key. A retry with the same key and the same request
// (method, path and query, body) gets the stored response again, marked
// Idempotent-Replayed: true; the same key with a different request gets 422.
// Failed writes are not remembered: they changed nothing, so a retry is
// simply evaluated again. Records live in memory only.
const (
	idempotencyTTL        = 24 * time.Hour
	idempotencyMaxEntries = 10000
	idempotencyMaxKeyLen  = 255
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

type idemRecord struct {
	key         string
	fingerprint [32]byte
	resp        storedResponse
	expires     time.Time
}

// idempotencyCache is an LRU of idemRecords with a TTL.
type idempotencyCache struct {
	now func() time.Time

	mu    sync.Mutex
	items map[string]*list.Element
	order *list.List // front = most recent
}

func newIdempotencyCache(now func() time.Time) *idempotencyCache {
	return &idempotencyCache{now: now, items: map[string]*list.Element{}, order: list.New()}
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

// lookup returns the stored response for key, or nil. A record for another
// request is a 422.
func (c *idempotencyCache) lookup(key string, fp [32]byte) (*storedResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, nil
	}
	rec := el.Value.(*idemRecord)
	if !c.now().Before(rec.expires) {
		c.order.Remove(el)
		delete(c.items, key)
		return nil, nil
	}
	if rec.fingerprint != fp {
		return nil, errorf(http.StatusUnprocessableEntity, wire.CodeIdempotencyKeyReused,
			"%s was already used for a different request", wire.HeaderIdempotency)
	}
	c.order.MoveToFront(el)
	return &rec.resp, nil
}

func (c *idempotencyCache) store(key string, fp [32]byte, resp storedResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if el, ok := c.items[key]; ok {
		c.order.Remove(el)
	}
	c.items[key] = c.order.PushFront(&idemRecord{key: key, fingerprint: fp, resp: resp, expires: now.Add(idempotencyTTL)})
	// Evict expired records from the back, then the least recent beyond
	// the bound.
	for el := c.order.Back(); el != nil; el = c.order.Back() {
		rec := el.Value.(*idemRecord)
		if c.order.Len() <= idempotencyMaxEntries && now.Before(rec.expires) {
			break
		}
		c.order.Remove(el)
		delete(c.items, rec.key)
	}
}
