package flagserver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/flagwire/flagwire/internal/wire"
)

// GET /v1/openapi.json serves the embedded contract to anyone, even on a
// server that requires tokens, with an ETag that answers If-None-Match.
func TestOpenAPIServedWithoutCredentials(t *testing.T) {
	ts := newTestServer(t, Options{Tokens: []Token{{Secret: "s3cret", Subject: "svc", Scopes: []string{wire.ScopeRead}}}})

	// The server requires a token elsewhere:
	ts.do("GET", "/v1/keys", "").wantError(t, http.StatusUnauthorized, wire.CodeUnauthorized)

	res := ts.do("GET", "/v1/openapi.json", "")
	res.wantStatus(t, http.StatusOK)
	if ct := res.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	if !bytes.Equal(res.body, OpenAPIDocument()) {
		t.Fatal("the served document is not OpenAPIDocument()")
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	res.json(t, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	etag := res.header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	ts.do("GET", "/v1/openapi.json", "", "If-None-Match: "+etag).wantStatus(t, http.StatusNotModified)
	ts.do("GET", "/v1/openapi.json", "", `If-None-Match: "other"`).wantStatus(t, http.StatusOK)
	ts.do("POST", "/v1/openapi.json", "{}").wantStatus(t, http.StatusNotFound)
}

// Every route the server registers is in the document with the same
// methods, and the document names no route the server lacks: the
// server's own answers tell which routes exist (404 not_found and 405 for
// the others).
func TestOpenAPICoversEveryRoute(t *testing.T) {
	ts := newTestServer(t, Options{})
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPIDocument(), &doc); err != nil {
		t.Fatal(err)
	}
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	documented := 0
	for path, item := range doc.Paths {
		concrete := bytes.ReplaceAll([]byte(path), []byte("{key}"), []byte("no-such-key"))
		concrete = bytes.ReplaceAll(concrete, []byte("{id}"), []byte("c-no-such-change"))
		for _, m := range methods {
			_, inDoc := item[map[string]string{"GET": "get", "POST": "post", "PUT": "put", "PATCH": "patch", "DELETE": "delete"}[m]]
			res := ts.probe(t, m, string(concrete))
			served := res.status != http.StatusMethodNotAllowed && !(res.status == http.StatusNotFound && res.apiErrorCode() == wire.CodeNotFound)
			if inDoc != served {
				t.Errorf("%s %s: documented %v, served %v (status %d %s)", m, path, inDoc, served, res.status, res.body)
			}
			if inDoc {
				documented++
			}
		}
	}
	// The server's route table (routes, ofrepRoutes, the health and
	// contract endpoints) has 23 method+pattern pairs, changeRoutes 4.
	if documented != 23+4 {
		t.Errorf("%d documented operations, want %d", documented, 23+4)
	}
}

// probe sends a bodiless request and returns the answer; a stream's body
// is not read (its response is closed after the header).
func (ts *testServer) probe(t *testing.T, method, path string) *response {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := &response{status: res.StatusCode, header: res.Header}
	if res.Header.Get("Content-Type") != "text/event-stream" {
		if out.body, err = io.ReadAll(res.Body); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// apiErrorCode returns the error code of an error body, or "".
func (r *response) apiErrorCode() string {
	var eb wire.ErrorBody
	if json.Unmarshal(r.body, &eb) != nil {
		return ""
	}
	return eb.Error.Code
}
