package flagserver

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
)

// TestStreamOutlivesServerTimeouts: behind an http.Server with short
// ReadTimeout and WriteTimeout, an SSE stream keeps delivering keep-alives
// and events long after both have passed (the handler clears the read
// deadline and sets one write deadline per write).
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	s, err := New(Options{Configs: []*evaluate.Config{seedConfig()}, KeepAlive: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(s)
	hs.Config.ReadTimeout = 200 * time.Millisecond
	hs.Config.WriteTimeout = 200 * time.Millisecond
	hs.Start()
	defer hs.Close()
	defer s.Close()
	ts := &testServer{Server: s, URL: hs.URL, hs: hs, t: t}
	st := ts.openStream(t, "prod", "")
	start := time.Now()
	// Wait on the stream itself (keep-alives every 50ms) until well past
	// both timeouts.
	for time.Since(start) < time.Second {
		if _, ok := st.NextAny(t); !ok {
			t.Fatalf("stream ended after %v", time.Since(start))
		}
	}
	if _, err := s.PutFlag("prod", evaluate.Flag{Key: "late"}, "t", "r"); err != nil {
		t.Fatal(err)
	}
	if se := decodeEvent(t, st.Next(t)); se.FlagKey != "late" {
		t.Fatalf("event %+v", se)
	}
}
