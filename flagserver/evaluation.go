package flagserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// handleEvaluate serves POST /v1/evaluate: a batch of evaluations in one
// environment ("environment" in the body, default DefaultEnvironment), all
// at one config version, which the response's "configVersion" gives.
// Failures are per decision: an unknown flag or a default value of the
// wrong type returns the request's defaultValue with an error and reason
// kind ERROR; the rest of the batch stands.
func (s *Server) handleEvaluate(w http.ResponseWriter, r *http.Request) {
	rc := reqCtx(r)
	var req wire.EvaluateRequest
	dec := json.NewDecoder(bytes.NewReader(rc.body))
	dec.UseNumber() // large numeric ids keep their precision
	if err := dec.Decode(&req); err != nil {
		writeError(w, decodeError(err, rc.body))
		return
	}
	if dec.More() {
		writeError(w, errorf(http.StatusBadRequest, wire.CodeMalformedJSON, "malformed JSON: trailing data at offset %d", dec.InputOffset()).
			with(map[string]any{"offset": dec.InputOffset()}))
		return
	}
	if len(req.Requests) > MaxBatch {
		writeError(w, errorf(http.StatusBadRequest, wire.CodeBatchTooLarge, "%d requests in one batch; the limit is %d", len(req.Requests), MaxBatch).
			with(map[string]any{"limit": MaxBatch, "requests": len(req.Requests)}))
		return
	}
	env := req.Environment
	if env == "" {
		env = DefaultEnvironment
	}
	es, ok := s.readableEnv(w, r, rc, env)
	if !ok {
		return
	}
	if g := rc.principal.public; g != nil { // a minted token: its flags, its attributes (mint.go)
		if req.Options.Explain {
			writeError(w, errForbidden("explain is not available to a public-client token: it would show the rules"))
			return
		}
		for i := range req.Requests {
			if err := g.allowFlag(req.Requests[i].FlagKey); err != nil {
				writeError(w, err)
				return
			}
			req.Requests[i].Context = g.attrs.filter(req.Requests[i].Context)
		}
	}
	// Every decision comes from es.snap: the response says at which
	// version (clients compare it with the stream's X-Flagwire-Config-Version).
	version := es.version()
	resp := wire.EvaluateResponse{RequestID: rc.id, Decisions: make([]wire.Decision, len(req.Requests)), ConfigVersion: &version}
	now := s.now()
	ttl := int(s.opts.DecisionTTL / 1e9)
	for i := range req.Requests {
		resp.Decisions[i] = decide(es.snap, &req.Requests[i], req.Options, now, ttl)
	}
	writeJSON(w, http.StatusOK, &resp)
}

var (
	jsonTrue  = json.RawMessage("true")
	jsonFalse = json.RawMessage("false")
	jsonNull  = json.RawMessage("null")
)

// decide evaluates one input. It never fails: errors become decisions that
// serve the caller's default.
func decide(snap *evaluate.Snapshot, in *wire.EvaluationInput, opts wire.EvaluateOptions, now time.Time, ttl int) wire.Decision {
	return decideHashing(snap, in, opts, now, ttl, true)
}

// decideHashing is decide; without withHash the decision's Bucketing has
// no Hash (OFREP answers do not carry it, and hex-encoding it cost two
// allocations per flag of a bulk answer).
func decideHashing(snap *evaluate.Snapshot, in *wire.EvaluationInput, opts wire.EvaluateOptions, now time.Time, ttl int, withHash bool) wire.Decision {
	d := wire.Decision{FlagKey: in.FlagKey, TTLSeconds: ttl}
	def := in.DefaultValue
	if len(def) == 0 {
		def = jsonNull
	}
	fail := func(code evaluate.ErrorCode, msg string) wire.Decision {
		d.Variant = def
		d.Error = &wire.DecisionError{Code: string(code), Message: msg}
		d.Reason = &wire.Reason{Kind: string(evaluate.ReasonError), ErrorCode: string(code)}
		return d
	}
	typ, ok := snap.FlagType(in.FlagKey)
	if !ok {
		return fail(evaluate.ErrorFlagNotFound, "flag "+strconv.Quote(in.FlagKey)+" not found in environment "+strconv.Quote(snap.Environment()))
	}
	if !defaultMatches(typ, def) {
		return fail(evaluate.ErrorTypeMismatch, "defaultValue is not a "+string(typ)+", the type of flag "+strconv.Quote(in.FlagKey))
	}
	var (
		res   evaluate.Result
		trace []evaluate.TraceStep
	)
	if opts.Explain {
		res, trace = snap.EvaluateExplain(in.FlagKey, in.Context, now)
	} else {
		res = snap.Evaluate(in.FlagKey, in.Context, now)
	}
	if res.Reason.Kind == evaluate.ReasonError || res.Value == nil {
		code := res.Reason.ErrorCode
		if code == evaluate.ErrorNone {
			code = evaluate.ErrorGeneral
		}
		d = fail(code, "evaluation failed: "+string(code))
		d.Explain = explainSteps(trace)
		return d
	}
	d.Variant = marshalValue(res.Value)
	d.VariantKey = res.Variant
	d.FlagVersion = res.FlagVersion
	d.Type = string(res.Type)
	d.FlagMetadata = res.FlagMetadata // shared and read-only
	if opts.ReturnPayloads && res.Payload != nil {
		d.Payload = marshalValue(res.Payload)
	}
	if opts.IncludeReasons {
		d.Reason = wire.ReasonOf(&res)
	}
	if res.HasBucketing {
		by := evaluate.DefaultBucketBy
		if f, ok := snap.Flag(in.FlagKey); ok && f.Bucketing.By != "" {
			by = f.Bucketing.By
		}
		d.Bucketing = &wire.Bucketing{Seed: res.Bucketing.Seed, Bucket: int(res.Bucketing.Bucket), By: by}
		if withHash {
			d.Bucketing.Hash = res.Bucketing.HashHex()
		}
	}
	d.Explain = explainSteps(trace)
	return d
}

func explainSteps(trace []evaluate.TraceStep) []wire.ExplainStep {
	if trace == nil {
		return nil
	}
	out := make([]wire.ExplainStep, len(trace))
	for i, t := range trace {
		out[i] = wire.ExplainStep{Step: t.Step, ID: t.ID, Matched: t.Matched, Detail: t.Detail}
	}
	return out
}

func marshalValue(v any) json.RawMessage {
	switch x := v.(type) {
	case bool:
		if x {
			return jsonTrue
		}
		return jsonFalse
	case nil:
		return jsonNull
	}
	b, err := json.Marshal(v)
	if err != nil {
		return jsonNull
	}
	return b
}

// defaultMatches reports whether a default value fits the flag type. A
// null or absent default fits every type; JSON flags accept anything.
func defaultMatches(typ evaluate.FlagType, def json.RawMessage) bool {
	def = bytes.TrimSpace(def)
	if len(def) == 0 || string(def) == "null" {
		return true
	}
	switch typ {
	case evaluate.TypeBoolean:
		return string(def) == "true" || string(def) == "false"
	case evaluate.TypeString:
		return def[0] == '"'
	case evaluate.TypeNumber:
		return def[0] == '-' || ('0' <= def[0] && def[0] <= '9')
	}
	return true
}
