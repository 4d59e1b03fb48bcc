package flagserver

import (
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// TestStoreWritesOnlyTheChange: with DataDir an environment is stored in
// parts; creates, updates and deletes of flags and segments survive a
// restart byte for byte (order included), and a store written whole by an
// older version loads and is converted by its first write.
func TestStoreWritesOnlyTheChange(t *testing.T) {
	dir := t.TempDir()
	// An older store: the config JSON whole under envs/prod.
	legacy := seedConfig()
	legacy.Version = 3
	body, _ := json.Marshal(legacy)
	db, err := bolt.Open(filepath.Join(dir, "flagwire.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketEnvs)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketAudit); err != nil {
			return err
		}
		return b.Put([]byte("prod"), body)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	open := func() *testServer {
		s, err := New(Options{DataDir: dir, RequireChangeReason: map[string]bool{}})
		if err != nil {
			t.Fatal(err)
		}
		return newTestServerFrom(t, s)
	}
	ts := open()
	if r := ts.do("GET", "/v1/flags?environment=prod", ""); string(r.body) != string(body) {
		t.Fatalf("legacy store loaded as\n%s\nwant\n%s", r.body, body)
	}
	steps := []func(){
		func() { ts.do("POST", "/v1/flags?environment=prod", `{"key":"zz-new"}`).wantStatus(t, 201) },
		func() {
			ts.do("PATCH", "/v1/flags/checkout-new-flow", `{"state":"off"}`, "If-Match: "+getETag(t, ts, "/v1/flags/checkout-new-flow")).wantStatus(t, 200)
		},
		func() {
			ts.do("POST", "/v1/segments?environment=prod", `{"key":"s2","included":["a","b"]}`).wantStatus(t, 201)
		},
		func() {
			ts.do("DELETE", "/v1/flags/pricing-experiment", "", "If-Match: "+getETag(t, ts, "/v1/flags/pricing-experiment")).wantStatus(t, 200)
		},
		func() {
			ts.do("PATCH", "/v1/segments/s2", `{"included":["c"]}`, "If-Match: "+getETag(t, ts, "/v1/segments/s2")).wantStatus(t, 200)
		},
		func() {
			if _, err := ts.PutFlag("prod", evaluate.Flag{Key: "checkout-new-flow", Owners: []string{"x"}}, "t", "r"); err != nil {
				t.Fatal(err)
			}
		},
	}
	for i, step := range steps {
		step()
		before := ts.do("GET", "/v1/flags?environment=prod", "")
		ts.Close()
		ts.hs.Close()
		ts = open()
		after := ts.do("GET", "/v1/flags?environment=prod", "")
		if string(after.body) != string(before.body) || after.header.Get("ETag") != before.header.Get("ETag") {
			t.Fatalf("step %d: config changed across restart:\n%s\n%s", i, before.body, after.body)
		}
	}
}

// TestLegacyAuditEntries: a data dir written by a version that stored
// audit entries as their wire.AuditEntry JSON (ids from its own counter)
// serves them, and new entries get ids after them.
func TestLegacyAuditEntries(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "flagwire.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketAudit)
		if err != nil {
			return err
		}
		for id := uint64(1); id <= 3; id++ {
			e, _ := json.Marshal(wire.AuditEntry{ID: int64(id), Time: time.Date(2026, 1, 1, 0, 0, int(id), 0, time.UTC), Subject: "old",
				Action: "update", Entity: "flag:checkout-new-flow", Environment: "prod", RequestID: "r"})
			if err := b.Put(binary.BigEndian.AppendUint64(nil, id), e); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, Options{DataDir: dir, RequireChangeReason: map[string]bool{}})
	ts.do("PATCH", "/v1/flags/checkout-new-flow", `{"state":"off"}`, "If-Match: "+getETag(t, ts, "/v1/flags/checkout-new-flow")).wantStatus(t, 200)
	var a wire.AuditResponse
	ts.do("GET", "/v1/audit?entity=flag:checkout-new-flow", "").json(t, &a)
	if len(a.Entries) != 4 {
		t.Fatalf("%d entries: %s", len(a.Entries), mustJSON(a))
	}
	for i, e := range a.Entries {
		if e.ID != int64(i+1) || (i < 3) != (e.Subject == "old") {
			t.Fatalf("entry %d: %s", i, mustJSON(e))
		}
	}
}
