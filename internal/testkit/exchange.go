package testkit

import "net/http"

// Exchange is one recorded HTTP request and its response: the JSON lines
// flagserver's tests write when FLAGWIRE_CONTRACT_RECORD names a file, and
// the contract tests validate against the OpenAPI document.
type Exchange struct {
	Method        string      `json:"method"`
	URL           string      `json:"url"`
	RequestHeader http.Header `json:"requestHeader"`
	RequestBody   []byte      `json:"requestBody"`
	RequestCut    bool        `json:"requestTruncated,omitempty"`
	Status        int         `json:"status"`
	Header        http.Header `json:"header"`
	Body          []byte      `json:"body"`
	BodyCut       bool        `json:"bodyTruncated,omitempty"`
	// TransportError is set when no response came (the request then
	// carries no status).
	TransportError string `json:"transportError,omitempty"`
}
