package flagserver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
)

// BenchmarkPatchFlagWithLargeSegment measures a small PATCH of one flag in
// an environment that also holds a static segment of 1,000,000 ids: the
// write path must not pay for the segment every time. "patch" is the
// write alone; "patch+get" adds the GET /v1/flags that follows it (the
// 12 MB document is assembled and hashed by its first reader).
//
//	go test -run '^$' -bench BenchmarkPatchFlagWithLargeSegment -benchtime 20x ./flagserver/
func BenchmarkPatchFlagWithLargeSegment(b *testing.B) {
	ids := make([]string, 1_000_000)
	for i := range ids {
		ids[i] = "user-" + strconv.Itoa(i)
	}
	cfg := &evaluate.Config{Environment: "dev",
		Segments: []evaluate.Segment{{Key: "big", Included: ids}},
		Flags: []evaluate.Flag{
			{Key: "uses-big", Rules: []evaluate.Rule{{ID: "r", Segment: "big", Serve: evaluate.Serve{Variant: true}}}},
			{Key: "small"},
		},
	}
	s, err := New(Options{Configs: []*evaluate.Config{cfg}, WriteLimit: RateLimit{PerSecond: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.Run("patch", func(b *testing.B) { benchPatch(b, s, false) })
	b.Run("patch+get", func(b *testing.B) { benchPatch(b, s, true) })
	b.Run("patch, DataDir", func(b *testing.B) {
		d, err := New(Options{Configs: []*evaluate.Config{cfg}, WriteLimit: RateLimit{PerSecond: -1}, DataDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		benchPatch(b, d, false)
	})
}

func benchPatch(b *testing.B, s *Server, get bool) {
	b.ReportAllocs()
	for i := range b.N {
		es := s.env("dev")
		f, _ := es.snap.Flag("small")
		_, etag := entityDoc(f)
		body := []byte(`{"owners":["team-` + strconv.Itoa(i) + `"]}`)
		req := httptest.NewRequest("PATCH", "/v1/flags/small?environment=dev", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("If-Match", etag)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body.Bytes())
		}
		if get {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest("GET", "/v1/flags?environment=dev", nil))
			if w.Code != http.StatusOK || w.Body.Len() < 10_000_000 {
				b.Fatalf("GET: %d, %d bytes", w.Code, w.Body.Len())
			}
		}
	}
}
