package flagserver

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

func decodeEvent(t *testing.T, ev testkit.Event) wire.StreamEvent {
	t.Helper()
	var se wire.StreamEvent
	if err := json.Unmarshal([]byte(ev.Data), &se); err != nil {
		t.Fatalf("event data %q: %v", ev.Data, err)
	}
	if ev.ID != strconv.FormatInt(se.Version, 10) || ev.Event != se.Type {
		t.Fatalf("event id %q type %q, data %s", ev.ID, ev.Event, ev.Data)
	}
	return se
}

func TestStreamOrderAndResume(t *testing.T) {
	ts := newTestServer(t, Options{})
	s := ts.openStream(t, "prod", "")
	// The first message is the retry hint with a greeting comment.
	hello, _ := s.NextAny(t)
	retry, _ := s.NextAny(t)
	if hello.Comment == "" || retry.Retry != "1000" {
		t.Fatalf("first message %+v %+v, want a comment and the retry hint", hello, retry)
	}
	if ts.Streams() != 1 {
		t.Fatalf("Streams() = %d", ts.Streams())
	}
	const n = 20
	for i := range n {
		if _, err := ts.PutFlag("prod", evaluate.Flag{Key: "f" + strconv.Itoa(i)}, "t", "r"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.PutSegment("prod", evaluate.Segment{Key: "seg", When: "plan == 'x'"}, "t", "r"); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		se := decodeEvent(t, s.Next(t))
		if se.Type != "invalidate" || se.FlagKey != "f"+strconv.Itoa(i) || se.Version != int64(i+1) || se.Environment != "prod" {
			t.Fatalf("event %d: %+v", i, se)
		}
	}
	if se := decodeEvent(t, s.Next(t)); se.SegmentKey != "seg" || se.Version != n+1 {
		t.Fatalf("segment event %+v", se)
	}

	// Resume from version 5: events 6..21 replayed, in order.
	r := ts.openStream(t, "prod", "5")
	for v := int64(6); v <= n+1; v++ {
		if se := decodeEvent(t, r.Next(t)); se.Version != v {
			t.Fatalf("replayed version %d, want %d", se.Version, v)
		}
	}
	// Up to date: nothing replayed, then live events.
	u := ts.openStream(t, "prod", strconv.Itoa(n+1))
	ts.PutFlag("prod", evaluate.Flag{Key: "live"}, "t", "r")
	if se := decodeEvent(t, u.Next(t)); se.FlagKey != "live" || se.Version != n+2 {
		t.Fatalf("live event %+v", se)
	}
	// A Last-Event-ID from the future (server restarted without data) → reset.
	f := ts.openStream(t, "prod", "999")
	if se := decodeEvent(t, f.Next(t)); se.Type != "reset" || se.Version != n+2 {
		t.Fatalf("future id: %+v", se)
	}
	// Garbage → reset.
	g := ts.openStream(t, "prod", "not-a-number")
	if se := decodeEvent(t, g.Next(t)); se.Type != "reset" {
		t.Fatalf("garbage id: %+v", se)
	}
}

func TestStreamResetWhenTooFarBehind(t *testing.T) {
	ts := newTestServer(t, Options{ReplayBuffer: 4})
	for i := range 10 {
		ts.PutFlag("prod", evaluate.Flag{Key: "f" + strconv.Itoa(i)}, "t", "r")
	}
	// Buffer holds versions 7..10; 6 is resumable, 5 is not.
	ok := ts.openStream(t, "prod", "6")
	if se := decodeEvent(t, ok.Next(t)); se.Type != "invalidate" || se.Version != 7 {
		t.Fatalf("resume at buffer edge: %+v", se)
	}
	late := ts.openStream(t, "prod", "5")
	ev := late.Next(t)
	if se := decodeEvent(t, ev); se.Type != "reset" || se.Version != 10 || ev.ID != "10" {
		t.Fatalf("too far behind: %+v", ev)
	}
	// After the reset the stream continues live.
	ts.PutFlag("prod", evaluate.Flag{Key: "after"}, "t", "r")
	if se := decodeEvent(t, late.Next(t)); se.Version != 11 || se.FlagKey != "after" {
		t.Fatalf("after reset: %+v", se)
	}
}

func TestStreamKeepAliveAndClose(t *testing.T) {
	ts := newTestServer(t, Options{KeepAlive: 20 * time.Millisecond})
	s := ts.openStream(t, "prod", "")
	for {
		ev, ok := s.NextAny(t)
		if !ok {
			t.Fatal("stream ended")
		}
		if ev.Comment == "keep-alive" {
			break
		}
	}
	ts.Close()
	// Close ends the stream: the body reaches EOF.
	for {
		_, ok := s.NextAny(t)
		if !ok {
			break
		}
	}
	if ts.Streams() != 0 {
		t.Errorf("Streams() = %d after Close", ts.Streams())
	}
	ts.do("GET", "/v1/stream?environment=prod", "").wantError(t, 503, wire.CodeUnavailable)
	if _, err := ts.PutFlag("prod", evaluate.Flag{Key: "x"}, "t", "r"); err == nil {
		t.Error("write after Close succeeded")
	}
	if err := ts.Server.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStreamErrors(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.do("GET", "/v1/stream?environment=nope", "").wantError(t, 404, wire.CodeEnvironmentNotFound)
	ts.do("POST", "/v1/stream", "{}").wantError(t, 405, wire.CodeMethodNotAllowed)
}

// TestStreamAnnouncesConfigVersion: a stream's response carries
// X-Flagwire-Config-Version, the environment's version when it opened
// (the greeting comment repeats it), and the next change reaches the
// stream as the event of the version after it; POST /v1/evaluate says
// which version its decisions were computed at. Both follow writes, and a
// resumed stream announces the current version too.
func TestStreamAnnouncesConfigVersion(t *testing.T) {
	cfg := seedConfig()
	cfg.Version = 7 // a stored environment starts at its stored version
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{cfg}})
	evalVersion := func() int64 {
		t.Helper()
		r := ts.do("POST", "/v1/evaluate", `{"environment":"prod","requests":[{"flagKey":"checkout-new-flow","context":{"plan":"pro"}}]}`)
		r.wantStatus(t, 200)
		var got wire.EvaluateResponse
		r.json(t, &got)
		if got.ConfigVersion == nil || !strings.Contains(string(r.body), `"configVersion":`) {
			t.Fatalf("no configVersion in %s", r.body)
		}
		return *got.ConfigVersion
	}
	if v := evalVersion(); v != 7 {
		t.Fatalf("evaluate configVersion %d, want 7", v)
	}
	s := ts.openStream(t, "prod", "")
	if got := s.Header().Get(wire.HeaderConfigVersion); got != "7" {
		t.Fatalf("%s %q, want 7", wire.HeaderConfigVersion, got)
	}
	greeting, _ := s.NextAny(t)
	if greeting.Comment != "flagwire stream environment=prod version=7" {
		t.Fatalf("greeting %+v", greeting)
	}
	if _, err := ts.PutFlag("prod", evaluate.Flag{Key: "new-flag"}, "t", "r"); err != nil {
		t.Fatal(err)
	}
	if se := decodeEvent(t, s.Next(t)); se.Version != 8 || se.FlagKey != "new-flag" {
		t.Fatalf("first event %+v, want version 8", se)
	}
	if v := evalVersion(); v != 8 {
		t.Fatalf("evaluate configVersion after a write %d, want 8", v)
	}
	for _, last := range []string{"", "7"} {
		if got := ts.openStream(t, "prod", last).Header().Get(wire.HeaderConfigVersion); got != "8" {
			t.Fatalf("Last-Event-ID %q: %s %q, want 8", last, wire.HeaderConfigVersion, got)
		}
	}
}

// TestStreamVersionRacesWrites: the version a stream announces is never
// followed by a change it does not deliver, however the stream's opening
// and writes interleave. Each of several streams opened during a burst
// of writes must receive, in order, the event of every version after the
// one it announced.
func TestStreamVersionRacesWrites(t *testing.T) {
	ts := newTestServer(t, Options{})
	const writes = 200
	done := make(chan error, 1)
	go func() {
		for i := range writes {
			if _, err := ts.PutFlag("prod", evaluate.Flag{Key: "f" + strconv.Itoa(i%5)}, "t", "r"); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	type opened struct {
		s *testkit.Stream
		v int64
	}
	var streams []opened
	for range 8 {
		s := ts.openStream(t, "prod", "")
		v, err := strconv.ParseInt(s.Header().Get(wire.HeaderConfigVersion), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, opened{s, v})
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i, o := range streams {
		for want := o.v + 1; want <= writes; want++ {
			if se := decodeEvent(t, o.s.Next(t)); se.Version != want {
				t.Fatalf("stream %d (announced %d): event version %d, want %d", i, o.v, se.Version, want)
			}
		}
	}
}

// TestStreamAcrossVersionGaps: versions are one counter for the store, so
// an environment's versions have gaps when another environment is written
// in between. Its stream carries its own events with their versions as
// ids, and resuming from any id, one between two events included, sends
// exactly the later ones.
func TestStreamAcrossVersionGaps(t *testing.T) {
	dev := &evaluate.Config{Environment: "dev", Salt: "s"}
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{seedConfig(), dev}})
	s := ts.openStream(t, "prod", "")
	var prod []int64
	for i := range 6 {
		env := []string{"prod", "dev", "dev"}[i%3]
		v, err := ts.PutFlag(env, evaluate.Flag{Key: "f" + strconv.Itoa(i)}, "t", "r")
		if err != nil {
			t.Fatal(err)
		}
		if env == "prod" {
			prod = append(prod, v)
		}
	}
	if prod[1]-prod[0] != 3 {
		t.Fatalf("prod's versions %v: want a gap of the two dev writes", prod)
	}
	for _, v := range prod {
		if se := decodeEvent(t, s.Next(t)); se.Version != v || se.Environment != "prod" {
			t.Fatalf("event %+v, want prod at %d", se, v)
		}
	}
	// Resume from an id in the gap (a dev version): the next prod event.
	r := ts.openStream(t, "prod", strconv.FormatInt(prod[0]+1, 10))
	if se := decodeEvent(t, r.Next(t)); se.Version != prod[1] {
		t.Fatalf("resumed in the gap: event at %d, want %d", se.Version, prod[1])
	}
	if ev, ok := r.NextWithin(100 * time.Millisecond); ok {
		t.Fatalf("an event after the last: %+v", ev)
	}
}
