package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flagwire/flagwire/evaluate"
)

// rampSteps are the steps of a progressive delivery: 1 → 5 → 10 → 25 →
// 50 → 100 %.
var rampSteps = []float64{1, 5, 10, 25, 50, 100}

// nextRampStep is the first step above p, or false at 100 %.
func nextRampStep(p float64) (float64, bool) {
	for _, s := range rampSteps {
		if s > p {
			return s, true
		}
	}
	return 0, false
}

// flagDoc is a flag as GET /v1/flags/{key} returns it, with its ETag.
type flagDoc struct {
	flag evaluate.Flag
	raw  []byte
	etag string
}

func (c *Console) fetchFlag(r *http.Request, s *session, env, key string) (*flagDoc, error) {
	res := c.call(r, s.token, "GET", "/v1/flags/"+url.PathEscape(key), url.Values{"environment": {env}}, nil, nil)
	d := &flagDoc{raw: res.body, etag: res.header.Get("ETag")}
	if err := res.decode(&d.flag); err != nil {
		return nil, err
	}
	return d, nil
}

type ruleView struct {
	ID, When, Segment, Serve string
}

type rampView struct {
	Target, Label     string
	Current, Next     float64
	HasNext           bool
	NextLabel, Prompt string
}

type segmentView struct {
	Key, When, Description string
	Static                 int
}

type changeView struct {
	auditEntry
	Changes []fieldChange
}

// conflictView tells that a write was refused because the flag changed
// since the page was shown (412).
type conflictView struct {
	By, Reason string
	At         time.Time
	Version    int64
}

type flagData struct {
	Key, ETag, State, Type, Default, Sunset string
	Expired                                 bool
	Flag                                    evaluate.Flag
	Variants                                [][3]string // name, value, payload
	Targets                                 [][2]string // variant, ids
	Rules                                   []ruleView
	Ramps                                   []rampView
	Prerequisites                           [][2]string // flag, variants
	Dependents                              []string
	Segments                                []segmentView
	FlagMetadata                            [][2]string
	History                                 []changeView
	HistoryNext                             string
	Conflict                                *conflictView
	Document                                string
}

func describeServe(sv *evaluate.Serve, now time.Time) string {
	var parts []string
	if sv.Variant != nil {
		parts = append(parts, "serve "+jsonText(sv.Variant))
	}
	if sv.Percentage != nil {
		parts = append(parts, "to "+formatPercent(*sv.Percentage)+" of subjects")
	}
	if len(sv.Rollout) > 0 {
		share, _, _ := serveShare(sv, now)
		parts = append(parts, "split "+share)
	}
	if p := sv.Progressive; p != nil {
		steps := make([]string, len(p.Steps))
		for i, st := range p.Steps {
			steps[i] = formatPercent(st.Percentage) + " at " + formatTime(st.At)
		}
		state := ""
		if p.Paused {
			state = " (paused)"
		}
		parts = append(parts, "ramp "+jsonText(p.Variant)+" now at "+formatPercent(progressiveShare(p, now))+state+": "+strings.Join(steps, ", "))
	}
	if sv.Seed != "" {
		parts = append(parts, "seed "+sv.Seed)
	}
	return strings.Join(parts, " ")
}

// flagPage shows one flag: rules, segments, variants, prerequisites,
// dependents, metadata, and its history from the audit log.
func (c *Console) flagPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.showFlag(w, r, s, http.StatusOK, "", "", nil)
}

func (c *Console) showFlag(w http.ResponseWriter, r *http.Request, s *session, status int, notice, errText string, conflict *conflictView) {
	v := c.newView(r, s, "", "flags")
	key := r.PathValue("key")
	doc, err := c.fetchFlag(r, s, v.Env, key)
	if err != nil {
		c.apiFailure(w, r, s, err)
		return
	}
	cfg, _, err := c.fetchConfig(r, s, v.Env)
	if err != nil {
		c.apiFailure(w, r, s, err)
		return
	}
	now := c.now()
	f := &doc.flag
	d := &flagData{Key: key, ETag: doc.etag, State: flagState(f), Type: flagType(f), Flag: *f, Sunset: f.Metadata.TTL,
		Conflict: conflict, Document: prettyJSON(doc.raw)}
	if t, ok := parseSunset(f.Metadata.TTL); ok && !t.After(now.UTC()) {
		d.Expired = true
	}
	for _, vr := range f.Variants {
		pl := ""
		if vr.Payload != nil {
			pl = jsonText(vr.Payload)
		}
		d.Variants = append(d.Variants, [3]string{vr.Name, jsonText(vr.Value), pl})
	}
	for _, t := range f.Targets {
		d.Targets = append(d.Targets, [2]string{jsonText(t.Variant), strings.Join(t.Values, ", ")})
	}
	segs := map[string]bool{}
	for i := range f.Rules {
		ru := &f.Rules[i]
		d.Rules = append(d.Rules, ruleView{ID: ru.ID, When: ru.When, Segment: ru.Segment, Serve: describeServe(&ru.Serve, now)})
		if ru.Segment != "" {
			segs[ru.Segment] = true
		}
		if ru.Percentage != nil {
			d.Ramps = append(d.Ramps, newRamp("rule:"+ru.ID, "Rule "+ru.ID, *ru.Percentage))
		}
	}
	if f.Default != nil {
		d.Default = describeServe(f.Default, now)
		if f.Default.Percentage != nil {
			d.Ramps = append([]rampView{newRamp("default", "Default (fallthrough)", *f.Default.Percentage)}, d.Ramps...)
		}
	}
	for _, p := range f.Prerequisites {
		vs := make([]string, len(p.Variants))
		for i, x := range p.Variants {
			vs[i] = jsonText(x)
		}
		d.Prerequisites = append(d.Prerequisites, [2]string{p.FlagKey, strings.Join(vs, ", ")})
	}
	d.Dependents = evaluate.Dependents(key, cfg)
	for i := range cfg.Segments {
		sg := &cfg.Segments[i]
		if segs[sg.Key] {
			d.Segments = append(d.Segments, segmentView{Key: sg.Key, When: sg.When, Description: sg.Description, Static: len(sg.Included) + len(sg.Excluded)})
		}
	}
	for k, x := range f.FlagMetadata {
		d.FlagMetadata = append(d.FlagMetadata, [2]string{k, jsonText(x)})
	}
	slices.SortFunc(d.FlagMetadata, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	hq := url.Values{"entity": {"flag:" + key}, "environment": {v.Env}, "limit": {"20"}}
	if b := r.URL.Query().Get("before"); b != "" {
		hq.Set("before", b)
		hq.Set("cursor", b)
	}
	var page auditPage
	if err := c.call(r, s.token, "GET", "/v1/audit", hq, nil, nil).decode(&page); err == nil {
		for i := len(page.Entries) - 1; i >= 0; i-- { // newest first
			e := page.Entries[i]
			d.History = append(d.History, changeView{auditEntry: e, Changes: diffJSON(e.Before, e.After)})
		}
		d.HistoryNext = page.next()
	}
	v.Title = "Flag " + key
	v.Notice = notice
	if v.Notice == "" {
		v.Notice = s.takeNotice()
	}
	v.Error = errText
	v.Data = d
	c.render(w, r, status, "flag", v)
}

func newRamp(target, label string, cur float64) rampView {
	rv := rampView{Target: target, Label: label, Current: cur}
	rv.Next, rv.HasNext = nextRampStep(cur)
	return rv
}

// killPage is the first click of a kill switch: it asks for the reason.
func (c *Console) killPage(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, "", "flags")
	key := r.PathValue("key")
	doc, err := c.fetchFlag(r, s, v.Env, key)
	if err != nil {
		c.apiFailure(w, r, s, err)
		return
	}
	v.Title = "Turn off " + key
	v.Data = &flagData{Key: key, State: flagState(&doc.flag), Flag: doc.flag}
	c.render(w, r, http.StatusOK, "kill", v)
}

// killResult is what the console shows after a kill switch.
type killResult struct {
	Key, Reason, ChangeID string
	Version               int64
	Told                  time.Time
	RequestID             string
	Pending               bool
}

// kill turns a flag off (PATCH state "off") with the reason given. It
// uses the flag's current ETag: turning off is what was asked whatever
// else changed meanwhile, and only the state is written.
func (c *Console) kill(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, "", "flags")
	key := r.PathValue("key")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		v.Title = "Turn off " + key
		v.Error = "A reason is required to turn a flag off: say why (an incident number, what you saw)."
		if doc, err := c.fetchFlag(r, s, v.Env, key); err == nil {
			v.Data = &flagData{Key: key, State: flagState(&doc.flag), Flag: doc.flag}
		} else {
			v.Data = &flagData{Key: key}
		}
		c.render(w, r, http.StatusBadRequest, "kill", v)
		return
	}
	var res *apiResponse
	for attempt := 0; attempt < 3; attempt++ {
		doc, err := c.fetchFlag(r, s, v.Env, key)
		if err != nil {
			c.apiFailure(w, r, s, err)
			return
		}
		res = c.call(r, s.token, "PATCH", "/v1/flags/"+url.PathEscape(key), url.Values{"environment": {v.Env}},
			map[string]any{"state": "off", "changeReason": reason}, map[string]string{"If-Match": doc.etag})
		if res.status != http.StatusPreconditionFailed {
			break
		}
	}
	out := &killResult{Key: key, Reason: reason, RequestID: res.header.Get("X-Request-Id")}
	switch {
	case res.status == http.StatusAccepted:
		var cr changeRequest
		res.decode(&cr)
		out.Pending, out.ChangeID = true, cr.ID
	case res.status == http.StatusOK:
		var f evaluate.Flag
		if err := res.decode(&f); err != nil {
			c.apiFailure(w, r, s, err)
			return
		}
		out.Version = f.Version
		// The server announces a change to SDK streams when it commits
		// it, before it answers: the audit entry's time is that moment.
		var page auditPage
		if c.call(r, s.token, "GET", "/v1/audit", url.Values{"entity": {"flag:" + key}, "environment": {v.Env}, "limit": {"10"}}, nil, nil).decode(&page) == nil {
			for _, e := range page.Entries {
				if e.RequestID == out.RequestID {
					out.Told = e.Time
				}
			}
		}
	default:
		c.apiFailure(w, r, s, res.err())
		return
	}
	v.Title = "Turned off " + key
	if out.Pending {
		v.Title = "Change request opened for " + key
	}
	v.Data = out
	c.render(w, r, http.StatusOK, "killed", v)
}

// ramp sets the percentage of one percentage serve (the fallthrough or a
// rule) with If-Match: the ETag of the page the person looked at, so an
// edit someone else made since is never overwritten (412: the page shows
// what changed).
func (c *Console) ramp(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, "", "flags")
	key := r.PathValue("key")
	f := r.PostForm
	reason := strings.TrimSpace(f.Get("reason"))
	target := f.Get("target")
	etag := f.Get("etag")
	pctText := strings.TrimSpace(f.Get("percentage"))
	if f.Get("step") != "" && pctText == "" {
		pctText = f.Get("step")
	}
	pct, err := strconv.ParseFloat(strings.TrimSuffix(pctText, "%"), 64)
	switch {
	case err != nil || pct < 0 || pct > 100 || pct != pct:
		c.showFlagError(w, r, s, "The percentage must be a number from 0 to 100.")
		return
	case reason == "":
		c.showFlagError(w, r, s, "A change reason is required to ramp a rollout.")
		return
	case etag == "":
		c.showFlagError(w, r, s, "The form lacks the flag's version; reload the page.")
		return
	}
	doc, err := c.fetchFlag(r, s, v.Env, key)
	if err != nil {
		c.apiFailure(w, r, s, err)
		return
	}
	patch, err := rampPatch(doc.raw, target, pct)
	if err != nil {
		c.showFlagError(w, r, s, err.Error())
		return
	}
	patch["changeReason"] = reason
	res := c.call(r, s.token, "PATCH", "/v1/flags/"+url.PathEscape(key), url.Values{"environment": {v.Env}}, patch,
		map[string]string{"If-Match": etag})
	switch res.status {
	case http.StatusOK:
		c.redirectWithNotice(w, r, s, flagURL(key, v.Env), "Rollout set to "+formatPercent(pct)+".")
	case http.StatusAccepted:
		var cr changeRequest
		res.decode(&cr)
		c.redirectWithNotice(w, r, s, flagURL(key, v.Env), "Change request "+cr.ID+" opened: the rollout changes to "+formatPercent(pct)+" once another person approves it.")
	case http.StatusPreconditionFailed:
		c.showFlag(w, r, s, http.StatusConflict, "", "", c.conflictOf(r, s, v.Env, key))
	default:
		c.apiFailure(w, r, s, res.err())
	}
}

// conflictOf describes the newest change of a flag: who made it, when and
// why (from the audit log, when the token may read it).
func (c *Console) conflictOf(r *http.Request, s *session, env, key string) *conflictView {
	cv := &conflictView{}
	var page auditPage
	if c.call(r, s.token, "GET", "/v1/audit", url.Values{"entity": {"flag:" + key}, "environment": {env}, "limit": {"1"}}, nil, nil).decode(&page) == nil && len(page.Entries) > 0 {
		e := page.Entries[len(page.Entries)-1]
		cv.By, cv.At, cv.Reason = e.Subject, e.Time, e.ChangeReason
	}
	return cv
}

func (c *Console) showFlagError(w http.ResponseWriter, r *http.Request, s *session, msg string) {
	c.showFlag(w, r, s, http.StatusBadRequest, "", msg, nil)
}

// rampPatch is the PATCH body setting target's percentage ("default" or
// "rule:ID") in the flag document raw, keeping every other field exactly
// as stored.
func rampPatch(raw []byte, target string, pct float64) (map[string]any, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	p, _ := json.Marshal(pct)
	if target == "default" {
		var sv map[string]json.RawMessage
		if json.Unmarshal(doc["default"], &sv) != nil || sv["percentage"] == nil {
			return nil, errors.New("this flag's fallthrough has no percentage rollout")
		}
		sv["percentage"] = p
		return map[string]any{"default": sv}, nil
	}
	id, ok := strings.CutPrefix(target, "rule:")
	if !ok {
		return nil, errors.New("choose the rollout to ramp")
	}
	var rules []map[string]json.RawMessage
	if err := json.Unmarshal(doc["rules"], &rules); err != nil {
		return nil, errors.New("this flag has no rules")
	}
	for _, ru := range rules {
		var rid string
		json.Unmarshal(ru["id"], &rid)
		if rid == id {
			if ru["percentage"] == nil {
				return nil, errors.New("rule " + id + " has no percentage rollout")
			}
			ru["percentage"] = p
			return map[string]any{"rules": rules}, nil
		}
	}
	return nil, errors.New("the flag has no rule " + id)
}

// flagURL is the console page of flag key in env.
func flagURL(key, env string) string {
	return Prefix + "flags/" + url.PathEscape(key) + "?environment=" + url.QueryEscape(env)
}
