package flagwire

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

const (
	// ofrepEnvironmentHeader names the environment to Flagwire's server.
	ofrepEnvironmentHeader = "X-Flagwire-Environment"
	// ofrepMetadataHeader, "extended", asks Flagwire's server for its
	// detail in each answer's metadata.
	ofrepMetadataHeader = "X-Flagwire-OFREP-Metadata"
	// ofrepDefaultTTL is the TTL of an OFREP answer without max-age:
	// Flagwire's server's default decision TTL.
	ofrepDefaultTTL = 60
)

// postOFREP makes one attempt at items through the OFREP endpoints and
// returns the answers as a /v1/evaluate response, decisions in item order.
func (c *Client) postOFREP(ctx context.Context, base *url.URL, items []remoteItem) (*wire.EvaluateResponse, error) {
	out := &wire.EvaluateResponse{Decisions: make([]wire.Decision, len(items))}
	if len(items) == 1 {
		it := items[0]
		res, ttl, err := c.ofrepSingle(ctx, base, it)
		if err != nil {
			return nil, err
		}
		out.Decisions[0] = ofrepDecision(it, res, ttl)
		return out, nil
	}
	// One bulk request per distinct evaluation context, in order of first
	// appearance.
	type group struct {
		ec  *evalContext
		idx []int
	}
	var groups []*group
	byHash := make(map[[2]uint64]*group)
	for i, it := range items {
		k, _ := c.keyOf(it.ec, "") // keyed: the items' evaluations checked it
		h := [2]uint64{k.hi, k.lo}
		g := byHash[h]
		if g == nil {
			g = &group{ec: it.ec}
			byHash[h] = g
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
	}
	for _, g := range groups {
		lookup, ttl, err := c.ofrepBulk(ctx, base, g.ec)
		if err != nil {
			return nil, err
		}
		for _, i := range g.idx {
			out.Decisions[i] = ofrepDecision(items[i], lookup(items[i].key), ttl)
		}
	}
	return out, nil
}

// ofrepSingle asks POST /ofrep/v1/evaluate/flags/{key}.
func (c *Client) ofrepSingle(ctx context.Context, base *url.URL, it remoteItem) (wire.OFREPEvaluation, int, error) {
	resp, data, err := c.ofrepPost(ctx, base, wire.OFREPFlagPath+url.PathEscape(it.key), it.ec)
	if err != nil {
		return wire.OFREPEvaluation{}, 0, err
	}
	var res wire.OFREPEvaluation
	switch resp.StatusCode {
	case http.StatusOK:
		if err := json.Unmarshal(data, &res); err != nil {
			return res, 0, &apiError{code: CodeBadResponse, status: resp.StatusCode, msg: "OFREP: malformed JSON: " + err.Error()}
		}
		return res, ofrepTTL(resp.Header, res.Cacheable), nil
	case http.StatusNotFound, http.StatusBadRequest:
		// An OFREP evaluation failure names its errorCode; any other 4xx
		// body (such as a server without OFREP routes) fails the call.
		if json.Unmarshal(data, &res) == nil && res.ErrorCode != "" {
			return res, ofrepTTL(resp.Header, nil), nil
		}
		if resp.StatusCode == http.StatusNotFound {
			return res, 0, &apiError{code: CodeGeneral, status: resp.StatusCode, msg: "OFREP: no evaluation endpoint at " + wire.OFREPFlagPath + "{key}"}
		}
	}
	return res, 0, statusError(resp, data, c.cfg.clock.Now())
}

// ofrepBulk asks POST /ofrep/v1/evaluate/flags and returns a lookup of
// the answer by flag key: a flag the answer lacks is FLAG_NOT_FOUND, and a
// 400 with an errorCode (such as INVALID_CONTEXT) is every flag's answer.
func (c *Client) ofrepBulk(ctx context.Context, base *url.URL, ec *evalContext) (lookup func(key string) wire.OFREPEvaluation, ttl int, err error) {
	resp, data, err := c.ofrepPost(ctx, base, wire.OFREPBulkPath, ec)
	if err != nil {
		return nil, 0, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		var bulk wire.OFREPBulk
		if err := json.Unmarshal(data, &bulk); err != nil {
			return nil, 0, &apiError{code: CodeBadResponse, status: resp.StatusCode, msg: "OFREP bulk: malformed JSON: " + err.Error()}
		}
		byKey := make(map[string]wire.OFREPEvaluation, len(bulk.Flags))
		for _, r := range bulk.Flags {
			byKey[r.Key] = r
		}
		return func(key string) wire.OFREPEvaluation {
			if r, ok := byKey[key]; ok {
				return r
			}
			return wire.OFREPEvaluation{Key: key, ErrorCode: string(CodeFlagNotFound), ErrorDetails: "the bulk evaluation has no such flag"}
		}, ofrepTTL(resp.Header, nil), nil
	case http.StatusNotModified:
		// The SDK sends no If-None-Match, so a 304 is a broken answer.
		return nil, 0, &apiError{code: CodeBadResponse, status: resp.StatusCode, msg: "OFREP bulk: 304 to a request without If-None-Match"}
	case http.StatusBadRequest:
		var fail wire.OFREPEvaluation
		if json.Unmarshal(data, &fail) == nil && fail.ErrorCode != "" {
			return func(string) wire.OFREPEvaluation { return fail }, ofrepTTL(resp.Header, nil), nil
		}
	case http.StatusNotFound:
		return nil, 0, &apiError{code: CodeGeneral, status: resp.StatusCode, msg: "OFREP: no bulk evaluation endpoint at " + wire.OFREPBulkPath}
	}
	return nil, 0, statusError(resp, data, c.cfg.clock.Now())
}

// ofrepPost makes one OFREP request with ctx's attributes as the context
// and reads the whole (bounded) response.
func (c *Client) ofrepPost(ctx context.Context, base *url.URL, path string, ec *evalContext) (*http.Response, []byte, error) {
	body, err := json.Marshal(wire.OFREPRequest{Context: ofrepContext(c.outgoingAttributes(ec))})
	if err != nil {
		return nil, nil, &apiError{code: CodeGeneral, msg: "OFREP: encoding the context: " + err.Error()}
	}
	u := strings.TrimRight(base.String(), "/") + path
	resp, data, tooLarge, err := c.postJSON(ctx, u, body, ofrepEnvironmentHeader, c.cfg.environment, ofrepMetadataHeader, "extended")
	if err != nil {
		return nil, nil, err
	}
	if tooLarge {
		return nil, nil, &apiError{code: CodeBadResponse, status: resp.StatusCode, msg: fmt.Sprintf("response larger than %d bytes", c.cfg.maxResponse)}
	}
	return resp, data, nil
}

// ofrepContext adds targetingKey (OpenFeature's subject id) from userId
// when the attributes have a userId and no targetingKey. attrs itself is
// never modified.
func ofrepContext(attrs map[string]any) map[string]any {
	if attrs == nil {
		return map[string]any{}
	}
	if _, ok := attrs["targetingKey"]; ok {
		return attrs
	}
	// The same canonical form bucketing uses: 1, 1.0 and 1e0 are "1".
	id, ok := evaluate.CanonicalID(attrs["userId"])
	if !ok {
		return attrs
	}
	out := make(map[string]any, len(attrs)+1)
	for k, v := range attrs {
		out[k] = v
	}
	out["targetingKey"] = id
	return out
}

// ofrepTTL returns the TTL of an OFREP answer in seconds.
func ofrepTTL(h http.Header, cacheable *bool) int {
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			return 0
		case "max-age":
			if n, err := strconv.Atoi(strings.Trim(val, `"`)); err == nil && n >= 0 {
				return n
			}
		}
	}
	if cacheable != nil && !*cacheable {
		return 0
	}
	return ofrepDefaultTTL
}

// ofrepDecision turns one OFREP result into the /v1/evaluate decision
// for item. An answer without a value (OFREP ADR-0006's code default) is a
// decision without a variant: decisionFromWire makes it a success that
// serves the caller's default.
func ofrepDecision(it remoteItem, res wire.OFREPEvaluation, ttl int) wire.Decision {
	d := wire.Decision{FlagKey: it.key, TTLSeconds: ttl}
	if res.ErrorCode != "" {
		code := res.ErrorCode
		if code == ofrepTargetingKeyMissing {
			code = string(CodeMissingBucketingAttribute)
		}
		d.Error = &wire.DecisionError{Code: code, Message: res.ErrorDetails}
		return d
	}
	if value := bytes.TrimSpace(res.Value); len(value) > 0 && string(value) != "null" {
		d.Variant = value
	}
	d.VariantKey = res.Variant
	r := &wire.Reason{Kind: wire.ReasonKindOfOFREP(res.Reason)}
	md := res.Metadata
	if k, ok := md["reasonKind"].(string); ok && k != "" {
		r.Kind = k
	}
	r.RuleID, _ = md["ruleId"].(string)
	r.Segment, _ = md["segment"].(string)
	r.Prerequisite, _ = md["prerequisite"].(string)
	r.ErrorCode, _ = md["errorCode"].(string)
	if b, ok := md["bucket"].(float64); ok && b >= 0 {
		bucket := int(b)
		r.Bucket = &bucket
	}
	d.Reason = r
	if v, ok := md["flagVersion"].(float64); ok {
		d.FlagVersion = int64(v)
	}
	d.Type, _ = md["flagType"].(string)
	if p, ok := md["payload"].(string); ok && json.Valid([]byte(p)) {
		d.Payload = json.RawMessage(p)
	}
	// The rest of metadata is the flag's own (Detail.FlagMetadata).
	for k, v := range md {
		if evaluate.IsReservedFlagMetadataKey(k) {
			continue
		}
		if d.FlagMetadata == nil {
			d.FlagMetadata = make(map[string]any, len(md))
		}
		d.FlagMetadata[k] = v
	}
	return d
}

// ofrepTargetingKeyMissing is OpenFeature's error code for a context
// without the targeting key a rollout needs.
const ofrepTargetingKeyMissing = "TARGETING_KEY_MISSING"
