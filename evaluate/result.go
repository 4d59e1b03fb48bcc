package evaluate

import "encoding/hex"

// ReasonKind says why a value was served.
type ReasonKind string

// The reason kinds.
const (
	ReasonOff                ReasonKind = "OFF"
	ReasonTargetMatch        ReasonKind = "TARGET_MATCH"
	ReasonRuleMatch          ReasonKind = "RULE_MATCH"
	ReasonSegmentMatch       ReasonKind = "SEGMENT_MATCH"
	ReasonRollout            ReasonKind = "ROLLOUT"
	ReasonPrerequisiteFailed ReasonKind = "PREREQUISITE_FAILED"
	ReasonDefault            ReasonKind = "DEFAULT"
	// ReasonStatic: the flag is on and has no targeting at all (no
	// prerequisites, targets or rules, and a fixed default), so every
	// subject gets the same variant. OpenFeature calls this STATIC.
	ReasonStatic ReasonKind = "STATIC"
	ReasonError  ReasonKind = "ERROR"
)

// ErrorCode names what went wrong in an evaluation that ended in ReasonError.
type ErrorCode string

// The engine's error codes. The SDK adds transport codes of its own.
const (
	ErrorNone              ErrorCode = ""
	ErrorFlagNotFound      ErrorCode = "FLAG_NOT_FOUND"
	ErrorTypeMismatch      ErrorCode = "TYPE_MISMATCH"
	ErrorMissingBucketAttr ErrorCode = "MISSING_BUCKETING_ATTRIBUTE"
	ErrorGeneral           ErrorCode = "GENERAL"
)

// Reason explains a result.
type Reason struct {
	// Kind is the reason kind.
	Kind ReasonKind `json:"kind"`
	// RuleID is the matching rule's id (RULE_MATCH, SEGMENT_MATCH, and
	// ROLLOUT when a rule's rollout decided).
	RuleID string `json:"ruleId,omitempty"`
	// RuleIndex is the matching rule's position, or -1.
	RuleIndex int `json:"-"`
	// Segment is the segment that matched, if one did.
	Segment string `json:"segment,omitempty"`
	// Prerequisite is the failed prerequisite's flag key.
	Prerequisite string `json:"prerequisite,omitempty"`
	// InRollout is true when a rollout or percentage decided the variant.
	InRollout bool `json:"inRollout,omitempty"`
	// ErrorCode is set when Kind is ERROR, and also alongside DEFAULT when a
	// rollout could not bucket (MISSING_BUCKETING_ATTRIBUTE).
	ErrorCode ErrorCode `json:"errorCode,omitempty"`
}

// BucketingInfo reports the bucketing of a subject in a rollout.
type BucketingInfo struct {
	// Seed is the seed that was hashed.
	Seed string
	// Hash is SHA-256(salt "." seed "." id).
	Hash [32]byte
	// Bucket is the subject's bucket in [0, BucketCount).
	Bucket uint32
}

// HashHex returns Hash as lowercase hex.
func (b BucketingInfo) HashHex() string { return hex.EncodeToString(b.Hash[:]) }

// Result is the outcome of one evaluation. It is a plain value: evaluating
// fills it without allocating.
type Result struct {
	// Value is the served value: bool, string, float64, or (for JSON flags)
	// a decoded JSON value (map[string]any, []any, …). Nil on error.
	Value any
	// Variant is the served variant's name; empty on error.
	Variant string
	// Payload is the variant's payload, or nil.
	Payload any
	// ValueJSON and PayloadJSON are Value and Payload encoded as JSON,
	// computed once at compile time. They must not be modified.
	ValueJSON, PayloadJSON []byte
	// Reason says why.
	Reason Reason
	// Bucketing is set when HasBucketing is true (a rollout was consulted).
	Bucketing    BucketingInfo
	HasBucketing bool
	// FlagVersion is the flag's version.
	FlagVersion int64
	// Type is the flag's type (boolean, string, number or json); empty on
	// error.
	Type FlagType
	// FlagMetadata is the flag's Flag.FlagMetadata as compiled (numbers as
	// float64), set on every result of a known flag; nil when the flag has
	// none. It is shared by every evaluation and must not be modified.
	FlagMetadata map[string]any
}
