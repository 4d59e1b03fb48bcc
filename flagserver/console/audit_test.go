package console

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var entryRE = regexp.MustCompile(`<li>\s*<p><strong>([^<]+)</strong> (\w+) <code>([^<]+)</code>`)

// entries lists (subject, entity) of the audit entries on a page.
func entries(p *page) [][2]string {
	var out [][2]string
	for _, m := range entryRE.FindAllStringSubmatch(p.body, -1) {
		out = append(out, [2]string{m[1], m[3]})
	}
	return out
}

// The audit page filters by entity, person and time, newest first, and
// pages through older entries.
func TestAuditPage(t *testing.T) {
	h := newHarness(t, Options{})
	alice, bob := h.browser(t), h.browser(t)
	ac, bc := alice.signIn(adminToken.Secret), bob.signIn(writerToken.Secret)
	etag := alice.get("/ui/flags/search-v2?environment=prod").field(t, etagRE)
	alice.post("/ui/flags/search-v2/ramp", url.Values{"csrf": {ac}, "environment": {"prod"}, "etag": {etag}, "target": {"default"},
		"step": {"25"}, "reason": {"ramp"}}).wantStatus(t, http.StatusSeeOther)
	bob.post("/ui/flags/checkout-new-flow/kill", url.Values{"csrf": {bc}, "environment": {"prod"}, "reason": {"INC-1"}}).wantStatus(t, http.StatusOK)
	bob.post("/ui/flags/search-v2/kill", url.Values{"csrf": {bc}, "environment": {"staging"}, "reason": {"INC-2"}}).wantStatus(t, http.StatusOK)

	all := entries(alice.get("/ui/audit?environment=prod").wantStatus(t, http.StatusOK))
	want := [][2]string{{"bob", "flag:checkout-new-flow"}, {"alice", "flag:search-v2"}} // newest first; staging's not here
	if len(all) != 2 || all[0] != want[0] || all[1] != want[1] {
		t.Fatalf("prod's audit page: %v, want %v", all, want)
	}
	if got := entries(alice.get("/ui/audit?environment=prod&all=1")); len(got) != 3 || got[0] != [2]string{"bob", "flag:search-v2"} {
		t.Fatalf("every environment: %v", got)
	}
	if got := entries(alice.get("/ui/audit?environment=prod&actor=bob&all=1")); len(got) != 2 || got[0][0] != "bob" || got[1][0] != "bob" {
		t.Fatalf("person bob: %v", got)
	}
	if got := entries(alice.get("/ui/audit?environment=prod&entity=search-v2&all=1")); len(got) != 2 || got[0][1] != "flag:search-v2" || got[1][1] != "flag:search-v2" {
		t.Fatalf("entity search-v2: %v", got)
	}
	now := time.Now().UTC()
	if got := entries(alice.get("/ui/audit?environment=prod&since=" + url.QueryEscape(now.Add(time.Hour).Format("2006-01-02T15:04")))); len(got) != 0 {
		t.Fatalf("since an hour from now: %v", got)
	}
	if got := entries(alice.get("/ui/audit?environment=prod&until=" + url.QueryEscape(now.Add(-time.Hour).Format("2006-01-02T15:04")))); len(got) != 0 {
		t.Fatalf("until an hour ago: %v", got)
	}
	if got := entries(alice.get("/ui/audit?environment=prod&since=" + url.QueryEscape(now.Add(-time.Hour).Format("2006-01-02T15:04")) +
		"&until=" + url.QueryEscape(now.Add(time.Hour).Format(time.RFC3339)))); len(got) != 2 {
		t.Fatalf("within the last hour: %v", got)
	}
	alice.get("/ui/audit?environment=prod&since=yesterday").wantStatus(t, http.StatusBadRequest).wantContains(t, "must be a date and time")

	// 60 more changes: the newest 50 on the first page, then the rest.
	f := h.flag(t, "prod", "search-v2-ranking")
	for i := range 60 {
		f.Metadata.Description = "change " + string(rune('A'+i%26))
		if _, err := h.api.PutFlag("prod", f, "erin", "bulk"); err != nil {
			t.Fatal(err)
		}
	}
	p := alice.get("/ui/audit?environment=prod")
	first := entries(p)
	if len(first) != auditPageSize || first[0][0] != "erin" {
		t.Fatalf("first page: %d entries", len(first))
	}
	m := regexp.MustCompile(`href="(/ui/audit\?[^"]*cursor=[^"]*)">Older entries`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatal("no link to older entries")
	}
	second := entries(alice.get(htmlUnescape(m[1])))
	if len(second) != 62-auditPageSize || second[len(second)-1] != want[1] {
		t.Fatalf("second page: %v", second)
	}
}

// A token refused the audit log of an environment is told so, not shown
// an empty log as if nothing happened.
func TestAuditNeedsScope(t *testing.T) {
	h := newHarness(t, Options{})
	dave := h.browser(t)
	form := dave.get("/ui/signin")
	dave.post("/ui/signin", url.Values{"csrf": {form.field(t, csrfRE)}, "token": {stagingTok.Secret}}).wantStatus(t, http.StatusSeeOther)
	p := dave.get("/ui/audit?environment=prod")
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "Your token may not do this") {
		t.Fatalf("status %d:\n%s", p.status, p.body)
	}
}
