package flagwire

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/flagwire/flagwire/internal/testkit"
)

// TestTricklingStreamIsStalled: a stream that sends one byte at a time and
// never completes an event or a comment is stalled, however steady the
// trickle: the watchdog reconnects it after the idle timeout. It used to
// count bytes, so the trickle kept the stream "connected" forever.
func TestTricklingStreamIsStalled(t *testing.T) {
	var streams atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/stream" {
			http.NotFound(w, r)
			return
		}
		streams.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		rc.Flush()
		trickle := []byte(`data: {"type":"invalidate","flagKey":"never-ends"}`) // no line end, ever
		tick := time.NewTicker(10 * time.Millisecond)                           // the server's pace, not a wait
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
			if _, err := w.Write(trickle[i%len(trickle) : i%len(trickle)+1]); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c, err := New(context.Background(), WithEndpoint(srv.URL), WithLogger(quietLogger()), WithStreamIdleTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	testkit.WaitFor(t, patience, "the trickling stream reconnected as stalled", func() bool { return streams.Load() >= 2 })
}

// TestCommentWatcher: complete comment lines (the keep-alives) are counted,
// whatever the line ends and however the bytes are split across reads;
// fields, blank lines and unfinished comments are not. The bytes pass
// through unchanged.
func TestCommentWatcher(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{": keep-alive\n\n", 1},
		{":\r\n", 1},
		{":a\r:b\n", 2},
		{":one\n:two\n\n", 2},
		{"x\n: k\n", 1},
		{"data: x\n\n", 0},
		{"data: :x\n", 0},
		{"data:x\n:\n", 1},
		{": partial", 0},
		{"\n\n\r\n", 0},
		{"", 0},
	}
	for _, tc := range cases {
		for _, split := range []bool{false, true} {
			t.Run(fmt.Sprintf("%q/one-byte-reads=%v", tc.in, split), func(t *testing.T) {
				var r io.Reader = strings.NewReader(tc.in)
				if split {
					r = iotest.OneByteReader(r)
				}
				n := 0
				w := &commentWatcher{r: r, onComment: func() { n++ }, atLineStart: true}
				out, err := io.ReadAll(w)
				if err != nil || !bytes.Equal(out, []byte(tc.in)) {
					t.Fatalf("passed through %q, %v", out, err)
				}
				if n != tc.want {
					t.Fatalf("%d comments counted, want %d", n, tc.want)
				}
			})
		}
	}
}

// TestHugeTTLSecondsClampsToMax: ttlSeconds of 9223372036854775807 caches
// the decision for the upper TTL bound (1 h by default), not for 1 s as
// the overflowing conversion made it; a negative one for the lower bound.
func TestHugeTTLSecondsClampsToMax(t *testing.T) {
	for _, tc := range []struct {
		ttl        string
		stillFresh time.Duration // the clock advance at which the decision is still cached
		expired    time.Duration // the further advance after which it is not
	}{
		{"9223372036854775807", 30 * time.Minute, 31 * time.Minute}, // at 61 min: past 1 h
		{"3600000", 30 * time.Minute, 31 * time.Minute},
		{"-9223372036854775808", 500 * time.Millisecond, time.Second}, // at 1.5 s: past 1 s
	} {
		t.Run(tc.ttl, func(t *testing.T) {
			var evaluations atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1/evaluate" {
					http.NotFound(w, r)
					return
				}
				evaluations.Add(1)
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"requestId":"r","decisions":[{"flagKey":"kill-switch","variant":true,"variantKey":"on","reason":{"kind":"STATIC"},"ttlSeconds":%s}]}`, tc.ttl)
			}))
			defer srv.Close()
			clk := testkit.NewClock()
			c, err := New(context.Background(), WithEndpoint(srv.URL), WithLogger(quietLogger()), WithStreaming(false), withClock(clk),
				WithTimeout(patience), WithCache(CacheSettings{MaxStale: -1}))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			check := func(wantSource Source, wantRequests int64) {
				t.Helper()
				v, d := c.BoolDetail(context.Background(), "kill-switch", false)
				if !v || d.Variant != "on" || d.Reason.Kind != "STATIC" || d.ErrorCode != "" || d.Source != wantSource {
					t.Fatalf("%v %+v; want true (on, STATIC) from %s", v, d, wantSource)
				}
				if n := evaluations.Load(); n != wantRequests {
					t.Fatalf("%d evaluate requests, want %d", n, wantRequests)
				}
			}
			check(SourceRemote, 1)
			clk.Advance(tc.stillFresh)
			check(SourceCache, 1)
			clk.Advance(tc.expired)
			check(SourceRemote, 2)
		})
	}
}
