package evaluate

import "time"

// Attributes is the evaluation context: the targeting attributes of one
// subject (user, account, request). Keys are attribute names; values are
// strings, bools, numbers (any Go integer or float type, or json.Number),
// []any / []string lists, or nested Attributes / map[string]any, reached from
// rules with dotted paths such as "account.plan".
//
// A nil value is a missing attribute, and so is a number that is not
// finite (NaN, +Inf, -Inf): JSON cannot carry one, so an SDK sends null
// in its place, and every evaluation treats it as null.
//
// A nil Attributes is valid and has no attributes.
type Attributes = map[string]any

// SegmentMatcher answers segment membership for compiled conditions. The
// Snapshot implements it; conditions never see segments any other way. A
// matcher whose segments can depend on time (their conditions use now or
// date()) should also implement SegmentMatcherAt, which Condition.Match
// prefers.
type SegmentMatcher interface {
	// MatchSegment reports whether attrs belong to the named segment. An
	// unknown segment never matches (compilation rejects unknown names).
	MatchSegment(name string, attrs Attributes) bool
}

// SegmentMatcherAt is the optional capability of a SegmentMatcher to answer
// at a given evaluation time. When the matcher given to Condition.Match
// implements it, segment('name') calls MatchSegmentAt with Match's now, so
// a time-dependent segment answers the same through segment('name') as
// through a rule's Segment field. The Snapshot implements it.
type SegmentMatcherAt interface {
	// MatchSegmentAt reports whether attrs belong to the named segment at
	// time now.
	MatchSegmentAt(name string, attrs Attributes, now time.Time) bool
}
