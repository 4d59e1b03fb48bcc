package flagwire

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// restartFromLastKnown is a local-mode client of srv started (while the
// API is down) from the last-known file at path, signed with pub.
func restartFromLastKnown(t *testing.T, srv *flagtest.Server, path string, pub ed25519.PublicKey) *Client {
	t.Helper()
	c, err := New(context.Background(), WithEndpoint(srv.URL), WithMode(ModeLocal), WithLastKnownFile(path), WithTrustedKeys(pub),
		WithLogger(quietLogger()), WithStreaming(false))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLastKnownSurvivesRestart(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	pub := srv.Flagserver().PublicKey()
	path := filepath.Join(t.TempDir(), "flags-last-known.json")
	c := newLocal(t, srv, WithLastKnownFile(path), WithTrustedKeys(pub), WithStreaming(false))
	srv.SetFlag("prod", evaluate.Flag{Key: "persisted", Default: &evaluate.Serve{Variant: true}})
	if err := c.syncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close(context.Background())
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	srv.Down() // the API is down for the restart
	defer srv.Up()
	c2 := restartFromLastKnown(t, srv, path, pub)
	defer c2.Close(context.Background())
	v, d := c2.BoolDetail(context.Background(), "persisted", false)
	if !v || d.Source != SourceBootstrap {
		t.Fatalf("after restart with the API down: %v %+v", v, d)
	}
}

// TestLastKnownWriteSurvivesImmediateClose: a kill switch is switched off,
// the client serves the new value, the service shuts down at once, and
// restarts while the API is down. The restart must serve the value the
// client last served (off), not the one before it. Close used to cancel
// the last-known write in progress, leaving the previous version on disk.
func TestLastKnownWriteSurvivesImmediateClose(t *testing.T) {
	cfg := exampleConfig()
	cfg.Flags = append(cfg.Flags, evaluate.Flag{Key: "payments-enabled", Default: &evaluate.Serve{Variant: true}})
	srv := flagtest.NewServer(t, flagtest.WithConfig(cfg))
	pub := srv.Flagserver().PublicKey()
	path := filepath.Join(t.TempDir(), "flags-last-known.json")
	c := newLocal(t, srv, WithLastKnownFile(path), WithTrustedKeys(pub), WithPollInterval(time.Hour))
	ctx := user("8a7f4c91", "pro", "US")
	if !c.Bool(ctx, "payments-enabled", false) {
		t.Fatal("payments-enabled should start on")
	}
	// The first sync's write is done once the file exists (it is renamed
	// into place whole).
	testkit.WaitFor(t, patience, "the first last-known write", func() bool { _, err := os.Stat(path); return err == nil })
	testkit.WaitFor(t, patience, "stream connected", func() bool { return c.Status().StreamConnected })

	// The envelope fetch of the next write is slow, so Close lands while
	// the write is in progress.
	srv.InjectFault(flagtest.Fault{Path: "/v1/bootstrap", Latency: 300 * time.Millisecond})
	if _, err := srv.SetFlag("prod", evaluate.Flag{Key: "payments-enabled", Default: &evaluate.Serve{Variant: false}}); err != nil {
		t.Fatal(err)
	}
	var served Detail
	testkit.WaitFor(t, patience, "the switch-off served", func() bool {
		v, d := c.BoolDetail(ctx, "payments-enabled", true)
		served = d
		return !v && d.ErrorCode == "" && d.Source == SourceLocal
	})
	closeCtx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	start := time.Now()
	if err := c.Close(closeCtx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("Close waited %v for the write in progress (its envelope fetch delayed 300 ms)", time.Since(start))

	srv.Down()
	defer srv.Up()
	c2 := restartFromLastKnown(t, srv, path, pub)
	defer c2.Close(context.Background())
	v, d := c2.BoolDetail(ctx, "payments-enabled", true)
	// The restart serves what was served before it: the same variant and
	// reason, from the persisted file.
	if v || d.Source != SourceBootstrap || d.ErrorCode != "" || d.Variant != served.Variant || d.Reason != served.Reason || d.FlagVersion != served.FlagVersion {
		t.Fatalf("after a restart with the API down: %v %+v; want false as served before Close (%+v)", v, d, served)
	}
}

// TestCloseBoundsLastKnownWrite: Close waits for a last-known write only
// up to its ctx's deadline; the goroutines stop promptly after it.
func TestCloseBoundsLastKnownWrite(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	pub := srv.Flagserver().PublicKey()
	path := filepath.Join(t.TempDir(), "flags-last-known.json")
	c := newLocal(t, srv, WithLastKnownFile(path), WithTrustedKeys(pub), WithStreaming(false), WithPollInterval(time.Hour))
	testkit.WaitFor(t, patience, "the first last-known write", func() bool { _, err := os.Stat(path); return err == nil })
	srv.InjectFault(flagtest.Fault{Path: "/v1/bootstrap", Latency: time.Hour})
	before := srv.Requests("GET", "/v1/bootstrap")
	if _, err := srv.SetFlag("prod", evaluate.Flag{Key: "x", Default: &evaluate.Serve{Variant: true}}); err != nil {
		t.Fatal(err)
	}
	c.requestSync()
	testkit.WaitFor(t, patience, "the write in progress", func() bool { return srv.Requests("GET", "/v1/bootstrap") > before })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Close(ctx); err == nil {
		t.Fatal("Close returned nil while a write could not finish within its ctx")
	}
	// The write was abandoned: the goroutines end (goleak in TestMain checks
	// it too) and a second Close returns at once.
	if err := c.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
