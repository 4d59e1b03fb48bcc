package testkit

import "encoding/json"

// OFREPAnswer is an OFREP evaluation answer, success or failure, as an
// OFREP client decodes it: written from the OFREP specification, not from
// the server's wire types. A success without Value is OFREP's "code
// default".
type OFREPAnswer struct {
	Key          string          `json:"key"`
	Value        json.RawMessage `json:"value"`
	Reason       string          `json:"reason"`
	Variant      string          `json:"variant"`
	Metadata     map[string]any  `json:"metadata"`
	Cacheable    bool            `json:"cacheable"`
	ErrorCode    string          `json:"errorCode"`
	ErrorDetails string          `json:"errorDetails"`
}
