package flagserver

import (
	"slices"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// TestStreamEventListsDependents: an invalidation of a flag lists every
// flag depending on it through prerequisites, transitively, over SSE.
// Graph (X → Y: X requires Y): b → a, c → b, d → a, d → c, f → e; g alone.
func TestStreamEventListsDependents(t *testing.T) {
	pre := func(keys ...string) []evaluate.Prerequisite {
		var ps []evaluate.Prerequisite
		for _, k := range keys {
			ps = append(ps, evaluate.Prerequisite{FlagKey: k, Variants: []any{true}})
		}
		return ps
	}
	cfg := &evaluate.Config{Environment: "dev", Flags: []evaluate.Flag{
		{Key: "a"}, {Key: "b", Prerequisites: pre("a")}, {Key: "c", Prerequisites: pre("b")},
		{Key: "d", Prerequisites: pre("a", "c")}, {Key: "e"}, {Key: "f", Prerequisites: pre("e")}, {Key: "g"},
	}}
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{cfg}})
	s := ts.openStream(t, "dev", "")
	patch := func(key string) {
		t.Helper()
		r := ts.do("GET", "/v1/flags/"+key+"?environment=dev", "")
		r.wantStatus(t, 200)
		ts.do("PATCH", "/v1/flags/"+key+"?environment=dev", `{"owners":["changed"]}`, "If-Match: "+r.header.Get("ETag")).wantStatus(t, 200)
	}
	del := func(key string) {
		t.Helper()
		r := ts.do("GET", "/v1/flags/"+key+"?environment=dev", "")
		ts.do("DELETE", "/v1/flags/"+key+"?environment=dev", "", "If-Match: "+r.header.Get("ETag")).wantStatus(t, 200)
	}
	for _, tt := range []struct {
		name   string
		change func()
		key    string
		want   []string
	}{
		{"root", func() { patch("a") }, "a", []string{"b", "c", "d"}},
		{"middle", func() { patch("c") }, "c", []string{"d"}},
		{"leaf", func() { patch("d") }, "d", nil},
		{"other tree", func() { patch("e") }, "e", []string{"f"}},
		{"alone", func() { patch("g") }, "g", nil},
		{"delete dependent", func() { del("f") }, "f", nil},
		// b stops requiring a: the event for b lists c and d (they
		// depend on b); a's next event no longer lists b, but d still.
		{"rewire", func() {
			if _, err := ts.PutFlag("dev", evaluate.Flag{Key: "b"}, "t", "r"); err != nil {
				t.Fatal(err)
			}
		}, "b", []string{"c", "d"}},
		{"after rewire", func() { patch("a") }, "a", []string{"d"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.change()
			se := decodeEvent(t, s.Next(t))
			if se.Type != wire.EventInvalidate || se.FlagKey != tt.key || !slices.Equal(se.Dependents, tt.want) {
				t.Fatalf("event %+v, want flag %s with dependents %v", se, tt.key, tt.want)
			}
		})
	}
}
