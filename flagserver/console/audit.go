package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// auditPageSize is the number of audit entries per console page.
const auditPageSize = 50

type auditData struct {
	Entity, Actor, Since, Until, AllEnvs string
	Entries                              []changeView
	Next, First                          string
	FilterNote                           string
}

// parseWhen reads a time filter: RFC 3339, "YYYY-MM-DDTHH:MM" (a
// datetime-local field, taken as UTC) or a date.
func parseWhen(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02T15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// auditPage shows the audit log, filtered by entity, person (actor: an
// entry's subject, requester or approver) and time (since inclusive,
// until exclusive), newest first, a page at a time. The filters are
// sent to the server and also applied to what it returns, so a server
// that ignores one still shows only matching entries.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, "Audit log", "audit")
	q := r.URL.Query()
	d := &auditData{Entity: strings.TrimSpace(q.Get("entity")), Actor: strings.TrimSpace(q.Get("actor")),
		Since: strings.TrimSpace(q.Get("since")), Until: strings.TrimSpace(q.Get("until")), AllEnvs: q.Get("all")}
	aq := url.Values{"limit": {strconv.Itoa(auditPageSize)}}
	if d.AllEnvs == "" {
		aq.Set("environment", v.Env)
	}
	if d.Entity != "" {
		if !strings.Contains(d.Entity, ":") {
			d.Entity = "flag:" + d.Entity
		}
		aq.Set("entity", d.Entity)
	}
	if d.Actor != "" {
		aq.Set("actor", d.Actor)
	}
	since, ok := timeBound(d.Since, "since", aq)
	if !ok {
		c.renderAuditError(w, r, v, d, "“From” must be a date and time such as 2026-12-07T21:00.")
		return
	}
	until, ok := timeBound(d.Until, "until", aq)
	if !ok {
		c.renderAuditError(w, r, v, d, "“Until” must be a date and time such as 2026-12-07T22:00.")
		return
	}
	if cur := q.Get("cursor"); cur != "" {
		aq.Set("cursor", cur)
		aq.Set("before", cur)
		d.First = "yes"
	}
	var page auditPage
	if err := c.call(r, s.token, "GET", "/v1/audit", aq, nil, nil).decode(&page); err != nil {
		c.apiFailure(w, r, s, err)
		return
	}
	for i := len(page.Entries) - 1; i >= 0; i-- { // newest first
		e := page.Entries[i]
		if d.Actor != "" && e.Subject != d.Actor && e.RequestedBy != d.Actor && e.ApprovedBy != d.Actor {
			continue
		}
		if (!since.IsZero() && e.Time.Before(since)) || (!until.IsZero() && !e.Time.Before(until)) { // since inclusive, until exclusive
			continue
		}
		d.Entries = append(d.Entries, changeView{auditEntry: e, Changes: diffJSON(e.Before, e.After)})
	}
	d.Next = page.next()
	v.Data = d
	c.render(w, r, http.StatusOK, "audit", v)
}

func (c *Console) renderAuditError(w http.ResponseWriter, r *http.Request, v *view, d *auditData, msg string) {
	v.Error = msg
	v.Data = d
	c.render(w, r, http.StatusBadRequest, "audit", v)
}

// timeBound parses a time filter's value (empty: no bound, the zero time)
// and sets it in aq as param, in RFC 3339; ok is false when value is not
// a date and time.
func timeBound(value, param string, aq url.Values) (t time.Time, ok bool) {
	if value == "" {
		return time.Time{}, true
	}
	if t, ok = parseWhen(value); ok {
		aq.Set(param, t.UTC().Format(time.RFC3339))
	}
	return t, ok
}
