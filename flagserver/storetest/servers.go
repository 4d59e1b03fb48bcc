package storetest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/internal/wire"
)

// ServerHarness opens stores for RunServers.
type ServerHarness struct {
	// NewStore makes a new, empty store and returns how to open it: each
	// call of open returns a Store on that same state. For a store that
	// only one process opens at a time (the embedded store) the suite
	// closes the previous Server first.
	NewStore func(t testing.TB) (open func(t testing.TB) flagserver.Store)
	// Shared is set for a store several servers use at once: the replica
	// scenarios run too.
	Shared bool
}

// RunServers runs scenarios of whole servers on a store: idempotent
// retries and delete tombstones across a restart and, for a shared store,
// across replicas (retries, concurrent deletes, read-your-writes, the
// stream and Last-Event-ID).
func RunServers(t *testing.T, h ServerHarness) {
	t.Run("RetryAndTombstoneAfterRestart", func(t *testing.T) { testRestart(t, h) })
	t.Run("AuditPages", func(t *testing.T) { testAuditPages(t, h) })
	t.Run("Approvals", func(t *testing.T) { testApprovals(t, h) }) // approvals.go
	if !h.Shared {
		return
	}
	t.Run("RetryOnAnotherReplica", func(t *testing.T) { testRetryOnReplica(t, h) })
	t.Run("ConcurrentDeletesAcrossReplicas", func(t *testing.T) { testConcurrentDeletes(t, h) })
	t.Run("ReadYourWritesAcrossReplicas", func(t *testing.T) { testReadYourWrites(t, h) })
	t.Run("StreamAcrossReplicas", func(t *testing.T) { testStreamAcrossReplicas(t, h) })
	t.Run("ResumeOnAReplicaStartedLater", func(t *testing.T) { testResumeOnLaterReplica(t, h) })
	t.Run("KeyRotationReachesReplicas", func(t *testing.T) { testRotationReachesReplicas(t, h) }) // signing.go
	t.Run("WebSocketAcrossReplicas", func(t *testing.T) { testWebSocketAcrossReplicas(t, h) })    // websocket.go
}

// Server is a flagserver.Server behind a loopback HTTP server.
type Server struct {
	*flagserver.Server
	URL string
	hs  *httptest.Server
}

// Close stops the HTTP server and the Server (closing its store).
func (s *Server) Close() {
	s.Server.Close()
	s.hs.Close()
}

// StartServer starts a Server on st with environment prod (flags f, g, h
// and k, no change reason required) and registers its Close.
func StartServer(t testing.TB, st flagserver.Store) *Server {
	t.Helper()
	return StartServerWith(t, st, nil)
}

// StartServerWith is StartServer with the Options changed by set (when
// not nil) last.
func StartServerWith(t testing.TB, st flagserver.Store, set func(*flagserver.Options)) *Server {
	t.Helper()
	cfg := &evaluate.Config{Environment: "prod", Salt: "salt", Flags: []evaluate.Flag{{Key: "f"}, {Key: "g"}, {Key: "h"}, {Key: "k"}}}
	return start(t, flagserver.Options{Store: st, Configs: []*evaluate.Config{cfg}, RequireChangeReason: map[string]bool{}}, set)
}

// start starts a server with opts, without rate limits and polling the
// store every 50ms, behind a loopback HTTP server closed when the test
// ends.
func start(t testing.TB, opts flagserver.Options, set ...func(*flagserver.Options)) *Server {
	t.Helper()
	opts.ReadLimit = flagserver.RateLimit{PerSecond: -1}
	opts.WriteLimit = flagserver.RateLimit{PerSecond: -1}
	opts.PollInterval = 50 * time.Millisecond
	for _, f := range set {
		if f != nil {
			f(&opts)
		}
	}
	s, err := flagserver.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Server: s, hs: httptest.NewServer(s)}
	srv.URL = srv.hs.URL
	t.Cleanup(srv.Close)
	return srv
}

// Response is an HTTP answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends a request with a JSON body (none for "") and headers "Name: value".
func Do(t testing.TB, method, url, body string, headers ...string) *Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &Response{res.StatusCode, res.Header, b}
}

func want(t testing.TB, r *Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
}

func etagOf(t testing.TB, s *Server, key string) string {
	t.Helper()
	r := Do(t, "GET", s.URL+"/v1/flags/"+key+"?environment=prod", "")
	want(t, r, 200)
	return r.Header.Get("ETag")
}

func auditCount(t testing.TB, s *Server, entity string) int {
	t.Helper()
	var a wire.AuditResponse
	r := Do(t, "GET", s.URL+"/v1/audit?entity="+entity, "")
	want(t, r, 200)
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatal(err)
	}
	return len(a.Entries)
}

func testRestart(t *testing.T, h ServerHarness) {
	open := h.NewStore(t)
	s1 := StartServer(t, open(t))
	patch := `{"state":"off"}`
	hdr := []string{"If-Match: " + etagOf(t, s1, "f"), "Idempotency-Key: k-1"}
	r1 := Do(t, "PATCH", s1.URL+"/v1/flags/f?environment=prod", patch, hdr...)
	want(t, r1, 200)
	gTag := etagOf(t, s1, "g")
	want(t, Do(t, "DELETE", s1.URL+"/v1/flags/g?environment=prod", "", "If-Match: "+gTag), 200)
	s1.Close()

	s2 := StartServer(t, open(t))
	r2 := Do(t, "PATCH", s2.URL+"/v1/flags/f?environment=prod", patch, hdr...)
	want(t, r2, 200)
	if string(r2.Body) != string(r1.Body) || r2.Header.Get("ETag") != r1.Header.Get("ETag") || r2.Header.Get(wire.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("retry after a restart:\n%s %v\nfirst answer:\n%s %v", r2.Body, r2.Header, r1.Body, r1.Header)
	}
	if n := auditCount(t, s2, "flag:f"); n != 1 {
		t.Fatalf("%d audit entries for f: the retry was applied again", n)
	}
	want(t, Do(t, "PATCH", s2.URL+"/v1/flags/f?environment=prod", `{"state":"on"}`, hdr...), 422)
	// The loser of a DELETE (the deleted ETag) gets 412 after the restart,
	// a flag that never existed 404.
	want(t, Do(t, "DELETE", s2.URL+"/v1/flags/g?environment=prod", "", "If-Match: "+gTag), 412)
	want(t, Do(t, "DELETE", s2.URL+"/v1/flags/nope?environment=prod", "", "If-Match: "+gTag), 404)
}

func testAuditPages(t *testing.T, h ServerHarness) {
	s := StartServer(t, h.NewStore(t)(t))
	for i := range 7 {
		r := Do(t, "PATCH", s.URL+"/v1/flags/k?environment=prod", fmt.Sprintf(`{"owners":["d%d"]}`, i), "If-Match: "+etagOf(t, s, "k"))
		want(t, r, 200)
	}
	// Pages of 3, newest first by page, each oldest first: d4..d6, d1..d3, d0.
	var got []string
	url := s.URL + "/v1/audit?entity=flag:k&limit=3"
	for page := 0; ; page++ {
		var a wire.AuditResponse
		r := Do(t, "GET", url, "")
		want(t, r, 200)
		if err := json.Unmarshal(r.Body, &a); err != nil {
			t.Fatal(err)
		}
		for _, e := range a.Entries {
			var f evaluate.Flag
			if err := json.Unmarshal(e.After, &f); err != nil {
				t.Fatalf("entry %s: %v", e.After, err)
			}
			got = append(got, strings.Join(f.Owners, ""))
		}
		if a.NextBefore == 0 {
			break
		}
		if page > 3 {
			t.Fatal("pages never end")
		}
		url = fmt.Sprintf("%s/v1/audit?entity=flag:k&limit=3&before=%d", s.URL, a.NextBefore)
	}
	if strings.Join(got, ",") != "d4,d5,d6,d1,d2,d3,d0" {
		t.Fatalf("audit pages: %v", got)
	}
}

// two starts two replicas on one store.
func two(t *testing.T, h ServerHarness) (a, b *Server) {
	open := h.NewStore(t)
	return StartServer(t, open(t)), StartServer(t, open(t))
}

func testRetryOnReplica(t *testing.T, h ServerHarness) {
	a, b := two(t, h)
	hdr := []string{"If-Match: " + etagOf(t, a, "f"), "Idempotency-Key: k-2"}
	r1 := Do(t, "PATCH", a.URL+"/v1/flags/f?environment=prod", `{"state":"off"}`, hdr...)
	want(t, r1, 200)
	r2 := Do(t, "PATCH", b.URL+"/v1/flags/f?environment=prod", `{"state":"off"}`, hdr...)
	want(t, r2, 200)
	if string(r2.Body) != string(r1.Body) || r2.Header.Get(wire.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("retry on another replica:\n%s\nfirst answer:\n%s", r2.Body, r1.Body)
	}
	if n := auditCount(t, b, "flag:f"); n != 1 {
		t.Fatalf("%d audit entries for f: the retry was applied again", n)
	}
}

func testConcurrentDeletes(t *testing.T, h ServerHarness) {
	a, b := two(t, h)
	tag := etagOf(t, a, "h")
	const n = 8
	status := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		s := []*Server{a, b}[i%2]
		wg.Go(func() {
			status[i] = Do(t, "DELETE", s.URL+"/v1/flags/h?environment=prod", "", "If-Match: "+tag).Status
		})
	}
	wg.Wait()
	won := 0
	for i, st := range status {
		switch st {
		case 200:
			won++
		case 412:
		default:
			t.Fatalf("delete %d: status %d", i, st)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent deletes with one ETag won (statuses %v), want exactly 1", won, status)
	}
}

func testReadYourWrites(t *testing.T, h ServerHarness) {
	a, b := two(t, h)
	for i := range 20 {
		w, r := a, b
		if i%2 == 1 {
			w, r = b, a
		}
		res := Do(t, "PATCH", w.URL+"/v1/flags/k?environment=prod", fmt.Sprintf(`{"owners":["v%d"]}`, i), "If-Match: "+etagOf(t, w, "k"))
		want(t, res, 200)
		var f evaluate.Flag
		json.Unmarshal(res.Body, &f)
		// At once, on the other replica: the flag and the config.
		got := Do(t, "GET", r.URL+"/v1/flags/k?environment=prod", "")
		var g evaluate.Flag
		json.Unmarshal(got.Body, &g)
		if strings.Join(g.Owners, "") != strings.Join(f.Owners, "") || got.Header.Get("ETag") != res.Header.Get("ETag") {
			t.Fatalf("write %d: the other replica answers %s (ETag %s), the write made %s (ETag %s)", i, got.Body, got.Header.Get("ETag"), res.Body, res.Header.Get("ETag"))
		}
		var cfg evaluate.Config
		json.Unmarshal(Do(t, "GET", r.URL+"/v1/flags?environment=prod", "").Body, &cfg)
		if cfg.Version != f.Version {
			t.Fatalf("write %d made version %d; the other replica's config is at %d", i, f.Version, cfg.Version)
		}
	}
}

// sseEvent is an event of a stream: its id and data.
type sseEvent struct{ ID, Data string }

// stream reads an SSE response's events on a goroutine of its own, which
// ends when the body ends or the stream is closed.
type stream struct {
	events chan sseEvent
	cancel context.CancelFunc
	done   chan struct{}
}

func openStream(t *testing.T, s *Server, lastID string, headers ...string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+"/v1/stream?environment=prod", nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		res.Body.Close()
		cancel()
		t.Fatalf("stream: status %d", res.StatusCode)
	}
	st := &stream{events: make(chan sseEvent, 64), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(st.done)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Data != "" {
					select {
					case st.events <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id:"):
				ev.ID = strings.TrimSpace(line[3:])
			case strings.HasPrefix(line, "data:"):
				ev.Data = strings.TrimSpace(line[5:])
			}
		}
	}()
	t.Cleanup(st.Close)
	return st
}

// Next returns the next event, failing t when none comes within 10 s.
func (st *stream) Next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev := <-st.events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no stream event within 10s")
		return sseEvent{}
	}
}

// Close ends the stream and waits for its reader.
func (st *stream) Close() {
	st.cancel()
	<-st.done
}

// writesOn makes n writes of flag k on srv (owners prefix0, prefix1, …)
// and returns the version each made.
func writesOn(t *testing.T, srv *Server, prefix string, n int) []int64 {
	t.Helper()
	var versions []int64
	for i := range n {
		res := Do(t, "PATCH", srv.URL+"/v1/flags/k?environment=prod", fmt.Sprintf(`{"owners":["%s%d"]}`, prefix, i), "If-Match: "+etagOf(t, srv, "k"))
		want(t, res, 200)
		var f evaluate.Flag
		json.Unmarshal(res.Body, &f)
		versions = append(versions, f.Version)
	}
	return versions
}

func testStreamAcrossReplicas(t *testing.T, h ServerHarness) {
	a, b := two(t, h)
	sb := openStream(t, b, "")
	versions := writesOn(t, a, "s", 3)
	for _, v := range versions {
		ev := sb.Next(t)
		var se wire.StreamEvent
		json.Unmarshal([]byte(ev.Data), &se)
		if ev.ID != fmt.Sprint(v) || se.Type != wire.EventInvalidate || se.FlagKey != "k" || se.Version != v {
			t.Fatalf("replica B's stream: id %s %s, want the write on A at version %d", ev.ID, ev.Data, v)
		}
	}
	sb.Close()
	// Resume on the other replica with the first id: the next two follow.
	sa := openStream(t, a, fmt.Sprint(versions[0]))
	for _, v := range versions[1:] {
		if ev := sa.Next(t); ev.ID != fmt.Sprint(v) {
			t.Fatalf("resumed on replica A after %d: event id %s, want %d", versions[0], ev.ID, v)
		}
	}
}

// A stream resuming on a replica that started after the client's last
// event gets the events it missed from the store's changes feed, byte for
// byte as the replica that made the writes streamed them, then the live
// ones: not a reset.
func testResumeOnLaterReplica(t *testing.T, h ServerHarness) {
	open := h.NewStore(t)
	a := StartServer(t, open(t))
	sa := openStream(t, a, "")
	versions := writesOn(t, a, "r", 4)
	var sent []sseEvent
	for range versions {
		sent = append(sent, sa.Next(t))
	}
	sa.Close()
	c := StartServer(t, open(t)) // started after the writes: its buffer begins at the last
	sc := openStream(t, c, fmt.Sprint(versions[0]))
	defer sc.Close()
	for i, v := range versions[1:] {
		ev := sc.Next(t)
		if ev.ID != fmt.Sprint(v) || ev.Data != sent[i+1].Data {
			t.Fatalf("resumed on a replica started later, after %d: id %s %s; want id %d %s (as replica A sent it)",
				versions[0], ev.ID, ev.Data, v, sent[i+1].Data)
		}
	}
	// The same over WebSocket (?lastEventId=).
	wc := openWS(t, c, fmt.Sprint(versions[0]))
	defer wc.CloseNow()
	for i, v := range versions[1:] {
		if msg := readWS(t, wc); string(msg) != sent[i+1].Data {
			t.Fatalf("WebSocket resumed on a replica started later, after %d: %s; want %s (version %d, as replica A sent it)", versions[0], msg, sent[i+1].Data, v)
		}
	}
	live := writesOn(t, a, "live", 1)[0]
	if ev := sc.Next(t); ev.ID != fmt.Sprint(live) || !strings.Contains(ev.Data, `"invalidate"`) {
		t.Fatalf("after the backfill: id %s %s, want the live write at version %d", ev.ID, ev.Data, live)
	}
	if msg := readWS(t, wc); !strings.Contains(string(msg), fmt.Sprintf(`"version":%d`, live)) {
		t.Fatalf("WebSocket after the backfill: %s, want the live write at version %d", msg, live)
	}
}
