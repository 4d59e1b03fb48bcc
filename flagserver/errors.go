package flagserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/flagwire/flagwire/evaluate"
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
		return errorf(http.StatusNotFound, wire.CodeEnvironmentNotFound, "%v", err)
	case errors.Is(err, ErrFlagNotFound):
		return errorf(http.StatusNotFound, wire.CodeFlagNotFound, "%v", err)
	case errors.Is(err, ErrSegmentNotFound):
		return errorf(http.StatusNotFound, wire.CodeSegmentNotFound, "%v", err)
	case errors.Is(err, ErrChangeReasonRequired):
		return errorf(http.StatusBadRequest, wire.CodeChangeReasonRequired, "%v", err).
			with(map[string]any{"field": "changeReason"})
	case errors.Is(err, ErrClosed):
		return errorf(http.StatusServiceUnavailable, wire.CodeUnavailable, "server is shutting down")
	}
	return errorf(http.StatusInternalServerError, wire.CodeInternal, "internal error")
}

// writeError writes the JSON error body {"error":{code,message,details}}.
func writeError(w http.ResponseWriter, err error) {
	ae := toAPIError(err)
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

// requireJSON checks the request's Content-Type (415 otherwise). PATCH also
// accepts application/merge-patch+json.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || mt == "application/merge-patch+json" || strings.HasSuffix(mt, "+json")) {
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

// decodeStrict decodes body into v, rejecting unknown fields and trailing
// data.
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
