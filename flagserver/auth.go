package flagserver

import (
	"container/heap"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

// Token is a bearer token the server accepts.
type Token struct {
	// Secret is the bearer value ("Authorization: Bearer SECRET"). It is
	// never logged.
	Secret string `json:"secret" yaml:"secret"`
	// Subject names the token's holder in logs and audit records.
	Subject string `json:"subject" yaml:"subject"`
	// Scopes are the granted scopes: "flags:read" (GET endpoints and
	// POST /v1/evaluate) and "flags:write" (POST, PATCH, DELETE of flags
	// and segments). Neither implies the other.
	Scopes []string `json:"scopes" yaml:"scopes"`
	// Environments limits the token to these environments; empty means
	// every environment.
	Environments []string `json:"environments,omitempty" yaml:"environments,omitempty"`
	// ReadLimit and WriteLimit are this token's rate limits, in place of
	// Options.ReadLimit and Options.WriteLimit. The zero value means the
	// server's; in a tokens file, "RATE[/s][,BURST]" or "off" (see
	// RateLimit), e.g. readLimit: 5000/s,10000.
	ReadLimit  RateLimit `json:"readLimit,omitzero" yaml:"readLimit,omitempty"`
	WriteLimit RateLimit `json:"writeLimit,omitzero" yaml:"writeLimit,omitempty"`
}

// principal is the authenticated caller of a request.
type principal struct {
	subject  string
	token    *Token // nil in open mode and for programmatic writes
	limitKey string // rate-limit bucket: one per token
}

const anonymousSubject = "anonymous"

// allowsEnv reports whether the caller may act on env.
func (p *principal) allowsEnv(env string) bool {
	if p.token == nil || len(p.token.Environments) == 0 {
		return true
	}
	return slices.Contains(p.token.Environments, env)
}

// rateLimit is the caller's limit for requests of class: its token's
// (resolved by New), else def (open mode).
func (p *principal) rateLimit(class routeClass, def RateLimit) RateLimit {
	if p.token == nil {
		return def
	}
	if class == classWrite {
		return p.token.WriteLimit
	}
	return p.token.ReadLimit
}

func (p *principal) hasScope(scope string) bool {
	return p.token == nil || slices.Contains(p.token.Scopes, scope)
}

// authenticator checks bearer tokens in constant time per token.
type authenticator struct {
	tokens []Token
}

func (a *authenticator) open() bool { return len(a.tokens) == 0 }

// authenticate returns the request's principal, or a 401.
func (a *authenticator) authenticate(r *http.Request) (*principal, error) {
	if a.open() {
		return &principal{subject: anonymousSubject}, nil
	}
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if h == "" {
		return nil, errUnauthorized("missing bearer token")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return nil, errUnauthorized("Authorization must be \"Bearer TOKEN\"")
	}
	secret = strings.TrimSpace(secret)
	var found *Token
	idx := 0
	for i := range a.tokens {
		t := &a.tokens[i]
		if subtle.ConstantTimeCompare([]byte(t.Secret), []byte(secret)) == 1 {
			found, idx = t, i
		}
	}
	if found == nil {
		return nil, errUnauthorized("unknown bearer token")
	}
	subject := found.Subject
	if subject == "" {
		subject = "token"
	}
	return &principal{subject: subject, token: found, limitKey: "token-" + strconv.Itoa(idx)}, nil
}

func errUnauthorized(msg string) error {
	return errorf(http.StatusUnauthorized, wire.CodeUnauthorized, "%s", msg)
}

func errForbidden(format string, args ...any) error {
	return errorf(http.StatusForbidden, wire.CodeForbidden, format, args...)
}

// authorize checks scope and environment (403).
func authorize(p *principal, scope, env string) error {
	if !p.hasScope(scope) {
		return errForbidden("token lacks scope %s", scope)
	}
	if env != "" && !p.allowsEnv(env) {
		return errForbidden("token is not allowed environment %q", env)
	}
	return nil
}

// signatureVerifier checks optional HMAC request signatures (scheme
// wire.SignatureScheme) and remembers the nonces it accepted to refuse
// replays.
//
// The replay cache holds (key id, nonce) → expiry, the moment the request's
// timestamp leaves the skew window; expired entries are dropped as new ones
// arrive. It holds at most maxNonces entries: when full, the entry that
// expires first is evicted and the floor rises to its expiry, and every
// request whose own expiry is not after the floor is refused ("too old
// for the replay window"). So no replay is ever accepted: under a flood of
// valid signed requests the accepted window shrinks instead.
type signatureVerifier struct {
	keys      map[string][]byte
	now       func() time.Time
	maxNonces int // 0: DefaultMaxSignatureNonces

	mu    sync.Mutex
	seen  map[string]int64 // keyID "\x00" nonce → expiry (unix ms)
	order expiryHeap
	floor int64 // unix ms: requests expiring at or before it are refused
}

// DefaultMaxSignatureNonces bounds the replay cache of request signing
// (about 130 bytes per entry: some 33 MB when full). It admits a sustained
// 870 signed requests per second for the whole five-minute window; beyond
// that the window shrinks (see Options.MaxSignatureNonces).
const DefaultMaxSignatureNonces = 1 << 18

type nonceEntry struct {
	key string
	exp int64
}

// expiryHeap is a min-heap of nonce entries by expiry.
type expiryHeap []nonceEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].exp < h[j].exp }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(nonceEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func (v *signatureVerifier) enabled() bool { return v != nil && len(v.keys) > 0 }

// verify checks the signature headers against body (401 on failure).
func (v *signatureVerifier) verify(r *http.Request, body []byte) error {
	tsh := r.Header.Get(wire.HeaderTimestamp)
	nonce := r.Header.Get(wire.HeaderNonce)
	sh := r.Header.Get(wire.HeaderSignature)
	if tsh == "" || sh == "" || nonce == "" {
		return errSignature("request signing is required: send %s, %s and %s", wire.HeaderTimestamp, wire.HeaderNonce, wire.HeaderSignature)
	}
	ts, err := strconv.ParseInt(tsh, 10, 64)
	if err != nil || ts <= 0 {
		return errSignature("%s must be unix milliseconds", wire.HeaderTimestamp)
	}
	if !wire.ValidNonce(nonce) {
		return errSignature("%s must be %d to %d lowercase hex characters", wire.HeaderNonce, wire.MinNonceLen, wire.MaxNonceLen)
	}
	keyID, sig, err := wire.ParseSignatureHeader(sh)
	if err != nil {
		return errSignature("%s must be keyId=ID,sig=HEX", wire.HeaderSignature)
	}
	secret, ok := v.keys[keyID]
	if !ok {
		return errSignature("unknown signing key id")
	}
	now := v.now()
	skew := now.Sub(time.UnixMilli(ts))
	if skew > wire.MaxSignatureSkew || skew < -wire.MaxSignatureSkew {
		return errSignature("timestamp is %s away from server time (limit %s)", skew.Round(time.Millisecond), wire.MaxSignatureSkew)
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return errSignature("signature is not hex")
	}
	m := hmac.New(sha256.New, secret)
	m.Write(wire.SigningString(r.Method, r.URL.RequestURI(), tsh, nonce, body))
	if !hmac.Equal(got, m.Sum(nil)) {
		return errSignature("signature does not match")
	}
	return v.remember(keyID+"\x00"+nonce, ts+wire.MaxSignatureSkew.Milliseconds(), now.UnixMilli())
}

// remember records a verified nonce until exp, refusing one already seen.
func (v *signatureVerifier) remember(key string, exp, now int64) error {
	limit := v.maxNonces
	if limit <= 0 {
		limit = DefaultMaxSignatureNonces
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[string]int64{}
	}
	for len(v.order) > 0 && v.order[0].exp < now {
		e := heap.Pop(&v.order).(nonceEntry)
		delete(v.seen, e.key)
	}
	if _, dup := v.seen[key]; dup {
		return errSignature("replayed request: this nonce was already used")
	}
	if exp <= v.floor {
		return errSignature("timestamp is too old for the replay window under the current load; sign with the current time")
	}
	if len(v.order) >= limit {
		if exp <= v.order[0].exp { // it would be the first to go
			return errSignature("timestamp is too old for the replay window under the current load; sign with the current time")
		}
		e := heap.Pop(&v.order).(nonceEntry)
		delete(v.seen, e.key)
		v.floor = max(v.floor, e.exp)
	}
	v.seen[key] = exp
	heap.Push(&v.order, nonceEntry{key: key, exp: exp})
	return nil
}

func errSignature(format string, args ...any) error {
	return errorf(http.StatusUnauthorized, wire.CodeBadSignature, format, args...)
}
