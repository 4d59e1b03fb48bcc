package contract

import (
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// The validator fails what the document does not allow: each case is an
// exchange that breaks one documented rule (and one that breaks none).
func TestValidatorRefusesWhatTheDocumentDoesNot(t *testing.T) {
	doc := loadDocument(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	jsonReq := http.Header{"Content-Type": {"application/json"}}
	jsonRes := func(extra ...string) http.Header {
		h := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "X-Request-Id": {"r-1"}}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}
	evalBody := []byte(`{"environment":"prod","requests":[{"flagKey":"f","context":{"userId":"u"}}],"options":{"includeReasons":true}}`)
	okDecision := `{"requestId":"r-1","configVersion":3,"decisions":[{"flagKey":"f","variant":true,"variantKey":"true","reason":{"kind":"RULE_MATCH","ruleId":"rule-1"},"ttlSeconds":60}]}`
	cases := []struct {
		name    string
		ex      exchange
		wantErr bool
	}{
		{"a documented evaluation", exchange{Method: "POST", URL: "http://h/v1/evaluate", RequestHeader: jsonReq, RequestBody: evalBody,
			Status: 200, Header: jsonRes(), Body: []byte(okDecision)}, false},
		{"a decision without ttlSeconds", exchange{Method: "POST", URL: "http://h/v1/evaluate", RequestHeader: jsonReq, RequestBody: evalBody,
			Status: 200, Header: jsonRes(), Body: []byte(`{"requestId":"r-1","decisions":[{"flagKey":"f","variant":true}]}`)}, true},
		{"a reason kind the document lacks", exchange{Method: "POST", URL: "http://h/v1/evaluate", RequestHeader: jsonReq, RequestBody: evalBody,
			Status: 200, Header: jsonRes(), Body: []byte(`{"requestId":"r-1","decisions":[{"flagKey":"f","variant":true,"ttlSeconds":60,"reason":{"kind":"LUCK"}}]}`)}, true},
		{"an undocumented status", exchange{Method: "POST", URL: "http://h/v1/evaluate", RequestHeader: jsonReq, RequestBody: evalBody,
			Status: 418, Header: jsonRes(), Body: []byte(`{"error":{"code":"internal","message":"teapot"}}`)}, true},
		{"a response without X-Request-Id", exchange{Method: "POST", URL: "http://h/v1/evaluate", RequestHeader: jsonReq, RequestBody: evalBody,
			Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(okDecision)}, true},
		{"an error body of another shape", exchange{Method: "GET", URL: "http://h/v1/flags/f?environment=prod",
			Status: 404, Header: jsonRes(), Body: []byte(`{"message":"not found"}`)}, true},
		{"a flag read without ETag", exchange{Method: "GET", URL: "http://h/v1/flags/f?environment=prod",
			Status: 200, Header: jsonRes("Cache-Control", "no-cache"), Body: []byte(`{"key":"f","etag":"\"1\""}`)}, true},
		{"a request the document refuses, accepted", exchange{Method: "POST", URL: "http://h/v1/evaluate", RequestHeader: http.Header{"Content-Type": {"text/plain"}}, RequestBody: evalBody,
			Status: 200, Header: jsonRes(), Body: []byte(okDecision)}, true},
		{"a stream event without version", exchange{Method: "GET", URL: "http://h/v1/stream?environment=prod",
			Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"}, "X-Request-Id": {"r-1"}, "Cache-Control": {"no-cache"}, "X-Flagwire-Config-Version": {"3"}, "X-Flagwire-Config-Epoch": {"e"}},
			Body: []byte("id: 4\ndata: {\"type\":\"invalidate\",\"flagKey\":\"f\"}\n\n")}, true},
		{"an undocumented route answered 200", exchange{Method: "GET", URL: "http://h/v1/nothing",
			Status: 200, Header: jsonRes(), Body: []byte(`{}`)}, true},
		{"an OFREP success without reason", exchange{Method: "POST", URL: "http://h/ofrep/v1/evaluate/flags/f", RequestHeader: jsonReq, RequestBody: []byte(`{"context":{"targetingKey":"u"}}`),
			Status: 200, Header: jsonRes("Cache-Control", "private, max-age=60"), Body: []byte(`{"key":"f","value":true}`)}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := &validator{doc: doc, router: router, tally: tally{byOperation: map[string]int{}}}
			err := v.check(&tc.ex)
			t.Logf("error: %v", err)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want an error: %v", err, tc.wantErr)
			}
		})
	}
}
