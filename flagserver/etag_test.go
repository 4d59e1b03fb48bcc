package flagserver

import (
	"net/http"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// TestETagComparison is RFC 9110 §8.8.3.2's table of the strong and weak
// comparison functions, and §13.1.1/§13.1.2's header forms (lists, "*").
func TestETagComparison(t *testing.T) {
	// RFC 9110 §8.8.3.2, verbatim: ETag 1, ETag 2, strong, weak.
	table := []struct {
		a, b         string
		strong, weak bool
	}{
		{`W/"1"`, `W/"1"`, false, true},
		{`W/"1"`, `W/"2"`, false, false},
		{`W/"1"`, `"1"`, false, true},
		{`"1"`, `"1"`, true, true},
	}
	for _, tc := range table {
		// Both directions: the comparison is symmetric.
		for _, p := range [][2]string{{tc.a, tc.b}, {tc.b, tc.a}} {
			if got := etagMatches(p[0], p[1]); got != tc.strong {
				t.Errorf("strong(%s, %s) = %v, RFC 9110 says %v", p[0], p[1], got, tc.strong)
			}
			if got := etagMatchesWeak(p[0], p[1]); got != tc.weak {
				t.Errorf("weak(%s, %s) = %v, RFC 9110 says %v", p[0], p[1], got, tc.weak)
			}
		}
	}
	// Header forms against the current strong ETag "xyzzy" (RFC 9110
	// §13.1.1 and §13.1.2 use these examples).
	const cur = `"xyzzy"`
	headers := []struct {
		header       string
		strong, weak bool
	}{
		{`"xyzzy"`, true, true},
		{`W/"xyzzy"`, false, true},
		{`"xyzzy", "r2d2xxxx", "c3piozzzz"`, true, true},
		{`"r2d2xxxx", "c3piozzzz", "xyzzy"`, true, true},
		{`W/"xyzzy", W/"r2d2xxxx", W/"c3piozzzz"`, false, true},
		{`W/"r2d2xxxx",W/"xyzzy"`, false, true},
		{`"a", W/"xyzzy"`, false, true},
		{`*`, true, true},
		{`"r2d2xxxx", "c3piozzzz"`, false, false},
		{`W/"r2d2xxxx"`, false, false},
		{`"xyzzy2"`, false, false},
		{`"xyz"`, false, false},
		{`"a,xyzzy"`, false, false}, // a comma inside the quotes is part of the tag
		{`"xyzzy`, false, false},    // unterminated
		{`W/xyzzy`, false, true},    // quotes lost in a shell
		{`xyzzy`, true, true},
		{``, false, false},
		{` , ,`, false, false},
	}
	for _, tc := range headers {
		if got := etagMatches(tc.header, cur); got != tc.strong {
			t.Errorf("If-Match: %s against %s = %v, want %v", tc.header, cur, got, tc.strong)
		}
		if got := etagMatchesWeak(tc.header, cur); got != tc.weak {
			t.Errorf("If-None-Match: %s against %s = %v, want %v", tc.header, cur, got, tc.weak)
		}
	}
}

// inmCases are If-None-Match values for a resource whose current ETag is
// etag, and the status RFC 9110 §13.1.2 gives a GET (or the OFREP bulk
// POST, which is a read): 304 when the weak comparison matches.
func inmCases(etag string) []struct {
	name, header string
	status       int
} {
	return []struct {
		name, header string
		status       int
	}{
		{"strong", etag, http.StatusNotModified},
		{"weakened by a proxy", "W/" + etag, http.StatusNotModified},
		{"list, weak match second", `"0ther", W/` + etag, http.StatusNotModified},
		{"list, strong match first", etag + `, W/"0ther"`, http.StatusNotModified},
		{"star", "*", http.StatusNotModified},
		{"other tag", `"0ther"`, http.StatusOK},
		{"other weak tag", `W/"0ther"`, http.StatusOK},
		{"other tags", `W/"a", "b"`, http.StatusOK},
	}
}

// TestIfNoneMatchWeak: GET /v1/flags, GET /v1/flags/{key}, GET
// /v1/segments/{key} and the OFREP bulk answer 304 to their current ETag
// in any form the weak comparison matches, with the current (strong) ETag
// and no body.
func TestIfNoneMatchWeak(t *testing.T) {
	ts := newTestServer(t, Options{})
	const ofrepBody = `{"context":{"targetingKey":"8a7f4c91","plan":"pro"}}`
	endpoints := []struct {
		name, method, path, body string
	}{
		{"GET /v1/flags", "GET", "/v1/flags?environment=prod", ""},
		{"GET /v1/flags/{key}", "GET", "/v1/flags/checkout-new-flow", ""},
		{"GET /v1/segments/{key}", "GET", "/v1/segments/beta_testers", ""},
		{"OFREP bulk", "POST", "/ofrep/v1/evaluate/flags", ofrepBody},
	}
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			first := ts.do(ep.method, ep.path, ep.body)
			first.wantStatus(t, http.StatusOK)
			etag := first.header.Get("ETag")
			if !strings.HasPrefix(etag, `"`) {
				t.Fatalf("ETag %q is not a strong entity-tag", etag)
			}
			for _, tc := range inmCases(etag) {
				t.Run(tc.name, func(t *testing.T) {
					r := ts.do(ep.method, ep.path, ep.body, "If-None-Match: "+tc.header)
					r.wantStatus(t, tc.status)
					if got := r.header.Get("ETag"); got != etag {
						t.Errorf("ETag %q, want %q", got, etag)
					}
					if tc.status == http.StatusNotModified && len(r.body) != 0 {
						t.Errorf("304 with a body: %q", r.body)
					}
				})
			}
		})
	}
}

// TestIfMatchStrong: writes compare If-Match strongly (RFC 9110 §13.1.1):
// the current ETag weakened is stale (412), the current ETag in a list
// or "*" is not.
func TestIfMatchStrong(t *testing.T) {
	ts := newTestServer(t, Options{})
	const path = "/v1/flags/checkout-new-flow"
	const body = `{"changeReason":"test","state":"off"}`
	etag := getETag(t, ts, path)
	ts.do("PATCH", path, body, "If-Match: W/"+etag).wantError(t, http.StatusPreconditionFailed, wire.CodePreconditionFailed)
	ts.do("PATCH", path, body, `If-Match: W/"x", W/`+etag).wantError(t, http.StatusPreconditionFailed, wire.CodePreconditionFailed)
	ts.do("PATCH", path, body, `If-Match: "x", `+etag).wantStatus(t, http.StatusOK)
	ts.do("PATCH", path, `{"changeReason":"test","state":"on"}`, "If-Match: *").wantStatus(t, http.StatusOK)
	var f evaluate.Flag
	r := ts.do("GET", path, "")
	r.json(t, &f)
	if f.State != evaluate.StateOn {
		t.Fatalf("flag after the writes: %s", r.body)
	}
}
