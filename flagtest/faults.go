package flagtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

// Fault is an injected failure, applied to every matching request until
// it is removed, cleared, or Count is exhausted. When several faults match
// a request, the oldest applies. The zero Fault matches every request and
// does nothing.
type Fault struct {
	// Method and Path select requests: "" matches any method; Path is a
	// prefix of the URL path, such as "/v1/evaluate" ("" matches all).
	Method, Path string
	// Latency delays the request before it is handled (or failed). The wait
	// ends early if the request's context ends.
	Latency time.Duration
	// Status, when non-zero, answers with this status and a JSON error
	// body {"error":{"code":"injected_fault",…}} instead of handling.
	Status int
	// RetryAfter sets Retry-After (whole seconds, at least 1) on a Status
	// response.
	RetryAfter time.Duration
	// Reset hijacks the connection and closes it abruptly (TCP RST): the
	// client sees "connection reset by peer" or an EOF. With Truncate, the
	// real response's headers and half its body are sent first.
	Reset bool
	// Body answers 200 with these raw bytes as application/json (use it
	// for malformed JSON).
	Body []byte
	// Truncate serves the real response but cuts it off in the middle of
	// the body (the headers announce the full Content-Length) and closes
	// the connection. Not for /v1/stream, which never ends (use Reset or
	// DropStreams there).
	Truncate bool
	// Count is how many requests the fault applies to; 0 means until
	// removed.
	Count int
}

type faultEntry struct {
	f    Fault
	left int // remaining applications; -1: unlimited
}

func (f *Fault) matches(r *http.Request) bool {
	return (f.Method == "" || strings.EqualFold(f.Method, r.Method)) && strings.HasPrefix(r.URL.Path, f.Path)
}

// InjectFault adds a fault and returns a function that removes it.
func (s *Server) InjectFault(f Fault) (remove func()) {
	e := &faultEntry{f: f, left: -1}
	if f.Count > 0 {
		e.left = f.Count
	}
	s.mu.Lock()
	s.faults = append(s.faults, e)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, x := range s.faults {
			if x == e {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
				return
			}
		}
	}
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// takeFault counts the request and returns the fault to apply, if any.
func (s *Server) takeFault(r *http.Request) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[r.Method+" "+r.URL.Path]++
	for i, e := range s.faults {
		if !e.f.matches(r) {
			continue
		}
		if e.left > 0 {
			e.left--
			if e.left == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return e.f, true
	}
	return Fault{}, false
}

// handler wraps the flagserver with counting, faults, stream control and
// handler tracking.
func (s *Server) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.enter() {
			http.Error(w, "flagtest: server closed", http.StatusServiceUnavailable)
			return
		}
		defer s.leave()
		f, ok := s.takeFault(r)
		if ok {
			if f.Latency > 0 {
				t := time.NewTimer(f.Latency)
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
					return
				}
			}
			switch {
			case f.Reset && !f.Truncate:
				resetConn(w)
				return
			case f.Status != 0:
				if f.RetryAfter > 0 {
					w.Header().Set("Retry-After", strconv.Itoa(max(1, int((f.RetryAfter+time.Second-1)/time.Second))))
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(f.Status)
				b, _ := json.Marshal(wire.ErrorBody{Error: wire.ErrorDetail{
					Code:    "injected_fault",
					Message: fmt.Sprintf("flagtest: injected %d %s", f.Status, http.StatusText(f.Status)),
				}})
				w.Write(b)
				return
			case f.Body != nil:
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", strconv.Itoa(len(f.Body)))
				w.WriteHeader(http.StatusOK)
				w.Write(f.Body)
				return
			case f.Truncate:
				s.serveTruncated(w, r, f.Reset)
				return
			}
		}
		if r.URL.Path == "/v1/stream" {
			s.serveStream(w, r)
			return
		}
		s.fs.ServeHTTP(w, r)
	})
}

// enter registers a running handler; false once the server is closed.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.active++
	return true
}

func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.active == 0 && s.closed {
		close(s.idle)
	}
}

// resetConn hijacks the connection and closes it with a TCP RST.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // closes the connection
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// recordedResponse buffers a whole response.
type recordedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rr *recordedResponse) Header() http.Header { return rr.header }
func (rr *recordedResponse) Write(b []byte) (int, error) {
	if rr.status == 0 {
		rr.status = http.StatusOK
	}
	return rr.body.Write(b)
}
func (rr *recordedResponse) WriteHeader(code int) {
	if rr.status == 0 {
		rr.status = code
	}
}

// serveTruncated runs the real handler into a buffer, then writes the
// status line, the headers with the full Content-Length and half the body
// straight to the hijacked connection, and closes it.
func (s *Server) serveTruncated(w http.ResponseWriter, r *http.Request, rst bool) {
	rr := &recordedResponse{header: http.Header{}}
	s.fs.ServeHTTP(rr, r)
	if rr.status == 0 {
		rr.status = http.StatusOK
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	body := rr.body.Bytes()
	rr.header.Set("Content-Length", strconv.Itoa(len(body)))
	rr.header.Set("Connection", "close")
	bw := bufio.NewWriter(conn)
	if buf != nil && buf.Writer.Buffered() > 0 {
		buf.Writer.Flush()
	}
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", rr.status, http.StatusText(rr.status))
	rr.header.Write(bw)
	bw.WriteString("\r\n")
	bw.Write(body[:len(body)/2])
	bw.Flush()
	if tc, ok := conn.(*net.TCPConn); ok && rst {
		tc.SetLinger(0)
	}
}

// streamConn is one SSE request under flagtest's control.
type streamConn struct {
	cancel context.CancelFunc
}

// serveStream runs an SSE request with a cancelable context (DropStreams)
// and a writer that drops output while streams are stalled.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	sc := &streamConn{cancel: cancel}
	s.mu.Lock()
	s.streams[sc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.streams, sc)
		s.mu.Unlock()
	}()
	sw := &stallWriter{ResponseWriter: w, stall: &s.stall}
	s.fs.ServeHTTP(sw, r.WithContext(ctx))
	sw.FlushError() // responses that never flushed (errors before the stream)
}

// stallWriter buffers each write until Flush; on Flush the buffered bytes
// are sent, or dropped while stalled, so a stall never cuts an event in
// half.
type stallWriter struct {
	http.ResponseWriter
	stall interface{ Load() bool }
	buf   []byte
}

func (sw *stallWriter) Write(b []byte) (int, error) {
	sw.buf = append(sw.buf, b...)
	return len(b), nil
}

func (sw *stallWriter) FlushError() error {
	rc := http.NewResponseController(sw.ResponseWriter)
	if sw.stall.Load() {
		sw.buf = sw.buf[:0]
		return rc.Flush() // headers still go out
	}
	if len(sw.buf) > 0 {
		_, err := sw.ResponseWriter.Write(sw.buf)
		sw.buf = sw.buf[:0]
		if err != nil {
			return err
		}
	}
	return rc.Flush()
}

func (sw *stallWriter) Flush() { sw.FlushError() }

func (sw *stallWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }
