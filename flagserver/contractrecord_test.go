package flagserver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/flagwire/flagwire/internal/testkit"
)

// The contract tests (module github.com/flagwire/flagwire/contract) check
// this package's HTTP traffic against the OpenAPI document: they run this
// package's tests with contractRecordEnv naming a file, and every exchange
// the tests make through http.DefaultTransport (doReq, openStream, the OFREP
// and write helpers) is appended to it as one JSON line, a
// testkit.Exchange. Without the variable nothing changes.

// contractRecordEnv names the file recorded exchanges are appended to.
const contractRecordEnv = "FLAGWIRE_CONTRACT_RECORD"

// maxRecordedBody bounds each recorded body; a longer one is recorded
// truncated (and flagged), as the contract tests cannot validate part of a
// JSON body.
const maxRecordedBody = 4 << 20

// contractRecorder is installed as http.DefaultTransport before any test
// runs (a package-level variable is initialized before TestMain).
var contractRecorder = installContractRecorder()

func installContractRecorder() *recordingTransport {
	path := os.Getenv(contractRecordEnv)
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		panic("flagserver tests: " + contractRecordEnv + ": " + err.Error())
	}
	rt := &recordingTransport{base: http.DefaultTransport, out: f}
	http.DefaultTransport = rt
	return rt
}

// recordingTransport records every exchange it carries. Response bodies
// are recorded when the caller closes them (or reads them to the end), so
// streams are recorded with what the test read of them.
type recordingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	out  *os.File
}

// CloseIdleConnections lets httptest.Server.Close close the base
// transport's idle connections, as it does without the recorder.
func (rt *recordingTransport) CloseIdleConnections() {
	if c, ok := rt.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := &testkit.Exchange{Method: req.Method, URL: req.URL.String(), RequestHeader: req.Header.Clone()}
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(req.Body, maxRecordedBody+1))
		if err != nil {
			req.Body.Close()
			return nil, err
		}
		rest := req.Body
		ex.RequestBody, ex.RequestCut = b, len(b) > maxRecordedBody
		if ex.RequestCut {
			ex.RequestBody = b[:maxRecordedBody]
		}
		clone := req.Clone(req.Context())
		clone.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), rest), rest}
		req = clone
	}
	res, err := rt.base.RoundTrip(req)
	if err != nil {
		ex.TransportError = err.Error()
		rt.write(ex)
		return nil, err
	}
	ex.Status, ex.Header = res.StatusCode, res.Header.Clone()
	if res.StatusCode == http.StatusSwitchingProtocols {
		// A WebSocket handshake: recorded without its body, which is the
		// connection itself (the client needs it as an io.ReadWriteCloser).
		rt.write(ex)
		return res, nil
	}
	res.Body = &recordingBody{rc: res.Body, ex: ex, rt: rt}
	return res, nil
}

func (rt *recordingTransport) write(ex *testkit.Exchange) {
	b, err := json.Marshal(ex)
	if err != nil {
		panic("flagserver tests: record an exchange: " + err.Error())
	}
	b = append(b, '\n')
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if _, err := rt.out.Write(b); err != nil {
		panic("flagserver tests: record an exchange: " + err.Error())
	}
}

// recordingBody keeps what is read of a response body and records the
// exchange once, at EOF or Close.
type recordingBody struct {
	rc   io.ReadCloser
	ex   *testkit.Exchange
	rt   *recordingTransport
	once sync.Once
	mu   sync.Mutex // guards buf and ex (a stream is read and closed by different goroutines)
	buf  bytes.Buffer
}

func (b *recordingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	room := maxRecordedBody - b.buf.Len()
	if n > room {
		b.ex.BodyCut = true
	}
	b.buf.Write(p[:min(n, room)])
	b.mu.Unlock()
	if err == io.EOF {
		b.record()
	}
	return n, err
}

// Close records the exchange. A body the test did not read to the end is
// read now (a test may check only the status), except a stream's, which
// is recorded with what was read of it.
func (b *recordingBody) Close() error {
	if !strings.HasPrefix(b.ex.Header.Get("Content-Type"), "text/event-stream") {
		io.Copy(io.Discard, b)
	}
	b.record()
	return b.rc.Close()
}

func (b *recordingBody) record() {
	b.once.Do(func() {
		b.mu.Lock()
		b.ex.Body = bytes.Clone(b.buf.Bytes())
		ex := *b.ex
		b.mu.Unlock()
		b.rt.write(&ex)
	})
}
