package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// evalRequestOptions asks the server for everything it can tell about a
// decision.
var evalRequestOptions = map[string]bool{"includeReasons": true, "returnPayloads": true, "explain": true}

type evalData struct {
	Flags            []string
	Flag, Context    string
	Result           *evalResult
	ContextTooLarge  bool
	ConfigVersion    string
	ContextMaxLength int
}

type evalResult struct {
	Value, VariantKey, Reason, RuleID, Segment, Payload, Type, Error string
	Bucket                                                           string
	Bucketing                                                        [][2]string
	Explain                                                          []explainStep
	Raw                                                              string
}

type explainStep struct {
	Step    string `json:"step"`
	ID      string `json:"id"`
	Matched bool   `json:"matched"`
	Detail  string `json:"detail"`
}

const defaultEvalContext = `{
  "userId": "user-123",
  "plan": "pro",
  "region": "EU"
}`

// evaluatePage shows the evaluation form.
func (c *Console) evaluatePage(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, "Evaluate", "evaluate")
	d := &evalData{Flag: r.URL.Query().Get("flag"), Context: defaultEvalContext, ContextMaxLength: maxFormBytes / 2}
	if cfg, _, err := c.fetchConfig(r, s, v.Env); err == nil {
		for i := range cfg.Flags {
			d.Flags = append(d.Flags, cfg.Flags[i].Key)
		}
		slices.Sort(d.Flags)
	} else {
		c.apiFailure(w, r, s, err)
		return
	}
	v.Data = d
	c.render(w, r, http.StatusOK, "evaluate", v)
}

// evaluate asks the server (POST /v1/evaluate with explain) for the flag's
// decision for the context given, and shows value, variant, reason, rule,
// bucket and the evaluation's steps.
func (c *Console) evaluate(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, "Evaluate", "evaluate")
	d := &evalData{Flag: strings.TrimSpace(r.PostForm.Get("flag")), Context: r.PostForm.Get("context"), ContextMaxLength: maxFormBytes / 2}
	if cfg, _, err := c.fetchConfig(r, s, v.Env); err == nil {
		for i := range cfg.Flags {
			d.Flags = append(d.Flags, cfg.Flags[i].Key)
		}
		slices.Sort(d.Flags)
	}
	v.Data = d
	var ctx map[string]any
	dec := json.NewDecoder(strings.NewReader(d.Context))
	dec.UseNumber()
	if strings.TrimSpace(d.Context) == "" {
		ctx = map[string]any{}
	} else if err := dec.Decode(&ctx); err != nil || ctx == nil || dec.More() {
		v.Error = "The context must be one JSON object, such as {\"userId\": \"user-123\"}."
		c.render(w, r, http.StatusBadRequest, "evaluate", v)
		return
	}
	if d.Flag == "" {
		v.Error = "Choose a flag to evaluate."
		c.render(w, r, http.StatusBadRequest, "evaluate", v)
		return
	}
	body := map[string]any{"environment": v.Env, "requests": []any{map[string]any{"flagKey": d.Flag, "context": ctx}}, "options": evalRequestOptions}
	res := c.call(r, s.token, "POST", "/v1/evaluate", nil, body, nil)
	var out struct {
		Decisions []struct {
			Variant    json.RawMessage `json:"variant"`
			VariantKey string          `json:"variantKey"`
			Payload    json.RawMessage `json:"payload"`
			Type       string          `json:"type"`
			Reason     *struct {
				Kind    string `json:"kind"`
				RuleID  string `json:"ruleId"`
				Segment string `json:"segment"`
				Bucket  *int   `json:"bucket"`
			} `json:"reason"`
			Bucketing map[string]any `json:"bucketing"`
			Error     *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
			Explain []explainStep `json:"explain"`
		} `json:"decisions"`
		ConfigVersion json.RawMessage `json:"configVersion"`
	}
	if err := res.decode(&out); err != nil {
		c.apiFailure(w, r, s, err)
		return
	}
	if len(out.Decisions) != 1 {
		c.message(w, r, s, http.StatusBadGateway, "Evaluate", "The server's answer held no decision.")
		return
	}
	dc := out.Decisions[0]
	er := &evalResult{Value: jsonText(dc.Variant), VariantKey: dc.VariantKey, Type: dc.Type, Explain: dc.Explain}
	if len(dc.Payload) > 0 {
		er.Payload = jsonText(dc.Payload)
	}
	if dc.Reason != nil {
		er.Reason, er.RuleID, er.Segment = dc.Reason.Kind, dc.Reason.RuleID, dc.Reason.Segment
		if dc.Reason.Bucket != nil {
			er.Bucket = jsonText(float64(*dc.Reason.Bucket))
		}
	}
	for _, k := range []string{"by", "seed", "bucket", "hash"} {
		if x, ok := dc.Bucketing[k]; ok && !(k == "bucket" && er.Bucket == jsonText(x)) {
			er.Bucketing = append(er.Bucketing, [2]string{k, jsonText(x)})
		}
	}
	if dc.Error != nil {
		er.Error = dc.Error.Code + ": " + dc.Error.Message
	}
	var pretty bytes.Buffer
	json.Indent(&pretty, res.body, "", "  ")
	er.Raw = pretty.String()
	d.Result = er
	d.ConfigVersion = jsonText(out.ConfigVersion)
	c.render(w, r, http.StatusOK, "evaluate", v)
}
