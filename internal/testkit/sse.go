package testkit

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// streamPatience is how long Next and NextAny wait for an item.
const streamPatience = 5 * time.Second

// Event is one item of a Server-Sent Events stream: an event (ID, Event,
// Data, Retry; Data's lines joined with "\n") or, alone, a Comment.
type Event struct {
	ID, Event, Data, Retry string
	Comment                string
}

// isEvent reports whether e is an event a test waits for: not a comment,
// not a retry field alone.
func (e Event) isEvent() bool { return e.Comment == "" && (e.Event != "" || e.Data != "") }

// Stream reads an SSE response on a goroutine of its own, which ends when
// the body ends or Close is called.
type Stream struct {
	res    *http.Response
	items  chan Event
	cancel context.CancelFunc
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// OpenStream sends req (a GET of an SSE endpoint) with c (nil:
// http.DefaultClient) and reads the answer's items; it fails t unless
// the answer is 200. The stream is closed when the test ends.
func OpenStream(t testing.TB, c *http.Client, req *http.Request) *Stream {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	ctx, cancel := context.WithCancel(req.Context())
	res, err := c.Do(req.WithContext(ctx))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		t.Fatalf("stream status %d: %s", res.StatusCode, b)
	}
	s := &Stream{res: res, items: make(chan Event, 1024), cancel: cancel, quit: make(chan struct{}), done: make(chan struct{})}
	go s.read()
	t.Cleanup(s.Close)
	return s
}

func (s *Stream) read() {
	defer close(s.done)
	defer close(s.items)
	send := func(e Event) bool {
		select {
		case s.items <- e:
			return true
		case <-s.quit:
			return false
		}
	}
	sc := bufio.NewScanner(s.res.Body)
	var ev Event
	dirty := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if dirty && !send(ev) {
				return
			}
			ev, dirty = Event{}, false
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "":
			if !send(Event{Comment: value}) {
				return
			}
		case "id":
			ev.ID, dirty = value, true
		case "event":
			ev.Event, dirty = value, true
		case "data":
			if ev.Data != "" {
				ev.Data += "\n"
			}
			ev.Data, dirty = ev.Data+value, true
		case "retry":
			ev.Retry, dirty = value, true
		}
	}
}

// Close ends the request and waits for the reader to stop. A second Close
// is a no-op.
func (s *Stream) Close() {
	s.once.Do(func() {
		close(s.quit)
		s.cancel()
		s.res.Body.Close()
		<-s.done
	})
}

// Header returns the stream response's header.
func (s *Stream) Header() http.Header { return s.res.Header }

// Done is closed when the stream has ended (by the server or by Close).
func (s *Stream) Done() <-chan struct{} { return s.done }

// next returns the next item (an event, or with all any item) within d;
// ended reports that the stream ended first, and ok false with ended false
// that d passed.
func (s *Stream) next(d time.Duration, all bool) (ev Event, ok, ended bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev, open := <-s.items:
			if !open {
				return Event{}, false, true
			}
			if all || ev.isEvent() {
				return ev, true, false
			}
		case <-timer.C:
			return Event{}, false, false
		}
	}
}

// NextWithin returns the next event (comments and retry-only items are
// skipped), or false if the stream ends or none comes within d.
func (s *Stream) NextWithin(d time.Duration) (Event, bool) {
	ev, ok, _ := s.next(d, false)
	return ev, ok
}

// Next returns the next event (comments and retry-only items are
// skipped); it fails t if the stream ends or none comes within 5 s.
func (s *Stream) Next(t testing.TB) Event {
	t.Helper()
	ev, ok, ended := s.next(streamPatience, false)
	switch {
	case ended:
		t.Fatal("stream ended")
	case !ok:
		t.Fatal("timed out waiting for an SSE event")
	}
	return ev
}

// NextAny returns the next item, comments included, or false once the
// stream has ended; it fails t if nothing comes within 5 s.
func (s *Stream) NextAny(t testing.TB) (Event, bool) {
	t.Helper()
	ev, ok, ended := s.next(streamPatience, true)
	if !ok && !ended {
		t.Fatal("timed out waiting for SSE data")
	}
	return ev, ok
}
