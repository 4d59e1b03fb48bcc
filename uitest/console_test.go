package uitest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/flagserver/console"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Tokens: alice may do everything, bob writes, the SDK reads.
var (
	alice = flagserver.Token{Secret: "alice-console-secret", Subject: "alice", Scopes: []string{"flags:read", "flags:write", "flags:approve", "audit:read"}}
	bob   = flagserver.Token{Secret: "bob-console-secret", Subject: "bob", Scopes: []string{"flags:read", "flags:write", "flags:approve", "audit:read"}}
	sdk   = flagserver.Token{Secret: "sdk-read-secret", Subject: "checkout-service", Scopes: []string{"flags:read"}}
)

func pct(p float64) *float64 { return &p }

// prodConfig holds checkout-new-flow (on for everyone, a kill switch) and
// search-v2, at 10 % of subjects.
func prodConfig(env string) *evaluate.Config {
	return &evaluate.Config{
		Environment: env,
		Salt:        env + "-salt",
		Segments:    []evaluate.Segment{{Key: "beta_testers", When: "plan == 'pro'"}},
		Flags: []evaluate.Flag{
			{Key: "checkout-new-flow", Owners: []string{"payments-team"},
				Rules:    []evaluate.Rule{{ID: "rule-2", Segment: "beta_testers", Serve: evaluate.Serve{Variant: true}}},
				Default:  &evaluate.Serve{Variant: true},
				Metadata: evaluate.Metadata{KillSwitch: true, TTL: "2031-01-01", Description: "the new checkout"}},
			{Key: "search-v2", Owners: []string{"search-team"}, Default: &evaluate.Serve{Variant: true, Percentage: pct(10)},
				Metadata: evaluate.Metadata{TTL: "2020-06-30"}},
			{Key: "search-v2-ranking", Prerequisites: []evaluate.Prerequisite{{FlagKey: "search-v2", Variants: []any{true}}},
				Default: &evaluate.Serve{Variant: true}},
		},
	}
}

// findChromium returns the browser's path, or skips the test (fails with
// CI=true).
func findChromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium on the PATH (CI installs Debian's chromium package)")
	}
	t.Skip("no Chromium on the PATH: install Debian's chromium package to run the browser test")
	return ""
}

// axeSource returns axe-core's script, or "" (the check is skipped
// locally; with CI=true a missing axe-core fails).
func axeSource(t *testing.T) string {
	path := os.Getenv("FLAGWIRE_AXE_JS")
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("FLAGWIRE_AXE_JS is not set: CI installs axe-core from npm and names its axe.min.js")
		}
		t.Log("FLAGWIRE_AXE_JS is not set: accessibility checks skipped")
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tab is one browser tab of one person (its own browser context: its own
// cookies), with what its pages logged.
type tab struct {
	t    *testing.T
	ctx  context.Context
	name string

	mu       sync.Mutex
	problems []string // JavaScript errors and CSP violations
}

// cspWatch records every Content-Security-Policy violation of a page
// where the test can read it (window.__cspViolations).
const cspWatch = `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});`

func newTab(t *testing.T, browser context.Context, name string) *tab {
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, name: name}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// JavaScript errors (uncaught, or console.error) and what
			// the browser logs about security (CSP); not the network's
			// log of a page answered 4xx, which the console does on
			// purpose (409 for a conflict).
			if m.Type == chromedp.ConsoleException || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				tb.mu.Lock()
				tb.problems = append(tb.problems, fmt.Sprintf("%s %s: %s (%s)", name, m.Type, m.Text, m.URL))
				tb.mu.Unlock()
			}
		}
	}()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspWatch}); err != nil {
		t.Fatal(err)
	}
	return tb
}

func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", tb.name, err)
	}
}

// load runs trigger (a navigation or a click that submits a form or
// follows a link) and waits for the new page's load event.
func (tb *tab) load(trigger chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, trigger)); err != nil {
		tb.t.Fatalf("%s: %v", tb.name, err)
	}
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("%s: text of %s: %v", tb.name, sel, err)
	}
	return s
}

func evalJS[T any](tb *tab, expr string, opts ...chromedp.EvaluateOption) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		tb.t.Fatalf("%s: evaluate %.60q: %v", tb.name, expr, err)
	}
	return v
}

func (tb *tab) location() string {
	tb.t.Helper()
	return evalJS[string](tb, "location.pathname + location.search")
}

// checkPage checks the page the tab shows: no JavaScript error or CSP
// violation so far, no serious or critical axe-core violation, and takes
// its screenshot.
func (tb *tab) checkPage(shots, axe, name string) {
	tb.t.Helper()
	if v := evalJS[[]string](tb, "window.__cspViolations || []"); len(v) > 0 {
		tb.t.Errorf("%s: %s: CSP violations: %v", tb.name, name, v)
	}
	tb.mu.Lock()
	problems := append([]string(nil), tb.problems...)
	tb.mu.Unlock()
	if len(problems) > 0 {
		tb.t.Errorf("%s: %s: console errors: %v", tb.name, name, problems)
	}
	if axe != "" {
		if !evalJS[bool](tb, "typeof axe !== 'undefined'") {
			evalJS[any](tb, axe+";0")
		}
		type violation struct {
			ID     string   `json:"id"`
			Impact string   `json:"impact"`
			Help   string   `json:"help"`
			Nodes  []string `json:"nodes"`
		}
		vs := evalJS[[]violation](tb, `axe.run(document, {resultTypes: ["violations"]}).then(function (r) {
  return r.violations.filter(function (v) { return v.impact === "serious" || v.impact === "critical"; })
    .map(function (v) { return {id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(function (n) { return n.target.join(" "); })}; });
})`, chromedp.EvalAwaitPromise)
		for _, v := range vs {
			tb.t.Errorf("%s: %s: axe %s (%s): %s at %v", tb.name, name, v.ID, v.Impact, v.Help, v.Nodes)
		}
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // PNG
	if err != nil {
		tb.t.Fatalf("%s: screenshot: %v", tb.name, err)
	}
	if err := os.WriteFile(filepath.Join(shots, name+".png"), img, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// signIn signs in on the sign-in page the tab was sent to.
func (tb *tab) signIn(base, token string) {
	tb.t.Helper()
	tb.load(chromedp.Navigate(base + "/ui/flags?environment=prod"))
	if loc := tb.location(); !strings.HasPrefix(loc, "/ui/signin?next=") {
		tb.t.Fatalf("%s: an unauthenticated visit landed on %s, not the sign-in page", tb.name, loc)
	}
	tb.do(chromedp.SendKeys(chromedp.ID("token"), token))
	tb.load(chromedp.Click(chromedp.CSS("form button[type=submit].primary")))
	if loc := tb.location(); loc != "/ui/flags?environment=prod" {
		tb.t.Fatalf("%s: after sign-in: %s", tb.name, loc)
	}
}

// The console in a real browser: sign in, find checkout-new-flow by
// search, open it, turn it off with a reason (in protected prod: a kill
// switch goes through at once) while an SDK client's stream receives the
// change, ramp a rollout 10 → 25 while a second person's stale edit is
// refused with "changed by someone else", approve another person's change
// request in prod, read the audit entry, evaluate, and sign out; every
// page free of JavaScript errors, CSP violations and serious
// accessibility violations.
func TestConsoleInBrowser(t *testing.T) {
	chromium := findChromium(t)
	axe := axeSource(t)
	shots := os.Getenv("FLAGWIRE_UI_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)

	api, err := flagserver.New(flagserver.Options{
		Configs:               []*evaluate.Config{prodConfig("prod"), prodConfig("staging")},
		Tokens:                []flagserver.Token{alice, bob, sdk},
		ProtectedEnvironments: []string{"prod"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ui, err := console.New(console.Options{API: api})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(ui.Mount(api))
	defer hs.Close()
	defer api.Close()
	base := hs.URL

	// An SDK client in local mode follows prod over its stream.
	ctx := context.Background()
	client, err := flagwire.New(ctx, flagwire.WithEndpoint(base), flagwire.WithToken(sdk.Secret),
		flagwire.WithEnvironment("prod"), flagwire.WithMode(flagwire.ModeLocal))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	if err := client.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	wcancel()
	if !client.Bool(ctx, "checkout-new-flow", false) {
		t.Fatal("the SDK does not see checkout-new-flow on")
	}
	changed := make(chan flagwire.FlagChange, 16)
	stop := client.OnFlagChange("checkout-new-flow", func(c flagwire.FlagChange) { changed <- c })
	defer stop()

	actx, acancel := chromedp.NewExecAllocator(ctx,
		append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
			chromedp.WindowSize(1280, 900))...)
	defer acancel()
	browser, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}

	a := newTab(t, browser, "alice")

	// Sign in, and the sign-in page itself.
	a.load(chromedp.Navigate(base + "/ui/signin"))
	a.checkPage(shots, axe, "01-signin")
	a.signIn(base, alice.Secret)
	a.checkPage(shots, axe, "02-flags")

	// The environment is chosen at the top.
	a.do(chromedp.SetValue(chromedp.ID("environment"), "staging"))
	a.load(chromedp.Click(chromedp.CSS(`form.envpick button`)))
	if got := a.text("h1"); got != "Flags in staging" {
		t.Fatalf("after switching to staging: %q", got)
	}
	a.load(chromedp.Navigate(base + "/ui/flags?environment=prod"))

	// Search: typing filters at once; Enter searches on the server.
	a.do(chromedp.SendKeys(chromedp.ID("q"), "checkout"))
	if n := evalJS[int](a, `document.querySelectorAll("#flag-table tbody tr:not([hidden])").length`); n != 1 {
		t.Fatalf("typing 'checkout' leaves %d rows shown, want 1", n)
	}
	a.load(chromedp.Submit(chromedp.ID("q")))
	if loc := a.location(); !strings.Contains(loc, "q=checkout") {
		t.Fatalf("search submitted to %s", loc)
	}
	if got := a.text("#flag-count"); got != "1 of 3 flags" {
		t.Fatalf("server search: %q", got)
	}
	a.load(chromedp.Click(chromedp.CSS(`#flag-table a[href^="/ui/flags/checkout-new-flow"]`)))
	a.checkPage(shots, axe, "03-flag")

	// The kill switch: two clicks and a reason.
	a.load(chromedp.Click(chromedp.CSS(`a.button.danger`)))
	a.checkPage(shots, axe, "04-kill")
	a.do(chromedp.SendKeys(chromedp.ID("reason"), "INC-4711: checkout errors at 5%"))
	a.load(chromedp.Click(chromedp.CSS(`form button.danger`)))
	told := a.text("#told")
	if !strings.Contains(told, "SDK streams were told at") {
		t.Fatalf("the kill switch's page says %q", told)
	}
	a.checkPage(shots, axe, "05-killed")
	select {
	case c := <-changed:
		if !strings.Contains(told, fmt.Sprintf("(event %d)", c.Version)) {
			t.Errorf("the SDK got version %d; the page says %q", c.Version, told)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the SDK client's stream did not deliver the kill switch within 30s")
	}
	if client.Bool(ctx, "checkout-new-flow", true) {
		t.Fatal("the SDK still serves checkout-new-flow on")
	}

	// Ramp 10 → 25 in staging, while bob's page, opened before, is stale.
	b := newTab(t, browser, "bob")
	b.signIn(base, bob.Secret)
	b.load(chromedp.Navigate(base + "/ui/flags/search-v2?environment=staging"))
	a.load(chromedp.Navigate(base + "/ui/flags/search-v2?environment=staging"))
	a.do(chromedp.SendKeys(chromedp.ID("reason-default"), "error rate flat at 10%"))
	a.load(chromedp.Click(chromedp.CSS(`button[name=step]`)))
	if got := a.text(".notice"); got != "Rollout set to 25%." {
		t.Fatalf("after the ramp: %q", got)
	}
	a.checkPage(shots, axe, "06-ramped")
	b.do(chromedp.SendKeys(chromedp.ID("reason-default"), "ramp search"))
	b.load(chromedp.Click(chromedp.CSS(`button[name=step]`)))
	conflict := b.text(`[role=alert]`)
	if !strings.Contains(conflict, "Changed by someone else") || !strings.Contains(conflict, "alice changed it") {
		t.Fatalf("bob's stale ramp: %q", conflict)
	}
	if got := b.text(".ramp .pct"); got != "25%" {
		t.Fatalf("the conflict page shows %q, not the new 25%%", got)
	}
	b.checkPage(shots, axe, "07-conflict")
	if got := percentage(t, api, "staging", "search-v2"); got != 25 {
		t.Fatalf("search-v2 at %v%% after the conflict", got)
	}

	// prod is protected: bob's ramp there opens a change request, which
	// alice approves from the change requests page.
	b.load(chromedp.Navigate(base + "/ui/flags/search-v2?environment=prod"))
	b.do(chromedp.SendKeys(chromedp.ID("reason-default"), "staging is fine at 25%"))
	b.load(chromedp.Click(chromedp.CSS(`button[name=step]`)))
	if got := b.text(".notice"); !strings.Contains(got, "once another person approves it") {
		t.Fatalf("bob's ramp in prod: %q", got)
	}
	if got := percentage(t, api, "prod", "search-v2"); got != 10 {
		t.Fatalf("a protected ramp applied before approval: %v%%", got)
	}
	a.load(chromedp.Navigate(base + "/ui/changes?environment=prod"))
	a.checkPage(shots, axe, "08-changes")
	a.load(chromedp.Click(chromedp.CSS(`table a[href^="/ui/changes/"]`)))
	if got := a.text("table.diff"); !strings.Contains(got, "default.percentage") || !strings.Contains(got, "25") {
		t.Fatalf("the change request's diff: %q", got)
	}
	a.checkPage(shots, axe, "08b-change-request")
	a.do(chromedp.SendKeys(chromedp.ID("reason"), "metrics fine"))
	a.load(chromedp.Click(chromedp.CSS(`form button.primary`)))
	if got := a.text(".notice"); !strings.Contains(got, "approved and applied") {
		t.Fatalf("after approving: %q", got)
	}
	if got := percentage(t, api, "prod", "search-v2"); got != 25 {
		t.Fatalf("search-v2 in prod at %v%% after the approval", got)
	}

	// The audit log, filtered by entity and person.
	a.load(chromedp.Navigate(base + "/ui/audit?environment=prod"))
	a.do(chromedp.SendKeys(chromedp.ID("entity"), "checkout-new-flow"), chromedp.SendKeys(chromedp.ID("actor"), "alice"))
	a.load(chromedp.Submit(chromedp.ID("entity")))
	entries := evalJS[[]string](a, `Array.from(document.querySelectorAll("ol.history > li")).map(function (li) { return li.innerText; })`)
	if len(entries) != 1 || !strings.Contains(entries[0], "INC-4711") || !strings.Contains(entries[0], "alice") {
		t.Fatalf("the audit log filtered to alice's changes of checkout-new-flow: %q", entries)
	}
	a.checkPage(shots, axe, "09-audit")

	// Evaluate: search-v2 (25 % now) for a subject; the page shows the
	// value, reason and bucket the server's explain gives.
	a.load(chromedp.Navigate(base + "/ui/evaluate?environment=prod&flag=search-v2"))
	a.do(chromedp.SetValue(chromedp.ID("context"), `{"userId": "user-42", "plan": "pro"}`))
	a.load(chromedp.Click(chromedp.CSS(`form button.primary`)))
	want, err := evaluateDirect(base, "search-v2", `{"userId": "user-42", "plan": "pro"}`)
	if err != nil {
		t.Fatal(err)
	}
	decision := a.text("#decision")
	for _, w := range want {
		if !strings.Contains(decision, w) {
			t.Fatalf("the evaluate page shows %q, lacking %q (from the API's own answer)", decision, w)
		}
	}
	a.checkPage(shots, axe, "10-evaluate")

	// Keyboard: the first Tab reaches the skip link, and focus is visible.
	a.load(chromedp.Navigate(base + "/ui/flags?environment=prod"))
	a.do(chromedp.KeyEvent("\t"))
	focus := evalJS[map[string]string](a, `(function () { var e = document.activeElement; var s = getComputedStyle(e);
  return {text: e.textContent, outline: s.outlineStyle, width: s.outlineWidth}; })()`)
	if focus["text"] != "Skip to content" || focus["outline"] == "none" || focus["width"] == "0px" {
		t.Fatalf("the first Tab focuses %v", focus)
	}

	// Reading works without JavaScript.
	n := newTab(t, browser, "no-js")
	if _, err := chromedp.Call(n.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	n.signIn(base, bob.Secret)
	if got := n.text("#flag-count"); got != "3 of 3 flags" {
		t.Fatalf("without JavaScript the flag list shows %q", got)
	}
	n.load(chromedp.Navigate(base + "/ui/flags/search-v2?environment=prod"))
	if got := n.text(".ramp .pct"); got != "25%" {
		t.Fatalf("without JavaScript the flag page shows %q", got)
	}

	// The browser sees the security headers; an inline script is refused.
	res, err := http.Get(base + "/ui/signin")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("headers: %v", res.Header)
	}
	// In a tab of its own (its violation is expected), an inline script
	// is refused and reported.
	probe := newTab(t, browser, "csp-probe")
	probe.load(chromedp.Navigate(base + "/ui/signin"))
	evalJS[any](probe, `(function () { var s = document.createElement("script"); s.textContent = "window.__inlineRan = true"; document.body.appendChild(s); return 0; })()`)
	if evalJS[bool](probe, "window.__inlineRan === true") {
		t.Fatal("an inline script ran: the CSP does not hold in the browser")
	}
	// The violation event is dispatched after the script is refused.
	pctx, pcancel := context.WithTimeout(probe.ctx, 30*time.Second)
	if _, err := chromedp.Run(pctx, chromedp.Poll[bool]("window.__cspViolations.length > 0")); err != nil {
		t.Fatalf("the inline script's CSP violation was not reported: %v", err)
	}
	pcancel()
	if v := evalJS[[]string](probe, "window.__cspViolations"); !strings.HasPrefix(v[0], "script-src") {
		t.Fatalf("violation %v, want script-src", v)
	}

	// Sign out: back to the sign-in page, and the console is closed.
	a.load(chromedp.Click(chromedp.CSS(`form.signout button`)))
	if loc := a.location(); loc != "/ui/signin" {
		t.Fatalf("after sign-out: %s", loc)
	}
	a.load(chromedp.Navigate(base + "/ui/flags?environment=prod"))
	if loc := a.location(); !strings.HasPrefix(loc, "/ui/signin") {
		t.Fatalf("after sign-out the console opened %s", loc)
	}
	a.checkPage(shots, axe, "11-signed-out")
	for _, tb := range []*tab{a, b, n} {
		tb.mu.Lock()
		if len(tb.problems) > 0 {
			t.Errorf("%s: %v", tb.name, tb.problems)
		}
		tb.mu.Unlock()
	}
}

// evaluateDirect asks POST /v1/evaluate itself for flag's decision and
// returns what the page must show: the value, the reason and the bucket.
func evaluateDirect(base, flag, ctx string) ([]string, error) {
	body := `{"environment":"prod","requests":[{"flagKey":"` + flag + `","context":` + ctx + `}],"options":{"includeReasons":true,"explain":true}}`
	req, err := http.NewRequest("POST", base+"/v1/evaluate", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+sdk.Secret)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var out struct {
		Decisions []struct {
			Variant json.RawMessage `json:"variant"`
			Reason  struct {
				Kind   string `json:"kind"`
				Bucket *int   `json:"bucket"`
			} `json:"reason"`
			Bucketing *struct {
				Bucket int `json:"bucket"`
			} `json:"bucketing"`
		} `json:"decisions"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || len(out.Decisions) != 1 {
		return nil, fmt.Errorf("evaluate: %v (%d decisions)", err, len(out.Decisions))
	}
	d := out.Decisions[0]
	want := []string{"Value\n" + string(d.Variant), "Reason\n" + d.Reason.Kind}
	if d.Bucketing != nil {
		want = append(want, fmt.Sprint(d.Bucketing.Bucket))
	}
	return want, nil
}

// percentage is env's flag key's fallthrough percentage, as the server
// holds it.
func percentage(t *testing.T, api *flagserver.Server, env, key string) float64 {
	t.Helper()
	snap, ok := api.Snapshot(env)
	if !ok {
		t.Fatalf("no environment %s", env)
	}
	f, ok := snap.Flag(key)
	if !ok || f.Default == nil || f.Default.Percentage == nil {
		t.Fatalf("%s has no percentage in %s", key, env)
	}
	return *f.Default.Percentage
}
