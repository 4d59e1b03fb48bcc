package flagserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/fieldpath"
	"github.com/flagwire/flagwire/internal/wire"
)

// Errors returned by the programmatic write methods ([Server.PutFlag],
// [Server.DeleteFlag], [Server.PutSegment]). HTTP handlers map them to
// status codes; compile failures are returned as *evaluate.CompileError.
var (
	ErrUnknownEnvironment   = errors.New("flagserver: unknown environment")
	ErrFlagNotFound         = errors.New("flagserver: flag not found")
	ErrSegmentNotFound      = errors.New("flagserver: segment not found")
	ErrChangeReasonRequired = errors.New("flagserver: changeReason is required in this environment")
	ErrClosed               = errors.New("flagserver: server closed")
)

// apiError is an error with its HTTP status and wire code.
type apiError struct {
	status  int
	code    string
	message string
	details any
}

func (e *apiError) Error() string { return e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func (e *apiError) with(details any) *apiError {
	e.details = details
	return e
}

// toAPIError maps any error to an apiError.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var ce *evaluate.CompileError
	switch {
	case errors.As(err, &ce):
		return errorf(http.StatusBadRequest, wire.CodeCompileError, "the change does not compile: %d error(s)", len(ce.Findings)).
			with(map[string]any{"findings": ce.Findings})
	case errors.Is(err, ErrUnknownEnvironment):
		return errorf(http.StatusNotFound, wire.CodeEnvironmentNotFound, "%s", clientMessage(err))
	case errors.Is(err, ErrFlagNotFound):
		return errorf(http.StatusNotFound, wire.CodeFlagNotFound, "%s", clientMessage(err))
	case errors.Is(err, ErrSegmentNotFound):
		return errorf(http.StatusNotFound, wire.CodeSegmentNotFound, "%s", clientMessage(err))
	case errors.Is(err, ErrChangeReasonRequired):
		return errorf(http.StatusBadRequest, wire.CodeChangeReasonRequired, "%s", clientMessage(err)).
			with(map[string]any{"field": "changeReason"})
	case errors.Is(err, ErrClosed):
		return errorf(http.StatusServiceUnavailable, wire.CodeUnavailable, "server is shutting down")
	case errors.Is(err, ErrStoreUnavailable):
		return errorf(http.StatusServiceUnavailable, wire.CodeUnavailable, "the store is unavailable; retry later")
	}
	return errorf(http.StatusInternalServerError, wire.CodeInternal, "internal error")
}

// clientMessage is err's message as an API client reads it: without the
// "flagserver: " prefix that marks the package's Go errors for a program's
// logs (an HTTP client sees the API's error code and this message only).
func clientMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "flagserver: ")
}

// writeError writes the JSON error body {"error":{code,message,details}}.
func writeError(w http.ResponseWriter, err error) {
	ae := toAPIError(err)
	if errors.Is(err, ErrStoreUnavailable) {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, ae.status, wire.ErrorBody{Error: wire.ErrorDetail{Code: ae.code, Message: ae.message, Details: ae.details}})
}

// writeJSON writes v as the JSON response body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"cannot encode response"}}`)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(body)
}

// requireJSON checks the request's Content-Type (415 otherwise):
// application/json or any +json type (application/merge-patch+json), with
// no charset parameter or charset=utf-8 (case-insensitive). JSON is UTF-8
// (RFC 8259); a body declared in another charset is refused, not
// misread.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || mt == "application/merge-patch+json" || strings.HasSuffix(mt, "+json")) {
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return errorf(http.StatusUnsupportedMediaType, wire.CodeUnsupportedMediaType,
				"Content-Type charset %q is not supported: JSON bodies must be UTF-8", cs).with(map[string]any{"charset": cs})
		}
		return nil
	}
	return errorf(http.StatusUnsupportedMediaType, wire.CodeUnsupportedMediaType,
		"Content-Type must be application/json, got %q", ct)
}

// readBody reads the body up to limit bytes (413 beyond).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(limit)
		}
		return nil, errorf(http.StatusBadRequest, wire.CodeBadRequest, "cannot read body: %v", err)
	}
	return b, nil
}

func tooLarge(limit int64) error {
	return errorf(http.StatusRequestEntityTooLarge, wire.CodeBodyTooLarge, "request body exceeds %d bytes", limit).
		with(map[string]any{"limit": limit})
}

// checkUTF8 refuses (400, naming the field) a JSON body with a string
// that is not valid UTF-8: raw invalid bytes, or an escaped lone surrogate
// such as "\ud800". encoding/json would silently replace either with
// U+FFFD and store something the writer never sent. A body that is not
// JSON at all passes here and fails in the decoder with its own error.
func checkUTF8(body []byte) error {
	if utf8.Valid(body) && !hasSurrogateEscape(body) {
		return nil
	}
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	for {
		_, err := dec.ReadToken()
		if err == nil {
			continue
		}
		var se *jsontext.SyntacticError
		if !errors.As(err, &se) {
			return nil
		}
		msg := se.Err.Error()
		if !strings.Contains(msg, "UTF-8") && !strings.Contains(msg, "surrogate") {
			return nil // another syntax error: the decoder reports it
		}
		ptr := string(se.JSONPointer)
		field := strings.ReplaceAll(strings.TrimPrefix(ptr, "/"), "/", ".")
		return errorf(http.StatusBadRequest, wire.CodeBadRequest,
			"field %q: string is not valid UTF-8 (at byte offset %d); send UTF-8 text", field, se.ByteOffset).
			with(map[string]any{"field": field, "pointer": ptr, "offset": se.ByteOffset})
	}
}

// hasSurrogateEscape reports whether b may hold a \uD800–\uDFFF escape.
func hasSurrogateEscape(b []byte) bool {
	for {
		i := bytes.Index(b, []byte(`\u`))
		if i < 0 || i+2 >= len(b) {
			return false
		}
		if c := b[i+2]; c == 'd' || c == 'D' {
			return true
		}
		b = b[i+2:]
	}
}

// decodeError maps a JSON decoding error to a 400 with the offset or field.
func decodeError(err error, body []byte) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return errorf(http.StatusBadRequest, wire.CodeMalformedJSON, "malformed JSON at offset %d: %v", se.Offset, se).
			with(map[string]any{"offset": se.Offset})
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, wire.CodeMalformedJSON, "malformed JSON: unexpected end of input at offset %d", len(body)).
			with(map[string]any{"offset": len(body)})
	case errors.As(err, &te):
		field := te.Field
		return errorf(http.StatusBadRequest, wire.CodeBadRequest, "field %q: cannot use JSON %s as %s (offset %d)", field, te.Value, te.Type, te.Offset).
			with(map[string]any{"field": field, "offset": te.Offset})
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		f = strings.Trim(f, `"`)
		return errorf(http.StatusBadRequest, wire.CodeUnknownField, "unknown field %q", f).
			with(map[string]any{"field": f})
	}
	return errorf(http.StatusBadRequest, wire.CodeBadRequest, "invalid JSON body: %s", strings.TrimPrefix(msg, "json: "))
}

// decodeBodyError maps an error of the config decoder (evaluate.DecodeJSON)
// on a write body to a 400 naming the field, its line and column:
// unknown_field (details.field is the member's path), malformed_json
// (details.offset), or bad_request (a wrong type, a repeated name, too
// deep). details.findings lists every problem found.
func decodeBodyError(err error, body []byte) error {
	var le *evaluate.LoadError
	if !errors.As(err, &le) || len(le.Findings) == 0 {
		return errorf(http.StatusBadRequest, wire.CodeBadRequest, "invalid JSON body: %v", err)
	}
	f := le.Findings[0]
	field, msg := f.Field, f.Msg
	// An unknown or repeated member's finding names its object (Field)
	// and quotes the name in Msg: details.field is the member's own path.
	for _, prefix := range []string{"unknown field ", "duplicate key "} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			if q, err := strconv.QuotedPrefix(rest); err == nil {
				name, _ := strconv.Unquote(q)
				field = fieldpath.Join(f.Field, name)
			}
		}
	}
	details := map[string]any{"field": field, "line": f.Pos.Line, "col": f.Pos.Col, "findings": le.Findings}
	if f.Field != "" {
		msg = f.Field + ": " + msg
	}
	msg = fmt.Sprintf("%s (line %d, col %d)", msg, f.Pos.Line, f.Pos.Col)
	switch f.Code {
	case "unknown-field":
		return errorf(http.StatusBadRequest, wire.CodeUnknownField, "%s", msg).with(details)
	case "json-syntax":
		details["offset"] = byteOffset(body, f.Pos)
		return errorf(http.StatusBadRequest, wire.CodeMalformedJSON, "malformed JSON: %s", msg).with(details)
	}
	return errorf(http.StatusBadRequest, wire.CodeBadRequest, "%s", msg).with(details)
}

// byteOffset converts a 1-based line and character column in body back to
// a byte offset.
func byteOffset(body []byte, p evaluate.Position) int {
	off := 0
	for line := 1; line < p.Line; line++ {
		i := bytes.IndexByte(body[off:], '\n')
		if i < 0 {
			return len(body)
		}
		off += i + 1
	}
	for col := 1; col < p.Col && off < len(body); col++ {
		_, n := utf8.DecodeRune(body[off:])
		off += n
	}
	return off
}

// decodeStrict decodes body into v, rejecting unknown fields and trailing
// data. Write bodies of flags and segments go through decodeBody instead.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, body)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, wire.CodeMalformedJSON, "malformed JSON: trailing data at offset %d", dec.InputOffset()).
			with(map[string]any{"offset": dec.InputOffset()})
	}
	return nil
}
