package chaos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

// ---- counting transport: the client's HTTP traffic, seen from its side ----

// countingTransport counts the client's requests and transport errors by
// "METHOD /path"; for POST /v1/evaluate with one decision it also follows
// each (flag, context) key — requests in flight at once, and whether each
// request after the first had a documented reason — and it keeps the
// failed evaluate requests, the evidence that justifies a fallback when no
// fault was injected (a request timed out on a starved CPU, say). It also
// lets a drill close idle connections after the client closed (the client
// leaves a caller's transport alone). Safe for concurrent use.
type countingTransport struct {
	base *http.Transport
	mu   sync.Mutex
	reqs map[string]int64
	errs map[string]int64
	keys map[string]*keyStats
	// failures are the failed evaluate requests, in the order they ended.
	failures []failure
}

// keyStats is one (flag, context) key's requests.
type keyStats struct {
	flag     string
	inflight int
	n        int64 // requests
	// Requests after the first, by their documented reason: the previous
	// one failed (nothing was cached), or it succeeded at least
	// refreshAhead×TTL before (the decision was due for refresh or had
	// expired), or it answered TYPE_MISMATCH for a wrong-typed call's
	// default (whether that is cached is the SDK's business). The rest need
	// an invalidation (a write of the flag, a stream reconnect).
	afterFailure, afterExpiry int64
	lastEnd                   time.Time
	lastOK                    bool
	// overlaps counts requests made while another of the key was in
	// flight. A request is never shared across an invalidation of its
	// flag, so each needs one: a write of the flag or a stream connect
	// (whose reset invalidates everything).
	overlaps int64
	example  string
}

// failure is one failed evaluate request: a transport error, a status other
// than 200, a body cut off, or a body that does not answer the request.
type failure struct {
	start, end time.Time
	status     int // 0: transport error or bad body
}

// refreshAhead is the share of a decision's TTL after which the client
// refreshes it (its documented refresh-ahead; a refetch before it, with no
// invalidation, is a coalescing failure).
const refreshAhead = 0.8

func newCountingTransport() *countingTransport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &countingTransport{base: tr, reqs: map[string]int64{}, errs: map[string]int64{}, keys: map[string]*keyStats{}}
}

// evaluateKey returns the key of a one-decision evaluate body, or "": the
// flag, the context, and the JSON type of the default sent when it is not
// a boolean (so a fix that fetches separately for a wrong-typed caller's
// default is not mistaken for a coalescing failure).
func evaluateKey(body []byte) (key, flag string) {
	var req wire.EvaluateRequest
	if json.Unmarshal(body, &req) != nil || len(req.Requests) != 1 {
		return "", ""
	}
	in := req.Requests[0]
	ctx, _ := json.Marshal(in.Context) // maps marshal in key order
	key = in.FlagKey + " " + string(ctx)
	if def := bytes.TrimSpace(in.DefaultValue); len(def) > 0 {
		switch def[0] {
		case '"':
			key += " (string default)"
		case 't', 'f':
		case 'n':
			key += " (null default)"
		default:
			key += " (number default)"
		}
	}
	// No default (what the SDK sends: one decision serves every typed
	// read) keys like a boolean default: per (flag, context).
	return key, in.FlagKey
}

// boolKey is evaluateKey's key of a boolean call of flag for attrs.
func boolKey(flag string, attrs map[string]any) string {
	ctx, _ := json.Marshal(attrs)
	return flag + " " + string(ctx)
}

func (ct *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	name := r.Method + " " + r.URL.Path
	var key, flag string
	evaluate := r.Method == http.MethodPost && r.URL.Path == "/v1/evaluate"
	if evaluate && r.Body != nil {
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		key, flag = evaluateKey(body)
	}
	start := time.Now()
	if key != "" {
		ct.begin(key, flag, start)
	}
	resp, err := ct.base.RoundTrip(r)
	ct.mu.Lock()
	ct.reqs[name]++
	if err != nil {
		ct.errs[name]++
	}
	ct.mu.Unlock()
	if !evaluate {
		return resp, err
	}
	if err != nil {
		ct.end(key, start, false, false, 0)
		return nil, err
	}
	resp.Body = &watchedBody{rc: resp.Body, ct: ct, key: key, flag: flag, start: start, status: resp.StatusCode}
	return resp, nil
}

func (ct *countingTransport) begin(key, flag string, now time.Time) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	ks := ct.keys[key]
	if ks == nil {
		ks = &keyStats{flag: flag}
		ct.keys[key] = ks
	}
	ks.inflight++
	if ks.inflight > 1 {
		ks.overlaps++
		if ks.example == "" {
			ks.example = fmt.Sprintf("%d requests of %s in flight at once", ks.inflight, key)
		}
	}

	if ks.n > 0 {
		switch {
		case !ks.lastOK:
			ks.afterFailure++
		case now.Sub(ks.lastEnd) >= time.Duration(refreshAhead*float64(decisionTTL)):
			ks.afterExpiry++
		}
	}
	ks.n++
}

// end records the end of an evaluate request; ok: it answered the
// request; cacheable: its decision is one the client must have cached (not
// a per-item TYPE_MISMATCH, which depends on the caller's default); status
// is its HTTP status when known.
func (ct *countingTransport) end(key string, start time.Time, ok, cacheable bool, status int) {
	now := time.Now()
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if !ok {
		ct.failures = append(ct.failures, failure{start: start, end: now, status: status})
	}
	if ks := ct.keys[key]; key != "" && ks != nil {
		ks.inflight--
		ks.lastEnd, ks.lastOK = now, ok && cacheable
	}
}

// watchedBody reports its request's end to the transport on Close: a
// success only for a complete 200 whose decision is for the flag asked.
type watchedBody struct {
	rc         io.ReadCloser
	ct         *countingTransport
	key, flag  string
	start      time.Time
	status     int
	buf        bytes.Buffer
	readErr    bool
	sawEOF     bool
	once       sync.Once
	overflowed bool
}

// maxWatched bounds the bytes a watchedBody keeps to check the decision.
const maxWatched = 1 << 20

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		if b.buf.Len()+n <= maxWatched {
			b.buf.Write(p[:n])
		} else {
			b.overflowed = true
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		b.sawEOF = true
	case err != nil:
		b.readErr = true
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.rc.Close()
	b.once.Do(func() {
		ok := b.status == http.StatusOK && b.sawEOF && !b.readErr && !b.overflowed
		cacheable := ok
		if ok && b.flag != "" {
			var resp wire.EvaluateResponse
			ok = json.Unmarshal(b.buf.Bytes(), &resp) == nil && len(resp.Decisions) == 1 && resp.Decisions[0].FlagKey == b.flag
			cacheable = ok && (resp.Decisions[0].Error == nil || resp.Decisions[0].Error.Code != "TYPE_MISMATCH")
		}
		status := b.status
		if status == http.StatusOK {
			status = 0
		}
		b.ct.end(b.key, b.start, ok, cacheable, status)
	})
	return err
}

// justifies reports whether a failed request seen by the transport
// overlaps [from, to] extended by evidenceGrace+slack after it ended, and
// whether such a failure can explain code: 401/403 explain UNAUTHORIZED
// (and never an open breaker, which does not count them), 429
// RATE_LIMITED, anything else UNAVAILABLE, TIMEOUT, BAD_RESPONSE and
// CIRCUIT_OPEN.
func (ct *countingTransport) justifies(code string, from, to time.Time, slack time.Duration) bool {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for i := len(ct.failures) - 1; i >= 0; i-- {
		f := ct.failures[i]
		if f.end.Add(evidenceGrace + slack + time.Second).Before(from) {
			break // older failures (ends are roughly in order, hence the extra second)
		}
		if f.start.After(to) || f.end.Add(evidenceGrace+slack).Before(from) {
			continue
		}
		switch {
		case f.status == http.StatusUnauthorized || f.status == http.StatusForbidden:
			if code == "UNAUTHORIZED" || code == "TIMEOUT" {
				return true
			}
		case f.status == http.StatusTooManyRequests:
			if code == "RATE_LIMITED" || code == "TIMEOUT" || code == "CIRCUIT_OPEN" {
				return true
			}
		case f.status == 0 || f.status >= 500:
			switch code {
			case "UNAVAILABLE", "TIMEOUT", "BAD_RESPONSE", "CIRCUIT_OPEN":
				return true
			}
		}
	}
	return false
}

// keyCount returns how many evaluate requests key made.
func (ct *countingTransport) keyCount(key string) int64 {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ks := ct.keys[key]; ks != nil {
		return ks.n
	}
	return 0
}

// coalescing checks every key's requests over the whole drill against the
// documented guarantee, in a form that does not depend on scheduling:
//
//   - concurrent misses of one key make one request: two requests of a
//     key are in flight at once only across an invalidation of it (a
//     request is never shared across one): a key's overlapping requests
//     are at most its flag's writes plus the stream connects (overlaps);
//   - a key is fetched again only for a reason: its previous request
//     failed, or its decision was due for refresh (refreshAhead×TTL after
//     the previous answer) or expired, or it was invalidated — by a write
//     of its flag (writes, per flag) or a stream (re)connect (connects),
//     each of which can cause at most one refetch per key.
//
// It returns the overlap violations, the unjustified refetches (first
// few), and the totals for the summary.
func (ct *countingTransport) coalescing(writes func(flag string) int64, connects int64) (overlaps []string, unjustified []string, nUnjustified, keys, requests int64) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for k, ks := range ct.keys {
		keys++
		requests += ks.n
		if inval := writes(ks.flag) + connects; ks.overlaps > inval {
			if len(overlaps) < 3 {
				overlaps = append(overlaps, fmt.Sprintf("%s: %d overlapping requests, %d invalidations (%d flag writes + %d stream connects) to justify them; e.g. %s",
					k, ks.overlaps, inval, writes(ks.flag), connects, ks.example))
			}
		}
		allowed := 1 + ks.afterFailure + ks.afterExpiry + writes(ks.flag) + connects
		if ks.n > allowed {
			nUnjustified += ks.n - allowed
			if len(unjustified) < 3 {
				unjustified = append(unjustified, fmt.Sprintf("%s: %d requests; justified %d (1 + %d after a failure + %d after refresh-ahead/expiry + %d flag writes + %d stream connects)",
					k, ks.n, allowed, ks.afterFailure, ks.afterExpiry, writes(ks.flag), connects))
			}
		}
	}
	return overlaps, unjustified, nUnjustified, keys, requests
}

// total returns every request counted under name ("METHOD /path").
func (ct *countingTransport) total(name string) int64 {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return ct.reqs[name]
}
