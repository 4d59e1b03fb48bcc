package flagwire

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
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
			opts = append(opts, WithOFREP())
		}
		c, err := New(context.Background(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, d := c.BoolDetail(context.Background(), "f", false); d.ErrorCode != ErrorBadResponse {
			t.Errorf("ofrep=%v: %+v; want BAD_RESPONSE from the declared length", ofrep, d)
		}
		c.Close(context.Background())
	}
}
