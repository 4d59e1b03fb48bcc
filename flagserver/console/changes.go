package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// changeRequest is a change request of a protected environment (GET
// /v1/changes): a write that waits for another person's approval.
type changeRequest struct {
	ID           string          `json:"id"`
	Status       string          `json:"status"`
	Environment  string          `json:"environment"`
	Entity       entityRef       `json:"entity"`
	RequestedBy  string          `json:"requestedBy"`
	ChangeReason string          `json:"changeReason"`
	Diff         json.RawMessage `json:"diff"`

	// Other fields the server sends (times, approver, its reason), shown
	// as they come.
	Extra [][2]string `json:"-"`
}

// entityRef names the entity a change request writes: {"kind", "key"},
// or the audit log's "kind:key".
type entityRef struct{ Kind, Key string }

// UnmarshalJSON reads either form.
func (e *entityRef) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		e.Kind, e.Key, _ = strings.Cut(s, ":")
		return nil
	}
	var o struct{ Kind, Key string }
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	e.Kind, e.Key = o.Kind, o.Key
	return nil
}

// String is "kind:key".
func (e entityRef) String() string { return e.Kind + ":" + e.Key }

// changeStatuses are the statuses the list filters by: a request waits
// (pending), was approved and applied, rejected, or found stale when an
// approval came after the entity changed.
var changeStatuses = []string{"pending", "applied", "rejected", "stale", "all"}

// decodeChanges reads a list of change requests: a JSON array, or an
// object holding it as "changes" or "items".
func decodeChanges(body []byte) ([]changeRequest, error) {
	var list []changeRequest
	if err := json.Unmarshal(body, &list); err == nil {
		return list, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, err
	}
	for _, k := range []string{"changes", "items"} {
		if raw, ok := obj[k]; ok {
			err := json.Unmarshal(raw, &list)
			return list, err
		}
	}
	return nil, nil
}

// extraFields lists the members of a change request's document other than
// those changeRequest names.
func extraFields(body []byte) [][2]string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return nil
	}
	var out [][2]string
	for k, v := range obj {
		switch k {
		case "id", "status", "environment", "entity", "requestedBy", "changeReason", "diff", "baseETag", "currentETag":
			continue
		}
		label, ok := changeFieldLabels[k]
		if !ok {
			label = k
		}
		out = append(out, [2]string{label, jsonText(v)})
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// changeFieldLabels names the change request fields the page shows as
// they come.
var changeFieldLabels = map[string]string{
	"action": "Action", "createdAt": "Created", "decidedBy": "Decided by", "decisionReason": "Decision reason",
	"decidedAt": "Decided", "appliedVersion": "Applied at version",
}

// diffView is a change request's diff made readable.
type diffView struct {
	Fields []fieldChange
	Raw    string
}

// readableDiff renders a diff that is {"before","after"} field by field,
// and anything else as indented JSON.
func readableDiff(raw json.RawMessage) diffView {
	var ba struct {
		Before json.RawMessage `json:"before"`
		After  json.RawMessage `json:"after"`
	}
	if json.Unmarshal(raw, &ba) == nil && (ba.Before != nil || ba.After != nil) {
		if string(ba.Before) == "null" {
			ba.Before = nil
		}
		if string(ba.After) == "null" {
			ba.After = nil
		}
		return diffView{Fields: diffJSON(ba.Before, ba.After)}
	}
	if len(raw) == 0 {
		return diffView{}
	}
	return diffView{Raw: prettyJSON(raw)}
}

type changesData struct {
	Status      string
	Statuses    []string
	Changes     []changeRequest
	Unsupported bool
}

// changesPage lists the environment's change requests by status.
func (c *Console) changesPage(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, "Change requests", "changes")
	d := &changesData{Status: r.URL.Query().Get("status"), Statuses: changeStatuses}
	if !slices.Contains(changeStatuses, d.Status) {
		d.Status = "pending"
	}
	q := url.Values{"environment": {v.Env}}
	if d.Status != "all" {
		q.Set("status", d.Status)
	}
	res := c.call(r, s.token, "GET", "/v1/changes", q, nil, nil)
	if ae := res.err(); ae != nil {
		if ae.Status == http.StatusNotFound && ae.Code == "not_found" {
			d.Unsupported = true
			v.Data = d
			c.render(w, r, http.StatusOK, "changes", v)
			return
		}
		c.apiFailure(w, r, s, ae)
		return
	}
	list, err := decodeChanges(res.body)
	if err != nil {
		c.message(w, r, s, http.StatusBadGateway, "Change requests", "The server's list of change requests could not be read.")
		return
	}
	d.Changes = list
	v.Notice = s.takeNotice()
	v.Data = d
	c.render(w, r, http.StatusOK, "changes", v)
}

type changeData struct {
	Change    changeRequest
	Diff      diffView
	Own       bool // requested by the signed-in person: they cannot approve it
	CanDecide bool
}

// changePage shows one change request, its diff and (to another person
// holding flags:approve) the approve and reject forms.
func (c *Console) changePage(w http.ResponseWriter, r *http.Request, s *session) {
	c.showChange(w, r, s, http.StatusOK, "")
}

func (c *Console) showChange(w http.ResponseWriter, r *http.Request, s *session, status int, errText string) {
	v := c.newView(r, s, "", "changes")
	id := r.PathValue("id")
	res := c.call(r, s.token, "GET", "/v1/changes/"+url.PathEscape(id), nil, nil, nil)
	var cr changeRequest
	if err := res.decode(&cr); err != nil {
		c.apiFailure(w, r, s, err)
		return
	}
	cr.Extra = extraFields(res.body)
	d := &changeData{Change: cr, Diff: readableDiff(cr.Diff), Own: cr.RequestedBy == s.me.Subject}
	d.CanDecide = cr.Status == "pending" && !d.Own && s.me.has("flags:approve")
	if cr.Environment != "" {
		v.Env = cr.Environment
	}
	v.Title = "Change request " + cr.ID
	v.Notice = s.takeNotice()
	v.Error = errText
	v.Data = d
	c.render(w, r, status, "change", v)
}

// decide approves or rejects a change request with the reason given.
func (c *Console) decide(w http.ResponseWriter, r *http.Request, s *session) {
	id, action := r.PathValue("id"), r.PathValue("action")
	if action != "approve" && action != "reject" {
		c.message(w, r, s, http.StatusNotFound, "Not found", "A change request can be approved or rejected.")
		return
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		c.showChange(w, r, s, http.StatusBadRequest, "A reason is required to "+action+" a change request.")
		return
	}
	res := c.call(r, s.token, "POST", "/v1/changes/"+url.PathEscape(id)+"/"+action, nil, map[string]any{"changeReason": reason}, nil)
	if ae := res.err(); ae != nil {
		if ae.Status == http.StatusUnauthorized {
			c.apiFailure(w, r, s, ae)
			return
		}
		msg := describeAPIError(ae)
		if ae.Status == http.StatusConflict {
			msg = "Not applied: " + ae.Message
			if ae.Code != "change_not_pending" {
				msg += " The change must be proposed again against the current state."
			}
		}
		c.showChange(w, r, s, ae.Status, msg)
		return
	}
	done := "approved and applied"
	var cr changeRequest
	if res.decode(&cr) == nil && cr.Status != "" && cr.Status != "applied" && action == "approve" {
		done = "approved; its status is now " + cr.Status
	}
	if action == "reject" {
		done = "rejected"
	}
	c.redirectWithNotice(w, r, s, Prefix+"changes/"+url.PathEscape(id), "Change request "+id+" "+done+".")
}
