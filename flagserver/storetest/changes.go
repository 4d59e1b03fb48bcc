package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/flagwire/flagwire/flagserver"
)

// proposal is a change request of env with an audit entry.
func proposal(id, env string, at time.Time) *flagserver.ChangeProposal {
	return &flagserver.ChangeProposal{
		Change: flagserver.StoredChange{ID: id, Environment: env, Status: "pending", Created: at, Record: fmt.Appendf(nil, `{"id":%q,"status":"pending"}`, id)},
		Audit:  &flagserver.AuditRecord{Time: at, Environment: env, Entity: "flag:a", Entry: fmt.Appendf(nil, `{"action":"propose","subject":"alice","changeRequest":%q}`, id)},
		Now:    at,
	}
}

func changeIDs(t *testing.T, st flagserver.Store, q flagserver.ChangeQuery) []string {
	t.Helper()
	cs, err := st.ChangeRequests(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

func sameIDs(a []string, b ...string) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// testChangeRequests: change requests are stored with their audit entry,
// listed newest first with filters and pages, decided once (by
// DecideChange or by the Write that applies them, atomically with it),
// and idempotent under a key.
func testChangeRequests(t *testing.T, h Harness) {
	st := open(t, h)
	seed(t, st, env("prod", 1))
	now := time.Now().Truncate(time.Microsecond)
	for i, id := range []string{"c-1", "c-2", "c-3"} {
		envName := "prod"
		if i == 1 {
			envName = "dev"
		}
		p := proposal(id, envName, now.Add(time.Duration(i)*time.Second))
		if i == 0 {
			p.IdempotencyKey = "tok\x00alice\x00p-1"
			p.Idempotency = &flagserver.IdempotencyRecord{Fingerprint: [32]byte{9}, Status: 202, Location: "/v1/changes/c-1", Body: []byte(`{"id":"c-1"}`), Expires: now.Add(time.Hour)}
		}
		if rec, err := st.ProposeChange(ctx, p); rec != nil || err != nil {
			t.Fatalf("ProposeChange(%s) = %v, %v", id, rec, err)
		}
	}
	c, ok, err := st.ChangeRequest(ctx, "c-2")
	if err != nil || !ok || c.ID != "c-2" || c.Environment != "dev" || c.Status != "pending" || !c.Created.Equal(now.Add(time.Second)) ||
		!bytes.Equal(c.Record, []byte(`{"id":"c-2","status":"pending"}`)) {
		t.Fatalf("ChangeRequest(c-2) = %+v %v %v", c, ok, err)
	}
	if _, ok, err := st.ChangeRequest(ctx, "c-none"); ok || err != nil {
		t.Fatalf("ChangeRequest of an unknown id: %v %v", ok, err)
	}
	// The same idempotency key: the stored record, nothing stored.
	p := proposal("c-4", "prod", now)
	p.IdempotencyKey = "tok\x00alice\x00p-1"
	if rec, err := st.ProposeChange(ctx, p); err != nil || rec == nil || rec.Status != 202 || rec.Location != "/v1/changes/c-1" {
		t.Fatalf("a proposal under a used key: %v, %v", rec, err)
	}
	if _, ok, _ := st.ChangeRequest(ctx, "c-4"); ok {
		t.Fatal("a replayed proposal was stored")
	}
	// Listing: newest first, filtered, paged by Seq.
	all := changeIDs(t, st, flagserver.ChangeQuery{Limit: 10})
	if !sameIDs(all, "c-3", "c-2", "c-1") {
		t.Fatalf("change requests %v, want [c-3 c-2 c-1]", all)
	}
	if ids := changeIDs(t, st, flagserver.ChangeQuery{Environment: "prod", Limit: 10}); !sameIDs(ids, "c-3", "c-1") {
		t.Fatalf("prod's change requests %v", ids)
	}
	if ids := changeIDs(t, st, flagserver.ChangeQuery{Environments: []string{"dev"}, Limit: 10}); !sameIDs(ids, "c-2") {
		t.Fatalf("change requests of environments [dev]: %v", ids)
	}
	first, err := st.ChangeRequests(ctx, flagserver.ChangeQuery{Limit: 1})
	if err != nil || len(first) != 1 || first[0].ID != "c-3" {
		t.Fatalf("first page: %+v %v", first, err)
	}
	if ids := changeIDs(t, st, flagserver.ChangeQuery{Before: first[0].Seq, Limit: 10}); !sameIDs(ids, "c-2", "c-1") {
		t.Fatalf("the page before c-3: %v", ids)
	}
	// Audit entries came with the proposals.
	recs, err := st.Audit(ctx, flagserver.AuditQuery{Entity: "flag:a", Limit: 10})
	if err != nil || len(recs) != 3 {
		t.Fatalf("audit entries of the proposals: %d, %v; want 3", len(recs), err)
	}

	// DecideChange: once.
	d := &flagserver.ChangeDecision{ID: "c-2", Status: "rejected", Record: []byte(`{"id":"c-2","status":"rejected"}`), Now: now}
	if rec, err := st.DecideChange(ctx, d); rec != nil || err != nil {
		t.Fatalf("DecideChange = %v, %v", rec, err)
	}
	if _, err := st.DecideChange(ctx, d); !errors.Is(err, flagserver.ErrChangeDecided) {
		t.Fatalf("deciding a decided change request: %v, want ErrChangeDecided", err)
	}
	if _, err := st.DecideChange(ctx, &flagserver.ChangeDecision{ID: "c-none", Status: "rejected", Record: []byte(`{}`), Now: now}); !errors.Is(err, flagserver.ErrChangeNotFound) {
		t.Fatalf("deciding an unknown change request: %v, want ErrChangeNotFound", err)
	}
	if ids := changeIDs(t, st, flagserver.ChangeQuery{Status: "pending", Limit: 10}); !sameIDs(ids, "c-3", "c-1") {
		t.Fatalf("pending change requests %v", ids)
	}

	// A Write applying c-1: the entity and the decision, together.
	apply := func(id string, base int64) (*flagserver.IdempotencyRecord, error) {
		req := update("prod", base, "a", `{"key":"a","approved":true}`)
		b := req.Build
		req.Build = func(v int64) (*flagserver.Change, error) {
			ch, err := b(v)
			ch.Decision = &flagserver.ChangeDecision{ID: id, Status: "applied", Record: fmt.Appendf(nil, `{"id":%q,"status":"applied"}`, id)}
			return ch, err
		}
		return st.Write(ctx, req)
	}
	if rec, err := apply("c-1", 1); rec != nil || err != nil {
		t.Fatalf("Write applying c-1: %v, %v", rec, err)
	}
	if c, _, _ := st.ChangeRequest(ctx, "c-1"); c.Status != "applied" || string(c.Record) != `{"id":"c-1","status":"applied"}` {
		t.Fatalf("c-1 after its Write: %+v", c)
	}
	h1 := head(t, st)
	// Applying a decided change request again writes nothing.
	for _, id := range []string{"c-1", "c-2"} {
		if _, err := apply(id, h1); !errors.Is(err, flagserver.ErrChangeDecided) {
			t.Fatalf("Write applying decided %s: %v, want ErrChangeDecided", id, err)
		}
	}
	if _, err := apply("c-none", h1); !errors.Is(err, flagserver.ErrChangeNotFound) {
		t.Fatalf("Write applying an unknown change request: %v, want ErrChangeNotFound", err)
	}
	if head(t, st) != h1 || loadEnv(t, st, "prod").Version != h1 {
		t.Fatal("a refused decision wrote")
	}

	if h.Reopen != nil {
		st = h.Reopen(t, st)
		t.Cleanup(func() { st.Close() })
		for id, status := range map[string]string{"c-1": "applied", "c-2": "rejected", "c-3": "pending"} {
			if c, ok, err := st.ChangeRequest(ctx, id); err != nil || !ok || c.Status != status {
				t.Fatalf("after reopening: %s = %+v %v %v, want %s", id, c, ok, err, status)
			}
		}
		if ids := changeIDs(t, st, flagserver.ChangeQuery{Limit: 10}); !sameIDs(ids, "c-3", "c-2", "c-1") {
			t.Fatalf("after reopening: %v", ids)
		}
	}
}

// testAuditFilters: Audit selects by actor (an entry's subject, requestedBy
// or approvedBy) and by time, since inclusive and until exclusive.
func testAuditFilters(t *testing.T, h Harness) {
	st := open(t, h)
	seed(t, st, env("prod", 1))
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	entries := []string{
		`{"subject":"alice"}`,
		`{"subject":"bob","requestedBy":"alice","approvedBy":"bob"}`,
		`{"subject":"carol"}`,
		`{"subject":"bob","requestedBy":"carol","approvedBy":"bob"}`,
	}
	base := int64(1)
	for i, e := range entries {
		req := update("prod", base, "a", fmt.Sprintf(`{"key":"a","n":%d}`, i))
		b := req.Build
		req.Build = func(v int64) (*flagserver.Change, error) {
			ch, err := b(v)
			ch.Audit = &flagserver.AuditRecord{Time: t0.Add(time.Duration(i) * time.Hour), Environment: "prod", Entity: "flag:a", Entry: []byte(e)}
			return ch, err
		}
		base = write(t, st, req)
	}
	// which returns the indexes of the selected entries, oldest first.
	which := func(q flagserver.AuditQuery) string {
		q.Limit = 10
		recs, err := st.Audit(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for i := len(recs) - 1; i >= 0; i-- {
			out = append(out, slices.Index(entries, string(recs[i].Entry)))
		}
		return fmt.Sprint(out)
	}
	for _, tc := range []struct {
		q    flagserver.AuditQuery
		want string
	}{
		{flagserver.AuditQuery{Actor: "alice"}, "[0 1]"},
		{flagserver.AuditQuery{Actor: "bob"}, "[1 3]"},
		{flagserver.AuditQuery{Actor: "carol"}, "[2 3]"},
		{flagserver.AuditQuery{Actor: "dave"}, "[]"},
		{flagserver.AuditQuery{Since: t0.Add(time.Hour)}, "[1 2 3]"},
		{flagserver.AuditQuery{Until: t0.Add(2 * time.Hour)}, "[0 1]"},
		{flagserver.AuditQuery{Since: t0.Add(time.Hour), Until: t0.Add(3 * time.Hour), Actor: "bob"}, "[1]"},
		{flagserver.AuditQuery{Since: t0.Add(time.Hour), Until: t0.Add(time.Hour)}, "[]"},
	} {
		if got := which(tc.q); got != tc.want {
			t.Errorf("Audit(actor %q, since %v, until %v) = entries %s, want %s", tc.q.Actor, tc.q.Since, tc.q.Until, got, tc.want)
		}
	}
}
