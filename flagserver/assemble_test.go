package flagserver

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// TestWriteReusesEncodedParts: after every kind of write, GET /v1/flags is
// byte for byte json.Marshal of the environment's config (the document is
// assembled from cached parts; the oracle is the encoder run on the whole
// config), and evaluation follows segment changes (compiled segments are
// reused only while unchanged).
func TestWriteReusesEncodedParts(t *testing.T) {
	empty := &evaluate.Config{Environment: "empty"}
	ts := newTestServer(t, Options{RequireChangeReason: map[string]bool{}, Configs: []*evaluate.Config{seedConfig(), empty,
		{Environment: "no-flags", Flags: []evaluate.Flag{}, Attributes: map[string]string{"plan": "string"}, RequireChangeReason: true}}})
	for _, env := range []string{"empty", "no-flags"} {
		es := ts.env(env)
		want, _ := json.Marshal(es.cfg)
		if body, _ := es.document(); string(body) != string(want) || es.size != len(want) {
			t.Fatalf("%s: document %s (size %d), want %s", env, body, es.size, want)
		}
	}
	check := func(step string) {
		t.Helper()
		r := ts.do("GET", "/v1/flags?environment=prod", "")
		r.wantStatus(t, 200)
		es := ts.env("prod")
		want, err := json.Marshal(es.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.body) != string(want) {
			t.Fatalf("%s: served\n%s\nwant json.Marshal\n%s", step, r.body, want)
		}
		if es.size != len(want) {
			t.Fatalf("%s: precomputed size %d, document %d bytes", step, es.size, len(want))
		}
		if r.header.Get("ETag") != etagOf(want) {
			t.Fatalf("%s: ETag %s is not the hash of the document", step, r.header.Get("ETag"))
		}
	}
	inSegment := func(user string) bool {
		t.Helper()
		body := `{"environment":"prod","requests":[{"flagKey":"checkout-new-flow","context":{"userId":"` + user + `","plan":"free"}}],"options":{"includeReasons":true}}`
		var er wire.EvaluateResponse
		ts.do("POST", "/v1/evaluate", body).json(t, &er)
		d := er.Decisions[0]
		return d.Reason != nil && d.Reason.Kind == "SEGMENT_MATCH"
	}
	check("start")
	etag := func(path string) string { return getETag(t, ts, path) }
	steps := []struct {
		name string
		do   func()
	}{
		{"create flag", func() {
			ts.do("POST", "/v1/flags?environment=prod", `{"key":"new-one","owners":["x"]}`).wantStatus(t, 201)
		}},
		{"patch flag", func() {
			ts.do("PATCH", "/v1/flags/new-one", `{"owners":["y"]}`, "If-Match: "+etag("/v1/flags/new-one")).wantStatus(t, 200)
		}},
		{"static ids", func() {
			ts.do("PATCH", "/v1/segments/beta_testers", `{"included":["u1","u2"]}`, "If-Match: "+etag("/v1/segments/beta_testers")).wantStatus(t, 200)
		}},
		{"patch other flag", func() {
			ts.do("PATCH", "/v1/flags/pricing-experiment", `{"owners":["z"]}`, "If-Match: "+etag("/v1/flags/pricing-experiment")).wantStatus(t, 200)
		}},
		{"create segment", func() {
			ts.do("POST", "/v1/segments?environment=prod", `{"key":"s2","included":["a"]}`).wantStatus(t, 201)
		}},
		{"programmatic put", func() {
			if _, err := ts.PutFlag("prod", evaluate.Flag{Key: "new-one", Owners: []string{"é <&> \u2028"}}, "t", "r"); err != nil {
				t.Fatal(err)
			}
		}},
		{"delete flag", func() {
			ts.do("DELETE", "/v1/flags/new-one", "", "If-Match: "+etag("/v1/flags/new-one")).wantStatus(t, 200)
		}},
		{"delete segment", func() {
			ts.do("DELETE", "/v1/segments/s2", "", "If-Match: "+etag("/v1/segments/s2")).wantStatus(t, 200)
		}},
	}
	for i, st := range steps {
		st.do()
		check(strconv.Itoa(i) + " " + st.name)
		if i == 2 || i == 3 {
			if !inSegment("u2") || inSegment("u3") {
				t.Fatalf("after %s: segment membership does not follow the change", st.name)
			}
		}
	}
	ts.do("PATCH", "/v1/segments/beta_testers", `{"included":["u3"]}`, "If-Match: "+etag("/v1/segments/beta_testers")).wantStatus(t, 200)
	if inSegment("u2") || !inSegment("u3") {
		t.Fatal("segment membership does not follow the second change")
	}
	check("end")
}

// TestEnvFromStoredReusesUnchangedParts: a replica catching up rebuilds
// an environment from the store's parts, reusing its current state's
// unchanged flags and segments (the same storage, so the compiled segment
// is reused too) and decoding only the changed ones; the result serves
// the same document as the writer's state.
func TestEnvFromStoredReusesUnchangedParts(t *testing.T) {
	cfg := seedConfig()
	big := make([]string, 5000)
	for i := range big {
		big[i] = fmt.Sprintf("u%d", i)
	}
	cfg.Segments = append(cfg.Segments, evaluate.Segment{Key: "big", Included: big})
	prev, err := newEnvState(cloneConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	// The writer's next state: one flag changed, one added.
	next := cloneConfig(prev.cfg)
	next.Version = 9
	next.Flags[0].Owners = []string{"someone-else"}
	next.Flags = append(next.Flags, evaluate.Flag{Key: "added", Version: 9})
	writer, err := nextEnvState(next, prev, "flag", next.Flags[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	se, err := storedEnvOf(writer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := envFromStored(&se, prev)
	if err != nil {
		t.Fatal(err)
	}
	wantDoc, err := json.Marshal(next) // the oracle: the encoder on the writer's whole config
	if err != nil {
		t.Fatal(err)
	}
	_, wantETag := writer.document()
	gotDoc, gotETag := got.document()
	if string(gotDoc) != string(wantDoc) || gotETag != wantETag || got.size != len(wantDoc) {
		t.Fatalf("rebuilt document (%d bytes, size %d, %s) differs from the writer's (%d bytes, %s)", len(gotDoc), got.size, gotETag, len(wantDoc), wantETag)
	}
	seg := got.cfg.Segments[len(got.cfg.Segments)-1]
	if &seg.Included[0] != &prev.cfg.Segments[len(prev.cfg.Segments)-1].Included[0] {
		t.Error("the unchanged segment was decoded again")
	}
	if &got.cfg.Flags[1].Variants[0] != &prev.cfg.Flags[1].Variants[0] {
		t.Error("the unchanged flag was decoded again")
	}
	if got.cfg.Flags[0].Owners[0] != "someone-else" || got.cfg.Flags[2].Key != "added" {
		t.Errorf("changed parts: %+v", got.cfg.Flags)
	}
	if f, ok := got.snap.Flag("added"); !ok || f.Version != 9 {
		t.Error("the compiled snapshot lacks the added flag")
	}
}
