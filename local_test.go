package flagwire

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

func TestLocalModeEvaluatesInProcess(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	c := newLocal(t, srv)
	v, d := c.BoolDetail(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false)
	if !v || d.Source != SourceLocal || d.Reason.RuleID != "rule-1" {
		t.Fatalf("%v %+v", v, d)
	}
	if n := srv.Requests("POST", "/v1/evaluate"); n != 0 {
		t.Fatalf("local mode called /v1/evaluate %d times", n)
	}
	st := c.Status()
	if st.State != StateReady || st.ETag == "" || st.ConfigSource != SourceLocal {
		t.Fatalf("status %+v", st)
	}
	if _, d := c.BoolDetail(user("x", "pro", "US"), "missing", false); d.ErrorCode != CodeFlagNotFound {
		t.Fatalf("missing flag: %+v", d)
	}
}

func TestPollingTakesOverWhenStreamDown(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	srv.InjectFault(flagtest.Fault{Path: "/v1/stream", Status: 503})
	c := newLocal(t, srv, WithPollInterval(50*time.Millisecond))
	srv.SetFlag("prod", evaluate.Flag{Key: "polled", Default: &evaluate.Serve{Variant: true}})
	testkit.WaitFor(t, patience, "polling picks up the change", func() bool { return c.Bool(context.Background(), "polled", false) })
	if c.Status().StreamConnected {
		t.Fatal("stream should be down")
	}
}

func TestNotModifiedCausesNoRecompile(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	c := newLocal(t, srv, WithStreaming(false), WithPollInterval(time.Hour))
	before := c.snap.Load()
	for i := 0; i < 3; i++ {
		if err := c.syncOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	c.local.mu.Lock()
	compiles, fetches := c.local.compiles, c.local.fetches
	c.local.mu.Unlock()
	if compiles != 1 || fetches < 4 || c.snap.Load() != before {
		t.Fatalf("compiles %d fetches %d; a 304 must not recompile", compiles, fetches)
	}
}

func TestBadOrOlderConfigKeepsTheOld(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	srv.SetFlag("prod", evaluate.Flag{Key: "bump", Default: &evaluate.Serve{Variant: true}}) // version 1
	c := newLocal(t, srv, WithStreaming(false), WithPollInterval(time.Hour))
	held := c.snap.Load()
	if held.snap.Version() < 1 {
		t.Fatalf("version %d", held.snap.Version())
	}
	bad := `{"environment":"prod","version":999,"flags":[{"key":"x","rules":[{"id":"r","when":"plan ==","variant":true}]}]}`
	older := `{"environment":"prod","version":0,"flags":[]}`
	for name, body := range map[string]string{"fails to compile": bad, "older version": older, "malformed": `{"flags": [`} {
		t.Run(name, func(t *testing.T) {
			remove := srv.InjectFault(flagtest.Fault{Path: "/v1/flags", Body: []byte(body)})
			defer remove()
			err := c.syncOnce(context.Background())
			if err == nil {
				t.Fatal("accepted")
			}
			if c.snap.Load() != held {
				t.Fatal("held config replaced")
			}
			if !c.Bool(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false) {
				t.Fatal("old config stopped serving")
			}
			t.Logf("refused: %v", err)
		})
	}
}

// TestSyncedConfigOfANewerServer: local mode reads GET /v1/flags with the
// one config decoder, skipping the fields a newer server adds (forward
// compatibility, as with unknown stream events), while a repeated name,
// which two readers could take two ways, is refused and the config held
// keeps serving.
func TestSyncedConfigOfANewerServer(t *testing.T) {
	docs := make(chan string, 2)
	docs <- `{"environment": "prod", "version": 1, "salt": "s", "futureTop": {"x": [1, 2]},
		"flags": [{"key": "f", "futureFlag": true, "rules": [{"id": "pro", "when": "plan == 'pro'", "variant": true, "futureRule": "x"}]}],
		"segments": [{"key": "s", "included": ["a"], "futureSegment": 1}]}`
	docs <- `{"environment": "prod", "version": 2, "salt": "s", "flags": [{"key": "f", "state": "on", "state": "off"}]}`
	var mu sync.Mutex
	last := ""
	srv := httptest.NewServer(onlyPath("/v1/flags", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		select {
		case last = <-docs:
		default:
		}
		doc := last
		mu.Unlock()
		w.Header().Set("Content-Type", wire.ContentTypeJSON)
		w.Write([]byte(doc))
	}))
	defer srv.Close()
	c := newLocalAt(t, srv.URL, "t", WithStreaming(false))
	check := func() {
		t.Helper()
		if v, d := c.BoolDetail(user("u1", "pro", "EU"), "f", false); !v || d.Variant != "true" || d.Reason.Kind != evaluate.ReasonRuleMatch || d.Reason.RuleID != "pro" || d.ErrorCode != "" {
			t.Errorf("pro: %v %+v", v, d)
		}
		if v, d := c.BoolDetail(user("u2", "free", "EU"), "f", true); v || d.Variant != "false" || d.Reason.Kind != evaluate.ReasonDefault || d.ErrorCode != "" {
			t.Errorf("free: %v %+v", v, d)
		}
	}
	check()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	err := c.syncOnce(ctx)
	if err == nil || !strings.Contains(err.Error(), `duplicate key "state"`) {
		t.Errorf("config with a repeated name: %v", err)
	}
	if st := c.Status(); st.ConfigVersion != 1 {
		t.Errorf("config version %d, want 1 kept", st.ConfigVersion)
	}
	check()
}

// TestLocalFollowsANewStoreEpoch: a local-mode client holds version 6 of
// a server's config; the server is replaced by one that lost its data
// (a new store epoch, its versions started again at 1, the kill switch
// off). The client follows the new server's config instead of refusing
// it as older and serving the old one for good, and so does its
// last-known file: a restart with the API down serves the new config.
func TestLocalFollowsANewStoreEpoch(t *testing.T) {
	a := flagtest.NewServer(t, flagtest.WithConfig(killConfig(true)))
	for range 5 {
		if _, err := a.SetFlag("prod", evaluate.Flag{Key: "kill", Default: &evaluate.Serve{Variant: true}}); err != nil {
			t.Fatal(err)
		}
	}
	b := flagtest.NewServer(t, flagtest.WithConfig(killConfig(false))) // the same DefaultToken
	p := newSwitchProxy(t, a)
	path := filepath.Join(t.TempDir(), "last-known.json")
	keys := WithTrustedKeys(a.Flagserver().PublicKey(), b.Flagserver().PublicKey())
	c := newLocalAt(t, p.URL, a.Token(), WithLastKnownFile(path), keys)
	ctx := WithSubject(context.Background(), StringAttr("userId", "u1"))
	held := c.Status().ConfigVersion
	if !c.Bool(ctx, "kill", false) || held < 6 {
		t.Fatalf("from the first server: kill %v at version %d, want true at 6 or later", c.Bool(ctx, "kill", false), held)
	}

	// The first sync's last-known write is done once the file exists.
	testkit.WaitFor(t, patience, "the first last-known write", func() bool { _, err := os.Stat(path); return err == nil })

	p.point(b)
	a.DropStreams() // the stream reconnects, to the new server, which resyncs the config
	testkit.WaitFor(t, patience, "the client to follow the new server's config", func() bool {
		return !c.Bool(ctx, "kill", true)
	})
	if st := c.Status(); st.ConfigVersion >= held {
		t.Fatalf("now at version %d, want the new store's (below %d)", st.ConfigVersion, held)
	}
	// Close waits for the last-known write of the config it serves.
	closeCtx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := c.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	b.Down()
	defer b.Up()
	c2, err := New(context.Background(), WithEndpoint(p.URL), WithToken(a.Token()), WithEnvironment("prod"), WithMode(ModeLocal),
		WithLastKnownFile(path), keys, WithStreaming(false), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(context.Background())
	if v, d := c2.BoolDetail(ctx, "kill", true); v || d.Source != SourceBootstrap {
		t.Fatalf("after a restart with the API down: %v %+v; want the new store's false from the last-known file", v, d)
	}
}

// TestLocalRefusesAnOlderVersionOfTheSameEpoch: an answer with a lower
// version of the same store epoch (here the first config, replayed as a
// stale cache on the way would) is refused; the client keeps the newer
// config and says why.
func TestLocalRefusesAnOlderVersionOfTheSameEpoch(t *testing.T) {
	a := flagtest.NewServer(t, flagtest.WithConfig(killConfig(true)))
	p := newSwitchProxy(t, a)
	c := newLocalAt(t, p.URL, a.Token())
	ctx := WithSubject(context.Background(), StringAttr("userId", "u1"))
	if _, err := a.SetFlag("prod", evaluate.Flag{Key: "kill", Default: &evaluate.Serve{Variant: false}}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, patience, "the change over SSE", func() bool { return !c.Bool(ctx, "kill", true) })

	p.mu.Lock()
	first := p.first
	p.mu.Unlock()
	if first == nil || first.header.Get(wire.HeaderConfigEpoch) == "" {
		t.Fatalf("the first config answer was not recorded with an epoch: %+v", first)
	}
	p.replay.Store(first)
	a.DropStreams() // the reconnect resyncs, and gets the replayed older answer
	testkit.WaitFor(t, patience, "the older answer to be refused", func() bool {
		return strings.Contains(c.Status().LastError, "out of order")
	})
	if c.Bool(ctx, "kill", true) {
		t.Fatal("the client went back to the older config")
	}
}
