package flagserver

import (
	"net/http"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

// Bootstrap TTL bounds.
const (
	DefaultBootstrapTTL = 7 * 24 * time.Hour
	MaxBootstrapTTL     = 366 * 24 * time.Hour
)

// handleBootstrap serves GET /v1/bootstrap?environment=ENV&ttl=DURATION: a
// wire.BootstrapEnvelope holding the environment's config JSON, signed with
// the server's Ed25519 key, expiring after ttl (Go duration syntax such as
// "720h"; default 7 days, at most 366 days).
func (s *Server) handleBootstrap(w http.ResponseWriter, r *http.Request) {
	rc := reqCtx(r)
	env := environment(r)
	if err := authorize(rc.principal, wire.ScopeRead, env); err != nil {
		writeError(w, err)
		return
	}
	ttl := DefaultBootstrapTTL
	if v := r.URL.Query().Get("ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > MaxBootstrapTTL {
			writeError(w, errorf(http.StatusBadRequest, wire.CodeBadRequest, "ttl must be a positive duration up to %s, such as 720h", MaxBootstrapTTL).
				with(map[string]any{"field": "ttl"}))
			return
		}
		ttl = d
	}
	s.fresh(r.Context())
	es, err := s.envOr404(env)
	if err != nil {
		writeError(w, err)
		return
	}
	body, _ := es.document()
	now := s.now().UTC().Truncate(time.Second)
	env2 := wire.BootstrapEnvelope{
		Environment: env,
		IssuedAt:    now,
		ExpiresAt:   now.Add(ttl),
		Version:     es.version(),
		Payload:     body,
	}
	env2.Sign(s.keys.Load().sign)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, &env2)
}

// handleKeys serves GET /v1/keys: the bootstrap signing keys' ids and
// public keys, the current one first, then those a rotation replaced.
func (s *Server) handleKeys(w http.ResponseWriter, r *http.Request) {
	if err := authorize(reqCtx(r).principal, wire.ScopeRead, ""); err != nil {
		writeError(w, err)
		return
	}
	resp := wire.KeysResponse{Keys: []wire.PublicKeyInfo{}}
	for i, pub := range s.PublicKeys() {
		resp.Keys = append(resp.Keys, wire.PublicKeyInfo{KeyID: wire.KeyID(pub), PublicKey: pub, Current: i == 0})
	}
	writeJSON(w, http.StatusOK, &resp)
}
