package flagserver

import (
	"strings"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// nested returns a payload of n nested arrays.
func nested(n int) string {
	return strings.Repeat("[", n) + strings.Repeat("]", n)
}

// TestWriteBodiesDecodedAsTheSDKDoes: flag and segment write bodies go
// through the SDK's config decoder (evaluate.DecodeJSON), so the server
// stores nothing the SDK would read differently or refuse: repeated names
// and names in another case are refused (encoding/json kept the last
// value and matched any case), and so are payloads nested deeper than the
// SDK accepts in a config. Errors name the field's path, line and column.
func TestWriteBodiesDecodedAsTheSDKDoes(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, field, msg         string
	}{
		{"repeated name", "POST", "/v1/flags?environment=prod", `{"key":"k1","key":"k2","changeReason":"x"}`,
			400, wire.CodeBadRequest, "key", `duplicate key "key" (line 1, col 13)`},
		{"repeated name in a rule", "PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"x","rules":[{"id":"r","id":"s","variant":true}]}`,
			400, wire.CodeBadRequest, "rules[0].id", `rules[0]: duplicate key "id"`},
		{"repeated name in a payload", "POST", "/v1/flags?environment=prod", `{"key":"k","changeReason":"x","type":"json","variants":[{"name":"a","value":{"p":1,"p":2}}]}`,
			400, wire.CodeBadRequest, "variants[0].value.p", `duplicate key "p"`},
		{"name in another case", "POST", "/v1/flags?environment=prod", `{"Key":"k","changeReason":"x"}`,
			400, wire.CodeUnknownField, "Key", `unknown field "Key"; did you mean "key"? (line 1, col 2)`},
		{"patch name in another case", "PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"x","State":"off"}`,
			400, wire.CodeUnknownField, "State", `did you mean "state"?`},
		{"unknown field in a rule", "PATCH", "/v1/flags/checkout-new-flow", `{"changeReason":"x","rules":[{"id":"r","variantt":true}]}`,
			400, wire.CodeUnknownField, "rules[0].variantt", `rules[0]: unknown field "variantt"; did you mean "variant"? (line 1, col 40)`},
		{"unknown change reason spelling", "POST", "/v1/flags?environment=prod", `{"key":"k","chnageReason":"x"}`,
			400, wire.CodeUnknownField, "chnageReason", `did you mean "changeReason"?`},
		{"wrong type", "PATCH", "/v1/flags/checkout-new-flow", "{\"changeReason\":\"x\",\n \"rules\":[{\"id\":\"r\",\"percentage\":\"5\",\"variant\":true}]}",
			400, wire.CodeBadRequest, "rules[0].percentage", `rules[0].percentage: expected a number, got the string "5" (line 2, col 34)`},
		{"number beyond float64", "POST", "/v1/flags?environment=prod", `{"key":"k","changeReason":"x","type":"json","variants":[{"name":"a","value":{"n":1e999}}]}`,
			400, wire.CodeBadRequest, "variants[0].value", "number 1e999 does not fit a float64"},
		// A flag sits two levels down in the config ({"flags": [ … ]}):
		// 98 levels of payload in a body are 100 in the config.
		{"deeper than a config may be", "POST", "/v1/flags?environment=prod", `{"key":"k","changeReason":"x","variants":[{"name":"a","payload":` + nested(96) + `}]}`,
			400, wire.CodeBadRequest, "", "nesting deeper than 100 levels"},
		{"as deep as a config may be", "POST", "/v1/flags?environment=prod", `{"key":"k","changeReason":"x","variants":[{"name":"a","payload":` + nested(95) + `}]}`,
			201, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, Options{})
			var h []string
			if tc.method == "PATCH" {
				h = append(h, "If-Match: "+getETag(t, ts, tc.path))
			}
			r := ts.do(tc.method, tc.path, tc.body, h...)
			if tc.status != 400 {
				r.wantStatus(t, tc.status)
				// What the server stores, the SDK's decoder reads.
				if _, err := evaluate.DecodeConfigJSON(ts.do("GET", "/v1/flags?environment=prod", "").body); err != nil {
					t.Fatalf("the stored config does not decode: %v", err)
				}
				return
			}
			e := r.wantError(t, tc.status, tc.code)
			d, _ := e.Details.(map[string]any)
			if d["field"] != tc.field || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("error %q, details %v; want field %q, message with %q", e.Message, d, tc.field, tc.msg)
			}
			if _, ok := d["findings"].([]any); !ok || d["line"] == nil || d["col"] == nil {
				t.Errorf("details %v: no findings, line or col", d)
			}
			if snap, _ := ts.Snapshot("prod"); snap.Version() != 0 {
				t.Errorf("version %d: something was stored", snap.Version())
			}
		})
	}
}

// TestSegmentPatchTakesItsEnvironment: a segment PATCH body may name its
// environment, as a segment POST body and a flag PATCH body may (it was
// refused as an unknown field).
func TestSegmentPatchTakesItsEnvironment(t *testing.T) {
	ts := newTestServer(t, Options{})
	etag := getETag(t, ts, "/v1/segments/beta_testers")
	ts.do("PATCH", "/v1/segments/beta_testers", `{"changeReason":"x","environment":"prod","description":"opted in"}`, "If-Match: "+etag).wantStatus(t, 200)
	etag = getETag(t, ts, "/v1/segments/beta_testers")
	ts.do("PATCH", "/v1/segments/beta_testers", `{"changeReason":"x","environment":"dev"}`, "If-Match: "+etag).wantError(t, 400, wire.CodeBadRequest)
}

// TestExactNumbersStoredAndReloaded: numbers in values and payloads are
// stored and served exactly as written, also after a restart from the
// data dir.
func TestExactNumbersStoredAndReloaded(t *testing.T) {
	const big = `12345678901234567890.50`
	dir := t.TempDir()
	ts := newTestServer(t, Options{DataDir: dir})
	ts.do("POST", "/v1/flags?environment=prod", `{"key":"big","changeReason":"x","type":"json","variants":[{"name":"a","value":{"id":`+big+`},"payload":[`+big+`]}]}`).wantStatus(t, 201)
	for _, r := range []*response{ts.do("GET", "/v1/flags/big?environment=prod", "")} {
		if strings.Count(string(r.body), big) != 2 {
			t.Fatalf("numbers not kept exactly: %s", r.body)
		}
	}
	ts.close()
	ts2 := newTestServer(t, Options{DataDir: dir}) // the stored environment is restored
	if r := ts2.do("GET", "/v1/flags/big?environment=prod", ""); strings.Count(string(r.body), big) != 2 {
		t.Fatalf("numbers not kept exactly after a restart: %s", r.body)
	}
}
