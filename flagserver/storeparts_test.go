package flagserver

import (
	"encoding/json"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/flagwire/flagwire/evaluate"
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
