package console

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
)

// bigConfig is an environment of n flags like real ones: owners,
// metadata, two rules and a percentage rollout each, a third of them
// kill switches, a tenth past their sunset.
func bigConfig(env string, n int) *evaluate.Config {
	cfg := &evaluate.Config{Environment: env, Salt: env + "-salt",
		Segments: []evaluate.Segment{{Key: "beta_testers", When: "plan == 'pro'"}}}
	for i := range n {
		ttl := "2031-06-30"
		if i%10 == 0 {
			ttl = "2024-01-31"
		}
		cfg.Flags = append(cfg.Flags, evaluate.Flag{
			Key:    fmt.Sprintf("team-%02d.feature-%04d", i%40, i),
			Owners: []string{fmt.Sprintf("team-%02d", i%40), "platform-oncall"},
			Rules: []evaluate.Rule{
				{ID: "internal", When: "email endsWith '@example.com'", Serve: evaluate.Serve{Variant: true}},
				{ID: "beta", Segment: "beta_testers", Serve: evaluate.Serve{Variant: true, Percentage: pct(50)}},
			},
			Default:  &evaluate.Serve{Variant: true, Percentage: pct(float64(i % 101))},
			Metadata: evaluate.Metadata{TTL: ttl, KillSwitch: i%3 == 0, Team: fmt.Sprintf("team-%02d", i%40), Description: "a feature of the checkout, behind a flag while it ramps"},
		})
	}
	return cfg
}

// bigHarness is a server with 1,000 flags in prod, recentChangesLimit of
// them changed once: as many as the flag list reads from the audit log to
// show who changed each flag last and when (with more changes the page
// is the same), and more than a page of the audit log.
func bigHarness(tb testing.TB) (*harness, *session) {
	tb.Helper()
	h := newHarness(tb, Options{}, bigConfig("prod", 1000))
	snap, _ := h.api.Snapshot("prod")
	for i := range recentChangesLimit {
		f, _ := snap.Flag(fmt.Sprintf("team-%02d.feature-%04d", i%40, i))
		g := *f
		g.Metadata.Jira = fmt.Sprintf("FLAG-%d", i)
		if _, err := h.api.PutFlag("prod", g, "release-bot", "link the ticket"); err != nil {
			tb.Fatal(err)
		}
	}
	s := h.console.sessions.create(adminToken.Secret, identity{Subject: "alice", Scopes: adminToken.Scopes, ServedEnvironments: []string{"prod"}})
	return h, s
}

// getAs requests path from the console in process as session s (nil:
// signed out), with
// gzip accepted, and returns the response.
func (h *harness) getAs(s *session, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Accept-Encoding", "gzip, deflate, br")
	if s != nil {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: h.console.sessions.cookieValue(s)})
	}
	rec := httptest.NewRecorder()
	h.console.ServeHTTP(rec, req)
	return rec
}

// bigPages are the pages measured with 1,000 flags.
var bigPages = []string{
	"/ui/signin",
	"/ui/flags?environment=prod",
	"/ui/flags?environment=prod&sort=rollout&order=desc",
	"/ui/flags/team-07.feature-0007?environment=prod",
	"/ui/flags/team-07.feature-0007/kill?environment=prod",
	"/ui/changes?environment=prod",
	"/ui/audit?environment=prod",
	"/ui/evaluate?environment=prod",
}

// No page is over 200 KB transferred, its script and style included,
// with 1,000 flags in the environment (the flag list shows them all).
func TestPageWeight(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 1,000 flags")
	}
	h, s := bigHarness(t)
	assetRE := regexp.MustCompile(`(?:href|src)="(/ui/assets/[^"]+)"`)
	for _, p := range bigPages {
		as := s
		if p == "/ui/signin" {
			as = nil
		}
		rec := h.getAs(as, p)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d\n%s", p, rec.Code, rec.Body)
		}
		transferred := rec.Body.Len()
		html := rec.Body.String()
		if rec.Header().Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			html = string(b)
		}
		total := transferred
		for _, m := range assetRE.FindAllStringSubmatch(html, -1) {
			a := h.getAs(s, m[1])
			if a.Code != http.StatusOK {
				t.Fatalf("%s: asset %s: %d", p, m[1], a.Code)
			}
			total += a.Body.Len()
		}
		t.Logf("%-55s html %7d B, transferred %6d B with assets", p, len(html), total)
		if total > 200_000 {
			t.Errorf("%s: %d bytes transferred, over 200 KB", p, total)
		}
		if p == "/ui/flags?environment=prod" && !strings.Contains(html, "1000 of 1000 flags") {
			t.Fatalf("the flag list does not show the 1,000 flags")
		}
	}
}

// BenchmarkPage renders each page with 1,000 flags, in process: the /v1
// requests the page makes, decoding, the template and gzip. "cold" pages
// are the first view after a change: the config decoded, the recent
// changes read and the flag list's rows rendered anew; the others reuse
// them after the API said they are current.
func BenchmarkPage(b *testing.B) {
	h, s := bigHarness(b)
	for _, p := range bigPages[1:] {
		name := strings.TrimPrefix(strings.SplitN(p, "?", 2)[0], "/ui/")
		if strings.Contains(p, "sort=") {
			name += "-sorted"
		}
		for _, cold := range []bool{false, true} {
			if cold && !strings.HasPrefix(name, "flags") && name != "evaluate" {
				continue
			}
			label := name
			if cold {
				label += "-cold"
			}
			b.Run(strings.ReplaceAll(label, "/", "_"), func(b *testing.B) {
				b.ReportAllocs()
				cpu0, cpuOK := processCPU()
				for b.Loop() {
					if cold {
						h.console.forget()
					}
					if rec := h.getAs(s, p); rec.Code != http.StatusOK {
						b.Fatalf("%s: %d", p, rec.Code)
					}
				}
				if cpu1, _ := processCPU(); cpuOK {
					// The process's CPU time per page (garbage collection
					// included): wall time on a busy machine waits for a CPU.
					b.ReportMetric(float64(cpu1-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
				}
			})
		}
	}
}

// BenchmarkFlagsAfterChange is the flag list's first view after one flag
// changed (the change itself is not timed).
func BenchmarkFlagsAfterChange(b *testing.B) {
	h, s := bigHarness(b)
	if rec := h.getAs(s, "/ui/flags?environment=prod"); rec.Code != http.StatusOK {
		b.Fatal(rec.Code)
	}
	snap, _ := h.api.Snapshot("prod")
	f, _ := snap.Flag("team-07.feature-0007")
	g := *f
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		g.Metadata.Jira = fmt.Sprintf("FLAG-7-%d", i)
		if _, err := h.api.PutFlag("prod", g, "release-bot", "bench"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if rec := h.getAs(s, "/ui/flags?environment=prod"); rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// forget drops what the console keeps between views (as a change does).
func (c *Console) forget() {
	c.configs.mu.Lock()
	c.configs.m = nil
	c.configs.mu.Unlock()
	c.recent.mu.Lock()
	c.recent.m = nil
	c.recent.mu.Unlock()
	c.rows.mu.Lock()
	c.rows.m = nil
	c.rows.mu.Unlock()
}
