package wire

import "encoding/json"

// OFREP (the OpenFeature Remote Evaluation Protocol) wire types, shared by
// the server's OFREP endpoints (flagserver) and the SDK's OFREP backend
// (WithOFREP), and the one mapping between Flagwire's reason kinds and
// OpenFeature's reasons.

// OFREP paths.
const (
	OFREPFlagPath = "/ofrep/v1/evaluate/flags/" // + key
	OFREPBulkPath = "/ofrep/v1/evaluate/flags"
)

// OFREPRequest is the body of both OFREP evaluation requests.
type OFREPRequest struct {
	Context map[string]any `json:"context"`
}

// OFREPEvaluation is one OFREP evaluation: a success (value, reason,
// variant, metadata, cacheable) or a failure (errorCode, errorDetails). A
// success without a value is OFREP's "code default" (ADR-0006): the caller
// serves its own default. Key is omitted for the failure of a whole bulk
// request.
type OFREPEvaluation struct {
	Key          string          `json:"key,omitempty"`
	Value        json.RawMessage `json:"value,omitempty"`
	Reason       string          `json:"reason,omitempty"`
	Variant      string          `json:"variant,omitempty"`
	Metadata     map[string]any  `json:"metadata,omitempty"`
	Cacheable    *bool           `json:"cacheable,omitempty"`
	ErrorCode    string          `json:"errorCode,omitempty"`
	ErrorDetails string          `json:"errorDetails,omitempty"`
}

// OFREPBulk is the body of a bulk evaluation answer.
type OFREPBulk struct {
	Flags    []OFREPEvaluation `json:"flags"`
	Metadata map[string]any    `json:"metadata,omitempty"`
}

// OFREPReason maps a Flagwire reason kind to an OpenFeature reason: OFF →
// DISABLED; TARGET_MATCH, RULE_MATCH, SEGMENT_MATCH and
// PREREQUISITE_FAILED → TARGETING_MATCH (a failed prerequisite is a
// targeting decision for this subject: the flag is on and serves its off
// variant, so it is not DISABLED, which in OpenFeature means the caller's
// default); ROLLOUT → SPLIT; DEFAULT, STATIC and ERROR stay; an empty kind
// is UNKNOWN; any other kind is already an OpenFeature or vendor reason
// (an SDK's OFREP backend keeps what a server sent) and stays.
func OFREPReason(kind string) string {
	switch kind {
	case "OFF":
		return "DISABLED"
	case "TARGET_MATCH", "RULE_MATCH", "SEGMENT_MATCH", "PREREQUISITE_FAILED":
		return "TARGETING_MATCH"
	case "ROLLOUT":
		return "SPLIT"
	case "":
		return "UNKNOWN"
	}
	return kind
}

// ReasonKindOfOFREP maps an OpenFeature reason to a Flagwire reason kind:
// the three that have a Flagwire equivalent are translated (TARGETING_MATCH
// → RULE_MATCH, SPLIT → ROLLOUT, DISABLED → OFF); Flagwire's own kinds and
// every other reason (STATIC, DEFAULT, CACHED, UNKNOWN, ERROR, a vendor's
// TARGETING_MATCH_SPLIT, …) are kept as they are; an empty reason is
// UNKNOWN.
func ReasonKindOfOFREP(reason string) string {
	switch reason {
	case "TARGETING_MATCH":
		return "RULE_MATCH"
	case "SPLIT":
		return "ROLLOUT"
	case "DISABLED":
		return "OFF"
	case "":
		return "UNKNOWN"
	}
	return reason
}
