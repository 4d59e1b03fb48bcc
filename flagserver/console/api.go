package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// apiResponse is the answer of one /v1 request.
type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

// apiError is the error body of the Flag API:
// {"error":{"code","message","details"}}.
type apiError struct {
	Status  int
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Details json.RawMessage `json:"details"`
}

func (e *apiError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("the server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Message
}

// err returns the response's error when it is not a 2xx, else nil.
func (r *apiResponse) err() *apiError {
	if r.status >= 200 && r.status < 300 {
		return nil
	}
	var eb struct {
		Error apiError `json:"error"`
	}
	json.Unmarshal(r.body, &eb)
	eb.Error.Status = r.status
	return &eb.Error
}

// decode decodes a 2xx body into v; otherwise it returns the API error.
func (r *apiResponse) decode(v any) error {
	if e := r.err(); e != nil {
		return e
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("the server's answer could not be read: %v", err)
	}
	return nil
}

// bufferWriter collects a response of the API handler in memory.
type bufferWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (w *bufferWriter) Header() http.Header { return w.header }

func (w *bufferWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *bufferWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.buf.Write(b)
}

// call makes one request to the API handler as the browser's request r
// (its context, client address and proxy headers) with token, and
// returns the answer. body, when not nil, is sent as JSON; header adds
// request headers (If-Match).
func (c *Console) call(r *http.Request, token, method, path string, query url.Values, body any, header map[string]string) *apiResponse {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return &apiResponse{status: http.StatusInternalServerError, body: []byte(`{"error":{"code":"internal","message":"the console could not encode its request"}}`)}
		}
		rd = bytes.NewReader(b)
	}
	u := path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(r.Context(), method, u, rd)
	if err != nil {
		return &apiResponse{status: http.StatusBadRequest, body: []byte(`{"error":{"code":"bad_request","message":"invalid request"}}`)}
	}
	req.RemoteAddr = r.RemoteAddr
	req.TLS = r.TLS
	for _, h := range []string{"X-Forwarded-For", "Forwarded"} {
		if v := r.Header.Values(h); len(v) > 0 {
			req.Header[h] = v
		}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := &bufferWriter{header: http.Header{}}
	c.api.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &apiResponse{status: w.status, header: w.header, body: w.buf.Bytes()}
}
