package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
)

// rowOf returns the table row of flag key on a flag list page, or "".
func rowOf(body, key string) string {
	re := regexp.MustCompile(`<tr data-search="` + regexp.QuoteMeta(key) + ` [^"]*"[^>]*>.*?</tr>`)
	return re.FindString(body)
}

// The flag list: state, type, owners, rollout, kill-switch marker, last
// change, sunset with expired ones highlighted; searchable and sortable.
func TestFlagList(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	h := newHarness(t, Options{Now: clock.now})
	if _, err := h.api.PutFlag("prod", h.flag(t, "prod", "search-v2-ranking"), "erin", "touch"); err != nil {
		t.Fatal(err)
	}
	b := h.browser(t)
	b.signIn(adminToken.Secret)
	p := b.get("/ui/flags?environment=prod").wantStatus(t, http.StatusOK).wantContains(t, "3 of 3 flags")
	checkout := rowOf(p.body, "checkout-new-flow")
	for _, want := range []string{`<td class="on">on</td>`, "boolean", "payments-team", "kill switch", "2031-01-01"} {
		if !strings.Contains(checkout, want) {
			t.Errorf("checkout-new-flow's row lacks %q: %s", want, checkout)
		}
	}
	if strings.Contains(checkout, "expired") {
		t.Errorf("checkout-new-flow (sunset 2031) is marked expired: %s", checkout)
	}
	search := rowOf(p.body, "search-v2")
	for _, want := range []string{`class="expired"`, "10%", "2020-06-30", `<strong class="tag expired">expired</strong>`, "search-team"} {
		if !strings.Contains(search, want) {
			t.Errorf("search-v2's row lacks %q: %s", want, search)
		}
	}
	if strings.Contains(search, "kill switch") {
		t.Errorf("search-v2 is not a kill switch: %s", search)
	}
	if ranking := rowOf(p.body, "search-v2-ranking"); !strings.Contains(ranking, " by erin") {
		t.Errorf("search-v2-ranking's last change (by erin) is not shown: %s", ranking)
	}

	// Search by key, owner or description.
	p = b.get("/ui/flags?environment=prod&q=SEARCH").wantContains(t, "2 of 3 flags")
	if rowOf(p.body, "checkout-new-flow") != "" || rowOf(p.body, "search-v2") == "" {
		t.Fatal("q=SEARCH did not find the search flags only")
	}
	p = b.get("/ui/flags?environment=prod&q=payments-team").wantContains(t, "1 of 3 flags")
	if rowOf(p.body, "checkout-new-flow") == "" {
		t.Fatal("search by owner failed")
	}

	// Sort: the order of rows follows the column and direction asked.
	order := func(p *page) []string {
		var keys []string
		for _, m := range regexp.MustCompile(`<tr data-search="(\S+) `).FindAllStringSubmatch(p.body, -1) {
			keys = append(keys, m[1])
		}
		return strings.Fields(strings.Join(keys, " "))
	}
	for q, want := range map[string]string{
		"sort=key&order=desc":     "search-v2-ranking search-v2 checkout-new-flow",
		"sort=ttl&order=asc":      "search-v2-ranking search-v2 checkout-new-flow", // "" < 2020-06-30 < 2031-01-01
		"sort=rollout&order=desc": "search-v2 checkout-new-flow search-v2-ranking", // 10 % first; no rollout ties by key
	} {
		if got := strings.Join(order(b.get("/ui/flags?environment=prod&"+q)), " "); got != want {
			t.Errorf("%s: rows %s, want %s", q, got, want)
		}
	}
	p = b.get("/ui/flags?environment=prod&sort=key&order=desc")
	p.wantContains(t, `aria-sort="descending"`)
}

// A flag's page shows its rules, segments, prerequisites, dependents,
// metadata and its history with who, when, why and a field-by-field diff.
func TestFlagPage(t *testing.T) {
	h := newHarness(t, Options{})
	b := h.browser(t)
	csrf := b.signIn(adminToken.Secret)
	p := b.get("/ui/flags/checkout-new-flow?environment=prod").wantStatus(t, http.StatusOK)
	p.wantContains(t, "rule-1", "region == &#39;EU&#39; and plan == &#39;free&#39;", "rule-2", "beta_testers", "plan == &#39;pro&#39;",
		"payments-team", "the new checkout", "yes: turning it off needs no approval", "Turn off (kill switch)")
	b.get("/ui/flags/search-v2?environment=prod").wantContains(t, "Required by", `href="/ui/flags/search-v2-ranking?environment=prod"`)
	b.get("/ui/flags/search-v2-ranking?environment=prod").wantContains(t, `href="/ui/flags/search-v2?environment=prod">search-v2</a> serving true`)

	etag := b.get("/ui/flags/search-v2?environment=prod").field(t, etagRE)
	res := b.post("/ui/flags/search-v2/ramp", url.Values{"csrf": {csrf}, "environment": {"prod"}, "etag": {etag},
		"target": {"default"}, "step": {"25"}, "reason": {"metrics are stable"}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("ramp: %d\n%s", res.status, res.body)
	}
	p = b.get(res.header.Get("Location")).wantStatus(t, http.StatusOK)
	p.wantContains(t, "Rollout set to 25%.", "<strong>alice</strong> updated <code>flag:search-v2</code>", "Why: metrics are stable",
		"<code>default.percentage</code></td><td><del>10</del></td><td><ins>25</ins>")
	// The notice is shown once.
	if strings.Contains(b.get("/ui/flags/search-v2?environment=prod").body, "Rollout set to") {
		t.Fatal("the notice is shown again")
	}
}

// The ramp moves a percentage to the next step of 1 → 5 → 10 → 25 → 50 →
// 100, or to a typed value; a reason is required and nonsense refused.
func TestRamp(t *testing.T) {
	h := newHarness(t, Options{})
	b := h.browser(t)
	csrf := b.signIn(writerToken.Secret)
	ramp := func(form url.Values) *page {
		t.Helper()
		etag := b.get("/ui/flags/search-v2?environment=prod").field(t, etagRE)
		form.Set("csrf", csrf)
		form.Set("environment", "prod")
		form.Set("etag", etag)
		form.Set("target", "default")
		return b.post("/ui/flags/search-v2/ramp", form)
	}
	steps := []float64{25, 50, 100}
	for _, want := range steps {
		p := b.get("/ui/flags/search-v2?environment=prod")
		m := regexp.MustCompile(`name="step" value="([^"]+)"`).FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no next step offered before %v%%", want)
		}
		ramp(url.Values{"step": {m[1]}, "reason": {"next step"}}).wantStatus(t, http.StatusSeeOther)
		if got := *h.flag(t, "prod", "search-v2").Default.Percentage; got != want {
			t.Fatalf("after the next step: %v%%, want %v%%", got, want)
		}
	}
	if strings.Contains(b.get("/ui/flags/search-v2?environment=prod").body, `name="step"`) {
		t.Fatal("a next step is offered at 100%")
	}
	ramp(url.Values{"percentage": {"12.5%"}, "reason": {"back off"}}).wantStatus(t, http.StatusSeeOther)
	if got := *h.flag(t, "prod", "search-v2").Default.Percentage; got != 12.5 {
		t.Fatalf("typed 12.5%%: got %v", got)
	}
	ramp(url.Values{"percentage": {"150"}, "reason": {"x"}}).wantStatus(t, http.StatusBadRequest).wantContains(t, "from 0 to 100")
	ramp(url.Values{"percentage": {"50"}}).wantStatus(t, http.StatusBadRequest).wantContains(t, "change reason is required")
	if got := *h.flag(t, "prod", "search-v2").Default.Percentage; got != 12.5 {
		t.Fatalf("a refused ramp changed the flag: %v", got)
	}
	// The rest of the fallthrough is kept as stored.
	if v := h.flag(t, "prod", "search-v2").Default.Variant; v != true {
		t.Fatalf("the ramp changed the served variant: %v", v)
	}
}

// Two people edit the same flag: the second, whose page shows the state
// before the first's change, is refused with "changed by someone else"
// and the current state; the first's change stands.
func TestRampConflict(t *testing.T) {
	h := newHarness(t, Options{})
	alice, bob := h.browser(t), h.browser(t)
	ac, bc := alice.signIn(adminToken.Secret), bob.signIn(writerToken.Secret)
	aliceETag := alice.get("/ui/flags/search-v2?environment=prod").field(t, etagRE)
	bobETag := bob.get("/ui/flags/search-v2?environment=prod").field(t, etagRE)
	bob.post("/ui/flags/search-v2/ramp", url.Values{"csrf": {bc}, "environment": {"prod"}, "etag": {bobETag}, "target": {"default"},
		"step": {"25"}, "reason": {"bob's ramp"}}).wantStatus(t, http.StatusSeeOther)
	p := alice.post("/ui/flags/search-v2/ramp", url.Values{"csrf": {ac}, "environment": {"prod"}, "etag": {aliceETag}, "target": {"default"},
		"step": {"25"}, "percentage": {"50"}, "reason": {"alice's ramp"}})
	p.wantStatus(t, http.StatusConflict).wantContains(t, "Changed by someone else", "bob changed it", "bob&#39;s ramp", "not</strong> applied",
		`<span class="pct">25%</span>`)
	if got := *h.flag(t, "prod", "search-v2").Default.Percentage; got != 25 {
		t.Fatalf("the stale edit overwrote: %v%%", got)
	}
	// The page carries the new ETag: submitting again applies.
	alice.post("/ui/flags/search-v2/ramp", url.Values{"csrf": {ac}, "environment": {"prod"}, "etag": {p.field(t, etagRE)}, "target": {"default"},
		"percentage": {"50"}, "reason": {"alice's ramp, again"}}).wantStatus(t, http.StatusSeeOther)
	if got := *h.flag(t, "prod", "search-v2").Default.Percentage; got != 50 {
		t.Fatalf("resubmitted: %v%%", got)
	}
}

// The kill switch: the first click asks for a reason, the second turns the
// flag off; a stream subscriber gets the change, and the page tells when
// streams were told (the time the server recorded the change).
func TestKillSwitch(t *testing.T) {
	h := newHarness(t, Options{})
	b := h.browser(t)
	csrf := b.signIn(adminToken.Secret)
	flagPage := b.get("/ui/flags/checkout-new-flow?environment=prod")
	if !strings.Contains(flagPage.body, `href="/ui/flags/checkout-new-flow/kill?environment=prod"`) {
		t.Fatal("no kill switch on the flag page")
	}
	b.get("/ui/flags/checkout-new-flow/kill?environment=prod").wantStatus(t, http.StatusOK).wantContains(t, "Reason (required)", "Turn off now")
	b.post("/ui/flags/checkout-new-flow/kill", url.Values{"csrf": {csrf}, "environment": {"prod"}, "reason": {"  "}}).
		wantStatus(t, http.StatusBadRequest).wantContains(t, "A reason is required")
	if h.flag(t, "prod", "checkout-new-flow").State == "off" {
		t.Fatal("turned off without a reason")
	}

	req, _ := http.NewRequest("GET", h.URL+"/v1/stream?environment=prod", nil)
	req.Header.Set("Authorization", "Bearer "+readerToken.Secret)
	stream := testkit.OpenStream(t, http.DefaultClient, req)
	defer stream.Close()

	p := b.post("/ui/flags/checkout-new-flow/kill", url.Values{"csrf": {csrf}, "environment": {"prod"}, "reason": {"INC-4711 checkout errors"}})
	p.wantStatus(t, http.StatusOK).wantContains(t, "is off in prod", "SDK streams were told at", "Reason recorded: INC-4711 checkout errors")
	f := h.flag(t, "prod", "checkout-new-flow")
	if f.State != "off" {
		t.Fatalf("state %q after the kill switch", f.State)
	}
	for {
		ev := stream.Next(t)
		if ev.Event != "invalidate" && !strings.Contains(ev.Data, "invalidate") {
			continue
		}
		var se struct {
			FlagKey string `json:"flagKey"`
			Version int64  `json:"version"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &se); err != nil {
			t.Fatal(err)
		}
		if se.FlagKey == "checkout-new-flow" {
			if !strings.Contains(p.body, "(event "+jsonText(float64(se.Version))+")") {
				t.Fatalf("the page does not name the stream's event %d:\n%s", se.Version, p.body)
			}
			break
		}
	}
	// The audit log has who and why.
	b.get("/ui/audit?environment=prod&entity=flag:checkout-new-flow").wantContains(t, "<strong>alice</strong> updated", "Why: INC-4711 checkout errors",
		"<code>state</code></td><td></td><td><ins>&#34;off&#34;</ins>")
	// An off flag offers no kill switch.
	if strings.Contains(b.get("/ui/flags/checkout-new-flow?environment=prod").body, "/kill?") {
		t.Fatal("the kill switch is offered for an off flag")
	}
}

// What a token may not do, the console does not offer; asked anyway, the
// API refuses and nothing changes. A token limited to environments sees
// only those.
func TestScopesOffered(t *testing.T) {
	h := newHarness(t, Options{})
	carol := h.browser(t)
	csrf := carol.signIn(readerToken.Secret)
	p := carol.get("/ui/flags/search-v2?environment=prod").wantStatus(t, http.StatusOK)
	if strings.Contains(p.body, "/kill?") || strings.Contains(p.body, `name="reason"`) {
		t.Fatal("a read-only token is offered writes")
	}
	carol.post("/ui/flags/search-v2/kill", url.Values{"csrf": {csrf}, "environment": {"prod"}, "reason": {"try"}}).
		wantStatus(t, http.StatusForbidden).wantContains(t, "Your token may not do this", "flags:write")
	if h.flag(t, "prod", "search-v2").State == "off" {
		t.Fatal("a read-only token turned a flag off")
	}

	dave := h.browser(t)
	form := dave.get("/ui/signin")
	dave.post("/ui/signin", url.Values{"csrf": {form.field(t, csrfRE)}, "token": {stagingTok.Secret}}).wantStatus(t, http.StatusSeeOther)
	p = dave.get("/ui/flags").wantStatus(t, http.StatusOK).wantContains(t, "Flags in staging")
	if strings.Contains(p.body, `<option value="prod"`) {
		t.Fatal("a staging-only token is offered prod")
	}
	dave.get("/ui/flags?environment=prod").wantStatus(t, http.StatusForbidden).wantContains(t, "not allowed environment")
}

// The flag list's rows follow every change (they are kept rendered between
// views of one state) and the clock: a progressive rollout's share and a
// sunset pass as time does.
func TestFlagListFollowsChanges(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)}
	cfg := testConfig("prod")
	cfg.Flags = append(cfg.Flags, evaluate.Flag{Key: "ramp-by-time", Default: &evaluate.Serve{Progressive: &evaluate.Progressive{
		Variant: true, Steps: []evaluate.RampStep{{At: clock.t.Add(30 * time.Minute), Percentage: 5}, {At: clock.t.Add(2 * time.Hour), Percentage: 50}}}},
		Metadata: evaluate.Metadata{TTL: "2026-12-07T11:30:00Z"}})
	h := newHarness(t, Options{Now: clock.now}, cfg)
	b := h.browser(t)
	csrf := b.signIn(adminToken.Secret)
	row := func(key string) string { return rowOf(b.get("/ui/flags?environment=prod").body, key) }
	if r := row("search-v2"); !strings.Contains(r, "10%") || strings.Contains(r, " by ") {
		t.Fatalf("before: %s", r)
	}
	etag := b.get("/ui/flags/search-v2?environment=prod").field(t, etagRE)
	b.post("/ui/flags/search-v2/ramp", url.Values{"csrf": {csrf}, "environment": {"prod"}, "etag": {etag}, "target": {"default"},
		"step": {"25"}, "reason": {"r"}}).wantStatus(t, http.StatusSeeOther)
	if r := row("search-v2"); !strings.Contains(r, "25%") || !strings.Contains(r, " by alice") {
		t.Fatalf("after the ramp: %s", r)
	}
	if r := row("ramp-by-time"); !strings.Contains(r, "0% (ramping)") || strings.Contains(r, "expired") {
		t.Fatalf("at 11:00: %s", r)
	}
	clock.add(40 * time.Minute) // 11:40: the first step (5 %) reached; the sunset too
	if r := row("ramp-by-time"); !strings.Contains(r, "5% (ramping)") || !strings.Contains(r, "expired") {
		t.Fatalf("at 11:40: %s", r)
	}
}
