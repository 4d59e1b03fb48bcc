package flagserver

import (
	"bytes"
	"io"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// benchOFREPServer is a server on the design's benchmark flag and 99 more
// like it, with the 1,000-id segment (the load test's config).
func benchOFREPServer(b *testing.B) *Server {
	cfg := &evaluate.Config{Environment: "prod", Salt: "bench-salt", Segments: []evaluate.Segment{testkit.BetaSegment(1000)}}
	cfg.Flags = append(cfg.Flags, testkit.BenchFlag("bench-flag"))
	for i := range 99 {
		cfg.Flags = append(cfg.Flags, testkit.BenchFlag("flag-"+strconv.Itoa(i)))
	}
	s, err := New(Options{
		Configs: []*evaluate.Config{cfg},
		Tokens:  []Token{{Secret: "t", Subject: "bench", Scopes: []string{wire.ScopeRead}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// benchOFREP sends path with body through the whole handler (auth,
// decoding, evaluation, encoding), in process.
func benchOFREP(b *testing.B, path string) {
	s := benchOFREPServer(b)
	body := []byte(`{"context":{"targetingKey":"user-42","plan":"pro","region":"EU","appVersion":"2.3.1"}}`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", path, io.NopCloser(bytes.NewReader(body)))
		req.Header.Set("Authorization", "Bearer t")
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = int64(len(body))
		w := &discardWriter{h: make(map[string][]string, 8)}
		s.ServeHTTP(w, req)
		if w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkOFREPSingle: POST /ofrep/v1/evaluate/flags/bench-flag.
func BenchmarkOFREPSingle(b *testing.B) { benchOFREP(b, "/ofrep/v1/evaluate/flags/bench-flag") }

// BenchmarkOFREPBulk: POST /ofrep/v1/evaluate/flags, 100 flags.
func BenchmarkOFREPBulk(b *testing.B) { benchOFREP(b, "/ofrep/v1/evaluate/flags") }
