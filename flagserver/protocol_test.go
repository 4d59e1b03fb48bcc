package flagserver

import (
	"net/http"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/internal/wire"
)

// TestConcurrentDeleteLosersGet412: concurrent DELETEs with one If-Match:
// one wins (200), every other gets 412 (its precondition is stale: the
// flag it names was deleted), never 404. A DELETE of a flag that never
// existed is still a 404, and a re-created flag is deletable again.
func TestConcurrentDeleteLosersGet412(t *testing.T) {
	for _, kind := range []string{"flags/checkout-new-flow", "segments/beta_testers"} {
		t.Run(kind, func(t *testing.T) {
			ts := newTestServer(t, Options{RequireChangeReason: map[string]bool{}})
			if kind == "segments/beta_testers" { // free the segment first
				etag := getETag(t, ts, "/v1/flags/checkout-new-flow")
				ts.do("DELETE", "/v1/flags/checkout-new-flow", "", "If-Match: "+etag).wantStatus(t, 200)
			}
			etag := getETag(t, ts, "/v1/"+kind)
			oneWins(t, 12, func(int) *http.Request {
				req, _ := http.NewRequest("DELETE", ts.URL+"/v1/"+kind, nil)
				req.Header.Set("If-Match", etag)
				return req
			})
			// A PATCH with the deleted entity's ETag is stale too.
			ts.do("PATCH", "/v1/"+kind, `{"owners":["x"]}`, "If-Match: "+etag).wantError(t, 412, wire.CodePreconditionFailed)
			// Never existed: 404.
			ts.do("DELETE", "/v1/flags/never-was", "", "If-Match: "+etag).wantError(t, 404, wire.CodeFlagNotFound)
		})
	}
}

// TestNonUTF8CharsetIs415: a JSON body declared in a charset other than
// UTF-8 is refused with 415; utf-8 in any case is accepted.
func TestNonUTF8CharsetIs415(t *testing.T) {
	ts := newTestServer(t, Options{})
	eval := `{"environment":"prod","requests":[]}`
	for _, tc := range []struct {
		ct     string
		status int
	}{
		{"application/json; charset=utf-16", 415},
		{"application/json; charset=UTF-16LE", 415},
		{"application/json; charset=iso-8859-1", 415},
		{"application/json;charset=\"utf-32\"", 415},
		{"application/json; charset=utf-8", 200},
		{"application/json; charset=UTF-8", 200},
		{"application/json", 200},
	} {
		t.Run(tc.ct, func(t *testing.T) {
			r := ts.do("POST", "/v1/evaluate", eval, "Content-Type: "+tc.ct)
			if tc.status == 415 {
				r.wantError(t, 415, wire.CodeUnsupportedMediaType)
				return
			}
			r.wantStatus(t, tc.status)
		})
	}
	// Writes too.
	ts.do("POST", "/v1/flags?environment=dev", `{"key":"x"}`, "Content-Type: application/json; charset=utf-16").
		wantError(t, 415, wire.CodeUnsupportedMediaType)
}

// TestInvalidUTF8IsRefusedNamingField: a write whose strings are not valid
// UTF-8 (raw bytes or an escaped lone surrogate) is a 400 naming the field,
// and nothing is stored (no U+FFFD replacement).
func TestInvalidUTF8IsRefusedNamingField(t *testing.T) {
	ts := newTestServer(t, Options{})
	etag := getETag(t, ts, "/v1/flags/checkout-new-flow")
	seg := getETag(t, ts, "/v1/segments/beta_testers")
	for _, tc := range []struct {
		name, method, path, body, ifMatch, field string
	}{
		{"rule text", "PATCH", "/v1/flags/checkout-new-flow", "{\"changeReason\":\"r\",\"rules\":[{\"id\":\"r1\",\"when\":\"plan == '\xff'\",\"variant\":true}]}", etag, "rules.0.when"},
		{"owner", "PATCH", "/v1/flags/checkout-new-flow", "{\"changeReason\":\"r\",\"owners\":[\"ok\",\"bad\xc3\"]}", etag, "owners.1"},
		{"change reason", "PATCH", "/v1/flags/checkout-new-flow", "{\"changeReason\":\"caf\xe9\",\"owners\":[\"x\"]}", etag, "changeReason"},
		{"lone surrogate", "PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"r","metadata":{"jira":"PAY-\ud800"}}`, etag, "metadata.jira"},
		{"create key", "POST", "/v1/flags?environment=prod", "{\"changeReason\":\"r\",\"key\":\"k\xfe\"}", "", "key"},
		{"static segment id", "PATCH", "/v1/segments/beta_testers", "{\"changeReason\":\"r\",\"when\":null,\"included\":[\"a\",\"b\x80\"]}", seg, "included.1"},
		{"delete reason", "DELETE", "/v1/flags/checkout-new-flow", "{\"changeReason\":\"\xff\"}", etag, "changeReason"},
		{"delete reason query", "DELETE", "/v1/flags/checkout-new-flow?changeReason=%FF", "", etag, "changeReason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := []string{}
			if tc.ifMatch != "" {
				h = append(h, "If-Match: "+tc.ifMatch)
			}
			e := ts.do(tc.method, tc.path, tc.body, h...).wantError(t, 400, wire.CodeBadRequest)
			d, _ := e.Details.(map[string]any)
			if d["field"] != tc.field || !strings.Contains(e.Message, tc.field) {
				t.Fatalf("error %+v, want field %q", e, tc.field)
			}
		})
	}
	snap, _ := ts.Snapshot("prod")
	if snap.Version() != 0 {
		t.Fatalf("version %d: something was stored", snap.Version())
	}
}
