package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
)

// peerCase is one evaluation through the SDK's OFREP mode against a peer.
// raw is the peer's OFREP answer as its documentation defines it for the
// flags in flags/ (flagd.json, goff.yaml); what the SDK must return is
// derived from it by the SDK's documented OFREP mapping (sdkWant).
type peerCase struct {
	flag   string
	call   string // bool, string, int, float, json
	def    any    // the caller's default
	attrs  flagwire.Attributes
	status int    // the peer's HTTP status
	raw    answer // the peer's answer: Value nil when it sends none
}

var (
	proUser  = flagwire.Attributes{"userId": "user-1", "plan": "pro"}
	freeUser = flagwire.Attributes{"userId": "user-2", "plan": "free"}
	noKey    = flagwire.Attributes{"plan": "pro"} // no userId, so no targetingKey
)

// flagdCases: flagd's documented semantics (flag definitions reference;
// OFREP ADR "support code default"): a flag without targeting is STATIC; a
// targeting rule that returns a variant is TARGETING_MATCH; one that
// returns null serves defaultVariant as DEFAULT; a DISABLED flag answers
// 200 with reason DISABLED and no value (code default); an unknown key is
// 404 FLAG_NOT_FOUND. OFREP carries no type, so a wrong-typed call gets
// the flag's value and the client finds the mismatch.
func flagdCases() []peerCase {
	return []peerCase{
		{"bool-static", "bool", false, proUser, 200, answer{true, "on", "STATIC", ""}},
		{"theme", "string", "none", proUser, 200, answer{"dark", "dark", "TARGETING_MATCH", ""}},
		{"theme", "string", "none", freeUser, 200, answer{"light", "light", "DEFAULT", ""}},
		{"max-items", "int", int64(-1), proUser, 200, answer{25, "twenty-five", "STATIC", ""}},
		{"discount", "float", -1.0, proUser, 200, answer{0.15, "standard", "STATIC", ""}},
		{"banner", "json", nil, proUser, 200, answer{map[string]any{"text": "hello", "size": 3}, "hello", "STATIC", ""}},
		{"old-feature", "bool", false, proUser, 200, answer{nil, "", "DISABLED", ""}},
		{"no-such-flag", "bool", true, proUser, 404, answer{nil, "", "", "FLAG_NOT_FOUND"}},
		{"bool-static", "string", "none", proUser, 200, answer{true, "on", "STATIC", ""}},
	}
}

// relayCases: GO Feature Flag's documented semantics (flag format and
// resolution reasons): only a defaultRule is STATIC; a matching targeting
// rule is TARGETING_MATCH; no match with rules present is DEFAULT; a
// percentage defaultRule is SPLIT; `disable: true` answers with reason
// DISABLED, variation "SdkDefault" and no value (the SDK's default); an
// unknown key is 404 FLAG_NOT_FOUND; a percentage rule without a
// targeting key is a 400 TARGETING_KEY_MISSING.
func relayCases() []peerCase {
	return []peerCase{
		{"bool-static", "bool", false, proUser, 200, answer{true, "on", "STATIC", ""}},
		{"theme", "string", "none", proUser, 200, answer{"dark", "dark", "TARGETING_MATCH", ""}},
		{"theme", "string", "none", freeUser, 200, answer{"light", "light", "DEFAULT", ""}},
		{"max-items", "int", int64(-1), proUser, 200, answer{25, "twenty-five", "STATIC", ""}},
		{"discount", "float", -1.0, proUser, 200, answer{0.15, "standard", "STATIC", ""}},
		{"banner", "json", nil, proUser, 200, answer{map[string]any{"text": "hello", "size": 3}, "hello", "STATIC", ""}},
		{"old-feature", "bool", false, proUser, 200, answer{nil, "SdkDefault", "DISABLED", ""}},
		{"no-such-flag", "bool", true, proUser, 404, answer{nil, "", "", "FLAG_NOT_FOUND"}},
		{"bool-static", "string", "none", proUser, 200, answer{true, "on", "STATIC", ""}},
		{"experiment", "string", "none", noKey, 400, answer{nil, "", "", "TARGETING_KEY_MISSING"}},
	}
}

// bulkDeviation names a documented-semantics deviation of a peer's bulk
// answer, seen in the peer itself (so not counted as a failure of these
// checks): GO Feature Flag's bulk answer leaves out the variation of a
// disabled flag that its single answer names (SdkDefault).
func bulkDeviation(peer, flag string, got answer) string {
	if peer == "relay" && flag == "old-feature" && sameAnswer(got, answer{nil, "", "DISABLED", ""}) {
		return `the relay proxy's bulk answer has variant "" for a disabled flag; its single answer says "SdkDefault"`
	}
	return ""
}

// rawBulk asks the peer's bulk endpoint: POST /ofrep/v1/evaluate/flags,
// answers by flag key.
func rawBulk(ctx context.Context, s *server, attrs flagwire.Attributes) (map[string]answer, error) {
	status, _, body, err := s.post(ctx, checkClient, "/ofrep/v1/evaluate/flags", ofrepContext(attrs), s.token())
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("%s bulk: HTTP %d %s", s.name, status, body)
	}
	var doc struct {
		Flags []struct {
			Key string `json:"key"`
			answer
		} `json:"flags"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%s bulk: %w: %s", s.name, err, body)
	}
	out := make(map[string]answer, len(doc.Flags))
	for _, f := range doc.Flags {
		out[f.Key] = f.answer
	}
	return out, nil
}

// splitReason is each peer's documented reason for a 50/50 split of
// experiment: flagd's fractional operation runs in targeting
// (TARGETING_MATCH); GO Feature Flag's percentage defaultRule is SPLIT.
var splitReason = map[string]string{"flagd": "TARGETING_MATCH", "relay": "SPLIT"}

// sdkReason is the SDK's documented OFREP reason mapping: TARGETING_MATCH →
// RULE_MATCH, SPLIT → ROLLOUT, DISABLED → OFF, every other reason kept.
func sdkReason(r string) string {
	switch r {
	case "TARGETING_MATCH":
		return string(evaluate.ReasonRuleMatch)
	case "SPLIT":
		return string(evaluate.ReasonRollout)
	case "DISABLED":
		return string(evaluate.ReasonOff)
	case "":
		return "UNKNOWN"
	}
	return r
}

// fits reports whether an OFREP value suits a typed call.
func fits(call string, v any) bool {
	switch call {
	case "bool":
		_, ok := v.(bool)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "float":
		_, ok := toFloat(v)
		return ok
	case "int":
		f, ok := toFloat(v)
		return ok && f == math.Trunc(f) && math.Abs(f) < 1<<63
	case "json", "batch":
		return true
	}
	return false
}

func toFloat(v any) (float64, bool) {
	switch t := v.(type) {
	case int:
		return float64(t), true
	case int64:
		return float64(t), true
	case float64:
		return t, true
	}
	return 0, false
}

// sdkWant is what the SDK's documented OFREP mapping makes of c.raw: a 404
// FLAG_NOT_FOUND or a 400 with an error code is the caller's default with
// reason ERROR and that code (TARGETING_KEY_MISSING becomes
// MISSING_BUCKETING_ATTRIBUTE); a 200 without
// a value is the caller's default as a success with the peer's variant and
// (mapped) reason; a value that does not suit the call is TYPE_MISMATCH
// with the caller's default; otherwise the value, variant and mapped reason.
func sdkWant(c peerCase) answer {
	switch {
	case c.status == http.StatusNotFound || c.status == http.StatusBadRequest:
		code := c.raw.ErrorCode
		if code == "TARGETING_KEY_MISSING" {
			code = string(flagwire.CodeMissingBucketingAttribute)
		}
		return answer{Value: c.def, Reason: string(evaluate.ReasonError), ErrorCode: code}
	case c.raw.Value == nil:
		return answer{Value: c.def, Variant: c.raw.Variant, Reason: sdkReason(c.raw.Reason)}
	case !fits(c.call, c.raw.Value):
		return answer{Value: c.def, Reason: string(evaluate.ReasonError), ErrorCode: string(flagwire.CodeTypeMismatch)}
	}
	return answer{Value: c.raw.Value, Variant: c.raw.Variant, Reason: sdkReason(c.raw.Reason)}
}

// ofrepContext is the OFREP context the SDK sends for attrs (targetingKey
// = userId beside the attributes), for the raw requests.
func ofrepContext(attrs flagwire.Attributes) string {
	ctx := map[string]any{}
	for k, v := range attrs {
		ctx[k] = v
	}
	if id, ok := attrs["userId"]; ok {
		ctx["targetingKey"] = id
	}
	data, _ := json.Marshal(map[string]any{"context": ctx})
	return string(data)
}

// rawAnswer asks the peer directly: POST /ofrep/v1/evaluate/flags/{key}.
func rawAnswer(ctx context.Context, s *server, flag string, attrs flagwire.Attributes) (int, answer, error) {
	status, _, body, err := s.post(ctx, checkClient, "/ofrep/v1/evaluate/flags/"+flag, ofrepContext(attrs), s.token())
	if err != nil {
		return 0, answer{}, err
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return status, answer{}, fmt.Errorf("%s: %w", body, err)
	}
	return status, a, nil
}

// newSDK is a Flagwire client in OFREP mode on the peer.
func newSDK(ctx context.Context, s *server) (*flagwire.Client, error) {
	opts := []flagwire.Option{
		flagwire.WithEndpoint(s.base), flagwire.WithOFREP(true), flagwire.WithStreaming(false),
		flagwire.WithTimeout(5 * time.Second), // a busy 2-core machine; loopback
		flagwire.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}
	if tok := s.token(); tok != "" {
		opts = append(opts, flagwire.WithToken(tok))
	}
	return flagwire.New(ctx, opts...)
}

// sdkAnswer evaluates one case through the SDK.
func sdkAnswer(ctx context.Context, c *flagwire.Client, pc peerCase) answer {
	ctx = flagwire.WithAttributes(ctx, pc.attrs)
	var v any
	var d flagwire.Detail
	switch pc.call {
	case "bool":
		v, d = c.BoolDetail(ctx, pc.flag, pc.def.(bool))
	case "string":
		v, d = c.StringDetail(ctx, pc.flag, pc.def.(string))
	case "int":
		v, d = c.IntDetail(ctx, pc.flag, pc.def.(int64))
	case "float":
		v, d = c.FloatDetail(ctx, pc.flag, pc.def.(float64))
	case "json":
		var dst any = pc.def
		d = c.JSON(ctx, pc.flag, &dst)
		v = dst
	}
	return answer{Value: v, Variant: d.Variant, Reason: string(d.Reason.Kind), ErrorCode: string(d.ErrorCode)}
}

// checkPeer runs the cases against one peer: the peer's own answer
// against its documentation, the SDK's single and batch answers against
// the SDK's mapping of it, and a 50/50 split over many subjects.
func checkPeer(ctx context.Context, s *server, cases []peerCase, subjects int) (*results, error) {
	r := &results{title: fmt.Sprintf("Flagwire SDK (WithOFREP) → %s at %s", s.label, s.base)}
	client, err := newSDK(ctx, s)
	if err != nil {
		return nil, err
	}
	defer client.Close(context.Background())
	for _, c := range cases {
		ctxText := fmt.Sprintf("plan=%v", c.attrs["plan"])
		if c.attrs["userId"] == nil {
			ctxText += ", no targetingKey"
		}
		status, got, err := rawAnswer(ctx, s, c.flag, c.attrs)
		want := c.raw
		// The SDK must return its documented mapping of what the peer
		// actually answered (the peer's own correctness is the line above).
		observed := c
		if err != nil {
			r.add(c.flag, "peer POST ("+ctxText+")", fmt.Sprintf("HTTP %d %s", c.status, want), err.Error(), false)
		} else {
			r.add(c.flag, "peer POST ("+ctxText+")", fmt.Sprintf("HTTP %d %s", c.status, want), fmt.Sprintf("HTTP %d %s", status, got),
				status == c.status && sameAnswer(got, want))
			observed.status, observed.raw = status, got
		}
		sw := sdkWant(observed)
		sg := sdkAnswer(ctx, client, c)
		r.add(c.flag, fmt.Sprintf("SDK %s(default %v)", c.call, jsonText(c.def)), sw.String(), sg.String(), sameAnswer(sg, sw))
	}

	// Bulk: the peer's bulk answer for the pro user, then one Evaluate of
	// every flag on a fresh client, which goes to the bulk endpoint. No
	// typed call, so no TYPE_MISMATCH; a flag the bulk answer lacks is
	// FLAG_NOT_FOUND.
	bulk, err := rawBulk(ctx, s, proUser)
	if err != nil {
		return nil, err
	}
	bclient, err := newSDK(ctx, s)
	if err != nil {
		return nil, err
	}
	defer bclient.Close(context.Background())
	var reqs []flagwire.Request
	var bcases []peerCase
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.flag] || c.attrs["plan"] != "pro" || c.attrs["userId"] == nil {
			continue
		}
		seen[c.flag] = true
		c.call = "batch"
		bcases = append(bcases, c)
		reqs = append(reqs, flagwire.Request{FlagKey: c.flag, Default: c.def})
	}
	res := bclient.Evaluate(flagwire.WithAttributes(ctx, proUser), reqs)
	for i, c := range bcases {
		got, inBulk := bulk[c.flag]
		wantText, gotText := c.raw.String(), got.String()
		ok := inBulk && sameAnswer(got, c.raw)
		if c.status == http.StatusNotFound {
			wantText = "absent"
			ok = !inBulk
		}
		if !inBulk {
			gotText = "absent"
		}
		observed := c
		observed.status, observed.raw = http.StatusOK, got
		if !inBulk {
			observed.status, observed.raw = http.StatusNotFound, answer{ErrorCode: string(flagwire.CodeFlagNotFound)}
		}
		if why := bulkDeviation(s.name, c.flag, got); !ok && why != "" {
			r.addKnown(c.flag, "peer bulk POST", wantText, gotText, why)
		} else {
			r.add(c.flag, "peer bulk POST", wantText, gotText, ok)
		}
		sw := sdkWant(observed)
		d := res[i].Detail
		sg := answer{Value: res[i].Value, Variant: d.Variant, Reason: string(d.Reason.Kind), ErrorCode: string(d.ErrorCode)}
		r.add(c.flag, "SDK Evaluate batch (bulk)", sw.String(), sg.String(), sameAnswer(sg, sw))
	}

	// The 50/50 split: every answer is a or b with the documented reason,
	// the same subject gets the same variant again, the SDK serves what the
	// peer answered, and each variant gets 45–55 % of the subjects.
	reason := splitReason[s.name]
	counts := map[string]int{}
	var bad, unsticky, differ int
	var firstBad string
	for i := range subjects {
		attrs := flagwire.Attributes{"userId": fmt.Sprintf("subject-%d", i)}
		_, a1, err1 := rawAnswer(ctx, s, "experiment", attrs)
		_, a2, err2 := rawAnswer(ctx, s, "experiment", attrs)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("experiment: %v %v", err1, err2)
		}
		if (a1.Variant != "a" && a1.Variant != "b") || a1.Value != a1.Variant || a1.Reason != reason || a1.ErrorCode != "" {
			bad++
			if firstBad == "" {
				firstBad = a1.String()
			}
		}
		if !sameAnswer(a1, a2) {
			unsticky++
		}
		counts[a1.Variant]++
		sg := sdkAnswer(ctx, client, peerCase{flag: "experiment", call: "string", def: "none", attrs: attrs})
		if !sameAnswer(sg, sdkWant(peerCase{call: "string", def: "none", status: 200, raw: a1})) {
			differ++
		}
	}
	shareA := float64(counts["a"]) / float64(subjects)
	want := fmt.Sprintf("%d subjects: a or b, reason %s; 45–55%% a; sticky; SDK = peer mapped", subjects, reason)
	got := fmt.Sprintf("a %.1f%%, b %.1f%%; %d off-spec%s; %d not sticky; SDK differs %d",
		100*shareA, 100*float64(counts["b"])/float64(subjects), bad, firstBadText(firstBad), unsticky, differ)
	r.add("experiment", "split (peer POST + SDK string)", want, got,
		bad == 0 && unsticky == 0 && differ == 0 && shareA >= 0.45 && shareA <= 0.55)
	return r, nil
}

func firstBadText(s string) string {
	if s == "" {
		return ""
	}
	return " (first: " + s + ")"
}

func jsonText(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}
