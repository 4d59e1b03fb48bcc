package flagwire

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestDeclaredOversizedResponseRefusedUnread: an answer whose
// Content-Length is over the response bound is refused from its headers,
// before any of the body is read: a BAD_RESPONSE, not a TIMEOUT after
// reading (or waiting for) megabytes a hostile server never finishes.
func TestDeclaredOversizedResponseRefusedUnread(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/stream" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(1<<30))
		io.WriteString(w, `{"requestId":"x","decisions":[`)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the rest never comes
	}))
	defer hs.Close()
	for _, ofrep := range []bool{false, true} {
		opts := []Option{WithEndpoint(hs.URL), WithStreaming(false), WithRetry(RetrySettings{MaxAttempts: -1}),
			WithTimeout(patience), WithLogger(quietLogger())}
		if ofrep {
			opts = append(opts, WithOFREP(true))
		}
		c, err := New(context.Background(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, d := c.BoolDetail(context.Background(), "f", false); d.ErrorCode != CodeBadResponse {
			t.Errorf("ofrep=%v: %+v; want BAD_RESPONSE from the declared length", ofrep, d)
		}
		c.Close(context.Background())
	}
}

// TestChunkedOversizedResponseRefused: an answer without a declared length
// that runs past the bound is cut off at the bound and refused.
func TestChunkedOversizedResponseRefused(t *testing.T) {
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = ' '
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"requestId":"x","decisions":[]`)
		for sent := 0; sent <= 5<<20 && r.Context().Err() == nil; sent += len(chunk) { // chunked: no Content-Length
			w.Write(chunk)
		}
		io.WriteString(w, `}`)
	}))
	defer hs.Close()
	c, err := New(context.Background(), WithEndpoint(hs.URL), WithStreaming(false), WithRetry(RetrySettings{MaxAttempts: -1}),
		WithTimeout(patience), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, d := c.BoolDetail(context.Background(), "f", false); d.ErrorCode != CodeBadResponse {
		t.Errorf("%+v; want BAD_RESPONSE", d)
	}
	if st := c.Status(); !strings.Contains(st.LastError, "larger than") {
		t.Errorf("Status().LastError = %q; want it to say the response was too large", st.LastError)
	}
}
