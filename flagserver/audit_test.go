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

// TestIdempotentReplayOfALargeBody: a response body above
// idempotencyMaxBodyBytes is not kept in the idempotency record; a retry
// gets the same bytes, made again from the unchanged entity, and after the
// entity changed the recorded status and ETag with a note.
func TestIdempotentReplayOfALargeBody(t *testing.T) {
	ts := newTestServer(t, Options{RequireChangeReason: map[string]bool{}})
	ids := make([]string, 30000)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprintf("user-%06d", i))
	}
	body := `{"key":"big","included":[` + strings.Join(ids, ",") + `]}`
	first := ts.do("POST", "/v1/segments?environment=prod", body, "Idempotency-Key: big-1")
	first.wantStatus(t, 201)
	if len(first.body) <= idempotencyMaxBodyBytes {
		t.Fatalf("the response is %d bytes: not above the limit", len(first.body))
	}
	again := ts.do("POST", "/v1/segments?environment=prod", body, "Idempotency-Key: big-1")
	again.wantStatus(t, 201)
	if string(again.body) != string(first.body) || again.header.Get("ETag") != first.header.Get("ETag") || again.header.Get(wire.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("replay: %d bytes, ETag %s (first: %d bytes, ETag %s)", len(again.body), again.header.Get("ETag"), len(first.body), first.header.Get("ETag"))
	}
	ts.do("PATCH", "/v1/segments/big", `{"included":["one"]}`, "If-Match: "+first.header.Get("ETag")).wantStatus(t, 200)
	late := ts.do("POST", "/v1/segments?environment=prod", body, "Idempotency-Key: big-1")
	late.wantStatus(t, 201)
	var note struct {
		ETag        string `json:"etag"`
		Replayed    bool   `json:"replayed"`
		BodyOmitted int    `json:"bodyOmitted"`
	}
	late.json(t, &note)
	if note.ETag != first.header.Get("ETag") || !note.Replayed || note.BodyOmitted != len(first.body) || late.header.Get("ETag") != first.header.Get("ETag") {
		t.Fatalf("replay after a change: %s %v", late.body, late.header)
	}
}
