package flagserver

import (
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

// signatureVerifier checks optional HMAC request signatures and remembers
// recent signatures to refuse replays.
type signatureVerifier struct {
	keys map[string][]byte
	now  func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time // signature → expiry
}

// maxSeenSignatures bounds the replay cache; beyond it the oldest half of
// the window is dropped early (replays are then caught only within it).
const maxSeenSignatures = 1 << 16

func (v *signatureVerifier) enabled() bool { return v != nil && len(v.keys) > 0 }

// verify checks the signature headers against body (401 on failure).
func (v *signatureVerifier) verify(r *http.Request, body []byte) error {
	tsh := r.Header.Get(wire.HeaderTimestamp)
	sh := r.Header.Get(wire.HeaderSignature)
	if tsh == "" || sh == "" {
		return errSignature("request signing is required: send %s and %s", wire.HeaderTimestamp, wire.HeaderSignature)
	}
	ts, err := strconv.ParseInt(tsh, 10, 64)
	if err != nil {
		return errSignature("%s must be unix seconds", wire.HeaderTimestamp)
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
	skew := now.Sub(time.Unix(ts, 0))
	if skew > wire.MaxSignatureSkew || skew < -wire.MaxSignatureSkew {
		return errSignature("timestamp is %s away from server time (limit %s)", skew.Round(time.Second), wire.MaxSignatureSkew)
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return errSignature("signature is not hex")
	}
	m := hmac.New(sha256.New, secret)
	m.Write(wire.SigningString(r.Method, r.URL.RequestURI(), tsh, body))
	if !hmac.Equal(got, m.Sum(nil)) {
		return errSignature("signature does not match")
	}
	// Replay check: the same signature within the skew window is refused.
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[string]time.Time{}
	}
	replayKey := keyID + ":" + sig
	if exp, dup := v.seen[replayKey]; dup && now.Before(exp) {
		return errSignature("replayed signature")
	}
	if len(v.seen) >= maxSeenSignatures {
		for k, exp := range v.seen {
			if !now.Before(exp) || len(v.seen) >= maxSeenSignatures {
				delete(v.seen, k)
			}
		}
	}
	// A signature stays valid until its timestamp leaves the window.
	v.seen[replayKey] = time.Unix(ts, 0).Add(wire.MaxSignatureSkew + time.Second)
	return nil
}

func errSignature(format string, args ...any) error {
	return errorf(http.StatusUnauthorized, wire.CodeBadSignature, format, args...)
}
