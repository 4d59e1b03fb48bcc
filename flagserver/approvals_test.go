package flagserver

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// Tokens of the approval tests: alice requests, bob approves, carol
// writes without flags:approve, dev may only touch environment dev.
var approvalTokens = []Token{
	{Secret: "alice-t", Subject: "alice", Scopes: []string{wire.ScopeRead, wire.ScopeWrite, ScopeAuditRead, ScopeFlagsApprove}},
	{Secret: "bob-t", Subject: "bob", Scopes: []string{wire.ScopeRead, wire.ScopeWrite, ScopeAuditRead, ScopeFlagsApprove}},
	{Secret: "carol-t", Subject: "carol", Scopes: []string{wire.ScopeRead, wire.ScopeWrite, ScopeAuditRead}},
	{Secret: "dev-t", Subject: "devops", Scopes: []string{wire.ScopeRead, wire.ScopeWrite, ScopeAuditRead, ScopeFlagsApprove}, Environments: []string{"dev"}},
}

func authHeader(secret string) string { return "Authorization: Bearer " + secret }

// protectedServer serves prod (protected by its config's requireApproval,
// change reasons not required) and dev (not protected); log, when not
// nil, receives its log.
func protectedServer(t *testing.T, now func() time.Time, log ...io.Writer) *testServer {
	t.Helper()
	var logger *slog.Logger
	if len(log) > 0 {
		logger = slog.New(slog.NewJSONHandler(log[0], nil))
	}
	prod := seedConfig()
	prod.RequireApproval = true
	for i := range prod.Flags {
		prod.Flags[i].Environment = "prod" // as flags-as-code files set it
	}
	prod.Flags = append(prod.Flags, evaluate.Flag{Key: "kill", Metadata: evaluate.Metadata{KillSwitch: true}})
	dev := &evaluate.Config{Environment: "dev", Flags: []evaluate.Flag{{Key: "d"}}}
	return newTestServer(t, Options{Configs: []*evaluate.Config{prod, dev}, Tokens: approvalTokens, RequireChangeReason: map[string]bool{}, Now: now, Logger: logger})
}

func (ts *testServer) etag(t testing.TB, env, kind, key string) string {
	t.Helper()
	r := ts.do("GET", "/v1/"+kind+"/"+key+"?environment="+env, "", authHeader("bob-t"))
	r.wantStatus(t, 200)
	return r.header.Get("ETag")
}

func (ts *testServer) change(t *testing.T, r *response) wire.ChangeRequest {
	t.Helper()
	var cr wire.ChangeRequest
	r.json(t, &cr)
	return cr
}

// The stream sees nothing of a change request, and the approved change
// as its very next event: on one server, with the stream open from before
// the request.
func TestApprovalStreamsOnlyTheApplied(t *testing.T) {
	var log syncBuffer
	ts := protectedServer(t, nil, &log)
	st := ts.openStream(t, "prod", "", authHeader("bob-t"))
	for _, path := range []string{"/v1/flags/checkout-new-flow", "/v1/segments/beta_testers"} {
		kind := "flags"
		if path[4] == 's' {
			kind = "segments"
		}
		key := path[len("/v1/"+kind+"/"):]
		tag := ts.etag(t, "prod", kind, key)
		body := `{"owners":["proposed"]}`
		if kind == "segments" {
			body = `{"description":"proposed"}`
		}
		r := ts.do("PATCH", path+"?environment=prod", body, authHeader("alice-t"), "If-Match: "+tag)
		r.wantStatus(t, 202)
		cr := ts.change(t, r)
		// The diff differs only where the change does.
		changed := "owners"
		if kind == "segments" {
			changed = "description"
		}
		if d := diffMembers(t, cr.Diff.Before, cr.Diff.After); len(d) != 1 || d[0] != changed {
			t.Fatalf("%s: the diff's before and after differ in %v, want only %s:\n%s\n%s", path, d, changed, cr.Diff.Before, cr.Diff.After)
		}
		if ts.etag(t, "prod", kind, key) != tag {
			t.Fatalf("%s changed before approval", path)
		}
		r = ts.do("POST", "/v1/changes/"+cr.ID+"/approve", `{}`, authHeader("bob-t"))
		r.wantStatus(t, 200)
		applied := ts.change(t, r)
		ev := st.Next(t)
		var se wire.StreamEvent
		if err := json.Unmarshal([]byte(ev.Data), &se); err != nil {
			t.Fatal(err)
		}
		if se.Version != applied.AppliedVersion || (se.FlagKey != key && se.SegmentKey != key) {
			t.Fatalf("next event %s, want %s at version %d", ev.Data, key, applied.AppliedVersion)
		}
	}
	// An unprotected environment is written at once.
	r := ts.do("PATCH", "/v1/flags/d?environment=dev", `{"state":"off"}`, authHeader("carol-t"), "If-Match: "+ts.etag(t, "dev", "flags", "d"))
	r.wantStatus(t, 200)

	// No token secret in the log, the audit log or change requests.
	audit := ts.do("GET", "/v1/audit", "", authHeader("bob-t"))
	changes := ts.do("GET", "/v1/changes", "", authHeader("bob-t"))
	for _, tok := range approvalTokens {
		for what, text := range map[string]string{"log": log.String(), "audit": string(audit.body), "changes": string(changes.body)} {
			if strings.Contains(text, tok.Secret) {
				t.Errorf("the %s holds %s's token secret", what, tok.Subject)
			}
		}
	}
	if !strings.Contains(log.String(), `"subject":"bob"`) {
		t.Errorf("the log names no subject: is it empty?\n%s", log.String())
	}
}

// diffMembers names the top-level members whose values differ between
// two JSON objects (a member on one side only counts).
func diffMembers(t *testing.T, before, after []byte) []string {
	t.Helper()
	var b, a map[string]any
	if err := json.Unmarshal(before, &b); err != nil {
		t.Fatalf("diff before %s: %v", before, err)
	}
	if err := json.Unmarshal(after, &a); err != nil {
		t.Fatalf("diff after %s: %v", after, err)
	}
	var out []string
	for k, v := range b {
		if w, ok := a[k]; !ok || !reflect.DeepEqual(v, w) {
			out = append(out, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Bad proposals are refused at once, as the write would be: nothing is
// stored.
func TestProposalRefusals(t *testing.T) {
	ts := protectedServer(t, nil)
	tag := ts.etag(t, "prod", "flags", "checkout-new-flow")
	ts.do("PATCH", "/v1/flags/checkout-new-flow?environment=prod", `{"prerequisites":[{"flagKey":"nope","variants":[true]}]}`,
		authHeader("alice-t"), "If-Match: "+tag).wantError(t, 400, wire.CodeCompileError)
	ts.do("POST", "/v1/flags?environment=prod", `{"key":"checkout-new-flow"}`, authHeader("alice-t")).wantError(t, 409, wire.CodeConflict)
	ts.do("DELETE", "/v1/flags/nope?environment=prod", "", authHeader("alice-t"), "If-Match: "+tag).wantError(t, 404, wire.CodeFlagNotFound)
	ts.do("PATCH", "/v1/flags/checkout-new-flow?environment=prod", `{"owners":["x"]}`, authHeader("dev-t"), "If-Match: "+tag).wantError(t, 403, wire.CodeForbidden)
	var list wire.ChangeList
	ts.do("GET", "/v1/changes", "", authHeader("bob-t")).json(t, &list)
	if len(list.Changes) != 0 {
		t.Fatalf("refused proposals were stored: %+v", list.Changes)
	}
}

// Kill switches: only a PATCH that turns off a kill switch, and changes
// nothing else, skips approval.
func TestKillSwitchEmergency(t *testing.T) {
	ts := protectedServer(t, nil)
	path := "/v1/flags/kill?environment=prod"
	ts.do("PATCH", path, `{"state":"off","owners":["sre"]}`, authHeader("carol-t"), "If-Match: "+ts.etag(t, "prod", "flags", "kill")).wantStatus(t, 202)
	ts.do("PATCH", path, `{"state":"off"}`, authHeader("carol-t"), "If-Match: "+ts.etag(t, "prod", "flags", "kill")).wantStatus(t, 200)
	// Already off: turning it off again is no emergency to refuse either.
	ts.do("PATCH", path, `{"state":"off"}`, authHeader("carol-t"), "If-Match: "+ts.etag(t, "prod", "flags", "kill")).wantStatus(t, 200)
	ts.do("PATCH", path, `{"state":"on"}`, authHeader("carol-t"), "If-Match: "+ts.etag(t, "prod", "flags", "kill")).wantStatus(t, 202)
	ts.do("DELETE", path, "", authHeader("carol-t"), "If-Match: "+ts.etag(t, "prod", "flags", "kill")).wantStatus(t, 202)
	// Not a kill switch: approval.
	ts.do("PATCH", "/v1/flags/checkout-new-flow?environment=prod", `{"state":"off"}`, authHeader("carol-t"),
		"If-Match: "+ts.etag(t, "prod", "flags", "checkout-new-flow")).wantStatus(t, 202)
	var a wire.AuditResponse
	ts.do("GET", "/v1/audit?entity=flag:kill&actor=carol", "", authHeader("bob-t")).json(t, &a)
	emergencies := 0
	for _, e := range a.Entries {
		if e.Emergency {
			emergencies++
			if e.Action != "update" || e.Subject != "carol" {
				t.Fatalf("emergency entry %+v", e)
			}
		}
	}
	if emergencies != 2 {
		t.Fatalf("%d emergency entries, want 2: %+v", emergencies, a.Entries)
	}
}

// Who may decide: approval needs flags:approve and another subject (in
// open mode everyone is "anonymous": nobody can approve); the requester
// may withdraw (reject) her own request without the scope; a token may
// not see or decide another environment's requests.
func TestDecisionPermissions(t *testing.T) {
	ts := protectedServer(t, nil)
	propose := func(token string) wire.ChangeRequest {
		r := ts.do("PATCH", "/v1/flags/checkout-new-flow?environment=prod", `{"owners":["`+token+`"]}`, authHeader(token),
			"If-Match: "+ts.etag(t, "prod", "flags", "checkout-new-flow"))
		r.wantStatus(t, 202)
		return ts.change(t, r)
	}
	cr := propose("carol-t")
	ts.do("POST", "/v1/changes/"+cr.ID+"/reject", `{}`, authHeader("alice-t")).wantStatus(t, 200) // alice holds flags:approve
	cr = propose("carol-t")
	ts.do("POST", "/v1/changes/"+cr.ID+"/approve", `{}`, authHeader("carol-t")).wantError(t, 403, wire.CodeForbidden)
	ts.do("POST", "/v1/changes/"+cr.ID+"/reject", `{"changeReason":"withdrawn"}`, authHeader("carol-t")).wantStatus(t, 200)
	cr = propose("alice-t")
	ts.do("POST", "/v1/changes/"+cr.ID+"/reject", `{}`, authHeader("carol-t")).wantError(t, 403, wire.CodeForbidden)
	ts.do("GET", "/v1/changes/"+cr.ID, "", authHeader("dev-t")).wantError(t, 403, wire.CodeForbidden)
	ts.do("POST", "/v1/changes/"+cr.ID+"/approve", `{}`, authHeader("dev-t")).wantError(t, 403, wire.CodeForbidden)
	var list wire.ChangeList
	ts.do("GET", "/v1/changes", "", authHeader("dev-t")).json(t, &list)
	if len(list.Changes) != 0 {
		t.Fatalf("a dev-only token lists prod's change requests: %+v", list.Changes)
	}
	ts.do("POST", "/v1/changes/"+cr.ID+"/approve", `{"changeReason":1}`, authHeader("bob-t")).wantError(t, 400, wire.CodeBadRequest)
	ts.do("POST", "/v1/changes/"+cr.ID+"/approve", `{"changeReason":"ok","extra":1}`, authHeader("bob-t")).wantError(t, 400, wire.CodeUnknownField)
	ts.do("GET", "/v1/changes?status=maybe", "", authHeader("bob-t")).wantError(t, 400, wire.CodeBadRequest)

	open := newTestServer(t, Options{ProtectedEnvironments: []string{"prod"}, RequireChangeReason: map[string]bool{}})
	r := open.do("PATCH", "/v1/flags/checkout-new-flow?environment=prod", `{"owners":["x"]}`, "If-Match: "+open.etag(t, "prod", "flags", "checkout-new-flow"))
	r.wantStatus(t, 202)
	cr = open.change(t, r)
	open.do("POST", "/v1/changes/"+cr.ID+"/approve", `{}`).wantError(t, 403, wire.CodeForbidden)
}

// GET /v1/changes pages newest first with limit and cursor.
func TestChangeListPages(t *testing.T) {
	ts := protectedServer(t, nil)
	var ids []string
	for i := range 5 {
		r := ts.do("POST", "/v1/flags?environment=prod", fmt.Sprintf(`{"key":"new-%d"}`, i), authHeader("alice-t"))
		r.wantStatus(t, 202)
		ids = append([]string{ts.change(t, r).ID}, ids...) // newest first
	}
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		var l wire.ChangeList
		q := "/v1/changes?environment=prod&status=pending&limit=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		ts.do("GET", q, "", authHeader("carol-t")).json(t, &l)
		for _, c := range l.Changes {
			got = append(got, c.ID)
		}
		if l.NextCursor == "" {
			break
		}
		if page > 5 {
			t.Fatal("pages never end")
		}
		cursor = l.NextCursor
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("pages %v, want %v", got, ids)
	}
	ts.do("GET", "/v1/changes?cursor=x", "", authHeader("bob-t")).wantError(t, 400, wire.CodeBadRequest)
	ts.do("GET", "/v1/changes?limit=0", "", authHeader("bob-t")).wantError(t, 400, wire.CodeBadRequest)
}

// GET /v1/audit filters by entity, actor and time and pages with cursor.
func TestAuditFilters(t *testing.T) {
	clock := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	ts := newTestServer(t, Options{Tokens: approvalTokens, RequireChangeReason: map[string]bool{}, Now: now})
	type write struct {
		token, owner string
		at           time.Time
	}
	var writes []write
	for i, token := range []string{"alice-t", "bob-t", "alice-t", "carol-t", "alice-t"} {
		clock = time.Date(2026, 6, 1+i, 12, 0, 0, 0, time.UTC)
		w := write{token, "o" + strconv.Itoa(i), clock}
		writes = append(writes, w)
		ts.do("PATCH", "/v1/flags/checkout-new-flow?environment=prod", `{"owners":["`+w.owner+`"]}`, authHeader(token),
			"If-Match: "+ts.etag(t, "prod", "flags", "checkout-new-flow")).wantStatus(t, 200)
	}
	ts.do("PATCH", "/v1/flags/pricing-experiment?environment=prod", `{"owners":["p"]}`, authHeader("alice-t"),
		"If-Match: "+ts.etag(t, "prod", "flags", "pricing-experiment")).wantStatus(t, 200)
	subject := map[string]string{"alice-t": "alice", "bob-t": "bob", "carol-t": "carol"}
	// The expected answer: the writes, filtered here by their documented
	// meaning (oldest first within the answer).
	expect := func(actor string, since, until time.Time) []string {
		var out []string
		for _, w := range writes {
			if (actor == "" || subject[w.token] == actor) && (since.IsZero() || !w.at.Before(since)) && (until.IsZero() || w.at.Before(until)) {
				out = append(out, w.owner)
			}
		}
		return out
	}
	owners := func(query string, limit int) []string {
		var out []string
		cursor := ""
		for page := 0; page < 10; page++ {
			var a wire.AuditResponse
			q := "/v1/audit?entity=flag:checkout-new-flow&limit=" + strconv.Itoa(limit) + "&" + query
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			ts.do("GET", q, "", authHeader("bob-t")).json(t, &a)
			var pageOwners []string
			for _, e := range a.Entries {
				var f evaluate.Flag
				json.Unmarshal(e.After, &f)
				pageOwners = append(pageOwners, f.Owners...)
			}
			out = append(pageOwners, out...) // older pages go first
			if a.NextCursor == "" {
				return out
			}
			if a.NextCursor != strconv.FormatInt(a.NextBefore, 10) {
				t.Fatalf("nextCursor %q and nextBefore %d differ", a.NextCursor, a.NextBefore)
			}
			cursor = a.NextCursor
		}
		t.Fatal("pages never end")
		return nil
	}
	day := func(d int) time.Time { return time.Date(2026, 6, d, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name         string
		actor        string
		since, until time.Time
	}{
		{"all", "", time.Time{}, time.Time{}},
		{"alice", "alice", time.Time{}, time.Time{}},
		{"since", "", day(3), time.Time{}},
		{"until", "", time.Time{}, day(3)},
		{"window", "alice", day(2), day(5)},
		{"exact since", "", writes[2].at, time.Time{}},
		{"nobody", "mallory", time.Time{}, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{}
			if tc.actor != "" {
				q.Set("actor", tc.actor)
			}
			if !tc.since.IsZero() {
				q.Set("since", tc.since.Format(time.RFC3339))
			}
			if !tc.until.IsZero() {
				q.Set("until", tc.until.Format(time.RFC3339))
			}
			want := fmt.Sprint(expect(tc.actor, tc.since, tc.until))
			for _, limit := range []int{1, 2, 100} {
				if got := fmt.Sprint(owners(q.Encode(), limit)); got != want {
					t.Fatalf("limit %d: %s, want %s", limit, got, want)
				}
			}
		})
	}
	for _, q := range []string{"since=yesterday", "until=2026-13-01T00:00:00Z", "cursor=-1", "cursor=abc", "cursor=5&before=4"} {
		ts.do("GET", "/v1/audit?"+q, "", authHeader("bob-t")).wantError(t, 400, wire.CodeBadRequest)
	}
}

// BenchmarkApprovalRoundTrip: a change request proposed (PATCH → 202) and
// approved (POST → 200, applied) over loopback HTTP, in memory and with a
// data directory (each a committed, fsynced transaction).
func BenchmarkApprovalRoundTrip(b *testing.B) {
	for _, store := range []string{"memory", "data dir"} {
		b.Run(store, func(b *testing.B) {
			opts := Options{Tokens: approvalTokens, RequireChangeReason: map[string]bool{}, ProtectedEnvironments: []string{"prod"},
				WriteLimit: RateLimit{PerSecond: -1}}
			if store == "data dir" {
				opts.DataDir = b.TempDir()
			}
			ts := newTestServer(b, opts)
			r := ts.do("GET", "/v1/flags/checkout-new-flow?environment=prod", "", authHeader("bob-t"))
			etag := r.header.Get("ETag")
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r := ts.do("PATCH", "/v1/flags/checkout-new-flow?environment=prod", `{"owners":["o`+strconv.Itoa(i)+`"]}`, authHeader("alice-t"), "If-Match: "+etag)
				if r.status != 202 {
					b.Fatalf("propose: %d %s", r.status, r.body)
				}
				var cr wire.ChangeRequest
				r.json(b, &cr)
				r = ts.do("POST", "/v1/changes/"+cr.ID+"/approve", `{}`, authHeader("bob-t"))
				if r.status != 200 {
					b.Fatalf("approve: %d %s", r.status, r.body)
				}
				etag = ts.etag(b, "prod", "flags", "checkout-new-flow")
			}
		})
	}
}

// BenchmarkAuditActorFilter: GET /v1/audit?actor=NAME over a memory
// store holding n entries when no entry matches (the whole log is read,
// one entry at a time, to answer an empty page).
func BenchmarkAuditActorFilter(b *testing.B) {
	const n = 100_000
	ts := newTestServer(b, Options{Tokens: approvalTokens, RequireChangeReason: map[string]bool{}, WriteLimit: RateLimit{PerSecond: -1}})
	for i := range n {
		if _, err := ts.PutFlag("prod", evaluate.Flag{Key: "f" + strconv.Itoa(i%100)}, "alice", "fill"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r := ts.do("GET", "/v1/audit?actor=nobody", "", authHeader("bob-t"))
		if r.status != 200 || !strings.Contains(string(r.body), `"entries":[]`) {
			b.Fatalf("%d %s", r.status, r.body)
		}
	}
}

// The audit actor filter matches subjects JSON writes escaped (<, >, &,
// quotes, non-ASCII) as well as plain ones, and never a mere substring.
func TestAuditActorMatches(t *testing.T) {
	for _, subject := range []string{"alice", "a<b>&c", `say "hi"`, "zoë", "tab\there", "back\\slash"} {
		entry, err := json.Marshal(wire.AuditEntry{Subject: "x", RequestedBy: subject, Action: "update"})
		if err != nil {
			t.Fatal(err)
		}
		if !auditActorMatches(subject, entry) {
			t.Errorf("%q does not match its own entry %s", subject, entry)
		}
		for _, other := range []string{subject[:len(subject)-1], subject + "x", "x" + subject} {
			if auditActorMatches(other, entry) {
				t.Errorf("%q matches the entry of %q", other, subject)
			}
		}
	}
}
