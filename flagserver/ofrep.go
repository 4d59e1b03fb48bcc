package flagserver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// OFREP: the OpenFeature Remote Evaluation Protocol (open-feature/protocol,
// service/openapi.yaml), so that OpenFeature's OFREP providers in any
// language can evaluate Flagwire flags:
//
//	POST /ofrep/v1/evaluate/flags/{key}   one flag
//	POST /ofrep/v1/evaluate/flags         every flag of the environment; ETag, If-None-Match → 304
//
// The request body is {"context": {…}} (an absent or null context is
// empty). Evaluation is the /v1/evaluate code, so both APIs give the same
// answers. The context's targetingKey also serves as userId (the default
// bucketing attribute) when the context has no userId.
//
// The environment is, in order: the X-Flagwire-Environment header (OFREP
// providers can send fixed headers), the "environment" query parameter, the
// only environment of a token limited to one, or DefaultEnvironment.
//
// A success is {"key","value","reason","variant","metadata"} with
// "cacheable": true and Cache-Control: private, max-age=TTL (the decision
// TTL). Reasons are OpenFeature's: OFF → DISABLED; TARGET_MATCH, RULE_MATCH,
// SEGMENT_MATCH and PREREQUISITE_FAILED (the off variant is served) →
// TARGETING_MATCH; ROLLOUT → SPLIT; STATIC → STATIC; DEFAULT → DEFAULT
// (wire.OFREPReason, the one mapping the SDK and integrations share).
//
// metadata is the flag's own flagMetadata (evaluate.Flag.FlagMetadata),
// and nothing else unless the request asks for Flagwire's detail with the
// header X-Flagwire-OFREP-Metadata: extended (OFREPMetadataHeader; the
// SDK's OFREP mode sends it). An extended answer's metadata also carries
// reasonKind (the Flagwire reason, only when the OpenFeature reason does
// not map back to it: TARGET_MATCH, SEGMENT_MATCH, PREREQUISITE_FAILED;
// TARGETING_MATCH alone reads as RULE_MATCH, SPLIT as ROLLOUT, DISABLED
// as OFF), ruleId, segment, prerequisite, bucket, flagVersion, flagType
// ("json", for JSON flags only), payload (the variant's payload as JSON
// text; OFREP metadata values are scalars), and errorCode when the answer
// comes with one (MISSING_BUCKETING_ATTRIBUTE). Flagwire's keys take
// precedence, and Compile rejects them as flagMetadata keys
// (evaluate.IsReservedFlagMetadataKey), so neither hides the other. Other
// OpenFeature clients get the smaller standard answer: a bulk answer's
// size is then mostly the flags' keys, values and variants.
//
// A disabled flag (reason OFF) answers {"key","reason":"DISABLED"} (and
// its metadata) with no "value" and no "variant": OFREP's "code default"
// (ADR-0006), so an OpenFeature provider returns the caller's default with
// reason DISABLED, as OpenFeature's evaluation_v2.feature (spec 1.4.7)
// requires. The native POST /v1/evaluate instead serves the flag's off
// variant with reason OFF: Flagwire's model gives every flag an off value
// that the SDK, local evaluation and bootstraps all serve while it is off,
// and the two APIs must each match their own clients' contract.
//
// Failures, as OFREP defines them: an unknown flag is a 404
// {"key","errorCode":"FLAG_NOT_FOUND","errorDetails"}; a malformed body is a
// 400 PARSE_ERROR, a context that is not an object a 400 INVALID_CONTEXT, an
// unknown environment a 400 GENERAL (the bulk form without "key"). In a
// bulk answer a flag that fails to evaluate is an item
// {"key","errorCode","errorDetails"}. Authentication (401), scope and
// environment checks (403), rate limits (429 with Retry-After in seconds)
// and body limits (413, 415) are the /v1 API's, with its error bodies.
//
// The bulk ETag is a hash of the answer itself, so it changes exactly when
// some flag's answer for that context changes.

// OFREPEnvironmentHeader names the environment of an OFREP request.
const OFREPEnvironmentHeader = "X-Flagwire-Environment"

// OFREPMetadataHeader, with the value OFREPMetadataExtended (in any case),
// asks for Flagwire's detail in each OFREP answer's metadata (see the
// package's OFREP documentation); without it an answer's metadata is the
// flag's own flagMetadata.
const (
	OFREPMetadataHeader   = "X-Flagwire-OFREP-Metadata"
	OFREPMetadataExtended = "extended"
)

// OFREP error codes (OpenFeature's).
const (
	ofrepFlagNotFound        = "FLAG_NOT_FOUND"
	ofrepParseError          = "PARSE_ERROR"
	ofrepInvalidContext      = "INVALID_CONTEXT"
	ofrepTargetingKeyMissing = "TARGETING_KEY_MISSING"
	ofrepGeneral             = "GENERAL"
)

// ofrepSuccess and ofrepFailure are the two shapes of wire.OFREPEvaluation
// this server writes.
type (
	ofrepSuccess = wire.OFREPEvaluation
	ofrepFailure = wire.OFREPEvaluation
)

// ofrepRoutes are the OFREP routes, registered with the /v1 routes.
func (s *Server) ofrepRoutes(bodyLimit int64) []route {
	return []route{
		{"POST", "/ofrep/v1/evaluate/flags/{key}", classRead, bodyLimit, s.handleOFREPFlag},
		{"POST", "/ofrep/v1/evaluate/flags", classRead, bodyLimit, s.handleOFREPBulk},
	}
}

// ofrepEnvironment returns an OFREP request's environment.
func ofrepEnvironment(r *http.Request, p *principal) string {
	if e := r.Header.Get(OFREPEnvironmentHeader); e != "" {
		return e
	}
	if r.URL.RawQuery != "" { // OFREP providers send none: skip parsing
		if e := r.URL.Query().Get("environment"); e != "" {
			return e
		}
	}
	if len(p.envs) == 1 {
		return p.envs[0]
	}
	return DefaultEnvironment
}

// ofrepMetadataKey is OFREPMetadataHeader in the canonical form of
// http.Header's keys, looked up without canonicalizing on each request.
var ofrepMetadataKey = http.CanonicalHeaderKey(OFREPMetadataHeader)

// ofrepExtended reports whether an OFREP request asks for Flagwire's
// detail in metadata.
func ofrepExtended(r *http.Request) bool {
	v := r.Header[ofrepMetadataKey]
	return len(v) > 0 && strings.EqualFold(strings.TrimSpace(v[0]), OFREPMetadataExtended)
}

// ofrepContext decodes the request body's context. A failure is returned
// as the OFREP failure to send (status 400).
func ofrepContext(body []byte) (map[string]any, *ofrepFailure) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	// The usual request, in one streaming pass (ofrepContextFast). It
	// takes only what it decodes exactly as encoding/json does; anything
	// else takes the two-pass path, which names the failure.
	if ctx, ok := ofrepContextFast(body); ok {
		if ctx != nil {
			ofrepTargetingKey(ctx)
		}
		return ctx, nil
	}
	return ofrepContextSlow(body)
}

// ofrepDecoder is the fast path's token decoder over its body; pooled.
type ofrepDecoder struct {
	body bytes.Reader
	dec  *jsontext.Decoder
}

var ofrepDecoders = sync.Pool{New: func() any {
	d := &ofrepDecoder{}
	d.dec = jsontext.NewDecoder(&d.body)
	return d
}}

// ofrepContextFast decodes an OFREP request body's context (nil for an
// absent or null one) as encoding/json with UseNumber decodes it into a
// struct{Context any `json:"context"`}: objects as map[string]any, arrays
// as []any, numbers as json.Number with their literal text. It reports ok
// false, and decodes nothing, for whatever it might decode otherwise than
// encoding/json: invalid JSON or UTF-8, duplicate member names (which
// encoding/json resolves by keeping the last), a member whose name is not
// ASCII or matches "context" only case-insensitively (encoding/json
// matches names case-insensitively), a context that is not an object or
// null, trailing data. FuzzOFREPContextFast holds it to that.
func ofrepContextFast(body []byte) (ctx map[string]any, ok bool) {
	od := ofrepDecoders.Get().(*ofrepDecoder)
	od.body.Reset(body)
	d := od.dec
	d.Reset(&od.body)
	defer func() {
		od.body.Reset(nil) // the pool keeps no request
		ofrepDecoders.Put(od)
	}()
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, false
	}
	for {
		switch d.PeekKind() {
		case '}':
			d.ReadToken()
			if _, err := d.ReadToken(); err != io.EOF { // trailing data, or an error
				return nil, false
			}
			return ctx, true
		case '"':
		default: // an error
			return nil, false
		}
		name, err := d.ReadToken()
		if err != nil {
			return nil, false
		}
		switch n := name.String(); {
		case n == "context":
			switch d.PeekKind() {
			case 'n':
				d.ReadToken()
			case '{':
				v, ok := ofrepValue(d)
				if !ok {
					return nil, false
				}
				ctx = v.(map[string]any)
			default:
				return nil, false
			}
		case !asciiOnly(n) || strings.EqualFold(n, "context"):
			return nil, false
		default:
			if d.SkipValue() != nil {
				return nil, false
			}
		}
	}
}

// ofrepValue reads the next JSON value as encoding/json with UseNumber
// decodes it into an any.
func ofrepValue(d *jsontext.Decoder) (any, bool) {
	tok, err := d.ReadToken()
	if err != nil {
		return nil, false
	}
	switch tok.Kind() {
	case 'n':
		return nil, true
	case 't', 'f':
		return tok.Bool(), true
	case '"':
		return tok.String(), true
	case '0':
		return json.Number(tok.String()), true
	case '{':
		m := map[string]any{}
		for d.PeekKind() == '"' {
			k, err := d.ReadToken()
			if err != nil {
				return nil, false
			}
			key := k.String() // before the next read voids k
			v, ok := ofrepValue(d)
			if !ok {
				return nil, false
			}
			m[key] = v
		}
		if tok, err := d.ReadToken(); err != nil || tok.Kind() != '}' {
			return nil, false
		}
		return m, true
	case '[':
		a := []any{}
		for k := d.PeekKind(); k != ']'; k = d.PeekKind() {
			if k == 0 {
				return nil, false
			}
			v, ok := ofrepValue(d)
			if !ok {
				return nil, false
			}
			a = append(a, v)
		}
		d.ReadToken()
		return a, true
	}
	return nil, false
}

func asciiOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// ofrepTargetingKey makes the context's targetingKey its userId too, when
// it has none.
func ofrepTargetingKey(ctx map[string]any) {
	if tk, ok := ctx["targetingKey"]; ok {
		if _, has := ctx[evaluate.DefaultBucketBy]; !has {
			ctx[evaluate.DefaultBucketBy] = tk
		}
	}
}

// ofrepContextSlow decodes the body, then its context, and names what is
// wrong with either.
func ofrepContextSlow(body []byte) (map[string]any, *ofrepFailure) {
	var req struct {
		Context json.RawMessage `json:"context"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, &ofrepFailure{ErrorCode: ofrepParseError, ErrorDetails: "the request body is not a JSON object: " + err.Error()}
	}
	if dec.More() {
		return nil, &ofrepFailure{ErrorCode: ofrepParseError, ErrorDetails: "trailing data after the request body at offset " + strconv.FormatInt(dec.InputOffset(), 10)}
	}
	raw := bytes.TrimSpace(req.Context)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, &ofrepFailure{ErrorCode: ofrepInvalidContext, ErrorDetails: "context must be a JSON object"}
	}
	var ctx map[string]any
	cd := json.NewDecoder(bytes.NewReader(raw))
	cd.UseNumber() // large numeric ids keep their precision
	if err := cd.Decode(&ctx); err != nil {
		return nil, &ofrepFailure{ErrorCode: ofrepInvalidContext, ErrorDetails: "context: " + err.Error()}
	}
	ofrepTargetingKey(ctx)
	return ctx, nil
}

// ofrepPrepare does what both handlers share: the environment, its
// authorization and state, and the context. It writes the failure and
// returns ok false when the request cannot be evaluated.
func (s *Server) ofrepPrepare(w http.ResponseWriter, r *http.Request, key string) (es *envState, ctx map[string]any, ok bool) {
	rc := reqCtx(r)
	env := ofrepEnvironment(r, rc.principal)
	if err := authorize(rc.principal, wire.ScopeRead, env); err != nil {
		writeError(w, err)
		return nil, nil, false
	}
	s.fresh(r.Context())
	es = s.env(env)
	if es == nil {
		writeJSON(w, http.StatusBadRequest, ofrepFailure{Key: key, ErrorCode: ofrepGeneral, ErrorDetails: "unknown environment " + strconv.Quote(env)})
		return nil, nil, false
	}
	if g := rc.principal.public; g != nil && key != "" { // a minted token (mint.go)
		if err := g.allowFlag(key); err != nil {
			writeError(w, err)
			return nil, nil, false
		}
	}
	ctx, fail := ofrepContext(rc.body)
	if fail != nil {
		fail.Key = key
		writeJSON(w, http.StatusBadRequest, fail)
		return nil, nil, false
	}
	if g := rc.principal.public; g != nil {
		ctx = g.attrs.filter(ctx)
	}
	return es, ctx, true
}

// handleOFREPFlag serves POST /ofrep/v1/evaluate/flags/{key}.
func (s *Server) handleOFREPFlag(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	es, ctx, ok := s.ofrepPrepare(w, r, key)
	if !ok {
		return
	}
	ttl := int(s.opts.DecisionTTL.Seconds())
	d := s.ofrepDecide(es, key, ctx, s.now(), ttl)
	if d.Error != nil {
		f, status := ofrepFailureOf(d)
		writeJSON(w, status, f)
		return
	}
	w.Header().Set("Cache-Control", "private, max-age="+strconv.Itoa(ttl))
	writeRaw(w, http.StatusOK, appendOFREPSuccess(make([]byte, 0, 256), &d, true, ofrepExtended(r)))
}

// handleOFREPBulk serves POST /ofrep/v1/evaluate/flags: every flag of the
// environment, sorted by key, with an ETag of the answer.
func (s *Server) handleOFREPBulk(w http.ResponseWriter, r *http.Request) {
	es, ctx, ok := s.ofrepPrepare(w, r, "")
	if !ok {
		return
	}
	ttl := int(s.opts.DecisionTTL.Seconds())
	keys := es.snap.Keys()
	if g := reqCtx(r).principal.public; g != nil { // a minted token: only its flags (mint.go)
		keys = slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return !g.flags[k] })
	}
	now := s.now()
	extended := ofrepExtended(r)
	// The answer is wire.OFREPBulk as encoding/json writes it (metadata:
	// environment and version), encoded by hand (see ofrepencode.go).
	body := make([]byte, 0, 64+160*len(keys))
	body = append(body, `{"flags":[`...)
	for i, key := range keys {
		if i > 0 {
			body = append(body, ',')
		}
		d := s.ofrepDecide(es, key, ctx, now, ttl)
		if d.Error != nil {
			f, _ := ofrepFailureOf(d)
			fb, err := json.Marshal(f)
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]string{"errorDetails": "cannot encode the answer"})
				return
			}
			body = append(body, fb...)
			continue
		}
		body = appendOFREPSuccess(body, &d, false, extended)
	}
	body = append(body, `],"metadata":{"environment":`...)
	body = appendJSONString(body, es.name)
	body = append(body, `,"version":`...)
	body = strconv.AppendInt(body, es.version(), 10)
	body = append(body, "}}"...)
	etag := etagOf(body)
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, max-age="+strconv.Itoa(ttl))
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatchesWeak(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeRaw(w, http.StatusOK, body)
}

// ofrepDecide evaluates key with the /v1/evaluate code (reasons and
// payloads on, no default value).
func (s *Server) ofrepDecide(es *envState, key string, ctx map[string]any, now time.Time, ttl int) wire.Decision {
	in := wire.EvaluationInput{FlagKey: key, Context: ctx}
	return decideHashing(es.snap, &in, wire.EvaluateOptions{IncludeReasons: true, ReturnPayloads: true}, now, ttl, false)
}

// ofrepFailureOf maps a failed decision to an OFREP failure and the status
// of a single-flag answer.
func ofrepFailureOf(d wire.Decision) (ofrepFailure, int) {
	f := ofrepFailure{Key: d.FlagKey, ErrorCode: ofrepGeneral, ErrorDetails: d.Error.Message}
	switch evaluate.ErrorCode(d.Error.Code) {
	case evaluate.ErrorFlagNotFound:
		f.ErrorCode = ofrepFlagNotFound
		return f, http.StatusNotFound
	case evaluate.ErrorMissingBucketAttr:
		f.ErrorCode = ofrepTargetingKeyMissing
	}
	return f, http.StatusBadRequest
}
