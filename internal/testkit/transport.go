package testkit

import (
	"bytes"
	"io"
	"net/http"
	"sync"
)

// Request is what a RecordingTransport saw of one request.
type Request struct {
	Method, URL string
	Header      http.Header
	Body        []byte // nil without a body
}

// RecordingTransport records every request it sends (method, URL,
// headers, body), then sends it with Next (nil: http.DefaultTransport):
// the seam for checking what leaves the process. Safe for concurrent use.
type RecordingTransport struct {
	Next http.RoundTripper

	mu   sync.Mutex
	reqs []Request
}

// RoundTrip records req and sends it on.
func (rt *RecordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	rt.mu.Lock()
	rt.reqs = append(rt.reqs, Request{req.Method, req.URL.String(), req.Header.Clone(), body})
	rt.mu.Unlock()
	next := rt.Next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(req)
}

// Requests returns the requests recorded so far, in the order sent.
func (rt *RecordingTransport) Requests() []Request {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]Request(nil), rt.reqs...)
}

// Bodies returns the bodies of the requests that had one, in the order
// sent.
func (rt *RecordingTransport) Bodies() [][]byte {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var out [][]byte
	for _, r := range rt.reqs {
		if r.Body != nil {
			out = append(out, r.Body)
		}
	}
	return out
}
