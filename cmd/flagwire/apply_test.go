package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/wire"
)

const applyReason = "Expanding canary after stable metrics"

// applyFixture serves the example flags from a flagtest server and edits
// the flags as code: the seed's rollout step (checkout-new-flow's default
// from 10% to 25%), a new flag, and a removed flag.
func applyFixture(t *testing.T) (dir string, srv *flagtest.Server) {
	t.Helper()
	dir = exampleFlags(t)
	srv = startFlags(t, dir)
	editFile(t, filepath.Join(dir, "checkout-new-flow.yaml"), "default: {percentage: 10}", "default: {percentage: 25}")
	writeFile(t, filepath.Join(dir, "dark-mode.yaml"), `flagKey: dark-mode
environment: prod
owners: ["web-team"]
rules:
  - id: beta
    segment: beta_testers
    variant: true
metadata: {ttl: 2099-01-01}
`)
	if err := os.Remove(filepath.Join(dir, "pricing-experiment.yaml")); err != nil {
		t.Fatal(err)
	}
	return dir, srv
}

func writes(srv *flagtest.Server) int64 {
	var n int64
	for k, v := range srv.RequestCounts() {
		if !strings.HasPrefix(k, "GET ") && !strings.HasPrefix(k, "POST /v1/evaluate") {
			n += v
		}
	}
	return n
}

func serverFlag(t *testing.T, srv *flagtest.Server, key string) (*evaluate.Flag, bool) {
	t.Helper()
	snap, ok := srv.Flagserver().Snapshot("prod")
	if !ok {
		t.Fatal("no prod environment")
	}
	return snap.Flag(key)
}

func audit(t *testing.T, srv *flagtest.Server, entity string) []wire.AuditEntry {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/audit?entity="+url.QueryEscape(entity), nil)
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ar wire.AuditResponse
	if err := json.NewDecoder(resp.Body).Decode(&ar); err != nil {
		t.Fatal(err)
	}
	return ar.Entries
}

// TestApplyPlanApplyRerun: a dry run plans and writes nothing; apply makes
// the changes with If-Match and the reason; a rerun is a no-op.
func TestApplyPlanApplyRerun(t *testing.T) {
	dir, srv := applyFixture(t)

	r := mustRun(t, 0, "", "apply", dir, "--env", "prod", "--server", srv.URL, "--dry-run")
	for _, want := range []string{
		`Plan for environment "prod" at ` + srv.URL + ":",
		"  ~ flag checkout-new-flow\n      ~ default.percentage: 10 → 25\n",
		"  + flag dark-mode\n",
		`      rules[0].segment: "beta_testers"`,
		"  - flag pricing-experiment\n",
		"Plan: 1 to add, 1 to change, 1 to remove.",
		"Dry run: nothing was changed.",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "bucketing: {}") {
		t.Errorf("plan lists empty fields of a new flag:\n%s", r.stdout)
	}
	if n := writes(srv); n != 0 {
		t.Fatalf("dry run made %d writes", n)
	}

	r = mustRun(t, 2, "", "apply", dir, "--server", srv.URL)
	if !strings.Contains(r.stderr, `--reason is required for environment "prod"`) || writes(srv) != 0 {
		t.Fatalf("apply to prod without a reason: %s", r)
	}

	r = mustRun(t, 0, "", "apply", dir, "--env", "prod", "--server", srv.URL, "--reason", applyReason)
	for _, want := range []string{"[1/3] updated flag checkout-new-flow", "[2/3] created flag dark-mode", "[3/3] deleted flag pricing-experiment"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "Apply complete: 1 added, 1 changed, 1 removed.") {
		t.Errorf("stdout: %s", r.stdout)
	}
	if f, ok := serverFlag(t, srv, "checkout-new-flow"); !ok || f.Default == nil || f.Default.Percentage == nil || *f.Default.Percentage != 25 {
		t.Errorf("checkout-new-flow on the server: %+v", f)
	}
	if _, ok := serverFlag(t, srv, "dark-mode"); !ok {
		t.Error("dark-mode was not created")
	}
	if _, ok := serverFlag(t, srv, "pricing-experiment"); ok {
		t.Error("pricing-experiment was not deleted")
	}
	for _, c := range []struct{ method, path string }{
		{"PATCH", "/v1/flags/checkout-new-flow"}, {"POST", "/v1/flags"}, {"DELETE", "/v1/flags/pricing-experiment"},
	} {
		if n := srv.Requests(c.method, c.path); n != 1 {
			t.Errorf("%s %s: %d requests, want 1", c.method, c.path, n)
		}
	}
	entries := audit(t, srv, "flag:checkout-new-flow")
	if len(entries) != 1 || entries[0].Action != "update" || entries[0].ChangeReason != applyReason {
		t.Errorf("audit: %+v", entries)
	}

	before := writes(srv)
	r = mustRun(t, 0, "", "apply", dir, "--env", "prod", "--server", srv.URL, "--reason", applyReason)
	if !strings.Contains(r.stdout, `No changes: environment "prod"`) {
		t.Errorf("rerun: %s", r)
	}
	if n := writes(srv); n != before {
		t.Errorf("rerun made %d writes", n-before)
	}
}

// proxy runs a loopback proxy to target that calls hook before forwarding
// each request.
func proxy(t *testing.T, target string, hook func(r *http.Request)) string {
	t.Helper()
	return reverseProxy(t, target, hook, nil)
}

// reverseProxy runs a loopback proxy to target: hook (if any) sees each
// request before it is forwarded, modify (if any) each response.
func reverseProxy(t *testing.T, target string, hook func(*http.Request), modify func(*http.Response) error) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	rp.Transport = tr
	rp.ModifyResponse = modify
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hook != nil {
			hook(r)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		ps.Close()
		tr.CloseIdleConnections()
	})
	return ps.URL
}

// concurrentEdit returns a hook that, the first time it sees method and
// path, sets checkout-new-flow's rollout to 50% on the server, as another
// engineer would between our read and our write.
func concurrentEdit(t *testing.T, srv *flagtest.Server, method, path string) func(r *http.Request) {
	var once sync.Once
	return func(r *http.Request) {
		if r.Method != method || r.URL.Path != path {
			return
		}
		once.Do(func() {
			f, ok := serverFlag(t, srv, "checkout-new-flow")
			if !ok {
				t.Error("checkout-new-flow is missing")
				return
			}
			edited := *f
			fifty := 50.0
			edited.Default = &evaluate.Serve{Percentage: &fifty}
			if _, err := srv.SetFlag("prod", edited); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestApplyConflict412: a change made between apply's GET and its PATCH
// makes the server answer 412; apply stops there with the current diff,
// and a new apply plans against the new state.
func TestApplyConflict412(t *testing.T) {
	dir, srv := applyFixture(t)
	via := proxy(t, srv.URL, concurrentEdit(t, srv, "PATCH", "/v1/flags/checkout-new-flow"))

	r := mustRun(t, 1, "", "apply", dir, "--server", via, "--reason", applyReason)
	for _, want := range []string{
		"conflict: flag checkout-new-flow was changed on the server after it was read (412 Precondition Failed)",
		"it was not applied, nor anything after it",
		"Current server state → DIR:\n    ~ default.percentage: 50 → 25",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if srv.Requests("PATCH", "/v1/flags/checkout-new-flow") != 1 || srv.Requests("POST", "/v1/flags") != 0 || srv.Requests("DELETE", "/v1/flags/pricing-experiment") != 0 {
		t.Errorf("writes after the conflict: %v", srv.RequestCounts())
	}
	if f, _ := serverFlag(t, srv, "checkout-new-flow"); *f.Default.Percentage != 50 {
		t.Errorf("the concurrent edit was overwritten: %v", *f.Default.Percentage)
	}

	r = mustRun(t, 0, "", "apply", dir, "--server", srv.URL, "--reason", applyReason)
	if !strings.Contains(r.stdout, "~ default.percentage: 50 → 25") {
		t.Errorf("replan: %s", r.stdout)
	}
	if f, _ := serverFlag(t, srv, "checkout-new-flow"); *f.Default.Percentage != 25 {
		t.Errorf("after the second apply: %v", *f.Default.Percentage)
	}
}

// TestApplyChangedSincePlan: a change made between the plan and apply's
// read is caught before any write.
func TestApplyChangedSincePlan(t *testing.T) {
	dir, srv := applyFixture(t)
	via := proxy(t, srv.URL, concurrentEdit(t, srv, "GET", "/v1/flags/checkout-new-flow"))
	r := mustRun(t, 1, "", "apply", dir, "--server", via, "--reason", applyReason)
	if !strings.Contains(r.stderr, "conflict: flag checkout-new-flow was changed on the server after the plan") ||
		!strings.Contains(r.stderr, "~ default.percentage: 50 → 25") {
		t.Errorf("stderr: %s", r.stderr)
	}
	if n := writes(srv); n != 0 {
		t.Errorf("%d writes after a conflict", n)
	}
}

// TestApplyRetriesAreIdempotent: a write whose response is lost is retried
// with the same Idempotency-Key and applied once; a 503 is retried.
func TestApplyRetriesAreIdempotent(t *testing.T) {
	dir, srv := applyFixture(t)
	srv.InjectFault(flagtest.Fault{Method: "PATCH", Path: "/v1/flags/checkout-new-flow", Truncate: true, Count: 1})
	srv.InjectFault(flagtest.Fault{Method: "POST", Path: "/v1/flags", Status: http.StatusServiceUnavailable, Count: 1})
	r := mustRun(t, 0, "", "apply", dir, "--server", srv.URL, "--reason", applyReason)
	if !strings.Contains(r.stderr, "updated flag checkout-new-flow (") || !strings.Contains(r.stderr, ", replayed)") {
		t.Errorf("stderr: %s", r.stderr)
	}
	if n := srv.Requests("PATCH", "/v1/flags/checkout-new-flow"); n != 2 {
		t.Errorf("PATCH sent %d times, want 2 (one lost response, one retry)", n)
	}
	if n := srv.Requests("POST", "/v1/flags"); n != 2 {
		t.Errorf("POST sent %d times, want 2 (one 503, one retry)", n)
	}
	var updates int
	for _, e := range audit(t, srv, "flag:checkout-new-flow") {
		if e.Action == "update" {
			updates++
		}
	}
	if updates != 1 {
		t.Errorf("%d updates recorded, want exactly 1", updates)
	}
	mustRun(t, 0, "", "apply", dir, "--server", srv.URL, "--reason", applyReason, "--dry-run")
}

// TestApplyOrdering: segments before the flags that use them,
// prerequisites before dependents, dependents deleted before what they
// depend on, flags deleted before segments; every step compiles on the
// server.
func TestApplyOrdering(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "env.yaml"), `environment: staging
segments:
  - key: seg-a
    when: plan == 'pro'
  - key: seg-b
    when: segment('seg-a') and region == 'EU'
flags:
  - flagKey: old-a
    owners: [t]
    metadata: {ttl: 2099-01-01}
  - flagKey: old-b
    owners: [t]
    metadata: {ttl: 2099-01-01}
    prerequisites: [{flagKey: old-a, variants: [true]}]
    rules: [{id: r, segment: seg-b, variant: true}]
`)
	srv := startFlags(t, dir)
	writeFile(t, filepath.Join(dir, "env.yaml"), `environment: staging
segments:
  - key: vip
    when: plan == 'vip'
  - key: eu-vip
    when: segment('vip') and region == 'EU'
flags:
  - flagKey: a
    owners: [t]
    metadata: {ttl: 2099-01-01}
    prerequisites: [{flagKey: b, variants: [true]}]
  - flagKey: b
    owners: [t]
    metadata: {ttl: 2099-01-01}
    rules: [{id: r, segment: eu-vip, variant: true}]
`)
	r := mustRun(t, 0, "", "apply", dir, "--server", srv.URL)
	order := []string{"created segment vip", "created segment eu-vip", "created flag b", "created flag a",
		"deleted flag old-b", "deleted flag old-a", "deleted segment seg-b", "deleted segment seg-a"}
	at := -1
	for _, step := range order {
		i := strings.Index(r.stderr, step)
		if i < at {
			t.Errorf("%q out of order:\n%s", step, r.stderr)
		}
		at = i
	}
	if !strings.Contains(mustRun(t, 0, "", "apply", dir, "--server", srv.URL).stdout, "No changes") {
		t.Error("rerun found changes")
	}
}

func TestApplyErrors(t *testing.T) {
	dir, srv := applyFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	broken := t.TempDir()
	writeFile(t, filepath.Join(broken, "f.yaml"), "flagKey: f\nenvironment: prod\nowners: [a]\nmetadata: {ttl: 2099-01-01}\ndefault: {percentage: 150}\n")
	expired := t.TempDir()
	writeFile(t, filepath.Join(expired, "f.yaml"), "flagKey: f\nenvironment: prod\nowners: [a]\nmetadata: {ttl: 2020-01-01}\n")
	qa := t.TempDir()
	writeFile(t, filepath.Join(qa, "f.yaml"), "flagKey: f\nenvironment: qa\nowners: [a]\nmetadata: {ttl: 2099-01-01}\n")
	tests := []struct {
		name  string
		code  int
		token string
		args  []string
		want  string
	}{
		{"no server", 2, "", []string{"apply", dir}, `required flag(s) "server" not set`},
		{"bad server", 2, "", []string{"apply", dir, "--server", "flags.example.com"}, "want an http or https URL"},
		{"unknown env", 2, "", []string{"apply", dir, "--server", srv.URL, "--env", "staging"}, `environment "staging" is not defined`},
		{"unreachable", 2, "", []string{"apply", dir, "--server", closed, "--dry-run"}, "connection refused"},
		{"bad token", 1, "wrong", []string{"apply", dir, "--server", srv.URL, "--dry-run"}, "GET /v1/flags: 401 unauthorized"},
		{"does not compile", 1, "", []string{"apply", broken, "--server", srv.URL, "--dry-run"}, "f.yaml:5:"},
		{"lint errors", 1, "", []string{"apply", expired, "--server", srv.URL, "--dry-run"}, "has lint errors (fix them, or --no-lint)"},
		{"environment missing on the server", 1, "", []string{"apply", qa, "--server", srv.URL, "--dry-run"}, "environment_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.token != "" {
				t.Setenv(tokenEnv, tt.token)
			}
			r := mustRun(t, tt.code, "", tt.args...)
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, r.stderr)
			}
			if strings.Contains(r.stderr+r.stdout, "wrong") {
				t.Error("the token was printed")
			}
		})
	}
	if n := writes(srv); n != 0 {
		t.Errorf("%d writes", n)
	}
	t.Run("no-lint applies anyway", func(t *testing.T) {
		r := mustRun(t, 0, "", "apply", expired, "--server", srv.URL, "--no-lint", "--dry-run")
		if !strings.Contains(r.stdout, "+ flag f") {
			t.Errorf("stdout: %s", r.stdout)
		}
	})
	t.Run("server requires a reason", func(t *testing.T) {
		stg := t.TempDir()
		writeFile(t, filepath.Join(stg, "f.yaml"), "environment: staging\nrequireChangeReason: true\nflags:\n  - flagKey: f\n    owners: [a]\n    metadata: {ttl: 2099-01-01}\n")
		s2 := startFlags(t, stg)
		editFile(t, filepath.Join(stg, "f.yaml"), "owners: [a]", "owners: [b]")
		r := mustRun(t, 2, "", "apply", stg, "--server", s2.URL)
		if !strings.Contains(r.stderr, `the server requires a change reason for environment "staging"`) {
			t.Errorf("stderr: %s", r.stderr)
		}
	})
}

func TestDiffLines(t *testing.T) {
	before := map[string]any{"key": "f", "state": "on", "rules": []any{map[string]any{"id": "r1"}, map[string]any{"id": "r2"}}, "owners": []any{"a"}}
	after := map[string]any{"key": "f", "state": "off", "rules": []any{map[string]any{"id": "r1"}, map[string]any{"id": "r2"}, map[string]any{"id": "r10"}}, "bucketing": map[string]any{}}
	got := strings.Join(diffLines(before, after, true), "\n")
	want := `- owners[0]: "a"
+ rules[2].id: "r10"
~ state: "on" → "off"`
	if !strings.Contains(got, want) || !strings.Contains(got, "+ bucketing: {}") {
		t.Errorf("diffLines:\n%s", got)
	}
	if got := diffLines(nil, after, true); strings.Join(got, ",") != `rules[0].id: "r1",rules[1].id: "r2",rules[2].id: "r10",state: "off"` {
		t.Errorf("new entity: %q", got)
	}
	for _, tt := range []struct{ a, b string }{{"rules[2].id", "rules[10].id"}, {"a", "a.b"}, {"a.b", "b"}, {"rules[1]", "rules[1].id"}} {
		if !pathLess(tt.a, tt.b) || pathLess(tt.b, tt.a) {
			t.Errorf("pathLess(%q, %q)", tt.a, tt.b)
		}
	}
}

func TestCapLines(t *testing.T) {
	var lines []string
	for i := range maxDiffLines + 5 {
		lines = append(lines, strconv.Itoa(i))
	}
	got := capLines(lines)
	if len(got) != maxDiffLines+1 || got[maxDiffLines] != "… and 5 more" {
		t.Errorf("capLines: %q", got[len(got)-2:])
	}
	if got := capLines(lines[:3]); len(got) != 3 {
		t.Errorf("short: %q", got)
	}
}

func TestIdempotencyKey(t *testing.T) {
	k := idempotencyKey("PATCH", "/v1/flags/x", "prod", `"e1"`, []byte(`{"state":"on"}`))
	if k != idempotencyKey("PATCH", "/v1/flags/x", "prod", `"e1"`, []byte(`{"state":"on"}`)) {
		t.Error("not deterministic")
	}
	for _, other := range []string{
		idempotencyKey("PATCH", "/v1/flags/x", "prod", `"e2"`, []byte(`{"state":"on"}`)),
		idempotencyKey("PATCH", "/v1/flags/x", "prod", `"e1"`, []byte(`{"state":"off"}`)),
		idempotencyKey("PATCH", "/v1/flags/x", "dev", `"e1"`, []byte(`{"state":"on"}`)),
		idempotencyKey("DELETE", "/v1/flags/x", "prod", `"e1"`, []byte(`{"state":"on"}`)),
	} {
		if other == k {
			t.Error("different writes share a key")
		}
	}
	if len(k) > 255 || strings.ContainsAny(k, " \t\n") {
		t.Errorf("invalid key %q", k)
	}
}

// rewriting runs a loopback proxy to target that passes the body of each
// successful GET response through edit (with the request's path).
func rewriting(t *testing.T, target string, edit func(path string, body []byte) []byte) string {
	t.Helper()
	return reverseProxy(t, target, nil, func(resp *http.Response) error {
		if resp.Request.Method != http.MethodGet || resp.StatusCode != http.StatusOK {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		b = edit(resp.Request.URL.Path, b)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	})
}

// TestApplyReadsANewerServer: apply reads the server's state with the
// SDK's config decoder, skipping the fields a newer server adds (to the
// config, its flags and segments, and the entity documents): they are not
// apply's to plan, so the plan and the apply are those without them.
func TestApplyReadsANewerServer(t *testing.T) {
	dir, srv := applyFixture(t)
	future := map[string]any{"at": "2030-01-01T00:00:00Z", "steps": []any{1.0, 2.0}}
	via := rewriting(t, srv.URL, func(path string, b []byte) []byte {
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Errorf("GET %s: %v", path, err)
			return b
		}
		doc["futureField"] = future
		if path == "/v1/flags" {
			for _, list := range []string{"flags", "segments"} {
				l, _ := doc[list].([]any)
				for _, e := range l {
					e.(map[string]any)["futureField"] = future
				}
			}
		}
		b, _ = json.Marshal(doc)
		return b
	})
	r := mustRun(t, 0, "", "apply", dir, "--server", via, "--dry-run")
	if !strings.Contains(r.stdout, "Plan: 1 to add, 1 to change, 1 to remove.") || strings.Contains(r.stdout, "futureField") {
		t.Errorf("plan:\n%s", r.stdout)
	}
	r = mustRun(t, 0, "", "apply", dir, "--server", via, "--reason", applyReason)
	if !strings.Contains(r.stdout, "Apply complete: 1 added, 1 changed, 1 removed.") {
		t.Errorf("apply: %s", r)
	}
	r = mustRun(t, 0, "", "apply", dir, "--server", via, "--reason", applyReason)
	if !strings.Contains(r.stdout, `No changes: environment "prod"`) {
		t.Errorf("rerun: %s", r)
	}
}

// TestApplyRefusesRepeatedNames: a config from the server with a repeated
// name is refused, as the SDK refuses it (encoding/json kept the last
// value and apply planned against that).
func TestApplyRefusesRepeatedNames(t *testing.T) {
	dir, srv := applyFixture(t)
	via := rewriting(t, srv.URL, func(path string, b []byte) []byte {
		if path != "/v1/flags" {
			return b
		}
		return bytes.Replace(b, []byte(`{"environment":`), []byte(`{"salt":"other","environment":`), 1)
	})
	r := mustRun(t, 1, "", "apply", dir, "--server", via, "--dry-run")
	if !strings.Contains(r.stderr, "unexpected config from the server") || !strings.Contains(r.stderr, `duplicate key "salt"`) {
		t.Errorf("stderr: %s", r.stderr)
	}
}
