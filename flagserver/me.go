package flagserver

import (
	"net/http"
	"slices"
)

// knownScopes are the scope names a token may hold, in the order GET
// /v1/me lists them.
var knownScopes = []string{"flags:read", "flags:write", "flags:approve", "audit:read", "tokens:mint"}

// meResponse is the body of GET /v1/me.
type meResponse struct {
	// Subject names the caller, as in the audit log.
	Subject string `json:"subject"`
	// Scopes are the scopes the caller holds.
	Scopes []string `json:"scopes"`
	// Environments are the served environments the caller is limited to;
	// empty means every environment.
	Environments []string `json:"environments"`
	// ServedEnvironments are the environments this server serves that the
	// caller may act on, sorted.
	ServedEnvironments []string `json:"servedEnvironments"`
}

// handleMe serves GET /v1/me: who the caller is and what it may do, so
// that a client (the web console) offers only what the token allows. Any
// authenticated caller may ask, whatever its scopes.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	p := reqCtx(r).principal
	resp := meResponse{Subject: p.subject, Scopes: []string{}, Environments: []string{}, ServedEnvironments: []string{}}
	for _, sc := range knownScopes {
		if p.hasScope(sc) {
			resp.Scopes = append(resp.Scopes, sc)
		}
	}
	s.fresh(r.Context())
	served := s.Environments()
	for _, env := range served {
		if p.allowsEnv(env) {
			resp.ServedEnvironments = append(resp.ServedEnvironments, env)
		}
	}
	// "\x00" names no environment, so only a caller limited to none
	// allows it; a limited caller gets the served environments it may use.
	if !p.allowsEnv("\x00") {
		resp.Environments = slices.Clone(resp.ServedEnvironments)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}
