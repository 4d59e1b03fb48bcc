package console

import (
	"bytes"
	"cmp"
	"encoding/json"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// configCache keeps the last decoded config of each environment with its
// ETag. It is only used after the API answered 304 Not Modified to the
// signed-in person's own request, so it never shows what their token may
// not read.
type configCache struct {
	mu sync.Mutex
	m  map[string]cachedConfig
}

type cachedConfig struct {
	etag string
	cfg  *evaluate.Config
}

// fetchConfig returns env's whole config (GET /v1/flags) as s may read it,
// and its ETag.
func (c *Console) fetchConfig(r *http.Request, s *session, env string) (*evaluate.Config, string, error) {
	c.configs.mu.Lock()
	cached, ok := c.configs.m[env]
	c.configs.mu.Unlock()
	var hdr map[string]string
	if ok {
		hdr = map[string]string{"If-None-Match": cached.etag}
	}
	res := c.call(r, s.token, "GET", "/v1/flags", url.Values{"environment": {env}}, nil, hdr)
	if res.status == http.StatusNotModified && ok {
		return cached.cfg, cached.etag, nil
	}
	cfg := new(evaluate.Config)
	if err := res.decode(cfg); err != nil {
		return nil, "", err
	}
	etag := res.header.Get("ETag")
	if etag != "" {
		c.configs.mu.Lock()
		if c.configs.m == nil {
			c.configs.m = map[string]cachedConfig{}
		}
		c.configs.m[env] = cachedConfig{etag: etag, cfg: cfg}
		c.configs.mu.Unlock()
	}
	return cfg, etag, nil
}

// auditEntry is an entry of GET /v1/audit.
type auditEntry = wire.AuditEntry

// auditPage is the body of GET /v1/audit. Servers name the next page's
// position nextCursor or nextBefore.
type auditPage struct {
	Entries    []auditEntry    `json:"entries"`
	NextCursor json.RawMessage `json:"nextCursor"`
	NextBefore int64           `json:"nextBefore"`
}

// next returns the position of the following (older) page, or "".
func (p *auditPage) next() string {
	if len(p.NextCursor) > 0 && string(p.NextCursor) != "null" {
		return jsonText(p.NextCursor)
	}
	if p.NextBefore > 0 {
		return strconv.FormatInt(p.NextBefore, 10)
	}
	return ""
}

// recentChangesLimit is how many of an environment's newest audit entries
// the flag list reads to show who changed each flag last, and when.
const recentChangesLimit = 200

// recentChanges returns the newest audit entry of each entity among env's
// newest entries (recentChangesLimit of them, and those written since),
// or nil when s may not read the audit log. The map is kept per
// environment with the id of its newest entry: while the server's newest
// entry (asked with s's token) is the same, it is reused; when only a few
// entries were added, they are read and merged (a page of
// recentChangesStep that reaches back to the kept newest one); else the
// newest recentChangesLimit are read anew.
func (c *Console) recentChanges(r *http.Request, s *session, env string) map[string]*auditEntry {
	head, ok := c.readChanges(r, s, env, 1)
	if !ok {
		return nil
	}
	if len(head) == 0 {
		return map[string]*auditEntry{}
	}
	newest := head[0].ID
	c.recent.mu.Lock()
	cached, have := c.recent.m[env]
	c.recent.mu.Unlock()
	if have && cached.newest == newest {
		return cached.byEntity
	}
	var out map[string]*auditEntry
	if have {
		if step, ok := c.readChanges(r, s, env, recentChangesStep); ok && len(step) > 0 && step[0].ID <= cached.newest {
			out = maps.Clone(cached.byEntity)
			for _, e := range step {
				if e.ID > cached.newest {
					out[e.Entity] = e
				}
			}
		}
	}
	if out == nil {
		page, ok := c.readChanges(r, s, env, recentChangesLimit)
		if !ok {
			return nil
		}
		out = make(map[string]*auditEntry, len(page))
		for _, e := range page {
			out[e.Entity] = e
		}
	}
	last := int64(0)
	for _, e := range out {
		last = max(last, e.ID)
	}
	c.recent.mu.Lock()
	if c.recent.m == nil {
		c.recent.m = map[string]recentEntry{}
	}
	c.recent.m[env] = recentEntry{newest: last, byEntity: out}
	c.recent.mu.Unlock()
	return out
}

// recentChangesStep is the page read to catch up with a few new audit
// entries.
const recentChangesStep = 50

// readChanges reads env's newest limit audit entries (who, when, which
// entity), oldest first; ok is false when s may not read them.
func (c *Console) readChanges(r *http.Request, s *session, env string, limit int) ([]*auditEntry, bool) {
	res := c.call(r, s.token, "GET", "/v1/audit", url.Values{"environment": {env}, "limit": {strconv.Itoa(limit)}}, nil, nil)
	var page struct {
		Entries []struct {
			ID      int64     `json:"id"`
			Time    time.Time `json:"time"`
			Subject string    `json:"subject"`
			Entity  string    `json:"entity"`
		} `json:"entries"`
	}
	if res.decode(&page) != nil {
		return nil, false
	}
	out := make([]*auditEntry, len(page.Entries))
	for i, e := range page.Entries {
		out[i] = &auditEntry{ID: e.ID, Time: e.Time, Subject: e.Subject, Entity: e.Entity}
	}
	return out, true
}

// recentCache keeps recentChanges' maps.
type recentCache struct {
	mu sync.Mutex
	m  map[string]recentEntry
}

type recentEntry struct {
	newest   int64
	byEntity map[string]*auditEntry
}

// rowCache keeps the rendered rows of each environment's flag list, so a
// list of 1,000 flags is rendered once, and after a change only the rows
// that changed are rendered again.
type rowCache struct {
	mu sync.Mutex
	m  map[string]map[string]renderedRow // environment → flag key → row
}

// renderedRow is a row rendered from one state of its flag: key names it
// (the flag's version, the audit entry of its last change and the day,
// which decides whether its sunset is past).
type renderedRow struct {
	key  string
	html template.HTML
}

// renderRows sets the HTML of each row: rendered before from the same
// state, else now. day is today's date; all says rows are every flag of
// the environment (no search), so rows of flags deleted since are
// dropped.
func (c *Console) renderRows(env, day string, rows []flagRow, all bool) error {
	keys := make([]string, len(rows))
	var missing []int
	c.rows.mu.Lock()
	kept := c.rows.m[env]
	for i := range rows {
		keys[i] = strconv.FormatInt(rows[i].Version, 10) + "|" + strconv.FormatInt(rows[i].changeID, 10) + "|" + day
		if k, ok := kept[rows[i].Key]; ok && k.key == keys[i] && !rows[i].volatile {
			rows[i].HTML = k.html
		} else {
			missing = append(missing, i)
		}
	}
	c.rows.mu.Unlock()
	envQuery := "?environment=" + url.QueryEscape(env)
	var buf bytes.Buffer
	for _, i := range missing {
		row := &rows[i]
		row.Href = Prefix + "flags/" + url.PathEscape(row.Key) + envQuery
		row.Search = row.Key + " " + row.Owners + " " + row.Description
		if row.ChangedBy != "" {
			row.LastChange = formatTime(row.Changed) + " by " + row.ChangedBy
		} else if row.Version > 0 {
			row.LastChange = "v" + strconv.FormatInt(row.Version, 10)
		}
		buf.Reset()
		if err := c.pages["flags"].ExecuteTemplate(&buf, "flagrow", row); err != nil {
			return err
		}
		row.HTML = template.HTML(buf.String())
	}
	if len(missing) == 0 && (!all || len(kept) == len(rows)) {
		return nil
	}
	// Keep the rows just shown; a search shows some, and the others stay
	// as they were.
	c.rows.mu.Lock()
	var next map[string]renderedRow
	if all {
		next = make(map[string]renderedRow, len(rows))
		for i := range rows {
			if !rows[i].volatile {
				next[rows[i].Key] = renderedRow{key: keys[i], html: rows[i].HTML}
			}
		}
	} else {
		next = maps.Clone(c.rows.m[env])
		if next == nil {
			next = make(map[string]renderedRow, len(rows))
		}
		for _, i := range missing {
			if !rows[i].volatile {
				next[rows[i].Key] = renderedRow{key: keys[i], html: rows[i].HTML}
			}
		}
	}
	if c.rows.m == nil {
		c.rows.m = map[string]map[string]renderedRow{}
	}
	c.rows.m[env] = next
	c.rows.mu.Unlock()
	return nil
}

// flagRow is one row of the flag list.
type flagRow struct {
	Key, State, Type, Owners, Rollout, TTL, Description string
	RolloutValue                                        float64
	Kill, Expired                                       bool
	Version                                             int64
	Changed                                             time.Time
	ChangedBy                                           string
	// Made once the rows are chosen, so the template has little to do
	// per row: the page's link, the words searched while typing and the
	// last change as shown.
	Href, Search, LastChange string
	HTML                     template.HTML // the row, rendered
	// volatile rows change with the time of day (a progressive rollout,
	// a sunset with a time): rendered at every view, never kept.
	volatile bool
	changeID int64 // the audit entry of the last change, 0 when unknown
}

type flagsData struct {
	Rows               []flagRow
	Total              int
	Query, Sort, Order string
	Columns            []column
	Now                time.Time
}

type column struct {
	Key, Label, Order string // Order: the order a click on the header asks for
	Sorted            string // "ascending", "descending" or ""
}

var flagColumns = []struct{ key, label string }{
	{"key", "Flag"}, {"state", "State"}, {"type", "Type"}, {"owners", "Owners"},
	{"rollout", "Rollout"}, {"changed", "Last change"}, {"ttl", "Sunset"},
}

// flagsPage lists the environment's flags: searchable (q), sortable (sort,
// order).
func (c *Console) flagsPage(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, "Flags", "flags")
	if v.Env == "" {
		c.message(w, r, s, http.StatusNotFound, "No environments", "Your token may use no environment this server serves.")
		return
	}
	cfg, _, err := c.fetchConfig(r, s, v.Env)
	if err != nil {
		c.apiFailure(w, r, s, err)
		return
	}
	changes := c.recentChanges(r, s, v.Env)
	q := r.URL.Query()
	d := &flagsData{Query: strings.TrimSpace(q.Get("q")), Sort: q.Get("sort"), Order: q.Get("order"), Now: c.now(), Total: len(cfg.Flags)}
	if d.Order != "desc" {
		d.Order = "asc"
	}
	if !slices.ContainsFunc(flagColumns, func(col struct{ key, label string }) bool { return col.key == d.Sort }) {
		d.Sort = "key"
	}
	needle := strings.ToLower(d.Query)
	today := d.Now.UTC()
	d.Rows = make([]flagRow, 0, len(cfg.Flags))
	for i := range cfg.Flags {
		f := &cfg.Flags[i]
		if needle != "" && !strings.Contains(strings.ToLower(f.Key), needle) &&
			!strings.Contains(strings.ToLower(strings.Join(f.Owners, " ")), needle) &&
			!strings.Contains(strings.ToLower(f.Metadata.Description), needle) {
			continue
		}
		row := flagRow{Key: f.Key, State: flagState(f), Type: flagType(f), Owners: strings.Join(f.Owners, ", "),
			TTL: f.Metadata.TTL, Description: f.Metadata.Description, Kill: f.Metadata.KillSwitch, Version: f.Version}
		row.Rollout, row.RolloutValue = rolloutSummary(f, d.Now)
		if t, ok := parseSunset(f.Metadata.TTL); ok && !t.After(today) {
			row.Expired = true
		}
		row.volatile = strings.Contains(f.Metadata.TTL, "T") || hasProgressive(f)
		if e := changes["flag:"+f.Key]; e != nil {
			row.Changed, row.ChangedBy, row.changeID = e.Time, e.Subject, e.ID
		}
		d.Rows = append(d.Rows, row)
	}
	sortRows(d.Rows, d.Sort, d.Order == "desc")
	if err := c.renderRows(v.Env, today.Format(time.DateOnly), d.Rows, needle == ""); err != nil {
		c.log.Error("console: rendering failed", "page", "flags", "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	for _, col := range flagColumns {
		cl := column{Key: col.key, Label: col.label, Order: "asc"}
		if col.key == d.Sort {
			if d.Order == "asc" {
				cl.Sorted, cl.Order = "ascending", "desc"
			} else {
				cl.Sorted = "descending"
			}
		}
		d.Columns = append(d.Columns, cl)
	}
	v.Data = d
	c.render(w, r, http.StatusOK, "flags", v)
}

func sortRows(rows []flagRow, by string, desc bool) {
	slices.SortStableFunc(rows, func(a, b flagRow) int {
		var n int
		switch by {
		case "key":
			n = cmp.Compare(a.Key, b.Key)
		case "state":
			n = cmp.Compare(a.State, b.State)
		case "type":
			n = cmp.Compare(a.Type, b.Type)
		case "owners":
			n = cmp.Compare(a.Owners, b.Owners)
		case "rollout":
			n = cmp.Compare(a.RolloutValue, b.RolloutValue)
		case "changed":
			if n = a.Changed.Compare(b.Changed); n == 0 {
				n = cmp.Compare(a.Version, b.Version)
			}
		case "ttl":
			n = cmp.Compare(a.TTL, b.TTL)
		}
		if desc {
			n = -n
		}
		if n == 0 { // ties: by key, ascending either way
			n = cmp.Compare(a.Key, b.Key)
		}
		return n
	})
}

func flagState(f *evaluate.Flag) string {
	if f.State == "" {
		return "on"
	}
	return f.State
}

// flagType is the flag's declared type, else the one its variants imply.
func flagType(f *evaluate.Flag) string {
	if f.Type != "" {
		return string(f.Type)
	}
	if len(f.Variants) == 0 {
		return "boolean"
	}
	switch f.Variants[0].Value.(type) {
	case bool:
		return "boolean"
	case float64:
		return "number"
	case nil, string:
		return "string"
	}
	return "json"
}

// parseSunset reads a metadata TTL (YYYY-MM-DD or RFC 3339).
func parseSunset(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// rolloutSummary describes the share of users the flag's rollout reaches
// (the fallthrough's, else the first rule's with one) and its percentage
// for sorting (-1 when there is none).
func rolloutSummary(f *evaluate.Flag, now time.Time) (string, float64) {
	if f.Default != nil {
		if s, p, ok := serveShare(f.Default, now); ok {
			return s, p
		}
	}
	for i := range f.Rules {
		if s, p, ok := serveShare(&f.Rules[i].Serve, now); ok {
			return s + " (" + f.Rules[i].ID + ")", p
		}
	}
	return "", -1
}

func serveShare(sv *evaluate.Serve, now time.Time) (string, float64, bool) {
	switch {
	case sv.Percentage != nil:
		return formatPercent(*sv.Percentage), *sv.Percentage, true
	case sv.Progressive != nil:
		p := progressiveShare(sv.Progressive, now)
		return formatPercent(p) + " (ramping)", p, true
	case len(sv.Rollout) > 0:
		parts := make([]string, len(sv.Rollout))
		for i, wv := range sv.Rollout {
			parts[i] = jsonText(wv.Variant) + " " + formatPercent(wv.Weight)
		}
		return strings.Join(parts, " / "), sv.Rollout[len(sv.Rollout)-1].Weight, true
	}
	return "", 0, false
}

// hasProgressive reports whether a serve of f is a progressive rollout.
func hasProgressive(f *evaluate.Flag) bool {
	if f.Default != nil && f.Default.Progressive != nil {
		return true
	}
	for i := range f.Rules {
		if f.Rules[i].Progressive != nil {
			return true
		}
	}
	return false
}

// progressiveShare is the share a progressive rollout serves at now: its
// last step reached (as of PausedAt when paused), 0 before the first.
func progressiveShare(p *evaluate.Progressive, now time.Time) float64 {
	at := now
	if p.Paused && !p.PausedAt.IsZero() {
		at = p.PausedAt
	}
	share := 0.0
	for _, st := range p.Steps {
		if !st.At.After(at) {
			share = st.Percentage
		}
	}
	return share
}
