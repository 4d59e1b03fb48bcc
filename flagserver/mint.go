package flagserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flagwire/flagwire/internal/wire"
)

// Public-client tokens: POST /v1/tokens mints a short-lived JWT (EdDSA,
// signed with the store's current signing key, "kid" its key id) that
// lists an environment, the flags its holder may evaluate and the
// context attributes that may reach the rules. Its id ("jti") is recorded
// in the store (MintedTokenStore): every replica accepts it, and a
// revoked one (DELETE /v1/tokens/{id}) is refused by all.
const (
	// MintedTokenIssuer is the "iss" of minted tokens; MintedTokenAudience
	// their "aud".
	MintedTokenIssuer   = "flagwire"
	MintedTokenAudience = "flagwire-public"
	// MaxMintedTokenTTL is the longest ttlSeconds of POST /v1/tokens;
	// DefaultMintedTokenTTL is used when the request gives none.
	MaxMintedTokenTTL     = time.Hour
	DefaultMintedTokenTTL = 15 * time.Minute
	// MaxMintedFlags and MaxMintedAttributes bound a token's lists (it
	// travels in every request's Authorization header).
	MaxMintedFlags      = 200
	MaxMintedAttributes = 50
	// mintLeeway is the clock skew allowed on exp, nbf and iat.
	mintLeeway = 30 * time.Second
	// keyReloadEvery bounds how often an unknown "kid" reloads the
	// store's signing keys (a key another replica rotated in).
	keyReloadEvery = 5 * time.Second
	// MintedRecheck is how long a replica trusts that a minted token it
	// found in the store is not revoked before it asks the store again: a
	// token revoked on another replica is refused everywhere within it
	// (at once on the replica that revoked it).
	MintedRecheck = 5 * time.Second
	// maxMintedCache bounds the verified tokens a replica remembers (it
	// forgets them all when full): at most some 10 MiB.
	maxMintedCache = 1 << 14
)

// CodeTokenNotFound is the error code of DELETE /v1/tokens/{id} for an
// id the store does not hold (404).
const CodeTokenNotFound = "token_not_found"

// mintedClaims are a minted token's claims.
type mintedClaims struct {
	jwt.RegisteredClaims
	Environment string   `json:"flagwire_environment"`
	Flags       []string `json:"flagwire_flags"`
	Attributes  []string `json:"flagwire_attributes"`
}

// minter mints and verifies public-client tokens.
type minter struct {
	store     Store
	now       func() time.Time
	fromStore bool // the keys are the store's: an unknown kid reloads them
	timeout   time.Duration

	mu         sync.Mutex
	keys       map[string]ed25519.PublicKey // key id → public key
	current    ed25519.PrivateKey
	lastReload time.Time

	cacheMu  sync.Mutex
	verified map[[32]byte]*verifiedToken // SHA-256 of the token → what it verified to
}

func newMinter(st Store, now func() time.Time, keys []ed25519.PrivateKey, fromStore bool, timeout time.Duration) *minter {
	m := &minter{store: st, now: now, fromStore: fromStore, timeout: timeout}
	m.setKeys(keys)
	return m
}

// useKeys makes keys (the current one first) the keys m mints with and
// verifies.
func (m *minter) useKeys(keys []ed25519.PrivateKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setKeys(keys)
}

func (m *minter) setKeys(keys []ed25519.PrivateKey) {
	m.keys = make(map[string]ed25519.PublicKey, len(keys))
	for _, k := range keys {
		pub := k.Public().(ed25519.PublicKey)
		m.keys[wire.KeyID(pub)] = pub
	}
	m.current = keys[0]
}

// looksMinted reports whether raw is a JWT this server's kind mints (by
// its issuer, unverified): verify decides whether it is valid.
func (m *minter) looksMinted(raw string) bool {
	if m == nil || strings.Count(raw, ".") != 2 {
		return false
	}
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &c); err != nil {
		return false
	}
	return c.Issuer == MintedTokenIssuer
}

// key returns the public key of kid, reloading the store's keys (at most
// every keyReloadEvery) when it is unknown.
func (m *minter) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.keys[kid]; ok {
		return k, nil
	}
	now := m.now()
	if !m.fromStore || now.Sub(m.lastReload) < keyReloadEvery {
		return nil, errors.New("unknown signing key id")
	}
	m.lastReload = now
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	keys, err := m.store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStoreUnavailable, err)
	}
	m.setKeys(keys)
	if k, ok := m.keys[kid]; ok {
		return k, nil
	}
	return nil, errors.New("unknown signing key id")
}

// verify checks a minted token: signature (EdDSA only) by a store key,
// issuer, audience, exp/nbf/iat within mintLeeway, and its record (known,
// not revoked). A token verified before is found by its digest: its
// expiry is checked again, its record only after MintedRecheck.
func (m *minter) verify(ctx context.Context, raw string) (*principal, error) {
	if m == nil {
		return nil, errUnauthorized("unknown bearer token")
	}
	digest := sha256.Sum256([]byte(raw))
	now := m.now()
	m.cacheMu.Lock()
	e := m.verified[digest]
	m.cacheMu.Unlock()
	if e == nil && !m.looksMinted(raw) {
		return nil, errNotMinted
	}
	if e != nil {
		if now.After(e.expires.Add(mintLeeway)) {
			m.drop(digest)
			return nil, errUnauthorized("public-client token refused: token has invalid claims: token is expired")
		}
		if now.Sub(e.checked) < MintedRecheck && !now.Before(e.checked) {
			return e.p, nil
		}
		if err := m.checkRecord(ctx, e.p.public.id); err != nil {
			m.drop(digest)
			return nil, err
		}
		m.remember(digest, e.p, e.expires, now)
		return e.p, nil
	}
	var c mintedClaims
	var keyErr error
	_, err := jwt.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, err := m.key(ctx, kid)
		keyErr = err
		return k, err
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(MintedTokenIssuer),
		jwt.WithAudience(MintedTokenAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(mintLeeway),
		jwt.WithTimeFunc(m.now))
	if errors.Is(keyErr, ErrStoreUnavailable) {
		return nil, keyErr
	}
	if err != nil {
		return nil, errUnauthorized("public-client token refused: " + err.Error())
	}
	if c.ID == "" || c.Environment == "" {
		return nil, errUnauthorized("public-client token refused: it has no jti or environment")
	}
	if err := m.checkRecord(ctx, c.ID); err != nil {
		return nil, err
	}
	g := &publicGrant{id: c.ID, flags: make(map[string]bool, len(c.Flags)), attrs: newAttrTree(c.Attributes)}
	for _, f := range c.Flags {
		g.flags[f] = true
	}
	p := &principal{
		subject:    "public:" + c.Subject,
		restricted: true,
		scopes:     []string{ScopeFlagsRead},
		envs:       []string{c.Environment},
		public:     g,
		limitKey:   "minted-" + c.ID,
	}
	m.remember(digest, p, c.ExpiresAt.Time, now)
	return p, nil
}

// errNotMinted is verify's answer for a token that is not one the server
// mints (by its issuer): other verifiers may accept it.
var errNotMinted = errUnauthorized("unknown bearer token")

// verifiedToken is a minted token that verified: its principal (shared,
// read-only), its expiry, and when the store last held its record.
type verifiedToken struct {
	p       *principal
	expires time.Time
	checked time.Time
}

func (m *minter) remember(digest [32]byte, p *principal, expires, checked time.Time) {
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	if m.verified == nil || len(m.verified) >= maxMintedCache {
		m.verified = map[[32]byte]*verifiedToken{}
	}
	m.verified[digest] = &verifiedToken{p: p, expires: expires, checked: checked}
}

func (m *minter) drop(digest [32]byte) {
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	delete(m.verified, digest)
}

// checkRecord returns nil when the store holds id, not revoked.
func (m *minter) checkRecord(ctx context.Context, id string) error {
	sctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	rec, ok, err := m.store.MintedToken(sctx, id)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStoreUnavailable, err)
	}
	if !ok {
		return errUnauthorized("public-client token refused: its id is not known to the server")
	}
	if rec.Revoked {
		return errUnauthorized("public-client token refused: it was revoked")
	}
	return nil
}

// forget drops the verified tokens of id (revoked here).
func (m *minter) forget(id string) {
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	for d, e := range m.verified {
		if e.p.public.id == id {
			delete(m.verified, d)
		}
	}
}

// mint signs a token for rec with the current key.
func (m *minter) mint(rec *MintedToken) (string, error) {
	m.mu.Lock()
	key := m.current
	m.mu.Unlock()
	c := mintedClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    MintedTokenIssuer,
			Subject:   rec.Subject,
			Audience:  jwt.ClaimStrings{MintedTokenAudience},
			ExpiresAt: jwt.NewNumericDate(rec.ExpiresAt),
			NotBefore: jwt.NewNumericDate(rec.IssuedAt),
			IssuedAt:  jwt.NewNumericDate(rec.IssuedAt),
			ID:        rec.ID,
		},
		Environment: rec.Environment,
		Flags:       rec.Flags,
		Attributes:  rec.Attributes,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = wire.KeyID(key.Public().(ed25519.PublicKey))
	return t.SignedString(key)
}

// publicGrant is what a minted token allows.
type publicGrant struct {
	id    string
	flags map[string]bool
	attrs *attrTree
}

// publicRoutes are the routes a minted token may use; every other one
// answers 403.
var publicRoutes = map[string]bool{
	"POST /v1/evaluate":                   true,
	"POST /ofrep/v1/evaluate/flags":       true,
	"POST /ofrep/v1/evaluate/flags/{key}": true,
}

// errPublicRoute is the 403 of a minted token on another route.
func errPublicRoute(method, path string) error {
	return errForbidden("a public-client token may only evaluate its flags (POST /v1/evaluate and the OFREP endpoints), not %s %s", method, path)
}

// allowFlag returns a 403 unless the grant lists key.
func (g *publicGrant) allowFlag(key string) error {
	if g.flags[key] {
		return nil
	}
	return errorf(http.StatusForbidden, wire.CodeForbidden, "this public-client token may not evaluate flag %q (it lists %d flags)", key, len(g.flags)).
		with(map[string]any{"flag": key})
}

// attrTree is a set of dotted attribute paths: a leaf keeps the whole
// value at its path ("user" keeps every user.* attribute; "user.plan"
// keeps only that one of the object user).
type attrTree struct {
	all      bool
	children map[string]*attrTree
}

func newAttrTree(paths []string) *attrTree {
	root := &attrTree{}
	for _, p := range paths {
		n := root
		for _, name := range strings.Split(p, ".") {
			if n.all {
				break
			}
			if n.children == nil {
				n.children = map[string]*attrTree{}
			}
			c := n.children[name]
			if c == nil {
				c = &attrTree{}
				n.children[name] = c
			}
			n = c
		}
		n.all, n.children = true, nil
	}
	return root
}

// filter returns ctx with only the listed attributes: a new map (nested
// objects copied as far as the paths reach); ctx is not modified.
func (t *attrTree) filter(ctx map[string]any) map[string]any {
	if ctx == nil {
		return nil
	}
	out := make(map[string]any, len(t.children))
	for name, c := range t.children {
		v, ok := ctx[name]
		if !ok {
			continue
		}
		if c.all {
			out[name] = v
			continue
		}
		if m, isMap := v.(map[string]any); isMap {
			out[name] = c.filter(m)
		}
	}
	return out
}

// ---- HTTP ----

// mintRequest is the body of POST /v1/tokens.
type mintRequest struct {
	Environment string   `json:"environment"`
	Flags       []string `json:"flags"`
	Attributes  []string `json:"attributes"`
	TTLSeconds  *int64   `json:"ttlSeconds"`
}

// mintResponse is the answer of POST /v1/tokens.
type mintResponse struct {
	Token       string    `json:"token"`
	ID          string    `json:"id"`
	Environment string    `json:"environment"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

func errMint(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, wire.CodeBadRequest, format, args...)
}

// handleMintToken serves POST /v1/tokens (scope tokens:mint).
func (s *Server) handleMintToken(w http.ResponseWriter, r *http.Request) {
	rc := reqCtx(r)
	var req mintRequest
	if err := decodeStrict(rc.body, &req); err != nil {
		writeError(w, err)
		return
	}
	env := req.Environment
	if env == "" {
		writeError(w, errMint("environment is required").with(map[string]any{"field": "environment"}))
		return
	}
	if err := authorize(rc.principal, ScopeTokensMint, env); err != nil {
		writeError(w, err)
		return
	}
	ttl := DefaultMintedTokenTTL
	if req.TTLSeconds != nil {
		n := *req.TTLSeconds
		if n <= 0 || n > int64(MaxMintedTokenTTL/time.Second) {
			writeError(w, errMint("ttlSeconds must be between 1 and %d (one hour); got %d", int64(MaxMintedTokenTTL/time.Second), n).
				with(map[string]any{"field": "ttlSeconds", "limit": int64(MaxMintedTokenTTL / time.Second)}))
			return
		}
		ttl = time.Duration(n) * time.Second
	}
	if len(req.Flags) == 0 {
		writeError(w, errMint("flags must list at least one flag key").with(map[string]any{"field": "flags"}))
		return
	}
	if len(req.Flags) > MaxMintedFlags || len(req.Attributes) > MaxMintedAttributes {
		writeError(w, errMint("a token lists at most %d flags and %d attributes", MaxMintedFlags, MaxMintedAttributes).
			with(map[string]any{"field": "flags"}))
		return
	}
	for _, a := range req.Attributes {
		if a == "" || strings.HasPrefix(a, ".") || strings.HasSuffix(a, ".") || strings.Contains(a, "..") {
			writeError(w, errMint("attribute %q is not an attribute path (NAME or NAME.NAME...)", a).with(map[string]any{"field": "attributes"}))
			return
		}
	}
	s.fresh(r.Context())
	es, err := s.envOr404(env)
	if err != nil {
		writeError(w, err)
		return
	}
	var missing []string
	for _, f := range req.Flags {
		if _, ok := es.snap.FlagType(f); !ok {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		writeError(w, errMint("unknown flags in environment %q: %s", env, strings.Join(missing, ", ")).
			with(map[string]any{"field": "flags", "unknown": missing}))
		return
	}
	var b [16]byte
	rand.Read(b[:])
	now := s.now().UTC().Truncate(time.Second)
	rec := MintedToken{
		ID: hex.EncodeToString(b[:]), Subject: rc.principal.subject, Environment: env,
		Flags: slices.Compact(slices.Sorted(slices.Values(req.Flags))), Attributes: slices.Compact(slices.Sorted(slices.Values(req.Attributes))),
		IssuedAt: now, ExpiresAt: now.Add(ttl),
	}
	if rec.Attributes == nil {
		rec.Attributes = []string{}
	}
	tok, err := s.auth.mint.mint(&rec)
	if err != nil {
		s.log.Error("flagserver: mint token", "error", err.Error())
		writeError(w, errorf(http.StatusInternalServerError, wire.CodeInternal, "internal error"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.StoreTimeout)
	defer cancel()
	if err := s.store.RecordMintedToken(ctx, rec); err != nil {
		s.log.Error("flagserver: record minted token", "error", err.Error())
		writeError(w, fmt.Errorf("%w: %v", ErrStoreUnavailable, err))
		return
	}
	s.log.Info("flagserver: minted a public-client token", "id", rec.ID, "environment", env, "flags", len(rec.Flags), "subject", rc.principal.subject, "expiresAt", rec.ExpiresAt)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, mintResponse{Token: tok, ID: rec.ID, Environment: env, ExpiresAt: rec.ExpiresAt})
}

// handleRevokeToken serves DELETE /v1/tokens/{id} (scope tokens:mint):
// the minted token is refused from then on, by every replica.
func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	rc := reqCtx(r)
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.StoreTimeout)
	defer cancel()
	rec, ok, err := s.store.MintedToken(ctx, id)
	if err != nil {
		writeError(w, fmt.Errorf("%w: %v", ErrStoreUnavailable, err))
		return
	}
	env := ""
	if ok {
		env = rec.Environment
	}
	if err := authorize(rc.principal, ScopeTokensMint, env); err != nil {
		writeError(w, err)
		return
	}
	if !ok {
		writeError(w, errorf(http.StatusNotFound, CodeTokenNotFound, "no minted token with id %q (never minted, or expired)", id))
		return
	}
	if _, err := s.store.RevokeMintedToken(ctx, id); err != nil {
		writeError(w, fmt.Errorf("%w: %v", ErrStoreUnavailable, err))
		return
	}
	s.auth.mint.forget(id)
	s.log.Info("flagserver: revoked a public-client token", "id", id, "subject", rc.principal.subject)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "revoked": true})
}
