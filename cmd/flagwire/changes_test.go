package main

import (
	"context"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// approvalTokens is a tokens file: alice requests (holding every scope,
// so her refusal is the two-person rule's), bob approves, carol writes
// without flags:approve.
const approvalTokens = `- secret: alice-secret
  subject: alice
  scopes: [flags:read, flags:write, audit:read, flags:approve]
- secret: bob-secret
  subject: bob
  scopes: [flags:read, flags:write, audit:read, flags:approve]
- secret: carol-secret
  subject: carol
  scopes: [flags:read, flags:write, audit:read]
`

// getFlagAt reads a flag of prod from a running server.
func getFlagAt(t *testing.T, base, key string) (evaluate.Flag, int) {
	t.Helper()
	r := call(t, "GET", base+"/v1/flags/"+key+"?environment=prod", "", "Authorization: Bearer bob-secret")
	var f evaluate.Flag
	if r.status == 200 {
		if err := json.Unmarshal(r.body, &f); err != nil {
			t.Fatal(err)
		}
	}
	return f, r.status
}

var openedLine = regexp.MustCompile(`(?m)^  (c-[a-z0-9]+)  ([~+-]) (flag|segment) (\S+)$`)

// opened returns the change request ids apply printed, by plan line.
func opened(t *testing.T, stdout string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range openedLine.FindAllStringSubmatch(stdout, -1) {
		out[m[2]+" "+m[3]+" "+m[4]] = m[1]
	}
	return out
}

// The approval flow through the CLI against `flagwire serve --protect
// prod`: a kill switch goes off at once by apply; apply opens change
// requests and prints their ids (a rerun opens none); changes list and
// show; the requester and a principal without flags:approve are refused;
// the approval applies; a decided change cannot be decided again; a stale
// change is refused.
func TestChangesThroughTheCLI(t *testing.T) {
	dir := exampleFlags(t)
	writeFile(t, filepath.Join(dir, "payments-kill.yaml"), `flagKey: payments-kill
environment: prod
owners: ["sre"]
metadata: {killSwitch: true, ttl: 2099-01-01}
`)
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	writeFile(t, tokens, approvalTokens)
	srv := startServe(t, "--flags", dir, "--tokens", tokens, "--protect", "prod")
	if !strings.Contains(strings.Join(srv.banner, "\n"), "protected (writes need approval): prod") {
		t.Errorf("the banner does not say prod is protected:\n%s", strings.Join(srv.banner, "\n"))
	}
	base := srv.url

	// The kill switch: carol (no flags:approve) turns it off with apply, at once.
	editFile(t, filepath.Join(dir, "payments-kill.yaml"), "owners:", "state: off\nowners:")
	t.Setenv(tokenEnv, "carol-secret")
	r := mustRun(t, 0, "", "apply", dir, "--server", base, "--reason", "incident 7")
	if !strings.Contains(r.stdout, "Apply complete: 0 added, 1 changed, 0 removed.") {
		t.Fatalf("kill switch apply: %s", r)
	}
	if f, _ := getFlagAt(t, base, "payments-kill"); f.State != "off" {
		t.Fatalf("the kill switch is %q after apply, want off", f.State)
	}

	// alice's apply opens three change requests and changes nothing.
	editFile(t, filepath.Join(dir, "checkout-new-flow.yaml"), "default: {percentage: 10}", "default: {percentage: 25}")
	writeFile(t, filepath.Join(dir, "dark-mode.yaml"), "flagKey: dark-mode\nenvironment: prod\nowners: [\"web-team\"]\nmetadata: {ttl: 2099-01-01}\n")
	removeFile(t, filepath.Join(dir, "pricing-experiment.yaml"))
	t.Setenv(tokenEnv, "alice-secret")
	r = mustRun(t, 0, "", "apply", dir, "--server", base, "--reason", "canary to 25%")
	ids := opened(t, r.stdout)
	update, create, del := ids["~ flag checkout-new-flow"], ids["+ flag dark-mode"], ids["- flag pricing-experiment"]
	if len(ids) != 3 || update == "" || create == "" || del == "" ||
		!strings.Contains(r.stdout, `Environment "prod" is protected: 3 change requests opened`) ||
		!strings.Contains(r.stdout, "Apply complete: 0 applied, 3 awaiting approval.") {
		t.Fatalf("apply to a protected environment: %s", r)
	}
	if f, _ := getFlagAt(t, base, "checkout-new-flow"); f.Default == nil || *f.Default.Percentage != 10 {
		t.Fatalf("checkout-new-flow changed before approval: %+v", f.Default)
	}
	if _, status := getFlagAt(t, base, "dark-mode"); status != 404 {
		t.Fatalf("dark-mode exists before approval (%d)", status)
	}
	// A rerun replays the same requests (the writes' Idempotency-Keys).
	r = mustRun(t, 0, "", "apply", dir, "--server", base, "--reason", "canary to 25%")
	if again := opened(t, r.stdout); len(again) != 3 || again["~ flag checkout-new-flow"] != update || again["+ flag dark-mode"] != create {
		t.Fatalf("rerun opened %v, want the same %v", again, ids)
	}

	// list and show.
	r = mustRun(t, 0, "", "changes", "list", "--server", base, "--env", "prod", "--status", "pending")
	for _, id := range []string{update, create, del} {
		if strings.Count(r.stdout, id) != 1 {
			t.Errorf("changes list lacks %s:\n%s", id, r.stdout)
		}
	}
	if n := strings.Count(r.stdout, "\n"); n != 4 { // header and three requests
		t.Errorf("changes list: %d lines, want 4:\n%s", n, r.stdout)
	}
	r = mustRun(t, 0, "", "changes", "show", update, "--server", base)
	for _, want := range []string{"change request " + update + ": pending", "~ flag checkout-new-flow", "requested by:  alice", "reason:        canary to 25%",
		"~ default.percentage: 10 → 25"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("changes show lacks %q:\n%s", want, r.stdout)
		}
	}
	var shown wire.ChangeRequest
	r = mustRun(t, 0, "", "changes", "show", update, "--server", base, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || shown.ID != update || shown.Status != wire.ChangePending {
		t.Fatalf("changes show --json: %s (%v)", r.stdout, err)
	}

	// Refusals, then bob's approval.
	r = mustRun(t, 1, "", "changes", "approve", update, "--server", base, "--reason", "self")
	if !strings.Contains(r.stderr, "403") || !strings.Contains(r.stderr, "alice requested") {
		t.Fatalf("the requester approving: %s", r)
	}
	t.Setenv(tokenEnv, "carol-secret")
	r = mustRun(t, 1, "", "changes", "approve", update, "--server", base, "--reason", "lgtm")
	if !strings.Contains(r.stderr, "403") || !strings.Contains(r.stderr, "flags:approve") {
		t.Fatalf("approving without flags:approve: %s", r)
	}
	mustRun(t, 1, "", "changes", "approve", "c-nosuch", "--server", base, "--reason", "lgtm")
	mustRun(t, 2, "", "changes", "approve", "c/../x", "--server", base)
	t.Setenv(tokenEnv, "bob-secret")
	r = mustRun(t, 0, "", "changes", "approve", update, "--server", base, "--reason", "metrics are stable")
	if !strings.Contains(r.stdout, "Approved and applied change request "+update) {
		t.Fatalf("approve: %s", r)
	}
	if f, _ := getFlagAt(t, base, "checkout-new-flow"); f.Default == nil || *f.Default.Percentage != 25 {
		t.Fatalf("checkout-new-flow after the approval: %+v", f.Default)
	}
	r = mustRun(t, 1, "", "changes", "approve", update, "--server", base, "--reason", "twice")
	if !strings.Contains(r.stderr, "409") || !strings.Contains(r.stderr, wire.CodeChangeNotPending) {
		t.Fatalf("approving an applied change: %s", r)
	}
	r = mustRun(t, 0, "", "changes", "reject", del, "--server", base, "--reason", "keep the experiment")
	if !strings.Contains(r.stdout, "is rejected") {
		t.Fatalf("reject: %s", r)
	}
	if _, status := getFlagAt(t, base, "pricing-experiment"); status != 200 {
		t.Fatal("a rejected delete was applied")
	}

	// Stale: dark-mode is created by another approved request first.
	res := call(t, "POST", base+"/v1/flags?environment=prod", `{"key":"dark-mode","owners":["carol"],"changeReason":"mine"}`,
		"Authorization: Bearer carol-secret", "Content-Type: application/json")
	if res.status != 202 {
		t.Fatalf("carol's proposal: %d %s", res.status, res.body)
	}
	var other wire.ChangeRequest
	json.Unmarshal(res.body, &other)
	mustRun(t, 0, "", "changes", "approve", other.ID, "--server", base, "--reason", "ok")
	r = mustRun(t, 1, "", "changes", "approve", create, "--server", base, "--reason", "ok")
	if !strings.Contains(r.stderr, "409") || !strings.Contains(r.stderr, wire.CodeChangeStale) {
		t.Fatalf("approving a stale change: %s", r)
	}
	r = mustRun(t, 0, "", "changes", "show", create, "--server", base)
	if !strings.Contains(r.stdout, "change request "+create+": stale") {
		t.Fatalf("the stale change: %s", r.stdout)
	}
	if f, _ := getFlagAt(t, base, "dark-mode"); strings.Join(f.Owners, ",") != "carol" {
		t.Fatalf("dark-mode's owners %v, want carol's version", f.Owners)
	}

	// The audit log names requester, approver and both reasons.
	res = call(t, "GET", base+"/v1/audit?entity="+url.QueryEscape("flag:checkout-new-flow")+"&actor=bob", "", "Authorization: Bearer bob-secret")
	var a wire.AuditResponse
	if err := json.Unmarshal(res.body, &a); err != nil || len(a.Entries) != 1 {
		t.Fatalf("audit: %s (%v)", res.body, err)
	}
	if e := a.Entries[0]; e.RequestedBy != "alice" || e.ApprovedBy != "bob" || e.ChangeReason != "canary to 25%" || e.ApprovalReason != "metrics are stable" || e.ChangeRequest != update {
		t.Fatalf("audit entry: %+v", e)
	}
	r = mustRun(t, 0, "", "changes", "list", "--server", base, "--status", "stale", "--json")
	var stale []wire.ChangeRequest
	if err := json.Unmarshal([]byte(r.stdout), &stale); err != nil || len(stale) != 1 || stale[0].ID != create {
		t.Fatalf("stale change requests: %s (%v)", r.stdout, err)
	}
	mustRun(t, 2, "", "changes", "list", "--server", base, "--status", "maybe")
}

func removeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// --protect names an environment the server serves: a typo would leave
// the real one unprotected, so it is an error at start.
func TestServeProtectUnknownEnvironment(t *testing.T) {
	dir := exampleFlags(t)
	root := newRootCmd()
	root.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--log", "off", "--flags", dir, "--protect", "prdo"})
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	err := root.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), `--protect "prdo": no such environment (serving prod)`) {
		t.Fatalf("serve --protect prdo: %v", err)
	}
}

// requireApproval: true in the flags-as-code config document protects the
// environment as --protect does.
func TestServeRequireApprovalInFlagsAsCode(t *testing.T) {
	dir := exampleFlags(t)
	editFile(t, filepath.Join(dir, "prod.yaml"), "salt: prod-salt-2026", "salt: prod-salt-2026\nrequireApproval: true")
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	writeFile(t, tokens, approvalTokens)
	srv := startServe(t, "--flags", dir, "--tokens", tokens)
	etag := call(t, "GET", srv.url+"/v1/flags/checkout-new-flow?environment=prod", "", "Authorization: Bearer bob-secret").header.Get("ETag")
	r := call(t, "PATCH", srv.url+"/v1/flags/checkout-new-flow?environment=prod", `{"owners":["x"],"changeReason":"r"}`,
		"Authorization: Bearer alice-secret", "Content-Type: application/json", "If-Match: "+etag)
	var cr wire.ChangeRequest
	if r.status != 202 || json.Unmarshal(r.body, &cr) != nil || cr.Status != wire.ChangePending {
		t.Fatalf("a write to an environment with requireApproval: %d %s, want 202 and a pending change request", r.status, r.body)
	}
	if f, _ := getFlagAt(t, srv.url, "checkout-new-flow"); strings.Join(f.Owners, ",") == "x" {
		t.Fatal("the change was applied without approval")
	}
}
