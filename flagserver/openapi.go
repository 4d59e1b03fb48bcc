package flagserver

import (
	_ "embed"
	"net/http"
	"slices"
)

// openAPIDocument is the OpenAPI 3.1 contract of the API this package
// serves: every /v1 route, the health endpoints and the OFREP endpoints.
//
//go:embed openapi.json
var openAPIDocument []byte

// openAPIETag is the document's ETag.
var openAPIETag = etagOf(openAPIDocument)

// OpenAPIDocument returns the OpenAPI 3.1 document (JSON) describing the
// Flag API: every route a Server serves, with its parameters, headers,
// request and response bodies, status codes and error bodies. The Server
// serves it at GET /v1/openapi.json. The returned slice is a copy.
func OpenAPIDocument() []byte { return slices.Clone(openAPIDocument) }

// handleOpenAPI serves GET /v1/openapi.json: the contract, to anyone. It
// holds no data (no flag, environment or token), so it needs no
// credentials and no rate limit, like /healthz; code generators and API
// explorers fetch it without a secret.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("ETag", openAPIETag)
	h.Set("Cache-Control", "no-cache")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatchesWeak(inm, openAPIETag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeRaw(w, http.StatusOK, openAPIDocument)
}
