// Package storetest is the test suite every flagserver.Store passes: the
// embedded store (memory and bbolt) and the PostgreSQL store run the same
// tests. Expected answers follow from the documented semantics of the
// Store interface, never from an implementation.
package storetest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flagwire/flagwire/flagserver"
)

// Harness opens stores for the suite.
type Harness struct {
	// Open returns a new, empty store. The suite closes it.
	Open func(t testing.TB) flagserver.Store
	// Reopen closes st and opens the same store again; nil for a store
	// that is not durable (memory only).
	Reopen func(t testing.TB, st flagserver.Store) flagserver.Store
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"SeedAndLoad", testSeedAndLoad},
		{"Write", testWrite},
		{"StaleAndFailedWrites", testStaleAndFailed},
		{"ConcurrentWritersOneWinner", testOneWinner},
		{"Tombstones", testTombstones},
		{"Idempotency", testIdempotency},
		{"Audit", testAudit},
		{"AuditRetention", testAuditRetention},
		{"Changes", testChanges},
		{"SigningKeyAndEpoch", testSigningKey},
		{"Durable", testDurable},
		{"ChangeRequests", testChangeRequests}, // changes.go
		{"AuditFilters", testAuditFilters},     // changes.go
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

func open(t *testing.T, h Harness) flagserver.Store {
	t.Helper()
	st := h.Open(t)
	t.Cleanup(func() { st.Close() })
	return st
}

var ctx = context.Background()

// env returns a stored environment with flags a and b and segment s.
func env(name string, version int64) flagserver.StoredEnv {
	return flagserver.StoredEnv{
		Name:     name,
		Version:  version,
		Head:     fmt.Appendf(nil, `{"environment":%q,"version":%d,"salt":"s"}`, name, version),
		FlagKeys: []byte(`["a","b"]`),
		SegKeys:  []byte(`["s"]`),
		Flags:    map[string][]byte{"a": []byte(`{"key":"a"}`), "b": []byte(`{"key":"b"}`)},
		Segments: map[string][]byte{"s": []byte(`{"key":"s","included":["u1"]}`)},
	}
}

func seed(t *testing.T, st flagserver.Store, e flagserver.StoredEnv) {
	t.Helper()
	ok, err := st.Seed(ctx, e)
	if err != nil || !ok {
		t.Fatalf("Seed(%s) = %v, %v; want true, nil", e.Name, ok, err)
	}
}

func sameEnv(t *testing.T, got, want flagserver.StoredEnv) {
	t.Helper()
	if got.Name != want.Name || got.Version != want.Version || !bytes.Equal(got.Head, want.Head) ||
		!bytes.Equal(got.FlagKeys, want.FlagKeys) || !bytes.Equal(got.SegKeys, want.SegKeys) ||
		!sameParts(got.Flags, want.Flags) || !sameParts(got.Segments, want.Segments) {
		t.Fatalf("stored environment\n%s\nwant\n%s", show(got), show(want))
	}
}

func sameParts(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func show(e flagserver.StoredEnv) string {
	parts := func(m map[string][]byte) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = string(v)
		}
		return out
	}
	b, _ := json.Marshal(map[string]any{"name": e.Name, "version": e.Version, "head": string(e.Head), "flagKeys": string(e.FlagKeys),
		"segKeys": string(e.SegKeys), "flags": parts(e.Flags), "segments": parts(e.Segments)})
	return string(b)
}

// update is a write of flag key's new JSON to env at base.
func update(envName string, base int64, key, doc string) *flagserver.WriteRequest {
	return &flagserver.WriteRequest{Environment: envName, Base: base, Now: time.Now(), Build: func(v int64) (*flagserver.Change, error) {
		return &flagserver.Change{Kind: "flag", Key: key, Entity: []byte(doc),
			Head:  fmt.Appendf(nil, `{"environment":%q,"version":%d,"salt":"s"}`, envName, v),
			Event: fmt.Appendf(nil, `{"type":"invalidate","flagKey":%q,"environment":%q,"version":%d}`, key, envName, v)}, nil
	}}
}

// write runs req and returns the version Build was given.
func write(t *testing.T, st flagserver.Store, req *flagserver.WriteRequest) int64 {
	t.Helper()
	var version int64
	build := req.Build
	req.Build = func(v int64) (*flagserver.Change, error) { version = v; return build(v) }
	rec, err := st.Write(ctx, req)
	if err != nil || rec != nil {
		t.Fatalf("Write(%s base %d) = %v, %v", req.Environment, req.Base, rec, err)
	}
	return version
}

func head(t *testing.T, st flagserver.Store) int64 {
	t.Helper()
	h, err := st.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func loadEnv(t *testing.T, st flagserver.Store, name string) flagserver.StoredEnv {
	t.Helper()
	e, ok, err := st.LoadEnv(ctx, name)
	if err != nil || !ok {
		t.Fatalf("LoadEnv(%s) = %v, %v", name, ok, err)
	}
	return e
}

func testSeedAndLoad(t *testing.T, h Harness) {
	st := open(t, h)
	if _, ok, err := st.LoadEnv(ctx, "prod"); ok || err != nil {
		t.Fatalf("LoadEnv of a new store: %v, %v", ok, err)
	}
	seed(t, st, env("prod", 5))
	seed(t, st, env("dev", 2))
	// Seeding an existing environment stores nothing.
	if ok, err := st.Seed(ctx, env("prod", 9)); ok || err != nil {
		t.Fatalf("second Seed(prod) = %v, %v; want false", ok, err)
	}
	sameEnv(t, loadEnv(t, st, "prod"), env("prod", 5))
	// A config whose flags are null and has no segments keeps that.
	empty := flagserver.StoredEnv{Name: "empty", Version: 1, Head: []byte(`{"environment":"empty","version":1,"salt":""}`),
		FlagKeys: []byte("null"), SegKeys: []byte("[]"), Flags: map[string][]byte{}, Segments: map[string][]byte{}}
	seed(t, st, empty)
	sameEnv(t, loadEnv(t, st, "empty"), empty)
	envs, hd, err := st.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hd < 5 || head(t, st) != hd {
		t.Fatalf("head %d after seeding version 5 (Head says %d)", hd, head(t, st))
	}
	slices.SortFunc(envs, func(a, b flagserver.StoredEnv) int { return cmpString(a.Name, b.Name) })
	if len(envs) != 3 {
		t.Fatalf("Load: %d environments, want 3", len(envs))
	}
	sameEnv(t, envs[0], env("dev", 2))
	sameEnv(t, envs[2], env("prod", 5))
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testWrite(t *testing.T, h Harness) {
	st := open(t, h)
	seed(t, st, env("prod", 5))
	seed(t, st, env("dev", 2))
	h0 := head(t, st)
	v1 := write(t, st, update("prod", 5, "a", `{"key":"a","state":"off"}`))
	if v1 <= h0 || head(t, st) != v1 {
		t.Fatalf("first write got version %d (head before %d, after %d): want above the head, and the new head", v1, h0, head(t, st))
	}
	want := env("prod", v1)
	want.Flags["a"] = []byte(`{"key":"a","state":"off"}`)
	sameEnv(t, loadEnv(t, st, "prod"), want)
	// Versions are one counter for the store: a write to dev continues it.
	v2 := write(t, st, update("dev", 2, "b", `{"key":"b","state":"off"}`))
	if v2 <= v1 {
		t.Fatalf("a write to another environment got version %d after %d", v2, v1)
	}
	// Adding a flag rewrites the key order; deleting removes the part.
	add := update("prod", v1, "c", `{"key":"c"}`)
	b := add.Build
	add.Build = func(v int64) (*flagserver.Change, error) {
		ch, err := b(v)
		ch.FlagKeys = []byte(`["a","b","c"]`)
		return ch, err
	}
	v3 := write(t, st, add)
	del := &flagserver.WriteRequest{Environment: "prod", Base: v3, Now: time.Now(), Build: func(v int64) (*flagserver.Change, error) {
		return &flagserver.Change{Kind: "segment", Key: "s", SegKeys: []byte(`[]`), Tombstone: `"etag-s"`,
			Head: fmt.Appendf(nil, `{"environment":"prod","version":%d,"salt":"s"}`, v), Event: []byte(`{}`)}, nil
	}}
	v4 := write(t, st, del)
	want = env("prod", v4)
	want.Flags["a"] = []byte(`{"key":"a","state":"off"}`)
	want.Flags["c"] = []byte(`{"key":"c"}`)
	want.FlagKeys = []byte(`["a","b","c"]`)
	want.SegKeys = []byte(`[]`)
	delete(want.Segments, "s")
	sameEnv(t, loadEnv(t, st, "prod"), want)
}

func testStaleAndFailed(t *testing.T, h Harness) {
	st := open(t, h)
	seed(t, st, env("prod", 5))
	called := false
	req := update("prod", 4, "a", `{"key":"a","state":"off"}`)
	b := req.Build
	req.Build = func(v int64) (*flagserver.Change, error) { called = true; return b(v) }
	if _, err := st.Write(ctx, req); !errors.Is(err, flagserver.ErrStale) {
		t.Fatalf("Write with a stale base: %v, want ErrStale", err)
	}
	if called {
		t.Error("Build was called for a stale write")
	}
	if _, err := st.Write(ctx, update("nope", 1, "a", `{}`)); !errors.Is(err, flagserver.ErrStale) {
		t.Fatalf("Write to an unknown environment: %v, want ErrStale", err)
	}
	// A failing Build commits nothing: the error comes back as is.
	h0 := head(t, st)
	boom := errors.New("boom")
	_, err := st.Write(ctx, &flagserver.WriteRequest{Environment: "prod", Base: 5, IdempotencyKey: "k", Now: time.Now(),
		Build: func(int64) (*flagserver.Change, error) { return nil, boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("Write with a failing Build: %v", err)
	}
	sameEnv(t, loadEnv(t, st, "prod"), env("prod", 5))
	if head(t, st) != h0 {
		t.Fatalf("head moved from %d to %d by a failed write", h0, head(t, st))
	}
	if rec, err := st.Idempotency(ctx, "k", time.Now()); rec != nil || err != nil {
		t.Fatalf("a failed write left an idempotency record: %v %v", rec, err)
	}
	// The next write still gets a version above the head.
	if v := write(t, st, update("prod", 5, "a", `{"key":"a"}`)); v <= h0 {
		t.Fatalf("version %d after head %d", v, h0)
	}
}

func testOneWinner(t *testing.T, h Harness) {
	st := open(t, h)
	seed(t, st, env("prod", 1))
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			_, errs[i] = st.Write(ctx, update("prod", 1, "a", fmt.Sprintf(`{"key":"a","w":%d}`, i)))
		})
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("writers %d and %d both won with the same base", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, flagserver.ErrStale):
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no writer won")
	}
	if got := string(loadEnv(t, st, "prod").Flags["a"]); got != fmt.Sprintf(`{"key":"a","w":%d}`, won) {
		t.Fatalf("stored %s, but writer %d won", got, won)
	}
}

func testTombstones(t *testing.T, h Harness) {
	st := open(t, h)
	seed(t, st, env("prod", 1))
	if _, ok, err := st.Tombstone(ctx, "prod", "flag", "a"); ok || err != nil {
		t.Fatalf("tombstone of a live flag: %v %v", ok, err)
	}
	del := &flagserver.WriteRequest{Environment: "prod", Base: 1, Now: time.Now(), Build: func(v int64) (*flagserver.Change, error) {
		return &flagserver.Change{Kind: "flag", Key: "a", FlagKeys: []byte(`["b"]`), Tombstone: `"e-a"`,
			Head: fmt.Appendf(nil, `{"environment":"prod","version":%d,"salt":"s"}`, v), Event: []byte(`{}`)}, nil
	}}
	v := write(t, st, del)
	if etag, ok, err := st.Tombstone(ctx, "prod", "flag", "a"); !ok || err != nil || etag != `"e-a"` {
		t.Fatalf("tombstone after delete: %q %v %v", etag, ok, err)
	}
	// Other kinds and environments have their own.
	if _, ok, _ := st.Tombstone(ctx, "prod", "segment", "a"); ok {
		t.Fatal("a flag's tombstone answers for a segment")
	}
	if _, ok, _ := st.Tombstone(ctx, "dev", "flag", "a"); ok {
		t.Fatal("a tombstone answers for another environment")
	}
	// Creating it again removes the tombstone.
	re := update("prod", v, "a", `{"key":"a"}`)
	write(t, st, re)
	if _, ok, err := st.Tombstone(ctx, "prod", "flag", "a"); ok || err != nil {
		t.Fatalf("tombstone after re-create: %v %v", ok, err)
	}
}

func testIdempotency(t *testing.T, h Harness) {
	st := open(t, h)
	seed(t, st, env("prod", 1))
	now := time.Now().Truncate(time.Microsecond) // stores keep times to the microsecond
	rec := &flagserver.IdempotencyRecord{Fingerprint: [32]byte{1, 2, 3}, Status: 201, ETag: `"e"`, Location: "/v1/flags/a",
		Warning: "w", Body: bytes.Repeat([]byte("x"), 300_000), BodyOmitted: 7, Expires: now.Add(time.Hour)}
	req := update("prod", 1, "a", `{"key":"a","n":1}`)
	req.IdempotencyKey = "tok\x00sub\x00key-1"
	b := req.Build
	req.Build = func(v int64) (*flagserver.Change, error) {
		ch, err := b(v)
		ch.Idempotency = rec
		return ch, err
	}
	v := write(t, st, req)
	got, err := st.Idempotency(ctx, req.IdempotencyKey, now)
	if err != nil || got == nil {
		t.Fatalf("Idempotency after the write: %v %v", got, err)
	}
	sameRecord(t, got, rec)
	// The same key again: the record comes back, nothing is written.
	again := update("prod", v, "a", `{"key":"a","n":2}`)
	again.IdempotencyKey = req.IdempotencyKey
	again.Now = now
	called := false
	b2 := again.Build
	again.Build = func(v int64) (*flagserver.Change, error) { called = true; return b2(v) }
	replay, err := st.Write(ctx, again)
	if err != nil || replay == nil || called {
		t.Fatalf("Write with a stored key: %v, %v (Build called: %v)", replay, err, called)
	}
	sameRecord(t, replay, rec)
	if got := string(loadEnv(t, st, "prod").Flags["a"]); got != `{"key":"a","n":1}` {
		t.Fatalf("a replayed write changed the flag: %s", got)
	}
	// Another key is another write; an expired record is no record.
	if r, _ := st.Idempotency(ctx, "tok\x00sub\x00key-2", now); r != nil {
		t.Fatal("a record under a key never used")
	}
	later := now.Add(2 * time.Hour)
	if r, err := st.Idempotency(ctx, req.IdempotencyKey, later); r != nil || err != nil {
		t.Fatalf("an expired record: %v %v", r, err)
	}
	again.Now = later
	called = false
	if replay, err := st.Write(ctx, again); err != nil || replay != nil || !called {
		t.Fatalf("Write with an expired key: %v %v (Build called: %v)", replay, err, called)
	}
}

func sameRecord(t *testing.T, got, want *flagserver.IdempotencyRecord) {
	t.Helper()
	if got.Fingerprint != want.Fingerprint || got.Status != want.Status || got.ETag != want.ETag || got.Location != want.Location ||
		got.Warning != want.Warning || !bytes.Equal(got.Body, want.Body) || got.BodyOmitted != want.BodyOmitted || !got.Expires.Equal(want.Expires) {
		t.Fatalf("idempotency record: status %d etag %s location %s warning %s, %d body bytes, expires %v, fingerprint %x\nwant status %d etag %s location %s warning %s, %d body bytes, expires %v, fingerprint %x",
			got.Status, got.ETag, got.Location, got.Warning, len(got.Body), got.Expires, got.Fingerprint,
			want.Status, want.ETag, want.Location, want.Warning, len(want.Body), want.Expires, want.Fingerprint)
	}
}

// audited writes n flag updates to env, alternating flags a and b, with
// audit entries; it returns the versions.
func audited(t *testing.T, st flagserver.Store, envName string, base int64, n int, at func(i int) time.Time, size int) int64 {
	t.Helper()
	for i := range n {
		key := []string{"a", "b"}[i%2]
		req := update(envName, base, key, fmt.Sprintf(`{"key":%q,"i":%d}`, key, i))
		b := req.Build
		req.Build = func(v int64) (*flagserver.Change, error) {
			ch, err := b(v)
			entry := fmt.Appendf(nil, `{"id":0,"entity":"flag:%s","environment":%q,"i":%d,"pad":%q}`, key, envName, i, bytes.Repeat([]byte("p"), size))
			ch.Audit = &flagserver.AuditRecord{Time: at(i), Environment: envName, Entity: "flag:" + key, Entry: entry}
			return ch, err
		}
		base = write(t, st, req)
	}
	return base
}

// entryI returns the "i" member of an audit entry.
func entryI(t *testing.T, r flagserver.AuditRecord) int {
	t.Helper()
	var e struct {
		I int `json:"i"`
	}
	if err := json.Unmarshal(r.Entry, &e); err != nil {
		t.Fatalf("audit entry %s: %v", r.Entry, err)
	}
	return e.I
}

func testAudit(t *testing.T, h Harness) {
	st := open(t, h)
	seed(t, st, env("prod", 1))
	seed(t, st, env("dev", 1))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	audited(t, st, "prod", 1, 10, at, 0)
	audited(t, st, "dev", 1, 3, at, 0)
	all, err := st.Audit(ctx, flagserver.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 13 {
		t.Fatalf("%d entries, want 13", len(all))
	}
	for j, r := range all {
		if j > 0 && r.ID >= all[j-1].ID {
			t.Fatalf("ids not newest first: %d after %d", r.ID, all[j-1].ID)
		}
	}
	if all[0].Environment != "dev" || !all[0].Time.Equal(at(2)) {
		t.Fatalf("newest entry %+v: want dev's last, at %v", all[0], at(2))
	}
	// Pages by cursor: prod's entries of flag a (i = 0, 2, 4, 6, 8),
	// two at a time, newest first.
	var seen []int
	before := int64(0)
	for page := 0; ; page++ {
		recs, err := st.Audit(ctx, flagserver.AuditQuery{Before: before, Entity: "flag:a", Environment: "prod", Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		if len(recs) > 2 || page > 5 {
			t.Fatalf("page %d has %d entries", page, len(recs))
		}
		for _, r := range recs {
			i := entryI(t, r)
			seen = append(seen, i)
			if r.Environment != "prod" || r.Entity != "flag:a" {
				t.Fatalf("filtered page holds %+v", r)
			}
		}
		before = recs[len(recs)-1].ID
	}
	if !slices.Equal(seen, []int{8, 6, 4, 2, 0}) {
		t.Fatalf("flag a's history by pages: %v, want [8 6 4 2 0]", seen)
	}
	// The allowed environments of a token.
	recs, _ := st.Audit(ctx, flagserver.AuditQuery{Environments: []string{"dev"}, Limit: 100})
	if len(recs) != 3 {
		t.Fatalf("%d entries allowed to a dev token, want 3", len(recs))
	}
	if recs, _ := st.Audit(ctx, flagserver.AuditQuery{Environments: []string{}, Limit: 100}); len(recs) != 0 {
		t.Fatalf("%d entries for a token with no environment", len(recs))
	}
	// A byte bound: entries of 10 KB, 25 KB a page → 2 entries; the first
	// entry comes whatever its size.
	st2 := open(t, h)
	seed(t, st2, env("prod", 1))
	audited(t, st2, "prod", 1, 5, at, 10_000)
	if recs, _ := st2.Audit(ctx, flagserver.AuditQuery{Limit: 100, MaxBytes: 25_000}); len(recs) != 2 {
		t.Fatalf("%d entries of 10 KB within 25 KB, want 2", len(recs))
	}
	if recs, _ := st2.Audit(ctx, flagserver.AuditQuery{Limit: 100, MaxBytes: 100}); len(recs) != 1 {
		t.Fatalf("%d entries of 10 KB within 100 bytes, want the first only", len(recs))
	}
}

func testAuditRetention(t *testing.T, h Harness) {
	st := open(t, h)
	seed(t, st, env("prod", 1))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v := audited(t, st, "prod", 1, 6, func(i int) time.Time { return t0.Add(time.Duration(i) * time.Hour) }, 0)
	// A write that prunes entries older than t0+3h leaves i = 3, 4, 5 and its own.
	req := update("prod", v, "a", `{"key":"a"}`)
	req.PruneAuditBefore = t0.Add(3 * time.Hour)
	write(t, st, req)
	recs, err := st.Audit(ctx, flagserver.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, r := range recs {
		i := entryI(t, r)
		got = append(got, i)
	}
	if !slices.Equal(got, []int{5, 4, 3}) {
		t.Fatalf("after pruning before t0+3h: entries %v, want [5 4 3]", got)
	}
}

func testChanges(t *testing.T, h Harness) {
	st := open(t, h)
	seed(t, st, env("prod", 1))
	seed(t, st, env("dev", 1))
	from := head(t, st)
	var versions []int64
	base := map[string]int64{"prod": 1, "dev": 1}
	for i := range 6 {
		e := []string{"prod", "dev"}[i%2]
		v := write(t, st, update(e, base[e], "a", fmt.Sprintf(`{"key":"a","i":%d}`, i)))
		base[e] = v
		versions = append(versions, v)
	}
	ch, err := st.Changes(ctx, from, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 6 {
		t.Fatalf("%d changes, want 6", len(ch))
	}
	for i, c := range ch {
		want := fmt.Sprintf(`{"type":"invalidate","flagKey":"a","environment":%q,"version":%d}`, []string{"prod", "dev"}[i%2], versions[i])
		if c.Version != versions[i] || c.Environment != []string{"prod", "dev"}[i%2] || string(c.Event) != want {
			t.Fatalf("change %d: %d %s %s, want version %d, %s", i, c.Version, c.Environment, c.Event, versions[i], want)
		}
	}
	ch, _ = st.Changes(ctx, versions[2], 2)
	if len(ch) != 2 || ch[0].Version != versions[3] || ch[1].Version != versions[4] {
		t.Fatalf("Changes after the third, limit 2: %+v", ch)
	}
	if ch, err := st.Changes(ctx, versions[5], 10); len(ch) != 0 || err != nil {
		t.Fatalf("Changes after the head: %+v %v", ch, err)
	}
}

func sameKeys(a, b []ed25519.PrivateKey) bool {
	return slices.EqualFunc(a, b, func(x, y ed25519.PrivateKey) bool { return x.Equal(y) })
}

func testSigningKey(t *testing.T, h Harness) {
	st := open(t, h)
	k1, err := st.SigningKeys(ctx)
	if err != nil || len(k1) != 1 || len(k1[0]) != ed25519.PrivateKeySize {
		t.Fatalf("SigningKeys of a new store: %d keys, %v", len(k1), err)
	}
	k2, err := st.SigningKeys(ctx)
	if err != nil || !sameKeys(k1, k2) {
		t.Fatal("SigningKeys changed between calls")
	}
	// A rotation makes a new current key and keeps the old one listed.
	r1, err := st.RotateSigningKey(ctx)
	if err != nil || len(r1) != 2 || r1[0].Equal(k1[0]) || !r1[1].Equal(k1[0]) {
		t.Fatalf("after a rotation: %d keys (%v); want a new one, then the old", len(r1), err)
	}
	r2, err := st.RotateSigningKey(ctx)
	if err != nil || len(r2) != 3 || !r2[1].Equal(r1[0]) || !r2[2].Equal(k1[0]) {
		t.Fatalf("after two rotations: %d keys (%v); want newest first", len(r2), err)
	}
	if k, err := st.SigningKeys(ctx); err != nil || !sameKeys(k, r2) {
		t.Fatal("SigningKeys after rotations differs from what the rotation returned")
	}
	if e := st.Epoch(); len(e) != 32 {
		t.Fatalf("epoch %q: want 32 hex digits", e)
	}
	if other := open(t, h); other.Epoch() == st.Epoch() {
		t.Fatal("two new stores share an epoch")
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testDurable(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("memory-only store: nothing survives Close")
	}
	st := h.Open(t)
	seed(t, st, env("prod", 3))
	if _, err := st.SigningKeys(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := st.RotateSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	epoch := st.Epoch()
	t0 := time.Now()
	v := audited(t, st, "prod", 3, 4, func(int) time.Time { return t0 }, 0)
	del := &flagserver.WriteRequest{Environment: "prod", Base: v, IdempotencyKey: "k", Now: t0, Build: func(v int64) (*flagserver.Change, error) {
		return &flagserver.Change{Kind: "flag", Key: "b", FlagKeys: []byte(`["a"]`), Tombstone: `"e-b"`,
			Head:        fmt.Appendf(nil, `{"environment":"prod","version":%d,"salt":"s"}`, v),
			Event:       []byte(`{}`),
			Idempotency: &flagserver.IdempotencyRecord{Status: 200, Body: []byte(`{"deleted":true}`), Expires: t0.Add(time.Hour)}}, nil
	}}
	v = write(t, st, del)
	before := loadEnv(t, st, "prod")
	st = h.Reopen(t, st)
	t.Cleanup(func() { st.Close() })
	sameEnv(t, loadEnv(t, st, "prod"), before)
	if head(t, st) != v {
		t.Fatalf("head %d after reopening, want %d", head(t, st), v)
	}
	if st.Epoch() != epoch {
		t.Fatal("the epoch changed on reopening")
	}
	if k, err := st.SigningKeys(ctx); err != nil || !sameKeys(k, keys) {
		t.Fatal("the signing keys changed on reopening")
	}
	if etag, ok, _ := st.Tombstone(ctx, "prod", "flag", "b"); !ok || etag != `"e-b"` {
		t.Fatal("the tombstone was lost on reopening")
	}
	if r, _ := st.Idempotency(ctx, "k", t0); r == nil || string(r.Body) != `{"deleted":true}` {
		t.Fatal("the idempotency record was lost on reopening")
	}
	if recs, _ := st.Audit(ctx, flagserver.AuditQuery{Limit: 100}); len(recs) != 4 {
		t.Fatalf("%d audit entries after reopening, want 4", len(recs))
	}
	if w := write(t, st, update("prod", v, "a", `{"key":"a"}`)); w <= v {
		t.Fatalf("version %d after reopening at %d", w, v)
	}
}
