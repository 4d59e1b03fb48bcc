package wire

import "github.com/flagwire/flagwire/evaluate"

// More headers of the Flag API.
const (
	// HeaderIdempotentReplayed is "true" on a response replayed for a
	// repeated Idempotency-Key.
	HeaderIdempotentReplayed = "Idempotent-Replayed"
	HeaderRateLimitLimit     = "X-RateLimit-Limit"
	HeaderRateLimitRemaining = "X-RateLimit-Remaining"
	HeaderRateLimitReset     = "X-RateLimit-Reset"
)

// Scopes a bearer token may hold.
const (
	ScopeRead  = "flags:read"
	ScopeWrite = "flags:write"
)

// Error codes of ErrorDetail.Code. Clients switch on these, not on messages.
const (
	CodeBadRequest           = "bad_request"            // 400: invalid parameter or body
	CodeMalformedJSON        = "malformed_json"         // 400: details.offset is the byte offset
	CodeUnknownField         = "unknown_field"          // 400: details.field names it
	CodeBatchTooLarge        = "batch_too_large"        // 400: more requests than details.limit
	CodeChangeReasonRequired = "change_reason_required" // 400: details.field is "changeReason"
	CodeCompileError         = "compile_error"          // 400: details.findings lists them
	CodeUnauthorized         = "unauthorized"           // 401: missing or unknown token
	CodeBadSignature         = "bad_signature"          // 401: HMAC signature missing, wrong, stale or replayed
	CodeForbidden            = "forbidden"              // 403: token lacks the scope or environment
	CodeNotFound             = "not_found"              // 404: unknown route
	CodeEnvironmentNotFound  = "environment_not_found"  // 404
	CodeFlagNotFound         = "flag_not_found"         // 404
	CodeSegmentNotFound      = "segment_not_found"      // 404
	CodeMethodNotAllowed     = "method_not_allowed"     // 405: details.allow lists the methods
	CodeConflict             = "conflict"               // 409: the flag or segment already exists
	CodePreconditionFailed   = "precondition_failed"    // 412: details.etag is the current ETag
	CodeBodyTooLarge         = "body_too_large"         // 413: details.limit in bytes
	CodeConfigTooLarge       = "config_too_large"       // 413: details.limit, details.size (the resulting config's bytes)
	CodeUnsupportedMediaType = "unsupported_media_type" // 415
	CodeIdempotencyKeyReused = "idempotency_key_reused" // 422: same key, different request
	CodePreconditionRequired = "precondition_required"  // 428: If-Match missing
	CodeRateLimited          = "rate_limited"           // 429: see Retry-After
	CodeInternal             = "internal"               // 500
	CodeUnavailable          = "unavailable"            // 503: server closing
	CodeChangeNotFound       = "change_not_found"       // 404: no change request with that id
	CodeChangeNotPending     = "change_not_pending"     // 409: the change request was already decided; details.status
	CodeChangeStale          = "change_stale"           // 409: the entity changed since the change request; details.baseETag, details.currentETag
)

// DeleteResponse is the body of a successful DELETE.
type DeleteResponse struct {
	Key         string `json:"key"`
	Environment string `json:"environment"`
	Deleted     bool   `json:"deleted"`
	Version     int64  `json:"version"`
}

// KeysResponse is the body of GET /v1/keys: the server's bootstrap
// signing keys, the current one first, then those a rotation replaced.
type KeysResponse struct {
	Keys []PublicKeyInfo `json:"keys"`
}

// PublicKeyInfo is one signing key of GET /v1/keys: its id (KeyID), the
// Ed25519 public key (base64 in JSON) and whether it signs now.
type PublicKeyInfo struct {
	KeyID     string `json:"keyId"`
	PublicKey []byte `json:"publicKey"`
	Current   bool   `json:"current"`
}

// AuditResponse is the body of GET /v1/audit: entries oldest first.
// NextBefore, when set, is the "before" query parameter of the next
// (older) page.
type AuditResponse struct {
	Entries    []AuditEntry `json:"entries"`
	NextBefore int64        `json:"nextBefore,omitempty"`
	// NextCursor, when set, is the "cursor" query parameter of the next
	// (older) page.
	NextCursor string `json:"nextCursor,omitempty"`
}

// Size limits shared by the SDK and the server.
const (
	// MaxConfigBytes is the largest config document (GET /v1/flags) or
	// signed envelope (bootstrap, GET /v1/bootstrap, last-known file) the
	// SDK accepts: 64 MiB. The server refuses a write that would make an
	// environment's config larger than MaxConfigBytes - MaxEnvelopeOverhead,
	// so that its signed envelope fits too. It is the config decoder's
	// limit (evaluate.DecodeJSON): one number.
	MaxConfigBytes = evaluate.MaxConfigJSONSize
	// MaxEnvelopeOverhead bounds what a BootstrapEnvelope adds to its
	// payload (format, key id, environment, times, version, signature).
	MaxEnvelopeOverhead = 4 << 10
	// MaxServedConfigBytes is the largest config the server stores.
	MaxServedConfigBytes = MaxConfigBytes - MaxEnvelopeOverhead
)

// HeaderWarning carries advisory warnings on a successful write response
// (a static segment above the server's bloat threshold, a config near
// MaxServedConfigBytes); several are joined by "; ".
const HeaderWarning = "X-Flagwire-Warning"

// ReasonOf is the reason of a decided result as the Flag API sends it,
// with the bucket when the result has bucketing.
func ReasonOf(res *evaluate.Result) *Reason {
	r := &Reason{
		Kind:         string(res.Reason.Kind),
		RuleID:       res.Reason.RuleID,
		Segment:      res.Reason.Segment,
		Prerequisite: res.Reason.Prerequisite,
		ErrorCode:    string(res.Reason.ErrorCode),
	}
	if res.HasBucketing {
		b := int(res.Bucketing.Bucket)
		r.Bucket = &b
	}
	return r
}
