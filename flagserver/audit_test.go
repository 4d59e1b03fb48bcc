package flagserver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/internal/wire"
)

// TestAuditDigestsLargeEntities: an audit entry keeps a large segment as
// its SHA-256 and size, not whole, so a page of its history stays small;
// the digest is that of the segment's document as GET serves it (without
// its "etag" member).
func TestAuditDigestsLargeEntities(t *testing.T) {
	ts := newTestServer(t, Options{RequireChangeReason: map[string]bool{}})
	ids := make([]string, 20000)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprintf("user-%06d", i))
	}
	ts.do("POST", "/v1/segments?environment=prod", `{"key":"big","included":[`+strings.Join(ids, ",")+`]}`).wantStatus(t, 201)
	r := ts.do("GET", "/v1/segments/big?environment=prod", "")
	r.wantStatus(t, 200)
	doc := regexp.MustCompile(`,"etag":"(?:[^"\\]|\\.)*"\}$`).ReplaceAllString(string(r.body), "}")
	sum := sha256.Sum256([]byte(doc))

	var a wire.AuditResponse
	ts.do("GET", "/v1/audit?entity=segment:big", "").json(t, &a)
	if len(a.Entries) != 1 {
		t.Fatalf("%d entries", len(a.Entries))
	}
	var d auditDigest
	if err := json.Unmarshal(a.Entries[0].After, &d); err != nil {
		t.Fatal(err)
	}
	if d.SHA256 != hex.EncodeToString(sum[:]) || d.Bytes != len(doc) || d.Omitted == "" {
		t.Fatalf("audit after %s: want sha256 %x of %d bytes", a.Entries[0].After, sum, len(doc))
	}
	if len(a.Entries[0].After) > 1024 {
		t.Fatalf("the audit entry keeps %d bytes of the segment", len(a.Entries[0].After))
	}
	// A small entity is kept whole.
	ts.do("POST", "/v1/segments?environment=prod", `{"key":"small","included":["a"]}`).wantStatus(t, 201)
	ts.do("GET", "/v1/audit?entity=segment:small", "").json(t, &a)
	var seg struct {
		Included []string `json:"included"`
	}
	if json.Unmarshal(a.Entries[0].After, &seg); len(seg.Included) != 1 {
		t.Fatalf("small segment's audit entry: %s", a.Entries[0].After)
	}
}
