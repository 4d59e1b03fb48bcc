package flagserver

import (
	"regexp"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

var epochSyntax = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestConfigEpoch: GET /v1/flags names the store's epoch. A memory-only
// server makes a new one at each start (its versions start again); a
// server with a data dir makes one when the dir is new and keeps it across
// restarts, while its versions continue.
func TestConfigEpoch(t *testing.T) {
	epochOf := func(ts *testServer) (epoch, etag string) {
		t.Helper()
		r := ts.do("GET", "/v1/flags?environment=prod", "")
		r.wantStatus(t, 200)
		epoch = r.header.Get(wire.HeaderConfigEpoch)
		if !epochSyntax.MatchString(epoch) {
			t.Fatalf("epoch %q: want 32 hex digits", epoch)
		}
		return epoch, r.header.Get("ETag")
	}
	m1, _ := epochOf(newTestServer(t, Options{}))
	m2, _ := epochOf(newTestServer(t, Options{}))
	if m1 == m2 {
		t.Fatalf("two memory-only servers share the epoch %s", m1)
	}

	dir := t.TempDir()
	ts1 := newTestServer(t, Options{DataDir: dir})
	d1, _ := epochOf(ts1)
	ts1.close()
	ts2 := newTestServer(t, Options{DataDir: dir})
	d2, _ := epochOf(ts2)
	if d1 != d2 {
		t.Fatalf("a restart from the data dir changed the epoch: %s, then %s", d1, d2)
	}
	if d1 == m1 || d1 == m2 {
		t.Fatalf("a data dir's epoch %s equals a memory server's", d1)
	}

	// NewEpoch (after restoring a backup) starts a new epoch, which the
	// data dir then keeps; the versions continue from the stored ones.
	restart := func(newEpoch bool) (epoch string, version int64) {
		t.Helper()
		ts := newTestServer(t, Options{DataDir: dir, NewEpoch: newEpoch})
		epoch, _ = epochOf(ts)
		var cfg evaluate.Config
		ts.do("GET", "/v1/flags?environment=prod", "").json(t, &cfg)
		ts.close()
		return epoch, cfg.Version
	}
	ts2.close()
	_, v0 := restart(false)
	d3, v3 := restart(true)
	d4, v4 := restart(false)
	if d3 == d2 || d4 != d3 {
		t.Fatalf("epochs %s, then with NewEpoch %s, then %s: want a new one, kept", d2, d3, d4)
	}
	if v3 != v0 || v4 != v0 {
		t.Fatalf("versions %d, %d, %d: a new epoch must not change the stored version", v0, v3, v4)
	}
}
