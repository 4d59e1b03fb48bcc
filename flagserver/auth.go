package flagserver

import (
	"container/heap"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

// Scopes a principal may hold. Neither implies another.
const (
	// ScopeFlagsRead allows the read endpoints: GET of flags, segments,
	// the config, the stream, bootstrap envelopes and keys, POST
	// /v1/evaluate and the OFREP endpoints.
	ScopeFlagsRead = wire.ScopeRead
	// ScopeFlagsWrite allows POST, PATCH and DELETE of flags and segments.
	ScopeFlagsWrite = wire.ScopeWrite
	// ScopeFlagsApprove allows approving other principals' change requests.
	ScopeFlagsApprove = "flags:approve"
	// ScopeAuditRead allows GET /v1/audit.
	ScopeAuditRead = "audit:read"
	// ScopeTokensMint allows POST /v1/tokens (minting public-client tokens).
	ScopeTokensMint = "tokens:mint"
)

// Scopes lists every scope, in the order of the documentation.
var Scopes = []string{ScopeFlagsRead, ScopeFlagsWrite, ScopeFlagsApprove, ScopeAuditRead, ScopeTokensMint}

// Token is a bearer token the server accepts (or, with ClientCert, a
// client certificate subject).
type Token struct {
	// Secret is the bearer value ("Authorization: Bearer SECRET"). It is
	// never logged. Give Secret or SecretSHA256, not both.
	Secret string `json:"secret,omitempty" yaml:"secret,omitempty"`
	// SecretSHA256 is the SHA-256 of the bearer value, 64 hex digits, in
	// place of Secret: a leaked tokens file then holds no working token.
	// Requests are compared with it in constant time.
	SecretSHA256 string `json:"secretSha256,omitempty" yaml:"secretSha256,omitempty"`
	// ClientCert makes the entry a client certificate's, not a bearer
	// token's: a request without an Authorization header over a TLS
	// connection whose verified client certificate has the common name
	// Subject gets these scopes and environments. Secret and SecretSHA256
	// must then be empty.
	ClientCert bool `json:"clientCert,omitempty" yaml:"clientCert,omitempty"`
	// Subject names the token's holder in logs and audit records.
	Subject string `json:"subject" yaml:"subject"`
	// Scopes are the granted scopes (see Scopes): "flags:read",
	// "flags:write", "flags:approve", "audit:read" and "tokens:mint".
	// None implies another.
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
	subject string
	token   *Token // a static token or client certificate entry; nil otherwise
	// restricted is set for every authenticated principal: it holds
	// scopes and envs only. The zero principal (open mode, programmatic
	// writes) may do anything.
	restricted bool
	scopes     []string
	envs       []string     // allowed environments; empty: every one
	public     *publicGrant // a minted public-client token's limits
	limitKey   string       // rate-limit bucket: one per token
}

const anonymousSubject = "anonymous"

// allowsEnv reports whether the caller may act on env.
func (p *principal) allowsEnv(env string) bool {
	if len(p.envs) == 0 {
		return true
	}
	return slices.Contains(p.envs, env)
}

// rateLimit is the caller's limit for requests of class: its token's
// (resolved by New), else def (open mode, OAuth and minted tokens).
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
	return !p.restricted || slices.Contains(p.scopes, scope)
}

// ValidScope reports whether s names a scope (see Scopes).
func ValidScope(s string) bool { return slices.Contains(Scopes, s) }

// authenticator checks credentials: static bearer tokens (compared as
// SHA-256 digests in constant time, every token each time), client
// certificates, tokens the server minted, and, through verifier, OAuth
// access tokens.
type authenticator struct {
	tokens   []Token
	digests  [][32]byte // digests[i]: SHA-256 of tokens[i]'s secret
	certs    map[string]int
	verifier TokenVerifier
	mint     *minter
}

// newAuthenticator checks tokens: each has exactly one of Secret and
// SecretSHA256 (a valid hex digest), or ClientCert and a Subject; no two
// share a secret or certificate subject; every scope is known.
func newAuthenticator(tokens []Token, verifier TokenVerifier) (authenticator, error) {
	a := authenticator{tokens: tokens, verifier: verifier, certs: map[string]int{}}
	seen := map[[32]byte]bool{}
	for i, t := range tokens {
		for _, sc := range t.Scopes {
			if !ValidScope(sc) {
				return a, fmt.Errorf("flagserver: token %d (%s): unknown scope %q (want one of %s)", i, t.Subject, sc, strings.Join(Scopes, ", "))
			}
		}
		var d [32]byte
		switch {
		case t.ClientCert:
			if t.Secret != "" || t.SecretSHA256 != "" {
				return a, fmt.Errorf("flagserver: token %d (%s) is a client certificate's: it takes no secret", i, t.Subject)
			}
			if t.Subject == "" {
				return a, fmt.Errorf("flagserver: token %d is a client certificate's: its subject (the certificate's common name) is empty", i)
			}
			if _, dup := a.certs[t.Subject]; dup {
				return a, fmt.Errorf("flagserver: token %d repeats the client certificate subject %q", i, t.Subject)
			}
			a.certs[t.Subject] = i
			a.digests = append(a.digests, d) // never matches: no secret hashes to zeros
			continue
		case t.Secret != "" && t.SecretSHA256 != "":
			return a, fmt.Errorf("flagserver: token %d (%s) has both secret and secretSha256: keep one", i, t.Subject)
		case t.Secret != "":
			d = sha256.Sum256([]byte(t.Secret))
		case t.SecretSHA256 != "":
			b, err := hex.DecodeString(t.SecretSHA256)
			if err != nil || len(b) != sha256.Size {
				return a, fmt.Errorf("flagserver: token %d (%s): secretSha256 must be 64 hex digits (the SHA-256 of the secret)", i, t.Subject)
			}
			copy(d[:], b)
		default:
			return a, fmt.Errorf("flagserver: token %d (%s) has an empty secret", i, t.Subject)
		}
		if seen[d] {
			return a, fmt.Errorf("flagserver: token %d (%s) repeats another token's secret", i, t.Subject)
		}
		seen[d] = true
		a.digests = append(a.digests, d)
	}
	return a, nil
}

// open reports whether the server accepts requests without credentials:
// no tokens, no client certificate entries and no verifier.
func (a *authenticator) open() bool { return len(a.tokens) == 0 && a.verifier == nil }

// authenticate returns the request's principal, or a 401.
func (a *authenticator) authenticate(r *http.Request) (*principal, error) {
	h := r.Header.Get("Authorization")
	if a.open() {
		// Open: anyone, except that a public-client token keeps its limits.
		if raw := bearer(h); raw != "" {
			if p, err := a.mint.verify(r.Context(), raw); err != errNotMinted {
				return p, err
			}
		}
		return &principal{subject: anonymousSubject}, nil
	}
	if h == "" {
		if p := a.certPrincipal(r); p != nil {
			return p, nil
		}
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			return nil, errUnauthorized(fmt.Sprintf("client certificate subject %q is not allowed: no clientCert entry names it", r.TLS.VerifiedChains[0][0].Subject.CommonName))
		}
		return nil, errUnauthorized("missing bearer token")
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return nil, errUnauthorized("Authorization must be \"Bearer TOKEN\"")
	}
	secret = strings.TrimSpace(secret)
	sum := sha256.Sum256([]byte(secret))
	found := -1
	for i := range a.digests {
		if subtle.ConstantTimeCompare(a.digests[i][:], sum[:]) == 1 && !a.tokens[i].ClientCert {
			found = i
		}
	}
	if found >= 0 {
		return a.tokenPrincipal(found, "token-"+strconv.Itoa(found)), nil
	}
	if p, err := a.mint.verify(r.Context(), secret); err != errNotMinted {
		return p, err
	}
	if a.verifier != nil && strings.Count(secret, ".") == 2 {
		id, err := a.verifier.VerifyToken(r.Context(), secret)
		if err != nil {
			return nil, errUnauthorized("access token refused: " + err.Error())
		}
		subject := id.Subject
		if subject == "" {
			subject = "oauth"
		}
		return &principal{subject: subject, restricted: true, scopes: id.Scopes, envs: id.Environments, limitKey: "oauth-" + subject}, nil
	}
	return nil, errUnauthorized("unknown bearer token")
}

// bearer returns the credentials of an Authorization header value.
func bearer(h string) string {
	scheme, v, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(v)
}

// tokenPrincipal is the principal of tokens[i].
func (a *authenticator) tokenPrincipal(i int, limitKey string) *principal {
	t := &a.tokens[i]
	subject := t.Subject
	if subject == "" {
		subject = "token"
	}
	return &principal{subject: subject, token: t, restricted: true, scopes: t.Scopes, envs: t.Environments, limitKey: limitKey}
}

// certPrincipal is the principal of the request's verified client
// certificate, nil when there is none or no entry names its subject.
func (a *authenticator) certPrincipal(r *http.Request) *principal {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
	i, ok := a.certs[cn]
	if !ok {
		return nil
	}
	return a.tokenPrincipal(i, "cert-"+strconv.Itoa(i))
}

// TokenVerifier checks bearer tokens that are none of the server's own:
// OAuth 2.0 access tokens (JWTs) of an external issuer. A Server calls it
// for a JWT-shaped bearer value that no static token matches and that the
// server did not mint. Its error is sent to the client (401) after
// "access token refused: ": it must not contain the token.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, raw string) (Identity, error)
}

// Identity is who a TokenVerifier found a token to be.
type Identity struct {
	// Subject names the caller in logs and audit records.
	Subject string
	// Scopes are the granted scopes (unknown ones grant nothing).
	Scopes []string
	// Environments limits the caller to these; empty means every one.
	Environments []string
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
