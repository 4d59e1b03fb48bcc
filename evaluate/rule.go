package evaluate

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Limits of the rule language. They keep parsing and evaluation cost bounded
// by the size of a rule; exceeding one is a *SyntaxError, never a panic.
const (
	ruleMaxSourceLen = 64 << 10 // bytes of rule source
	ruleMaxDepth     = 64       // nested parentheses and not operators
	ruleMaxListLen   = 10000    // elements of one list literal
	ruleMaxNodes     = 1000     // comparisons, builtins and and/or/not operators
	ruleSetThreshold = 8        // lists longer than this are matched through a set
)

// Condition is a compiled `when` expression of the rule language (see
// ParseCondition). It is immutable and safe for concurrent use.
type Condition struct {
	src  string
	root rlNode
	segs []string
	refs []AttributeRef
}

// AttributeRef describes one attribute referenced by a Condition, for lint
// type checks.
type AttributeRef struct {
	// Path is the dotted attribute path as written, e.g. "account.tier".
	Path string
	// Kind is the kind of value the rule expects the attribute to hold, from
	// the literals it is compared to: "string", "number", "bool", "semver"
	// (a version string, from semver(path)), "date" (from date(path)) or
	// "list" (contains with a number or bool). It is "" when unknown (has(path),
	// contains with a string, which works on strings and lists alike, an empty
	// or mixed `in` list) or when the references disagree.
	Kind string
	// Line and Col are the 1-based position of the first reference in the
	// rule source; Col counts Unicode code points.
	Line, Col int
}

// SyntaxError is a parse or compile error in a rule. Line and Col are relative
// to the rule source (1-based; Col counts Unicode code points), so callers can
// map them into the file the rule came from.
type SyntaxError struct {
	Line, Col int    // 1-based position in the rule source
	Token     string // the offending token as written ("" at end of input)
	Msg       string // what was expected, or what is wrong with Token
}

// Error formats the error with its position and token. A Msg starting with
// "expected" describes what the grammar wanted, and is reported as
//
//	line 1:12: unexpected token "and": expected a value
//	line 1:8: unexpected end of input: expected a value
//
// any other Msg describes what is wrong with the token itself:
//
//	line 1:14: at "'2.x'": not a valid semantic version: ...
func (e *SyntaxError) Error() string {
	expected := strings.HasPrefix(e.Msg, "expected")
	switch {
	case e.Token == "" && expected:
		return fmt.Sprintf("line %d:%d: unexpected end of input: %s", e.Line, e.Col, e.Msg)
	case e.Token == "":
		return fmt.Sprintf("line %d:%d: %s", e.Line, e.Col, e.Msg)
	case expected:
		return fmt.Sprintf("line %d:%d: unexpected token %q: %s", e.Line, e.Col, e.Token, e.Msg)
	default:
		return fmt.Sprintf("line %d:%d: at %q: %s", e.Line, e.Col, e.Token, e.Msg)
	}
}

// ParseCondition parses and compiles the `when` expression src. Errors are
// *SyntaxError with a position relative to src.
//
// # Grammar
//
//	Condition  = OrExpr .
//	OrExpr     = AndExpr { ( "or" | "||" ) AndExpr } .
//	AndExpr    = NotExpr { ( "and" | "&&" ) NotExpr } .
//	NotExpr    = ( "not" | "!" ) NotExpr | Primary .
//	Primary    = "(" OrExpr ")" | "true" | "false" | Predicate .
//	Predicate  = Path [ PathTest ]
//	           | "has" "(" Path ")"
//	           | "segment" "(" String ")"
//	           | "semver" "(" Path ")" CompareOp String
//	           | "date" "(" Path ")" CompareOp ( String | "now" )
//	           | "now" CompareOp ( String | "date" "(" Path ")" ) .
//	PathTest   = CompareOp Scalar
//	           | [ "not" ] "in" List
//	           | "contains" Scalar
//	           | ( "startsWith" | "endsWith" | "matches" ) String .
//	CompareOp  = "==" | "!=" | "<" | "<=" | ">" | ">=" .
//	List       = "[" [ Scalar { "," Scalar } [ "," ] ] "]" .
//	Scalar     = String | Number | "true" | "false" .
//	Path       = Ident { "." Ident } .              (no spaces around ".")
//	Ident      = ( letter | "_" ) { letter | digit | "_" | "-" } .
//	Number     = [ "-" ] digits [ "." digits ] [ ( "e" | "E" ) [ "+" | "-" ] digits ] .
//	String     = "'" { char | Escape } "'" | `"` { char | Escape } `"` .
//	Escape     = `\` ( `\` | "'" | `"` | "n" | "r" | "t" | "u" hex hex hex hex ) .
//
// Spaces, tabs and newlines separate tokens; a string cannot span lines.
// Keywords are case-sensitive: and, or, not, in, contains, startsWith,
// endsWith, matches, true, false and now are reserved as the first name of a
// path; has, segment, semver and date are builtins only when followed by "(".
// Precedence, tightest first: not (which applies to the comparison or
// parenthesized group after it: `not plan == 'pro'` is `not (plan == 'pro')`),
// comparisons, and, or. and/or short-circuit left to right.
//
// # Semantics
//
// A Path looks up attrs[first], then descends through nested Attributes /
// map[string]any values, one name per dot. A missing attribute (or a nil
// value, or a path through a non-map) makes every test on it false,
// including != and not in: missing is neither equal nor unequal; use
// has(path) to test presence. For a present attribute, `x != v` is
// `not (x == v)` and `x not in L` is `not (x in L)`; values of different kinds
// are unequal. Ordering (<, <=, >, >=) holds only between two numbers or two
// strings (byte-wise lexical order); a bool compares only with == and !=.
// Numbers compare numerically whatever the Go type (any int, uint or float
// type, or json.Number), exactly for integers within int64. A bare Path is
// true when the attribute is the bool true.
//
// `x in [...]` is true when x equals an element (sets make it O(1) for long
// lists). `x contains v` is substring search when x is a string, and element
// membership when x is a list ([]any, []string or any slice). startsWith and
// endsWith test string prefixes and suffixes; `x matches 're'` is an RE2
// search (regexp package, unanchored: use ^ and $), compiled once here; as
// in every string, a backslash is escaped, so the regexp \d+ is written
// '\\d+'.
//
// semver(path) compares SemVer 2.0.0 precedence (pre-releases order before
// their release, build metadata is ignored); a leading "v" and a missing
// minor or patch ("2", "v2.1") are accepted on both sides. An attribute that
// is not a valid version makes the comparison false.
//
// date(path) compares instants. A date literal is 'YYYY-MM-DD' (midnight UTC)
// or an RFC 3339 date-time with a Z or ±HH:MM offset; the attribute may be such
// a string, a time.Time, or a number of Unix seconds. now is the evaluation
// time given to Match.
//
// segment('name') asks the SegmentMatcher given to Match, at Match's now
// when it implements SegmentMatcherAt (as the Snapshot does), so a segment
// whose condition uses now or date() answers as it does in a rule's segment
// field.
//
// # Limits
//
// A rule is at most 64 KiB long, nests parentheses and not at most 64 deep,
// has at most 1,000 comparisons, builtins and operators, and each list at
// most 10,000 elements; longer lists belong in a static segment. There are no
// loops or user functions, so evaluation cost is bounded by the rule's size
// (and by the size of the attributes searched by contains and matches).
func ParseCondition(src string) (*Condition, error) {
	if len(src) > ruleMaxSourceLen {
		line, col := rlPosAt(src, ruleMaxSourceLen)
		return nil, &SyntaxError{Line: line, Col: col, Msg: fmt.Sprintf(
			"rule is too long (%d bytes; the limit is %d bytes): put long lists in a static segment and use segment('name')",
			len(src), ruleMaxSourceLen)}
	}
	p := ruleParser{lx: ruleLexer{src: src, line: 1, col: 1}}
	p.advance()
	root, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != rlTokEOF {
		msg := `expected "and", "or" or end of rule`
		if p.tok.kind == rlTokRParen {
			msg += ` (this ")" has no matching "(")`
		}
		return nil, p.errAt(&p.tok, msg)
	}
	return &Condition{src: src, root: root, segs: p.segs, refs: p.refs}, nil
}

// Match evaluates the condition for attrs at time now (the engine never reads
// a clock). segs answers segment(...) membership, at now when it implements
// SegmentMatcherAt; it may be nil, in which case segment(...) is false. A nil Condition matches nothing. Match does not
// allocate for string, number, bool, list, semver, date and regexp tests.
func (c *Condition) Match(attrs Attributes, segs SegmentMatcher, now time.Time) bool {
	ext := rlExt{attrs: attrs, segs: segs, now: now}
	return c.match(rlEnv{ext: &ext})
}

// match evaluates the condition in e.
func (c *Condition) match(e rlEnv) bool {
	if c == nil || c.root == nil {
		return false
	}
	return evalNode(c.root, &e)
}

// String returns the source text the condition was parsed from.
func (c *Condition) String() string {
	if c == nil {
		return ""
	}
	return c.src
}

// Segments returns the names of the segments the condition references,
// deduplicated, in order of first appearance. The slice is a copy.
func (c *Condition) Segments() []string {
	if c == nil {
		return nil
	}
	return slices.Clone(c.segs)
}

// AttributeRefs returns the attribute paths the condition references,
// deduplicated, in order of first appearance, each with the kind of value it
// is compared to. The slice is a copy.
func (c *Condition) AttributeRefs() []AttributeRef {
	if c == nil {
		return nil
	}
	return slices.Clone(c.refs)
}

// rlPosAt returns the 1-based line and column (in code points) of byte offset
// off in src.
func rlPosAt(src string, off int) (line, col int) {
	line, col = 1, 1
	for i := 0; i < off && i < len(src); i++ {
		switch c := src[i]; {
		case c == '\n':
			line, col = line+1, 1
		case c&0xC0 != 0x80:
			col++
		}
	}
	return line, col
}
