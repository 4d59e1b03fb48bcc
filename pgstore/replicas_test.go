package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/flagserver/storetest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// deaf is a Store whose notifications are all lost.
type deaf struct{ *Store }

func (deaf) Notify() <-chan struct{} { return nil }

// TestLostNotifications: a replica that never gets a notification still
// streams every change of another replica, in order, found by its
// catch-up from the changes table (every PollInterval), and reads on it
// see them at once (the version check before a read).
func TestLostNotifications(t *testing.T) {
	schema := newSchema(t)
	a := storetest.StartServer(t, openSchema(t, schema))
	b := storetest.StartServer(t, deaf{openSchema(t, schema)})
	req, _ := http.NewRequest("GET", b.URL+"/v1/stream?environment=prod", nil)
	s := testkit.OpenStream(t, nil, req)
	var versions []int64
	for i := range 5 {
		v, err := a.PutFlag("prod", evaluate.Flag{Key: "k", Owners: []string{strconv.Itoa(i)}}, "t", "r")
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	for _, v := range versions {
		ev := s.Next(t)
		if ev.ID != strconv.FormatInt(v, 10) {
			t.Fatalf("replica B's stream: event %s %s, want version %d", ev.ID, ev.Data, v)
		}
	}
	v, err := a.PutFlag("prod", evaluate.Flag{Key: "k", Owners: []string{"last"}}, "t", "r")
	if err != nil {
		t.Fatal(err)
	}
	r := storetest.Do(t, "GET", b.URL+"/v1/flags?environment=prod", "")
	var cfg evaluate.Config
	if err := json.Unmarshal(r.Body, &cfg); err != nil || cfg.Version != v {
		t.Fatalf("replica B serves version %d right after a write at %d (%v)", cfg.Version, v, err)
	}
}

// TestPropagationAcrossReplicas measures how long a write on replica A
// takes to reach an SDK (local mode) streaming from replica B: from A's
// answer to the SDK's flag-change listener, over
// FLAGWIRE_PROPAGATION_CHANGES changes (default 500), one at a time. It
// reports p50, p99 and the maximum; it asserts only that every change
// arrives.
func TestPropagationAcrossReplicas(t *testing.T) {
	n := 500
	if s := os.Getenv("FLAGWIRE_PROPAGATION_CHANGES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			t.Fatalf("FLAGWIRE_PROPAGATION_CHANGES=%q: want a positive integer", s)
		}
	}
	schema := newSchema(t)
	a := storetest.StartServer(t, openSchema(t, schema))
	b := storetest.StartServer(t, openSchema(t, schema))
	ctx := context.Background()
	c, err := flagwire.New(ctx, flagwire.WithEndpoint(b.URL), flagwire.WithMode(flagwire.ModeLocal), flagwire.WithEnvironment("prod"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	seen := make(chan int64, 16)
	cancel := c.OnFlagChange("k", func(fc flagwire.FlagChange) { seen <- fc.Version })
	defer cancel()

	etag := storetest.Do(t, "GET", a.URL+"/v1/flags/k?environment=prod", "").Header.Get("ETag")
	fromAck := make([]time.Duration, 0, n)
	fromSend := make([]time.Duration, 0, n)
	for i := range n {
		sent := time.Now()
		r := storetest.Do(t, "PATCH", a.URL+"/v1/flags/k?environment=prod", fmt.Sprintf(`{"owners":["w%d"]}`, i), "If-Match: "+etag)
		acked := time.Now()
		if r.Status != 200 {
			t.Fatalf("write %d: %d %s", i, r.Status, r.Body)
		}
		etag = r.Header.Get("ETag")
		var f evaluate.Flag
		json.Unmarshal(r.Body, &f)
		deadline := time.After(10 * time.Second)
	wait:
		for {
			select {
			case v := <-seen:
				if v >= f.Version {
					now := time.Now()
					fromAck = append(fromAck, now.Sub(acked))
					fromSend = append(fromSend, now.Sub(sent))
					break wait
				}
			case <-deadline:
				t.Fatalf("write %d (version %d) never reached the SDK on replica B", i, f.Version)
			}
		}
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[min(len(s)-1, int(float64(len(s))*p))]
	}
	t.Logf("propagation A→B over %d changes, from A's answer: p50 %v, p99 %v, max %v; from the request: p50 %v, p99 %v",
		n, pct(fromAck, 0.5), pct(fromAck, 0.99), pct(fromAck, 1), pct(fromSend, 0.5), pct(fromSend, 0.99))
}

// counting is a deaf Store (every notification lost) that counts the
// head queries made of it.
type counting struct {
	*Store
	heads atomic.Int64
}

func (*counting) Notify() <-chan struct{} { return nil }

func (c *counting) Head(ctx context.Context) (int64, error) {
	c.heads.Add(1)
	return c.Store.Head(ctx)
}

// TestReadStaleness: with Options.ReadStaleness, reads on a replica within
// the window after a version check make no query and may miss a write
// made through another replica; the first read after the window checks
// and sees it. With zero, every read checks and sees it. The replica is
// deaf and does not poll, so only the reads' checks find the write.
func TestReadStaleness(t *testing.T) {
	schema := newSchema(t)
	a := storetest.StartServer(t, openSchema(t, schema))
	for _, c := range []struct {
		name      string
		staleness time.Duration
	}{{"zero: every read checks", 0}, {"100ms", 100 * time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			var clock atomic.Int64
			clock.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
			st := &counting{Store: openSchema(t, schema)}
			b := storetest.StartServerWith(t, st, func(o *flagserver.Options) {
				o.ReadStaleness = c.staleness
				o.Now = func() time.Time { return time.Unix(0, clock.Load()) }
				o.PollInterval = time.Hour
			})
			version := func() int64 {
				r := storetest.Do(t, "GET", b.URL+"/v1/flags?environment=prod", "")
				var cfg evaluate.Config
				if err := json.Unmarshal(r.Body, &cfg); err != nil {
					t.Fatalf("GET /v1/flags on replica B: %d %s", r.Status, r.Body)
				}
				return cfg.Version
			}
			before := version()
			h0 := st.heads.Load()
			for range 20 {
				version()
			}
			wantHeads := int64(20)
			if c.staleness > 0 {
				wantHeads = 0
			}
			if n := st.heads.Load() - h0; n != wantHeads {
				t.Errorf("20 reads inside the window made %d head queries, want %d", n, wantHeads)
			}
			v, err := a.PutFlag("prod", evaluate.Flag{Key: "k", Owners: []string{c.name}}, "t", "r")
			if err != nil {
				t.Fatal(err)
			}
			got, want := version(), v
			if c.staleness > 0 {
				want = before // inside the window: what B had
			}
			if got != want {
				t.Errorf("right after a write at %d through replica A, replica B serves %d, want %d", v, got, want)
			}
			clock.Add(int64(c.staleness))
			if got := version(); got != v {
				t.Errorf("after the window, replica B serves %d, want the write's %d", got, v)
			}
		})
	}
}
