package contract

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	sse "github.com/tmaxmax/go-sse"

	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/internal/testkit"
)

// recordEnv is the variable that makes the flagserver tests record their
// exchanges (their contractRecordEnv) to the file it names.
const recordEnv = "FLAGWIRE_CONTRACT_RECORD"

// exchange is one recorded request and response: the JSON lines the
// flagserver tests write.
type exchange = testkit.Exchange

func loadDocument(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(flagserver.OpenAPIDocument())
	if err != nil {
		t.Fatalf("load the document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	return doc
}

// The document is valid OpenAPI 3.1 (the validator's own checks of the
// document, its schemas and references).
func TestDocumentIsValid(t *testing.T) {
	doc := loadDocument(t)
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
	}
}

// recordServerTraffic runs the flagserver package's tests with recording
// on and returns the recorded exchanges.
func recordServerTraffic(t *testing.T) []exchange {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to run the flagserver tests: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(t.TempDir(), "exchanges.jsonl")
	cmd := exec.CommandContext(t.Context(), goBin, "test", "-count=1", "./flagserver/")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), recordEnv+"="+rec)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the flagserver tests failed with recording on: %v\n%s", err, out)
	}
	f, err := os.Open(rec)
	if err != nil {
		t.Fatalf("no exchanges recorded: %v", err)
	}
	defer f.Close()
	var exs []exchange
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var ex exchange
		if err := json.Unmarshal(sc.Bytes(), &ex); err != nil {
			t.Fatalf("recorded exchange %d: %v", len(exs)+1, err)
		}
		exs = append(exs, ex)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return exs
}

// tally counts what the validation saw.
type tally struct {
	exchanges        int // recorded exchanges
	requestsValid    int // requests the document allows
	requestsRefused  int // requests it refuses, answered 4xx by the server
	responsesChecked int // responses validated against their operation (status, headers, body)
	statusOnly       int // 304 and HEAD answers: status (and for 304 no body) only
	unrouted         int // requests to paths or methods the document lacks: answered with a 404/405 error body
	streamEvents     int // SSE events validated against StreamEvent
	notValidated     int // transport errors and truncated bodies
	byOperation      map[string]int
}

// Every exchange the flagserver tests make is validated against the
// document: each response must be one the document allows for its
// operation and status (headers and body), each SSE event's data a
// StreamEvent, and a request the document refuses must have been refused
// by the server (4xx). Requests to routes the document lacks must get the
// documented error body with 404 or 405.
func TestServerTrafficMatchesContract(t *testing.T) {
	doc := loadDocument(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	exs := recordServerTraffic(t)
	if len(exs) < 100 {
		t.Fatalf("only %d exchanges recorded: is recording broken?", len(exs))
	}
	v := &validator{doc: doc, router: router, tally: tally{byOperation: map[string]int{}}}
	var failures []string
	for i := range exs {
		if err := v.check(&exs[i]); err != nil {
			failures = append(failures, fmt.Sprintf("%s %s → %d: %v", exs[i].Method, exs[i].URL, exs[i].Status, err))
		}
	}
	c := v.tally
	t.Logf("%d exchanges: %d requests allowed by the document, %d refused by it (and answered 4xx); %d responses validated (status, headers, body), %d status-only (304, HEAD), %d to undocumented routes (404/405 error bodies validated), %d SSE events validated, %d not validated (transport errors, truncated bodies)",
		c.exchanges, c.requestsValid, c.requestsRefused, c.responsesChecked, c.statusOnly, c.unrouted, c.streamEvents, c.notValidated)
	ops := make([]string, 0, len(c.byOperation))
	for op := range c.byOperation {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		t.Logf("  %-20s %d", op, c.byOperation[op])
	}
	for _, r := range v.refused {
		t.Logf("  refused by the document: %s", r)
	}
	for _, id := range v.uncovered() {
		t.Logf("  operation %s: no exchange", id)
	}
	const show = 40
	for i, f := range failures {
		if i == show {
			t.Errorf("… and %d more", len(failures)-show)
			break
		}
		t.Error(f)
	}
}

type validator struct {
	doc     *openapi3.T
	router  routers.Router
	tally   tally
	refused []string // requests the document refuses (answered 4xx), for the log
}

// firstLine is err's message up to its first newline.
func firstLine(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}

func (v *validator) options() *openapi3filter.Options {
	o := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            true,
	}
	// One line per schema error: where, and why (not the whole schema).
	o.WithCustomSchemaErrorFunc(func(e *openapi3.SchemaError) string {
		msg := "at /" + strings.Join(e.JSONPointer(), "/") + ": " + e.Reason
		if e.Origin != nil { // the JSON Schema 2020-12 validator's own words
			msg += ": " + strings.Join(strings.Fields(e.Origin.Error()), " ")
		}
		return msg
	})
	return o
}

func (v *validator) check(ex *exchange) error {
	v.tally.exchanges++
	if ex.TransportError != "" {
		v.tally.notValidated++
		return nil
	}
	u, err := url.Parse(ex.URL)
	if err != nil {
		return err
	}
	method := ex.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, u.RequestURI(), bytes.NewReader(ex.RequestBody))
	if err != nil {
		return err
	}
	req.Header = ex.RequestHeader
	if req.Header == nil {
		req.Header = http.Header{}
	}
	route, params, err := v.router.FindRoute(req)
	var re *routers.RouteError
	switch {
	case errors.As(err, &re):
		return v.checkUnrouted(ex, err)
	case err != nil:
		return err
	case ex.Status == http.StatusMethodNotAllowed:
		// The router matched a templated path ({key}) that the server
		// routes elsewhere, such as GET /v1/segments: the server's answer
		// must still be its error body.
		return v.checkUnrouted(ex, fmt.Errorf("%s %s is not a documented operation", ex.Method, req.URL.Path))
	}
	v.tally.byOperation[route.Operation.OperationID]++
	opts := v.options()
	opts.ExcludeRequestBody = ex.RequestCut
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if reqErr := openapi3filter.ValidateRequest(context.Background(), in); reqErr != nil {
		if ex.Status < 400 || ex.Status > 499 {
			return fmt.Errorf("the document refuses the request, the server answered %d: %v", ex.Status, reqErr)
		}
		v.tally.requestsRefused++
		v.refused = append(v.refused, fmt.Sprintf("%s %s → %d: %v", ex.Method, u.RequestURI(), ex.Status, firstLine(reqErr)))
	} else {
		v.tally.requestsValid++
	}
	if ex.Method == http.MethodHead || ex.Status == http.StatusNotModified {
		if route.Operation.Responses.Status(ex.Status) == nil {
			return fmt.Errorf("status %d is not documented for %s", ex.Status, route.Operation.OperationID)
		}
		if ex.Status == http.StatusNotModified && len(ex.Body) > 0 {
			return errors.New("a 304 with a body")
		}
		v.tally.statusOnly++
		return nil
	}
	ropts := v.options()
	ropts.ExcludeResponseBody = ex.BodyCut
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 ex.Status,
		Header:                 ex.Header,
		Body:                   io.NopCloser(bytes.NewReader(ex.Body)),
		Options:                ropts,
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return err
	}
	if ex.BodyCut {
		v.tally.notValidated++
	} else {
		v.tally.responsesChecked++
	}
	if strings.HasPrefix(ex.Header.Get("Content-Type"), "text/event-stream") {
		return v.checkEvents(ex.Body)
	}
	return nil
}

// checkUnrouted checks the answer to a request the document has no
// operation for: the server must refuse it with its error body.
func (v *validator) checkUnrouted(ex *exchange, routeErr error) error {
	switch ex.Status {
	case http.StatusNotFound:
	case http.StatusMethodNotAllowed:
		if ex.Header.Get("Allow") == "" {
			return errors.New("a 405 without Allow")
		}
	default:
		return fmt.Errorf("no documented operation (%v), yet the server answered %d", routeErr, ex.Status)
	}
	if ex.Method == http.MethodHead {
		v.tally.unrouted++
		return nil
	}
	var body any
	if err := json.Unmarshal(ex.Body, &body); err != nil {
		return fmt.Errorf("undocumented route answered %d with a body that is not JSON: %q", ex.Status, ex.Body)
	}
	if err := v.doc.Components.Schemas["Error"].Value.VisitJSON(body, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("undocumented route answered %d without the error body: %v", ex.Status, err)
	}
	v.tally.unrouted++
	return nil
}

// checkEvents validates the data of every complete SSE event of a
// recorded stream (the test may have closed it mid-event) against the
// StreamEvent schema.
func (v *validator) checkEvents(body []byte) error {
	if i := bytes.LastIndex(body, []byte("\n\n")); i >= 0 {
		body = body[:i+2]
	} else {
		return nil
	}
	schema := v.doc.Components.Schemas["StreamEvent"].Value
	for ev, err := range sse.Read(bytes.NewReader(body), nil) {
		if err != nil {
			return fmt.Errorf("the stream is not valid SSE: %v", err)
		}
		var data any
		if err := json.Unmarshal([]byte(ev.Data), &data); err != nil {
			return fmt.Errorf("event %q: data is not JSON: %q", ev.LastEventID, ev.Data)
		}
		if err := schema.VisitJSON(data, openapi3.EnableJSONSchema2020()); err != nil {
			return fmt.Errorf("event %q: %v", ev.LastEventID, err)
		}
		v.tally.streamEvents++
	}
	return nil
}

// uncovered returns the ids of the operations no exchange reached.
func (v *validator) uncovered() []string {
	var out []string
	for _, item := range v.doc.Paths.Map() {
		for _, op := range item.Operations() {
			if v.tally.byOperation[op.OperationID] == 0 {
				out = append(out, op.OperationID)
			}
		}
	}
	sort.Strings(out)
	return out
}
