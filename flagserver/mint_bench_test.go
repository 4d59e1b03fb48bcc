package flagserver

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
)

// BenchmarkEvaluateAuth measures one POST /v1/evaluate of one flag through
// the handler (no network) with a static token and with a minted
// public-client token (signature check, claims, the id's record: cached
// for MintedRecheck, as in steady state).
func BenchmarkEvaluateAuth(b *testing.B) {
	s, err := New(Options{Configs: []*evaluate.Config{mintConfig()}, Tokens: mintTokens, ReadLimit: RateLimit{PerSecond: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	mintReq := httptest.NewRequest("POST", "/v1/tokens", strings.NewReader(`{"environment":"prod","flags":["sees-plan"],"attributes":["plan"]}`))
	mintReq.Header.Set("Authorization", "Bearer mint")
	mintReq.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, mintReq)
	if rec.Code != 201 {
		b.Fatalf("mint: %d %s", rec.Code, rec.Body)
	}
	tok := strings.Split(strings.Split(rec.Body.String(), `"token":"`)[1], `"`)[0]
	body := `{"environment":"prod","requests":[{"flagKey":"sees-plan","context":{"userId":"u1","plan":"pro","email":"x@example.com"}}]}`
	for _, c := range []struct{ name, token string }{{"static", "read"}, {"minted", tok}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", "/v1/evaluate", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+c.token)
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				s.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
