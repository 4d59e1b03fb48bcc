package flagwire

import (
	"github.com/flagwire/flagwire/evaluate"
)

// Detail describes one evaluation: which variant was served, why, and from
// where. It is returned by value and does not allocate.
type Detail struct {
	// FlagKey is the evaluated flag.
	FlagKey string
	// Variant names the served variant; empty when the caller's default
	// was served as a fallback (an OFREP code-default answer keeps the
	// server's variant, see Source).
	Variant string
	// Reason says why the variant was chosen.
	Reason Reason
	// Source says where the value came from. An OFREP answer without a
	// value (OFREP's "use the code default") serves the caller's default
	// as a success: Source is where that answer came from (REMOTE or
	// CACHE), with the server's Variant and Reason and no ErrorCode.
	Source Source
	// ErrorCode says why the value is a fallback; empty on success. A
	// stale or bootstrap value may carry the code of the failure that
	// caused it to be served. MISSING_BUCKETING_ATTRIBUTE is the one code
	// that comes with the flag's own answer (see its doc).
	ErrorCode ErrorCode
	// Payload is the variant's JSON payload, or nil.
	Payload []byte
	// FlagVersion is the flag's version, when known.
	FlagVersion int64
	// FlagMetadata is the flag's user-defined metadata (flagMetadata in
	// flags as code and in the Flag API), served with the flag's answer in
	// every mode: key → string, bool or float64 (every number is a
	// float64). Nil when the flag has none and when the caller's default
	// is served as a fallback. It is shared with the client's cache or
	// config: read it, never modify it (copy it first with maps.Clone).
	FlagMetadata map[string]any
}

// Reason explains a decision.
type Reason struct {
	// Kind is one of the rules engine's typed reason kinds, compared
	// with its constants: evaluate.ReasonOff, ReasonTargetMatch,
	// ReasonRuleMatch, ReasonSegmentMatch, ReasonRollout,
	// ReasonPrerequisiteFailed, ReasonDefault (the flag's default rule:
	// no rule or target matched), ReasonStatic (the flag has no
	// targeting: everyone gets the same variant) or ReasonError. ERROR
	// means the caller's default was served because of an error
	// (Detail.ErrorCode says which; Detail.Source is
	// SourceCallerDefault): no variant was chosen, so RuleID, Segment and
	// Bucket are empty. Through OFREP (WithOFREP), OpenFeature's
	// TARGETING_MATCH, SPLIT and DISABLED become RULE_MATCH, ROLLOUT and
	// OFF, and any other OpenFeature reason a server sends (such as
	// CACHED, UNKNOWN or a vendor's TARGETING_MATCH_SPLIT) is kept as it
	// is.
	Kind evaluate.ReasonKind
	// RuleID names the rule that matched, with RULE_MATCH and
	// SEGMENT_MATCH (and ROLLOUT by a rule); empty otherwise.
	RuleID string
	// Segment names the segment that matched, with SEGMENT_MATCH.
	Segment string
	// Prerequisite names the prerequisite flag that failed, with Kind
	// PREREQUISITE_FAILED; empty otherwise.
	Prerequisite string
	// Bucket is the subject's rollout bucket in [0, 100000), or -1.
	Bucket int
}

// Source says where a value came from, in the order of preference. It
// prints as its value, such as "CACHE".
type Source string

// The sources.
const (
	// SourceRemote is a fresh answer from the remote evaluate API.
	SourceRemote Source = "REMOTE"
	// SourceCache is a fresh answer from the decision cache.
	SourceCache Source = "CACHE"
	// SourceLocal is an in-process evaluation of the synced config.
	SourceLocal Source = "LOCAL"
	// SourceStale is a cached decision past its TTL (its freshness
	// limit), served because the API could not be asked (for up to
	// CacheSettings.MaxStale).
	SourceStale Source = "STALE"
	// SourceBootstrap is an evaluation of the bootstrap file or the
	// persisted last-known config.
	SourceBootstrap Source = "BOOTSTRAP"
	// SourceCallerDefault is the default value the caller passed (never
	// to be confused with the reason kind DEFAULT, the flag's own default
	// rule).
	SourceCallerDefault Source = "CALLER_DEFAULT"
)

// ErrorCode says why an evaluation fell back. The empty code means no error.
type ErrorCode string

// The error codes.
const (
	CodeFlagNotFound ErrorCode = "FLAG_NOT_FOUND"
	CodeTypeMismatch ErrorCode = "TYPE_MISMATCH"
	CodeTimeout      ErrorCode = "TIMEOUT"
	CodeUnavailable  ErrorCode = "UNAVAILABLE"
	CodeRateLimited  ErrorCode = "RATE_LIMITED"
	CodeCircuitOpen  ErrorCode = "CIRCUIT_OPEN"
	CodeUnauthorized ErrorCode = "UNAUTHORIZED"
	CodeBadResponse  ErrorCode = "BAD_RESPONSE"
	CodeClosed       ErrorCode = "CLIENT_CLOSED"
	CodeNotReady     ErrorCode = "NOT_READY"
	CodeGeneral      ErrorCode = "GENERAL"
	// CodeUnknownEnvironment: the server has no such environment
	// (WithEnvironment names one it does not serve). Every flag gets the
	// caller's default (or a bootstrap), and Status().LastError names the
	// environment.
	CodeUnknownEnvironment ErrorCode = "UNKNOWN_ENVIRONMENT"
	// CodeMissingBucketingAttribute: a rollout needed the subject's
	// bucketing attribute (userId unless the flag's bucketing.by says
	// otherwise) and the evaluation context has none. Unlike the other
	// codes it comes with the flag's own answer, not a fallback: the
	// variant the flag serves then (the off variant, for the default
	// rollout), with the Source of that answer. Through OFREP, a server's
	// TARGETING_KEY_MISSING error maps to it, and the caller's default is
	// served, as OFREP gives no value.
	CodeMissingBucketingAttribute ErrorCode = "MISSING_BUCKETING_ATTRIBUTE"
	// CodeInvalidContext: in remote mode, the evaluation context cannot
	// be sent exactly: nested more than 1,000 levels deep (or cyclic), or
	// holding a value that JSON cannot encode (a channel, a func). No
	// request is made, and the evaluation falls back as when the API
	// cannot answer: to the bootstrap or last-known config, else to the
	// caller's default.
	CodeInvalidContext ErrorCode = "INVALID_CONTEXT"
)

// isFallback reports whether code means the caller was given a fallback
// rather than the flag's own answer.
func (code ErrorCode) isFallback() bool {
	return code != "" && code != CodeMissingBucketingAttribute
}

// errorReason is the Reason of a Detail that serves the caller's default
// because of an error: no variant was chosen, so no rule or bucket says why.
var errorReason = Reason{Kind: evaluate.ReasonError, Bucket: -1}
