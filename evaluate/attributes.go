package evaluate

// Attributes is the evaluation context: the targeting attributes of one
// subject (user, account, request). Keys are attribute names; values are
// strings, bools, numbers (any Go integer or float type, or json.Number),
// []any / []string lists, or nested Attributes / map[string]any, reached from
// rules with dotted paths such as "account.plan".
//
// A nil Attributes is valid and has no attributes.
type Attributes = map[string]any

// SegmentMatcher answers segment membership for compiled conditions. The
// Snapshot implements it; conditions never see segments any other way.
type SegmentMatcher interface {
	// MatchSegment reports whether attrs belong to the named segment. An
	// unknown segment never matches (compilation rejects unknown names).
	MatchSegment(name string, attrs Attributes) bool
}
