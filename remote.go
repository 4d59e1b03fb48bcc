package flagwire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/retry"
	"github.com/flagwire/flagwire/internal/wire"
)

// apiError is a failed API call. It never carries tokens, attribute values
// or raw payloads.
type apiError struct {
	code       ErrorCode
	status     int
	retryAfter time.Duration
	msg        string
}

func (e *apiError) Error() string {
	if e.status != 0 {
		return fmt.Sprintf("flagwire: %s (HTTP %d): %s", e.code, e.status, e.msg)
	}
	return fmt.Sprintf("flagwire: %s: %s", e.code, e.msg)
}

var (
	errTimeout         = &apiError{code: CodeTimeout, msg: "no answer within the timeout"}
	errRateLimitedGate = &apiError{code: CodeRateLimited, msg: "waiting out the server's Retry-After"}
	errInvalidContext  = &apiError{code: CodeInvalidContext, msg: "the evaluation context cannot be encoded exactly (nested over 1,000 levels, cyclic, or a value JSON cannot encode)"}
)

// errorCodeOf maps any error of the remote path to an ErrorCode.
func errorCodeOf(err error) ErrorCode {
	var ae *apiError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ae):
		return ae.code
	case errors.Is(err, ErrClosed):
		return CodeClosed
	case isBreakerOpen(err):
		return CodeCircuitOpen
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, context.Canceled):
		return CodeTimeout
	}
	return CodeUnavailable
}

// remoteItem is one flag to ask the API about. The caller's default is
// never sent: a decision is cached for every typed read of the flag, so it
// must not depend on the type one caller asked for (each read checks the
// type itself).
type remoteItem struct {
	key string
	ec  *evalContext
}

type remoteResult struct {
	dec *decision
	err error
}

// remoteEvaluate sends one POST /v1/evaluate for items, through the breaker,
// with retries. The returned slice matches items; a per-item problem is in
// its err, a failure of the whole call is the error.
func (c *Client) remoteEvaluate(ctx context.Context, items []remoteItem) ([]remoteResult, error) {
	body, err := c.encodeEvaluate(items)
	if err != nil {
		return nil, &apiError{code: CodeGeneral, msg: err.Error()}
	}
	var resp *wire.EvaluateResponse
	pol := c.newRetryPolicy(ctx)
	// tried: the endpoints that failed in this call; each attempt goes to
	// the most preferred usable endpoint not tried yet (WithEndpoint).
	var tried uint32
	op := func() error {
		now := c.cfg.clock.Nanotime()
		if c.rateLimited(now) {
			return backoff.Permanent(errRateLimitedGate)
		}
		if c.pickEndpoint(tried, now) < 0 {
			tried = 0 // every endpoint failed once: start again from the first
		}
		i := c.endpointFor(tried, now)
		ep := c.eps[i]
		if ep.gated(now) {
			tried |= 1 << i
			return errRateLimitedGate
		}
		r, err := ep.br.execute(func() (*wire.EvaluateResponse, error) {
			if c.cfg.ofrep {
				return c.postOFREP(ctx, ep.url, items) // ofrep.go
			}
			return c.postEvaluate(ctx, ep.url, body)
		})
		if err == nil {
			c.lastEndpoint.Store(int32(i))
			resp = r
			return nil
		}
		if failsOver(err) {
			tried |= 1 << i
		}
		another := len(c.eps) > 1 && c.pickEndpoint(tried, now) >= 0
		var ae *apiError
		if errors.As(err, &ae) {
			if ra := c.retryAfter(ae); ra > 0 { // capped: RetrySettings.MaxRetryAfter
				if ae.code == CodeRateLimited {
					ep.rateLimitedUntil.Store(now + int64(ra))
				}
				if !another {
					pol.hint = ra
				}
			}
			if !retryable(ae) {
				return backoff.Permanent(err)
			}
		} else if errors.Is(err, context.Canceled) || isBreakerOpen(err) && !another {
			return backoff.Permanent(err)
		}
		if another {
			pol.now = true // fail over at once
		}
		return err
	}
	start := c.cfg.clock.Nanotime()
	err = backoff.Retry(op, backoff.WithContext(pol, ctx))
	c.stats.observeLatency(time.Duration(c.cfg.clock.Nanotime() - start))
	if err != nil {
		var pe *backoff.PermanentError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if ctx.Err() != nil && errorCodeOf(err) == CodeUnavailable {
			err = errTimeout
		}
		c.logFailure(err)
		if isConfigError(err) {
			c.configErr.Store(true)
		}
		return nil, err
	}
	c.apiAnswered()
	return c.decodeDecisions(items, resp)
}

func retryable(e *apiError) bool {
	switch e.code {
	case CodeUnavailable, CodeTimeout, CodeBadResponse:
		return true
	case CodeRateLimited:
		return true // the policy waits the Retry-After, if it fits
	}
	return false
}

// retryPolicy is a backoff.BackOff: decorrelated jitter, at most
// MaxAttempts, a server's Retry-After taking precedence, and never a wait
// that would outlive ctx's deadline (it stops instead).
type retryPolicy struct {
	jitter   *retry.DecorrelatedJitter
	attempts int
	max      int
	hint     time.Duration
	deadline time.Time // the context's deadline: wall-clock time
	hasDL    bool
	// now makes the next attempt at once: it goes to another endpoint.
	now bool
}

func (c *Client) newRetryPolicy(ctx context.Context) *retryPolicy {
	rs := c.cfg.retry
	max := rs.MaxAttempts
	switch {
	case max == 0:
		max = 3
	case max < 0:
		max = 1
	}
	base, cap := rs.Base, rs.Cap
	if base <= 0 {
		base = 20 * time.Millisecond
	}
	if cap <= 0 {
		cap = 2 * time.Second
	}
	p := &retryPolicy{jitter: retry.NewDecorrelatedJitter(base, cap), max: max}
	p.deadline, p.hasDL = ctx.Deadline()
	return p
}

func (p *retryPolicy) NextBackOff() time.Duration {
	p.attempts++
	if p.attempts >= p.max {
		return backoff.Stop
	}
	if p.now { // failing over to another endpoint: no wait
		p.now = false
		return 0
	}
	wait := p.jitter.NextBackOff()
	if p.hint > 0 {
		wait, p.hint = p.hint, 0
	}
	if p.hasDL && time.Until(p.deadline) < wait { // deadlines are wall-clock
		return backoff.Stop
	}
	return wait
}

func (p *retryPolicy) Reset() { p.attempts = 0; p.jitter.Reset() }

func (c *Client) encodeEvaluate(items []remoteItem) ([]byte, error) {
	req := wire.EvaluateRequest{
		Environment: c.cfg.environment,
		Requests:    make([]wire.EvaluationInput, len(items)),
		Options:     wire.EvaluateOptions{IncludeReasons: true, ReturnPayloads: true},
	}
	for i, it := range items {
		req.Requests[i] = wire.EvaluationInput{FlagKey: it.key, Context: c.outgoingAttributes(it.ec)}
	}
	return json.Marshal(req)
}

// getEnv builds the GET of base/v1/path for the client's environment
// (?environment=…): the config, the bootstrap envelope, the event stream.
func (c *Client) getEnv(ctx context.Context, base *url.URL, path string) (*http.Request, error) {
	u := base.JoinPath("v1", path)
	q := u.Query()
	q.Set("environment", c.cfg.environment)
	u.RawQuery = q.Encode()
	return http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
}

// postEvaluate makes one HTTP attempt.
func (c *Client) postEvaluate(ctx context.Context, base *url.URL, body []byte) (*wire.EvaluateResponse, error) {
	resp, data, tooLarge, err := c.postJSON(ctx, base.JoinPath("v1", "evaluate").String(), body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp, data, c.cfg.clock.Now())
	}
	if tooLarge {
		return nil, &apiError{code: CodeBadResponse, status: resp.StatusCode, msg: fmt.Sprintf("response larger than %d bytes", c.cfg.maxResponse)}
	}
	var out wire.EvaluateResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, &apiError{code: CodeBadResponse, status: resp.StatusCode, msg: "malformed JSON: " + err.Error()}
	}
	return &out, nil
}

// postJSON makes one POST attempt of body (JSON) to u, with the extra
// headers (name, value pairs), and reads the whole response, at most
// maxResponse bytes: tooLarge when there was more. A transport failure is
// the context's cancellation, a timeout or UNAVAILABLE.
func (c *Client) postJSON(ctx context.Context, u string, body []byte, extra ...string) (resp *http.Response, data []byte, tooLarge bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, nil, false, &apiError{code: CodeGeneral, msg: "building request: " + err.Error()}
	}
	req.Header.Set("Content-Type", wire.ContentTypeJSON)
	req.Header.Set("Accept", wire.ContentTypeJSON)
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	c.authorize(req, body)
	c.stats.remoteRequests.Add(1)
	resp, err = c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, nil, false, ctx.Err()
			}
			return nil, nil, false, errTimeout
		}
		return nil, nil, false, &apiError{code: CodeUnavailable, msg: transportMessage(err)}
	}
	defer resp.Body.Close()
	data, tooLarge, err = readLimited(resp, c.cfg.maxResponse)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, false, errTimeout
		}
		return nil, nil, false, &apiError{code: CodeUnavailable, status: resp.StatusCode, msg: "reading response: " + transportMessage(err)}
	}
	return resp, data, tooLarge, nil
}

func (c *Client) authorize(req *http.Request, body []byte) {
	if c.cfg.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.token)
	}
	if c.cfg.hmacKeyID != "" {
		signRequest(req, body, c.cfg.hmacKeyID, c.cfg.hmacSecret, c.cfg.clock.Now())
	}
}

// transportMessage describes a transport error without echoing the URL's
// query or any header.
func transportMessage(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}

func statusError(resp *http.Response, body []byte, now time.Time) *apiError {
	e := &apiError{status: resp.StatusCode}
	var eb wire.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		e.msg = eb.Error.Code + ": " + eb.Error.Message
	} else {
		e.msg = http.StatusText(resp.StatusCode)
	}
	// Uncapped here: each consumer caps it (Client.retryAfter).
	if ra, ok := retry.ParseRetryAfterMax(resp.Header.Get("Retry-After"), now, 0); ok {
		e.retryAfter = ra
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e.code = CodeUnauthorized
	case resp.StatusCode == http.StatusTooManyRequests:
		e.code = CodeRateLimited
	case resp.StatusCode == http.StatusNotFound:
		// Flagwire's API says which thing does not exist: an environment
		// (a misconfiguration, not a missing flag), a flag, or the route
		// itself (a wrong endpoint).
		switch eb.Error.Code {
		case wire.CodeEnvironmentNotFound:
			e.code = CodeUnknownEnvironment
			e.msg = "the server has no such environment (check WithEnvironment): " + eb.Error.Message
		case wire.CodeFlagNotFound:
			e.code = CodeFlagNotFound
		default:
			e.code = CodeGeneral
			path := ""
			if resp.Request != nil && resp.Request.URL != nil {
				path = resp.Request.URL.Path + " "
			}
			e.msg = "no such endpoint " + path + "(check WithEndpoint: the server's base URL): " + e.msg
		}
	case resp.StatusCode >= 300 && resp.StatusCode < 400: // a redirect not followed (options.go)
		e.code, e.msg = CodeBadResponse, redirectMessage(resp)
	case resp.StatusCode >= 500:
		e.code = CodeUnavailable
	default:
		e.code = CodeGeneral
	}
	return e
}

// decodeDecisions turns a response into decisions, checking that it answers
// the request: one decision per item, for the same flag, in order.
func (c *Client) decodeDecisions(items []remoteItem, resp *wire.EvaluateResponse) ([]remoteResult, error) {
	if len(resp.Decisions) != len(items) {
		err := &apiError{code: CodeBadResponse, msg: fmt.Sprintf("%d decisions for %d requests", len(resp.Decisions), len(items))}
		c.logFailure(err)
		return nil, err
	}
	now := c.cfg.clock.Nanotime()
	out := make([]remoteResult, len(items))
	for i, wd := range resp.Decisions {
		if wd.FlagKey != items[i].key {
			out[i].err = &apiError{code: CodeBadResponse, msg: fmt.Sprintf("decision %d is for another flag", i)}
			c.logFailure(out[i].err)
			continue
		}
		d, err := c.decisionFromWire(&wd, now)
		if err != nil {
			out[i].err = err
			c.logFailure(err)
			continue
		}
		if resp.ConfigVersion != nil {
			d.configVersion, d.versioned = *resp.ConfigVersion, true
		}
		out[i].dec = d
	}
	return out, nil
}

func (c *Client) decisionFromWire(wd *wire.Decision, now int64) (*decision, error) {
	// Clamp the seconds before converting: ttlSeconds near MaxInt64 must
	// not overflow into a tiny TTL.
	ttl := time.Duration(min(max(int64(wd.TTLSeconds), 0), int64(math.MaxInt64/time.Second))) * time.Second
	if ttl < c.cfg.minTTL {
		ttl = c.cfg.minTTL
	}
	if ttl > c.cfg.maxTTL {
		ttl = c.cfg.maxTTL
	}
	d := &decision{
		variant:     wd.VariantKey,
		flagVersion: wd.FlagVersion,
		fetchedAt:   now,
		expiresAt:   now + int64(ttl),
		refreshAt:   now + int64(float64(ttl)*c.cfg.refreshAhead),
		staleUntil:  now + int64(ttl) + int64(c.cfg.maxStale),
		reason:      Reason{Bucket: -1},
	}
	if wd.Error != nil {
		// A missing flag is an answer, cached for its TTL like any other
		// (a negative entry). Any other per-decision error is a failure
		// of this request, not an answer: it is never cached, so the next
		// evaluation asks again instead of serving the fallback for a TTL.
		if wd.Error.Code == string(CodeFlagNotFound) {
			d.errCode = CodeFlagNotFound
			return d, nil
		}
		code := ErrorCode(wd.Error.Code)
		if code == "" {
			code = CodeGeneral
		}
		return nil, &apiError{code: code, msg: "the server could not decide the flag: " + wd.Error.Message}
	}
	if wd.Reason != nil {
		d.reason.Kind = evaluate.ReasonKind(wd.Reason.Kind)
		d.reason.RuleID = wd.Reason.RuleID
		d.reason.Segment = wd.Reason.Segment
		d.reason.Prerequisite = wd.Reason.Prerequisite
		if wd.Reason.Bucket != nil {
			d.reason.Bucket = *wd.Reason.Bucket
		}
		if wd.Reason.ErrorCode == string(CodeMissingBucketingAttribute) {
			d.answerCode = CodeMissingBucketingAttribute
		}
		if p := wd.Reason.Prerequisite; p != "" && p != wd.FlagKey {
			c.cache.learnDependent(p, wd.FlagKey) // invalidations of p reach this flag
		}
	}
	if wd.Bucketing != nil {
		d.reason.Bucket = wd.Bucketing.Bucket
	}
	if len(wd.Variant) == 0 {
		if !c.cfg.ofrep {
			return nil, &apiError{code: CodeBadResponse, msg: "decision has no variant"}
		}
		// OFREP's code default: the caller's default, as a success.
		d.codeDefault = true
		return d, nil
	}
	var v any
	if err := json.Unmarshal(wd.Variant, &v); err != nil {
		return nil, &apiError{code: CodeBadResponse, msg: "decision variant: " + err.Error()}
	}
	switch x := v.(type) {
	case bool, string, float64:
		d.value = x
	}
	d.raw = append(json.RawMessage(nil), wd.Variant...)
	if d.variant == "" {
		if s, ok := v.(string); ok {
			d.variant = s
		} else {
			d.variant = string(wd.Variant)
		}
	}
	if len(wd.Payload) > 0 && string(wd.Payload) != "null" {
		d.payload = append(json.RawMessage(nil), wd.Payload...)
	}
	d.meta = scalarMetadata(wd.FlagMetadata)
	d.typ = wd.Type
	return d, nil
}

func (c *Client) logFailure(err error) {
	code := errorCodeOf(err)
	c.setLastError(err) // Status().LastError, in remote mode too
	c.logs.warn(string(code), "flagwire: evaluate API call failed; serving fallbacks", "code", string(code), "error", err.Error())
}

// isConfigError reports whether an API failure is a misconfiguration
// (which retries and time do not cure) rather than a transport failure.
func isConfigError(err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.code {
	case CodeUnknownEnvironment, CodeUnauthorized:
		return true
	case CodeGeneral:
		return ae.status == http.StatusNotFound // no such endpoint
	}
	return false
}

// scalarMetadata returns the entries of a decision's flag metadata whose
// values are strings, booleans or numbers (what Detail.FlagMetadata
// promises), or nil when none is. The map is m itself when every entry
// qualifies: it was decoded for this decision alone.
func scalarMetadata(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	scalar := func(v any) bool {
		switch v.(type) {
		case string, bool, float64:
			return true
		}
		return false
	}
	n := 0
	for _, v := range m {
		if scalar(v) {
			n++
		}
	}
	if n == len(m) {
		return m
	}
	if n == 0 {
		return nil
	}
	out := make(map[string]any, n)
	for k, v := range m {
		if scalar(v) {
			out[k] = v
		}
	}
	return out
}

// readLimited reads a response body of at most limit bytes. A body that
// declares a larger Content-Length is refused before any of it is read
// (a hostile or broken server costs no memory); one that turns out larger
// while reading stops at limit+1 bytes. tooLarge reports either.
func readLimited(resp *http.Response, limit int64) (data []byte, tooLarge bool, err error) {
	if resp.ContentLength > limit {
		return nil, true, nil
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength) + 1) // one read into place, no regrowth
	}
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, false, err
	}
	return buf.Bytes(), int64(buf.Len()) > limit, nil
}
