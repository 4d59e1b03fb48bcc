package chaos

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// TestChaosBootstraps drills the signed bootstrap and the last-known file
// under load: a good bootstrap serves offline with no network at all;
// tampered, expired, unknown-key and truncated files are refused and never
// serve a value (New fails in offline mode; other modes serve defaults);
// an older bootstrap never rolls back a newer last-known config; and local
// mode moves from the bootstrap to the server's config when it comes back.
func TestChaosBootstraps(t *testing.T) {
	s := loadSettings()
	now := time.Now()
	good := func(version int64) []byte {
		cfg := initialConfig()
		cfg.Version = version
		return signer.Envelope(t, cfg, now, time.Hour)
	}
	// The rolled-back config turns the benchmark flag off and the tampered
	// one serves true to everyone: either would show as wrong answers.
	rolledBack := func() []byte {
		cfg := initialConfig()
		cfg.Version = 3
		cfg.Flags[0].State = evaluate.StateOff
		return signer.Envelope(t, cfg, now, time.Hour)
	}()
	tampered := func() []byte {
		var e wire.BootstrapEnvelope
		if err := json.Unmarshal(good(5), &e); err != nil {
			t.Fatal(err)
		}
		cfg := initialConfig()
		cfg.Version = 5
		cfg.Flags[0].Rules = nil
		cfg.Flags[0].Default = &evaluate.Serve{Variant: true}
		e.Payload, _ = json.Marshal(cfg)
		b, _ := json.Marshal(e)
		return b
	}()
	expired := func() []byte {
		cfg := initialConfig()
		cfg.Version = 5
		return signer.Envelope(t, cfg, now.Add(-2*time.Hour), time.Hour)
	}()
	otherKey := func() []byte {
		priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
		e := wire.BootstrapEnvelope{Environment: env, IssuedAt: now, ExpiresAt: now.Add(time.Hour), Version: 1}
		e.Payload, _ = json.Marshal(initialConfig())
		e.Sign(priv)
		b, _ := json.Marshal(e)
		return b
	}()
	truncated := good(5)[:300]

	t.Run("offline refuses bad files", func(t *testing.T) {
		cases := []struct {
			name string
			data []byte
			want error
		}{
			{"tampered", tampered, wire.ErrBootstrapSignature},
			{"expired", expired, wire.ErrBootstrapExpired},
			{"unknown key", otherKey, wire.ErrBootstrapUnknownKey},
			{"truncated", truncated, wire.ErrBootstrapFormat},
		}
		for _, c := range cases {
			cl, err := flagwire.New(context.Background(), flagwire.WithMode(flagwire.ModeOffline), flagwire.WithBootstrap(c.data),
				flagwire.WithTrustedKeys(signer.Pub), flagwire.WithLogger(quiet))
			if err == nil {
				cl.Close(context.Background())
				t.Errorf("%s: offline New accepted it", c.name)
				continue
			}
			if !errors.Is(err, c.want) {
				t.Errorf("%s: New = %v, want %v", c.name, err, c.want)
			}
		}
		rows.Add(row{drill: "bootstraps refused", mode: "offline", faults: int64(len(cases)), ok: !t.Failed(), bound: "New fails: tampered, expired, unknown key, truncated"})
	})

	t.Run("offline good bootstrap", func(t *testing.T) {
		ignore := goleak.IgnoreCurrent()
		w := &world{t: t, s: s, clock: &serverClock{}, ct: newCountingTransport(), hist: newHistory(), rec: newRecorder(), subjects: warmSubjects()}
		w.maxLag, w.stopLag = lagMonitor()
		defer w.stopLag()
		maxLag, stopLag := w.maxLag, w.stopLag
		c, err := flagwire.New(context.Background(), flagwire.WithMode(flagwire.ModeOffline), flagwire.WithBootstrap(good(5)),
			flagwire.WithTrustedKeys(signer.Pub), flagwire.WithLogger(quiet), flagwire.WithHTTPClient(httpClient(w.ct)))
		if err != nil {
			t.Fatal(err)
		}
		w.client = c
		w.expect = expect{mode: flagwire.ModeOffline}
		loadFor(w, s.dur/2)
		c.Close(context.Background())
		var n int64
		for _, v := range w.ct.reqs {
			n += v
		}
		if n != 0 {
			t.Errorf("offline mode made %d HTTP requests", n)
		}
		w.rec.failIfProblems(t)
		w.rec.checkTimeouts(t, maxLag())
		stopLag()
		if err := goleak.Find(ignore); err != nil {
			t.Errorf("goroutines not back to baseline after Close: %v", err)
		}
		addSummary(t, w, maxLag(), "bootstrap good", "offline", 0, "0 HTTP requests")
	})

	for _, c := range []struct {
		name string
		data []byte
	}{{"tampered", tampered}, {"expired", expired}, {"unknown key", otherKey}} {
		t.Run("remote "+c.name+", server down", func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			w := newWorld(t, s, flagwire.ModeRemote, worldOptions{bootstrap: c.data, down: true})
			maxLag, stopLag := w.maxLag, w.stopLag
			loadFor(w, s.dur/2)
			st := w.client.Status()
			w.close()
			if st.LastError == "" || st.ConfigVersion != 0 {
				t.Errorf("refused bootstrap: status %+v; want the refusal in LastError and no config", st)
			}
			if n := w.rec.bySource[srcIdx(flagwire.SourceBootstrap)].Load(); n != 0 {
				t.Errorf("the refused bootstrap served %d answers", n)
			}
			w.rec.failIfProblems(t)
			w.rec.checkTimeouts(t, maxLag())
			stopLag()
			if err := goleak.Find(ignore); err != nil {
				t.Errorf("goroutines not back to baseline after Close: %v", err)
			}
			addSummary(t, w, maxLag(), "bootstrap "+c.name, "remote", 1, "refused: "+firstLine(st.LastError))
		})
	}

	for _, m := range []flagwire.Mode{flagwire.ModeRemote, flagwire.ModeLocal} {
		t.Run(string(m)+" rolled back, server down then up", func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			w := newWorld(t, s, m, worldOptions{noBootstrap: true, lastKnown: good(10), down: true, extra: []flagwire.Option{flagwire.WithBootstrap(rolledBack)}})
			maxLag, stopLag := w.maxLag, w.stopLag
			w.expect.bootstrap = true
			if st := w.client.Status(); st.ConfigVersion != 10 {
				t.Errorf("holds config version %d; the older bootstrap (3) must not replace the last-known (10)", st.ConfigVersion)
			}
			stop := make(chan struct{})
			wait := w.runLoad(stop)
			pace(s.dur / 2)
			if err := w.up(); err != nil {
				t.Fatal(err)
			}
			if m == flagwire.ModeLocal {
				testkit.CheckWithin(t, 10*time.Second, "local mode to sync once the server is back", func() bool {
					return w.client.Status().ConfigSource == flagwire.SourceLocal
				})
			}
			pace(s.dur / 2)
			close(stop)
			wait()
			w.close()
			if n := w.rec.bySource[srcIdx(flagwire.SourceBootstrap)].Load(); n == 0 {
				t.Error("the last-known config never served while the server was down")
			}
			w.rec.failIfProblems(t)
			w.rec.checkTimeouts(t, maxLag())
			stopLag()
			if err := goleak.Find(ignore); err != nil {
				t.Errorf("goroutines not back to baseline after Close: %v", err)
			}
			addSummary(t, w, maxLag(), "bootstrap rolled back", string(m), 1, "held last-known v10 over bootstrap v3")
		})
	}
}

func httpClient(ct *countingTransport) *http.Client { return &http.Client{Transport: ct} }

// loadFor runs the callers for d.
func loadFor(w *world, d time.Duration) {
	stop := make(chan struct{})
	wait := w.runLoad(stop)
	pace(d)
	close(stop)
	wait()
}

// addSummary adds a drill's row from its recorder.
func addSummary(t *testing.T, w *world, lag time.Duration, drill, mode string, faults int64, note string) {
	r := row{drill: drill, mode: mode, calls: w.rec.calls.Load(), faults: faults, codes: w.rec.codes(),
		bound: note, maxLat: time.Duration(w.rec.maxLat.Load()), lag: lag, ok: !t.Failed()}
	for i := range r.sources {
		r.sources[i] = w.rec.bySource[i].Load()
	}
	rows.Add(r)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return s
}
