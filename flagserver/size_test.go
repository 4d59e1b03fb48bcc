package flagserver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// TestConfigSizeLimitSharedWithSDK: the server refuses (413
// config_too_large, naming the limit, the resulting and the current size)
// a write that would make the environment's config larger than the limit
// the SDK enforces, and stores nothing; a write that shrinks it is
// accepted. The limit is lowered here to keep the test small; the default
// is checked against the shared constant.
func TestConfigSizeLimitSharedWithSDK(t *testing.T) {
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{{Environment: "dev"}}})
	if ts.maxConfigBytes != wire.MaxConfigBytes-wire.MaxEnvelopeOverhead || wire.MaxConfigBytes != 64<<20 {
		t.Fatalf("default limit %d, want 64 MiB minus the envelope overhead", ts.maxConfigBytes)
	}
	const limit = 20_000
	ts.maxConfigBytes = limit
	ids := func(prefix string, n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"%s-%05d"`, prefix, i)
		}
		return b.String()
	}
	// ~10 KB: fits.
	ts.do("POST", "/v1/segments?environment=dev", `{"key":"a","included":[`+ids("a", 1200)+`]}`).wantStatus(t, 201)
	before := ts.do("GET", "/v1/flags?environment=dev", "")
	// Another ~10 KB: the config would pass the limit.
	r := ts.do("POST", "/v1/segments?environment=dev", `{"key":"b","included":[`+ids("b", 1200)+`]}`)
	e := r.wantError(t, 413, wire.CodeConfigTooLarge)
	d := e.Details.(map[string]any)
	size, cur := d["size"].(float64), d["current"].(float64)
	if d["limit"] != float64(limit) || size <= limit || int(cur) != len(before.body) ||
		!strings.Contains(e.Message, fmt.Sprint(limit)) || !strings.Contains(e.Message, fmt.Sprint(int(size))) {
		t.Fatalf("413 %+v; config now %d bytes", e, len(before.body))
	}
	after := ts.do("GET", "/v1/flags?environment=dev", "")
	if string(after.body) != string(before.body) {
		t.Fatal("the refused write changed the config")
	}
	// Shrinking is always allowed; then it fits again.
	etag := getETag(t, ts, "/v1/segments/a?environment=dev")
	ts.do("PATCH", "/v1/segments/a?environment=dev", `{"included":[`+ids("a", 100)+`]}`, "If-Match: "+etag).wantStatus(t, 200)
	ts.do("POST", "/v1/segments?environment=dev", `{"key":"b","included":[`+ids("b", 100)+`]}`).wantStatus(t, 201)
}

// TestSegmentBloatWarning: a segment write above Options.SegmentWarnIDs
// static ids succeeds with an X-Flagwire-Warning naming the segment, the
// count and the threshold; a small one has none.
func TestSegmentBloatWarning(t *testing.T) {
	ts := newTestServer(t, Options{Configs: []*evaluate.Config{{Environment: "dev"}}, SegmentWarnIDs: 3})
	r := ts.do("POST", "/v1/segments?environment=dev", `{"key":"small","included":["a","b","c"]}`)
	r.wantStatus(t, 201)
	if w := r.header.Get(wire.HeaderWarning); w != "" {
		t.Fatalf("warning on a small segment: %q", w)
	}
	r = ts.do("POST", "/v1/segments?environment=dev", `{"key":"big","included":["a","b"],"excluded":["c","d"]}`)
	r.wantStatus(t, 201)
	if w := r.header.Get(wire.HeaderWarning); !strings.Contains(w, `"big"`) || !strings.Contains(w, "4 static ids") || !strings.Contains(w, "threshold 3") {
		t.Fatalf("warning %q", w)
	}
}
