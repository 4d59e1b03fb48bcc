package testkit

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	module  = "github.com/flagwire/flagwire"
	thisPkg = module + "/internal/testkit"
)

// goList runs go list in dir (relative to the repository root) with args.
func goList(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = filepath.Join("../..", dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// TestNoNonTestImporter: no package of the repository's non-test builds
// depends on testkit — the SDK, evaluate, flagserver and flagtest, every
// other package of the module, and the packages of the modules nested in
// it (the CLI, the integrations, bench) — and testkit depends on none of
// the root package, flagserver and flagtest, whose in-package tests use it.
func TestNoNonTestImporter(t *testing.T) {
	mods := []string{"."}
	err := filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != "../.." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.Name() == "go.mod" && p != "../../go.mod" {
			rel, _ := filepath.Rel("../..", filepath.Dir(p))
			mods = append(mods, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, mod := range mods {
		// -e: a package whose own dependencies cannot be loaded here
		// (bench's, say, before their download) is still listed with
		// the local packages it depends on.
		out := goList(t, mod, "-e", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "./...")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 || fields[0] == thisPkg {
				continue
			}
			listed[fields[0]] = true
			if slices.Contains(fields[1:], thisPkg) {
				t.Errorf("%s depends on %s in a non-test build", fields[0], thisPkg)
			}
		}
	}
	for _, pkg := range []string{module, module + "/evaluate", module + "/flagserver", module + "/flagtest", module + "/cmd/flagwire"} {
		if !listed[pkg] {
			t.Errorf("%s was not checked (modules %v)", pkg, mods)
		}
	}
	own := strings.Fields(goList(t, ".", "-deps", thisPkg))
	for _, pkg := range []string{module, module + "/flagserver", module + "/flagtest"} {
		if slices.Contains(own, pkg) {
			t.Errorf("testkit depends on %s: that package's own tests could not use it", pkg)
		}
	}
}

func TestEventually(t *testing.T) {
	var n atomic.Int32
	if !Eventually(5*time.Second, func() bool { return n.Add(1) >= 3 }) {
		t.Fatal("a condition that holds on the third check was not seen")
	}
	if got := n.Load(); got != 3 {
		t.Errorf("condition checked %d times, want 3 (it stops once it holds)", got)
	}
	start := time.Now()
	if Eventually(20*time.Millisecond, func() bool { return false }) {
		t.Fatal("a condition that never holds was reported as held")
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Error("gave up before the timeout")
	}
}

func TestClock(t *testing.T) {
	c := NewClock()
	if !c.Now().Equal(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)) || c.Nanotime() != 1 {
		t.Fatalf("start: %v %d, want 2026-11-24 12:00 UTC and 1", c.Now(), c.Nanotime())
	}
	c.Advance(90 * time.Second)
	if !c.Now().Equal(time.Date(2026, 11, 24, 12, 1, 30, 0, time.UTC)) || c.Nanotime() != 1+90e9 {
		t.Errorf("after 90 s: %v %d", c.Now(), c.Nanotime())
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c.Set(at)
	if !c.Now().Equal(at) || c.Nanotime() != 1+90e9 {
		t.Errorf("after Set: %v %d, want %v and an unchanged monotonic reading", c.Now(), c.Nanotime(), at)
	}
}

func TestQuantile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, c := range []struct {
		vals []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{ms(1, 2, 3), 0.5, 2 * time.Millisecond},
		{ms(hundred...), 0.99, 99 * time.Millisecond},
		{ms(hundred...), 0.5, 50 * time.Millisecond},
		{ms(hundred...), 1, 100 * time.Millisecond},
		{ms(hundred...), 0.001, 1 * time.Millisecond},
	} {
		if got := Quantile(c.vals, c.q); got != c.want {
			t.Errorf("Quantile(%d values, %v) = %v, want %v", len(c.vals), c.q, got, c.want)
		}
	}
}

func TestRows(t *testing.T) {
	var r Rows[int]
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { r.Add(i) })
	}
	wg.Wait()
	got := r.All()
	slices.Sort(got)
	if len(got) != 50 || got[0] != 0 || got[49] != 49 {
		t.Fatalf("rows %v", got)
	}
	got[0] = -1
	if slices.Contains(r.All(), -1) {
		t.Error("All shares its slice with the collector")
	}
}

func TestRecordingTransport(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	}))
	defer hs.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	rt := &RecordingTransport{Next: tr}
	c := &http.Client{Transport: rt}
	if res, err := c.Get(hs.URL + "/a?x=1"); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
	}
	req, _ := http.NewRequest("POST", hs.URL+"/b", strings.NewReader(`{"k":1}`))
	req.Header.Set("X-Test", "yes")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != `POST {"k":1}` {
		t.Errorf("the server got %q: the body must pass through unchanged", body)
	}
	reqs := rt.Requests()
	if len(reqs) != 2 || reqs[0].Method != "GET" || reqs[0].URL != hs.URL+"/a?x=1" || reqs[0].Body != nil ||
		reqs[1].Method != "POST" || string(reqs[1].Body) != `{"k":1}` || reqs[1].Header.Get("X-Test") != "yes" {
		t.Fatalf("recorded %+v", reqs)
	}
	if b := rt.Bodies(); len(b) != 1 || string(b[0]) != `{"k":1}` {
		t.Errorf("bodies %q, want the POST's only", b)
	}
}

// sseServer serves body as an SSE stream, then, with hold, keeps the
// response open until the client goes away.
func sseServer(t *testing.T, body string, hold bool) *httptest.Server {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, body)
		w.(http.Flusher).Flush()
		if hold {
			<-r.Context().Done()
		}
	}))
	t.Cleanup(hs.Close)
	return hs
}

func TestStreamItems(t *testing.T) {
	const body = ": hello\n\nretry: 1000\n\nid: 1\nevent: put\ndata: a\ndata: b\n\n: keep-alive\n\nid: 2\ndata: c\n\n"
	hs := sseServer(t, body, false)
	get := func() *http.Request { r, _ := http.NewRequest("GET", hs.URL, nil); return r }

	s := OpenStream(t, nil, get())
	want := []Event{{Comment: "hello"}, {Retry: "1000"}, {ID: "1", Event: "put", Data: "a\nb"}, {Comment: "keep-alive"}, {ID: "2", Data: "c"}}
	for i, w := range want {
		if got, ok := s.NextAny(t); !ok || got != w {
			t.Fatalf("item %d: %+v %v, want %+v", i, got, ok, w)
		}
	}
	if got, ok := s.NextAny(t); ok {
		t.Fatalf("after the body: %+v, want the end", got)
	}
	<-s.Done()

	s = OpenStream(t, nil, get())
	if got := s.Next(t); got.ID != "1" || got.Data != "a\nb" {
		t.Errorf("first event %+v", got)
	}
	if got := s.Next(t); got.ID != "2" || got.Data != "c" {
		t.Errorf("second event %+v", got)
	}
	if got, ok := s.NextWithin(5 * time.Second); ok {
		t.Errorf("after the last event: %+v", got)
	}
}

// TestStreamCloseUnread: Close returns even when the reader is blocked on
// a full buffer of items nobody read, and a second Close is a no-op.
func TestStreamCloseUnread(t *testing.T) {
	hs := sseServer(t, strings.Repeat(": tick\n\n", 3000), true)
	req, _ := http.NewRequest("GET", hs.URL, nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	s := OpenStream(t, &http.Client{Transport: tr}, req)
	if !Eventually(5*time.Second, func() bool { return len(s.items) == cap(s.items) }) {
		t.Fatalf("buffer holds %d of %d items", len(s.items), cap(s.items))
	}
	s.Close()
	s.Close()
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
}
