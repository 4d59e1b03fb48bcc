package flagwire

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// switchProxy forwards to one of its backends, switchable at any time;
// SSE passes through (flushed at once).
type switchProxy struct {
	*httptest.Server
	target atomic.Pointer[url.URL]
	// replay, when set, answers GET /v1/flags instead of the backend.
	replay atomic.Pointer[recorded]
	// record keeps the first GET /v1/flags answer.
	mu    sync.Mutex
	first *recorded
}

type recorded struct {
	header http.Header
	body   []byte
}

func newSwitchProxy(t *testing.T, to *flagtest.Server) *switchProxy {
	p := &switchProxy{}
	p.point(to)
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(p.target.Load()) },
		FlushInterval: -1,
		ModifyResponse: func(res *http.Response) error {
			if res.Request.Method != http.MethodGet || res.Request.URL.Path != "/v1/flags" || res.StatusCode != 200 {
				return nil
			}
			body, err := io.ReadAll(res.Body)
			if err != nil {
				return err
			}
			res.Body = io.NopCloser(bytes.NewReader(body))
			p.mu.Lock()
			if p.first == nil {
				p.first = &recorded{res.Header.Clone(), body}
			}
			p.mu.Unlock()
			return nil
		},
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec := p.replay.Load(); rec != nil && r.Method == http.MethodGet && r.URL.Path == "/v1/flags" {
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(200)
			w.Write(rec.body)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *switchProxy) point(to *flagtest.Server) {
	u, err := url.Parse(to.URL)
	if err != nil {
		panic(err)
	}
	p.target.Store(u)
}

func killConfig(on bool) *evaluate.Config {
	return &evaluate.Config{Environment: "prod", Salt: "s", Version: 1,
		Flags: []evaluate.Flag{{Key: "kill", Default: &evaluate.Serve{Variant: on}}}}
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
