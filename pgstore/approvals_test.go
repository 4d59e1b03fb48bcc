package pgstore

import (
	"encoding/json"
	"testing"

	"github.com/flagwire/flagwire/flagserver/storetest"
	"github.com/flagwire/flagwire/internal/wire"
)

// BenchmarkApprovalAcrossReplicas: a change request proposed on replica A
// (PATCH → 202) and approved on replica B (POST → 200, applied in B's
// transaction), over loopback HTTP, on one database.
func BenchmarkApprovalAcrossReplicas(b *testing.B) {
	schema := newSchema(b)
	a := storetest.StartProtected(b, openSchema(b, schema))
	r := storetest.StartProtected(b, openSchema(b, schema))
	auth := "Authorization: Bearer "
	etag := storetest.Do(b, "GET", a.URL+"/v1/flags/f?environment=prod", "", auth+storetest.TokenBob).Header.Get("ETag")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		p := storetest.Do(b, "PATCH", a.URL+"/v1/flags/f?environment=prod", `{"owners":["x"],"changeReason":"bench"}`,
			auth+storetest.TokenAlice, "If-Match: "+etag)
		if p.Status != 202 {
			b.Fatalf("propose: %d %s", p.Status, p.Body)
		}
		var cr wire.ChangeRequest
		if err := json.Unmarshal(p.Body, &cr); err != nil {
			b.Fatal(err)
		}
		ap := storetest.Do(b, "POST", r.URL+"/v1/changes/"+cr.ID+"/approve", `{"changeReason":"ok"}`, auth+storetest.TokenBob)
		if ap.Status != 200 {
			b.Fatalf("approve: %d %s", ap.Status, ap.Body)
		}
		etag = storetest.Do(b, "GET", a.URL+"/v1/flags/f?environment=prod", "", auth+storetest.TokenBob).Header.Get("ETag")
	}
}
