// Package wire holds the JSON types of the Flag API (/v1), shared by the
// SDK and the reference server so the two cannot drift apart.
package wire

import (
	"encoding/json"
	"time"
)

// Content types and headers.
const (
	ContentTypeJSON   = "application/json"
	HeaderRequestID   = "X-Request-Id"
	HeaderIdempotency = "Idempotency-Key"
	HeaderSignature   = "X-Flagwire-Signature"
	HeaderTimestamp   = "X-Flagwire-Timestamp"
	// HeaderConfigVersion, on a GET /v1/stream response, is the
	// environment's config version when the stream was opened, in decimal:
	// every change after it reaches that stream, as an event or a reset.
	// A client that did not resume (no Last-Event-ID) compares it with the
	// ConfigVersion of the decisions it holds. Older servers do not send it.
	HeaderConfigVersion = "X-Flagwire-Config-Version"
	// HeaderConfigEpoch, on GET /v1/flags and GET /v1/stream responses,
	// names the store whose counter the config's version and the stream's
	// event ids count in: a random id made when the store was created (a memory-only server: at each start; with a
	// data dir: once, kept in it). Versions are comparable only within one
	// epoch: a client that holds version 57 and is served version 3 of a
	// new epoch follows it (the server restarted without its data), while
	// version 3 of the same epoch is an out-of-order answer it refuses.
	// Older servers do not send it.
	HeaderConfigEpoch = "X-Flagwire-Config-Epoch"
)

// EvaluateRequest is the body of POST /v1/evaluate.
type EvaluateRequest struct {
	Environment string            `json:"environment"`
	Requests    []EvaluationInput `json:"requests"`
	Options     EvaluateOptions   `json:"options,omitzero"`
}

// EvaluationInput is one flag to evaluate for one context.
type EvaluationInput struct {
	FlagKey      string          `json:"flagKey"`
	DefaultValue json.RawMessage `json:"defaultValue,omitempty"`
	Context      map[string]any  `json:"context,omitempty"`
}

// EvaluateOptions selects optional parts of the response.
type EvaluateOptions struct {
	IncludeReasons bool `json:"includeReasons,omitempty"`
	ReturnPayloads bool `json:"returnPayloads,omitempty"`
	Explain        bool `json:"explain,omitempty"`
}

// EvaluateResponse is the response of POST /v1/evaluate.
type EvaluateResponse struct {
	RequestID string     `json:"requestId"`
	Decisions []Decision `json:"decisions"`
	// ConfigVersion is the environment's config version every decision of
	// the response was computed at (the version of GET /v1/flags and of
	// stream event ids). Nil when absent: older servers do not send it,
	// and a client must then treat the decisions' version as unknown.
	ConfigVersion *int64 `json:"configVersion,omitempty"`
}

// Decision is one evaluation result. Variant holds the served value, as in
// the seed (true, "B"); VariantKey names the variant.
type Decision struct {
	FlagKey     string          `json:"flagKey"`
	Variant     json.RawMessage `json:"variant"`
	VariantKey  string          `json:"variantKey,omitempty"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	Reason      *Reason         `json:"reason,omitempty"`
	Bucketing   *Bucketing      `json:"bucketing,omitempty"`
	TTLSeconds  int             `json:"ttlSeconds"`
	FlagVersion int64           `json:"flagVersion,omitempty"`
	// Type is the flag's type ("boolean", "string", "number", "json"),
	// sent with a successful decision, so a client knows a JSON flag
	// whose value is a scalar from a scalar flag with a payload.
	Type    string         `json:"type,omitempty"`
	Error   *DecisionError `json:"error,omitempty"`
	Explain []ExplainStep  `json:"explain,omitempty"`
	// FlagMetadata is the flag's user-defined metadata (evaluate.Flag's
	// FlagMetadata: strings, booleans, numbers), sent with a successful
	// decision when the flag has any. It is read-only: the server shares
	// it with the compiled flag.
	FlagMetadata map[string]any `json:"flagMetadata,omitempty"`
}

// Reason explains a decision.
type Reason struct {
	Kind         string `json:"kind,omitempty"`
	RuleID       string `json:"ruleId,omitempty"`
	Segment      string `json:"segment,omitempty"`
	Prerequisite string `json:"prerequisite,omitempty"`
	Bucket       *int   `json:"bucket,omitempty"`
	ErrorCode    string `json:"errorCode,omitempty"`
}

// Bucketing reports how a subject was bucketed.
type Bucketing struct {
	Seed   string `json:"seed"`
	Hash   string `json:"hash"`
	Bucket int    `json:"bucket"`
	By     string `json:"by,omitempty"`
}

// DecisionError is a per-decision failure; the rest of the batch stands.
type DecisionError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ExplainStep is one step of an evaluation trace.
type ExplainStep struct {
	Step    string `json:"step"`
	ID      string `json:"id,omitempty"`
	Matched bool   `json:"matched"`
	Detail  string `json:"detail,omitempty"`
}

// ErrorBody is the body of every non-2xx response:
// {"error":{"code","message","details"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail describes an API error.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

// StreamEvent is the data of an SSE event on GET /v1/stream. Type is
// "invalidate" (one flag or segment changed), or "reset" (refetch all).
type StreamEvent struct {
	Type        string `json:"type"`
	FlagKey     string `json:"flagKey,omitempty"`
	SegmentKey  string `json:"segmentKey,omitempty"`
	Environment string `json:"environment,omitempty"`
	Version     int64  `json:"version"`
	// Dependents lists, for a flag invalidation, every flag that depends
	// on FlagKey through prerequisites (transitively), so a client drops
	// their cached decisions too and tells their listeners.
	Dependents []string `json:"dependents,omitempty"`
}

// Stream event types.
const (
	EventInvalidate = "invalidate"
	EventReset      = "reset"
)

// BootstrapEnvelope is a signed config snapshot: GET /v1/bootstrap and
// bootstrap files. Signature is Ed25519 over SigningInput().
type BootstrapEnvelope struct {
	Format      string          `json:"format"` // "flagwire-bootstrap/v1"
	KeyID       string          `json:"keyId"`
	Environment string          `json:"environment"`
	IssuedAt    time.Time       `json:"issuedAt"`
	ExpiresAt   time.Time       `json:"expiresAt"`
	Version     int64           `json:"version"`
	Payload     json.RawMessage `json:"payload"` // the evaluate.Config JSON
	Signature   []byte          `json:"signature"`
}

// BootstrapFormat is the envelope format identifier.
const BootstrapFormat = "flagwire-bootstrap/v1"

// AuditEntry is one record of GET /v1/audit.
type AuditEntry struct {
	ID           int64           `json:"id"`
	Time         time.Time       `json:"time"`
	Subject      string          `json:"subject"`
	Action       string          `json:"action"`
	Entity       string          `json:"entity"`
	Environment  string          `json:"environment"`
	ChangeReason string          `json:"changeReason,omitempty"`
	RequestID    string          `json:"requestId"`
	Before       json.RawMessage `json:"before,omitempty"`
	After        json.RawMessage `json:"after,omitempty"`
	// ChangeRequest is the id of the change request the entry belongs to
	// (a protected environment's write: proposed, rejected, stale or
	// applied); RequestedBy and ChangeReason are its requester's, and
	// ApprovedBy and ApprovalReason the second principal's decision.
	ChangeRequest  string `json:"changeRequest,omitempty"`
	RequestedBy    string `json:"requestedBy,omitempty"`
	ApprovedBy     string `json:"approvedBy,omitempty"`
	ApprovalReason string `json:"approvalReason,omitempty"`
	// Emergency marks a kill switch turned off in a protected environment
	// without approval.
	Emergency bool `json:"emergency,omitempty"`
}
