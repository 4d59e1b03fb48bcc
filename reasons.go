package flagwire

// The reason kinds of Reason.Kind, so callers compare without importing
// the engine: d.Reason.Kind == flagwire.ReasonRuleMatch.
//
// ReasonDefault is the flag's own default rule (no rule or target
// matched); the caller's default value is a Source (SourceCallerDefault), and
// when it is served because of an error the reason is ReasonError. Through
// OFREP (WithOFREP) a server's other OpenFeature reasons are kept as sent.
const (
	ReasonOff                = "OFF"                 // the flag is off: its off variant
	ReasonTargetMatch        = "TARGET_MATCH"        // the subject is individually targeted
	ReasonRuleMatch          = "RULE_MATCH"          // a rule's condition matched (Reason.RuleID)
	ReasonSegmentMatch       = "SEGMENT_MATCH"       // a rule's segment matched (Reason.Segment)
	ReasonRollout            = "ROLLOUT"             // a rollout or percentage decided (Reason.Bucket)
	ReasonPrerequisiteFailed = "PREREQUISITE_FAILED" // a prerequisite flag did not serve an allowed variant
	ReasonDefault            = "DEFAULT"             // no rule matched: the flag's default rule
	ReasonStatic             = "STATIC"              // the flag has no targeting: one variant for everyone
	ReasonError              = "ERROR"               // the caller's default, because of Detail.ErrorCode
)
