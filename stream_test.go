package flagwire

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// TestSSEPropagation checks that every server-side change reaches
// client.Bool over SSE on loopback, in local and remote modes, and logs how
// fast. The target (p99 ≤ 50 ms) is BenchmarkSSEPropagation's figure, not
// an assertion: a test bounding wall-clock latency fails on a loaded
// machine without any defect.
func TestSSEPropagation(t *testing.T) {
	for _, mode := range []Mode{ModeLocal, ModeRemote} {
		t.Run(string(mode), func(t *testing.T) {
			const changes = 200
			lat := measurePropagation(t, mode, changes)
			slices.Sort(lat)
			t.Logf("%s mode: SSE propagation over %d changes: p50 %v, p99 %v, max %v", mode, changes, testkit.Quantile(lat, 0.5), testkit.Quantile(lat, 0.99), lat[len(lat)-1])
		})
	}
}

// BenchmarkSSEPropagation measures server change → client.Bool returns the
// new value, over SSE on loopback: ns/op is the mean, with p50 and p99 as
// extra metrics (the design target: p99 ≤ 50 ms).
//
//	go test -run '^$' -bench BenchmarkSSEPropagation -benchtime 500x .
func BenchmarkSSEPropagation(b *testing.B) {
	for _, mode := range []Mode{ModeLocal, ModeRemote} {
		b.Run(string(mode), func(b *testing.B) {
			lat := measurePropagation(b, mode, b.N)
			slices.Sort(lat)
			b.ReportMetric(float64(testkit.Quantile(lat, 0.5))/1e6, "p50-ms")
			b.ReportMetric(float64(testkit.Quantile(lat, 0.99))/1e6, "p99-ms")
		})
	}
}

// measurePropagation makes n changes to one flag and returns, for each,
// the time from the server's write to the client serving the new value.
func measurePropagation(tb testing.TB, mode Mode, n int) []time.Duration {
	tb.Helper()
	srv := flagtest.NewServer(tb, flagtest.WithConfig(exampleConfig()))
	c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithMode(mode), WithLogger(quietLogger()), WithTimeout(patience))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close(context.Background()) })
	ready, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := c.WaitReady(ready); err != nil {
		tb.Fatal(err)
	}
	testkit.WaitFor(tb, patience, "stream connected", func() bool { return c.Status().StreamConnected })
	ctx := user("8a7f4c91", "free", "EU")
	lat := make([]time.Duration, 0, n)
	if b, ok := tb.(*testing.B); ok {
		b.ResetTimer()
	}
	for i := 0; i < n; i++ {
		want := i%2 == 0
		c.Bool(ctx, "kill-switch", !want) // cache the old value (remote)
		start := time.Now()
		if _, err := srv.SetFlag("prod", evaluate.Flag{Key: "kill-switch", Default: &evaluate.Serve{Variant: want}}); err != nil {
			tb.Fatal(err)
		}
		testkit.WaitFor(tb, patience, fmt.Sprintf("change %d visible", i), func() bool {
			v, d := c.BoolDetail(ctx, "kill-switch", !want)
			return v == want && d.ErrorCode == ""
		})
		lat = append(lat, time.Since(start))
	}
	return lat
}

func TestStreamDropResumesWithLastEventID(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	c := newLocal(t, srv, WithPollInterval(time.Hour))
	testkit.WaitFor(t, patience, "stream connected", func() bool { return c.Status().StreamConnected })
	srv.SetFlag("prod", evaluate.Flag{Key: "a", Default: &evaluate.Serve{Variant: true}})
	testkit.WaitFor(t, patience, "first change", func() bool { return c.Bool(context.Background(), "a", false) })
	srv.DropStreams()
	srv.SetFlag("prod", evaluate.Flag{Key: "a", Default: &evaluate.Serve{Variant: false}})
	testkit.WaitFor(t, patience, "change made while the stream was down", func() bool { return !c.Bool(context.Background(), "a", true) })
	// A change after the reconnect arrives over the resumed stream.
	testkit.WaitFor(t, patience, "stream back", func() bool { return c.Status().StreamConnected })
	srv.SetFlag("prod", evaluate.Flag{Key: "a", Default: &evaluate.Serve{Variant: true}})
	testkit.WaitFor(t, patience, "change after the reconnect", func() bool { return c.Bool(context.Background(), "a", false) })
	testkit.WaitFor(t, patience, "reconnect", func() bool { return c.local.stream.connects.Load() >= 2 })
	c.Close(context.Background()) // the stream goroutine has exited: lastID is ours to read
	if c.local.stream.lastID == "" {
		t.Fatal("no Last-Event-ID tracked")
	}
}

func TestStalledStreamReconnects(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()), flagtest.WithKeepAlive(20*time.Millisecond))
	c := newLocal(t, srv, WithStreamIdleTimeout(150*time.Millisecond), WithPollInterval(time.Hour))
	testkit.WaitFor(t, patience, "stream connected", func() bool { return c.Status().StreamConnected })
	srv.StallStreams(true)
	testkit.WaitFor(t, patience, "stall detected and reconnect attempted", func() bool { return c.local.stream.connects.Load() >= 2 })
	srv.StallStreams(false)
}

// TestTricklingStreamIsStalled: a stream that sends one byte at a time and
// never completes an event or a comment is stalled, however steady the
// trickle: the watchdog reconnects it after the idle timeout. It used to
// count bytes, so the trickle kept the stream "connected" forever.
func TestTricklingStreamIsStalled(t *testing.T) {
	var streams atomic.Int64
	srv := httptest.NewServer(onlyPath("/v1/stream", func(w http.ResponseWriter, r *http.Request) {
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

// TestAChangeOnARestartedServerIsStreamed: the server restarts without its
// data (a new store epoch, versions again from 1) and a kill switch is
// turned off on it while the client is disconnected. The client
// reconnects with the Last-Event-ID of the old store, which the new store
// could take as one of its own and replay nothing; the client must not
// resume across epochs, so it serves the change at once instead of the
// old value until a TTL (remote) or the next poll (local).
func TestAChangeOnARestartedServerIsStreamed(t *testing.T) {
	for _, mode := range []Mode{ModeRemote, ModeLocal} {
		t.Run(string(mode), func(t *testing.T) {
			a := flagtest.NewServer(t, flagtest.WithConfig(killConfig(true)))
			b := flagtest.NewServer(t, flagtest.WithConfig(killConfig(true)))
			// b's kill switch goes off: its version (2) is the one a's
			// event below carries.
			if _, err := b.SetFlag("prod", evaluate.Flag{Key: "kill", Default: &evaluate.Serve{Variant: false}}); err != nil {
				t.Fatal(err)
			}
			p := newSwitchProxy(t, a)
			var c *Client
			if mode == ModeLocal {
				c = newLocalAt(t, p.URL, a.Token(), WithTrustedKeys(a.Flagserver().PublicKey(), b.Flagserver().PublicKey()))
			} else {
				c = remoteAtURL(t, p.URL, a.Token(), WithStreaming(true))
			}
			ctx := WithSubject(context.Background(), StringAttr("userId", "u1"))
			if !c.Bool(ctx, "kill", false) {
				t.Fatal("kill is off on the first server")
			}
			testkit.WaitFor(t, patience, "the stream to connect", func() bool { return c.Status().StreamConnected })
			// An event from a (version 2) gives the client an event id.
			if _, err := a.SetFlag("prod", evaluate.Flag{Key: "kill", Default: &evaluate.Serve{Variant: true}}); err != nil {
				t.Fatal(err)
			}
			testkit.WaitFor(t, patience, "a's event", func() bool {
				if mode == ModeLocal {
					return c.Status().ConfigVersion == 2
				}
				_, d := c.BoolDetail(ctx, "kill", false)
				return d.Source == SourceRemote // re-fetched after the invalidation
			})
			// a is gone; the proxy now leads to b, down while the client
			// notices the loss, then up.
			b.Down()
			p.point(b)
			a.DropStreams()
			testkit.WaitFor(t, patience, "the client to see the outage", func() bool { return !c.Status().StreamConnected })
			b.Up()
			testkit.WaitFor(t, patience, "the restarted server's change", func() bool { return !c.Bool(ctx, "kill", true) })
		})
	}
}
