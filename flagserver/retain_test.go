package flagserver

import (
	"runtime"
	"testing"
	"weak"

	"github.com/flagwire/flagwire/evaluate"
)

// locator is an evaluate.Locator that stands for the source positions a
// flags-as-code loader attaches to a Config.
type locator struct{ positions []byte }

func (l *locator) Locate(*evaluate.Finding) {}

// TestNewKeepsNoCallerConfig: once New has compiled and cloned the
// caller's configs, it holds neither them nor their Locator (the source
// positions of files, hundreds of KiB for a hundred flags), so an idle
// server's memory is what it serves.
func TestNewKeepsNoCallerConfig(t *testing.T) {
	cfg := seedConfig()
	loc := &locator{positions: make([]byte, 1<<20)}
	cfg.Locator = loc
	wcfg, wloc := weak.Make(cfg), weak.Make(loc)
	srv, err := New(Options{Configs: []*evaluate.Config{cfg}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg, loc = nil, nil
	runtime.GC()
	if wcfg.Value() != nil || wloc.Value() != nil {
		t.Errorf("the server keeps the caller's config (%v) or its locator (%v)", wcfg.Value() != nil, wloc.Value() != nil)
	}
	if got := srv.Environments(); len(got) != 1 || got[0] != "prod" {
		t.Errorf("environments %v", got)
	}
	runtime.KeepAlive(srv)
}
