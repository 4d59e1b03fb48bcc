package evaluate

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
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

// ---------------------------------------------------------------------------
// Lexer

type rlTokKind uint8

const (
	rlTokEOF     rlTokKind = iota
	rlTokErr               // lexical error: msg says what is wrong
	rlTokIdent             // attribute path or builtin name; may contain dots
	rlTokKeyword           // reserved word (see ruleKeywords)
	rlTokString            // quoted string; str holds the decoded value
	rlTokNumber            // number; num holds the value
	rlTokLParen
	rlTokRParen
	rlTokLBrack
	rlTokRBrack
	rlTokComma
	rlTokEq
	rlTokNe
	rlTokLt
	rlTokLe
	rlTokGt
	rlTokGe
	rlTokAndAnd // &&
	rlTokOrOr   // ||
	rlTokBang   // !
)

// ruleKeywords are reserved words: they cannot start an attribute path.
var ruleKeywords = map[string]bool{
	"and": true, "or": true, "not": true, "in": true, "contains": true,
	"startsWith": true, "endsWith": true, "matches": true,
	"true": true, "false": true, "now": true,
}

// ruleBuiltins are function names, recognized only when followed by "(".
var ruleBuiltins = map[string]bool{"has": true, "segment": true, "semver": true, "date": true}

type rlToken struct {
	kind      rlTokKind
	text      string // as written ("" at end of input)
	line, col int
	str       string   // rlTokString: decoded value
	num       rlNumber // rlTokNumber: value
	msg       string   // rlTokErr: description
}

type ruleLexer struct {
	src       string
	pos       int
	line, col int
}

// rlHexVal returns the value of hex digit c, or -1.
func rlHexVal(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return rune(c-'A') + 10
	}
	return -1
}

func rlIsDigit(c byte) bool      { return '0' <= c && c <= '9' }
func rlIsIdentStart(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' }
func rlIsIdentChar(c byte) bool  { return rlIsIdentStart(c) || rlIsDigit(c) || c == '-' }

// skip advances over n bytes that contain no newline, counting code points.
func (lx *ruleLexer) skip(n int) {
	for end := lx.pos + n; lx.pos < end; lx.pos++ {
		if lx.src[lx.pos]&0xC0 != 0x80 {
			lx.col++
		}
	}
}

func (lx *ruleLexer) next() rlToken {
	for lx.pos < len(lx.src) {
		switch lx.src[lx.pos] {
		case ' ', '\t', '\r':
			lx.pos++
			lx.col++
			continue
		case '\n':
			lx.pos++
			lx.line++
			lx.col = 1
			continue
		}
		break
	}
	t := rlToken{line: lx.line, col: lx.col}
	if lx.pos >= len(lx.src) {
		return t
	}
	src, start := lx.src, lx.pos
	c := src[start]
	switch {
	case rlIsIdentStart(c):
		return lx.lexIdent(t)
	case rlIsDigit(c) || c == '-' && start+1 < len(src) && rlIsDigit(src[start+1]):
		return lx.lexNumber(t)
	case c == '\'' || c == '"':
		return lx.lexString(t)
	}
	if start+1 < len(src) {
		kind := rlTokEOF
		switch src[start : start+2] {
		case "==":
			kind = rlTokEq
		case "!=":
			kind = rlTokNe
		case "<=":
			kind = rlTokLe
		case ">=":
			kind = rlTokGe
		case "&&":
			kind = rlTokAndAnd
		case "||":
			kind = rlTokOrOr
		}
		if kind != rlTokEOF {
			t.kind, t.text = kind, src[start:start+2]
			lx.skip(2)
			return t
		}
	}
	t.text = src[start : start+1]
	switch c {
	case '(':
		t.kind = rlTokLParen
	case ')':
		t.kind = rlTokRParen
	case '[':
		t.kind = rlTokLBrack
	case ']':
		t.kind = rlTokRBrack
	case ',':
		t.kind = rlTokComma
	case '<':
		t.kind = rlTokLt
	case '>':
		t.kind = rlTokGt
	case '!':
		t.kind = rlTokBang
	case '=':
		t.kind, t.msg = rlTokErr, `expected "==" ("=" alone is not an operator)`
	case '&':
		t.kind, t.msg = rlTokErr, `expected "&&"`
	case '|':
		t.kind, t.msg = rlTokErr, `expected "||"`
	default:
		_, size := utf8.DecodeRuneInString(src[start:])
		t.text = src[start : start+size]
		t.kind, t.msg = rlTokErr, "unexpected character"
	}
	lx.skip(len(t.text))
	return t
}

func (lx *ruleLexer) lexIdent(t rlToken) rlToken {
	src, start := lx.src, lx.pos
	i := start + 1
	dotted := false
	for {
		for i < len(src) && rlIsIdentChar(src[i]) {
			i++
		}
		if i >= len(src) || src[i] != '.' {
			break
		}
		if i+1 >= len(src) || !rlIsIdentStart(src[i+1]) {
			t.kind, t.text, t.msg = rlTokErr, src[start:i+1], `expected an attribute name after "."`
			lx.skip(i + 1 - start)
			return t
		}
		dotted = true
		i += 2
	}
	t.kind, t.text = rlTokIdent, src[start:i]
	if !dotted && ruleKeywords[t.text] {
		t.kind = rlTokKeyword
	}
	lx.skip(i - start)
	return t
}

func (lx *ruleLexer) lexNumber(t rlToken) rlToken {
	src, start := lx.src, lx.pos
	i := start
	if src[i] == '-' {
		i++
	}
	digits := func() {
		for i < len(src) && rlIsDigit(src[i]) {
			i++
		}
	}
	digits()
	if i+1 < len(src) && src[i] == '.' && rlIsDigit(src[i+1]) {
		i++
		digits()
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		j := i + 1
		if j < len(src) && (src[j] == '+' || src[j] == '-') {
			j++
		}
		if j < len(src) && rlIsDigit(src[j]) {
			i = j
			digits()
		}
	}
	if i < len(src) && (rlIsIdentChar(src[i]) || src[i] == '.') {
		for i < len(src) && (rlIsIdentChar(src[i]) || src[i] == '.') {
			i++
		}
		t.kind, t.text, t.msg = rlTokErr, src[start:i], "invalid number"
		lx.skip(i - start)
		return t
	}
	t.text = src[start:i]
	lx.skip(i - start)
	n, ok := rlParseNumber(t.text)
	if !ok {
		t.kind, t.msg = rlTokErr, "number out of range"
		return t
	}
	t.kind, t.num = rlTokNumber, n
	return t
}

func (lx *ruleLexer) lexString(t rlToken) rlToken {
	src, start := lx.src, lx.pos
	quote := src[start]
	var buf []byte // decoded value, only when the literal has escapes
	i, col := start+1, lx.col+1
	for {
		if i >= len(src) || src[i] == '\n' {
			t.kind, t.text = rlTokErr, src[start:i]
			t.msg = "unterminated string (a string ends with its opening quote, on the same line)"
			lx.skip(i - start)
			return t
		}
		c := src[i]
		if c == quote {
			break
		}
		if c != '\\' {
			if buf != nil {
				buf = append(buf, c)
			}
			if c&0xC0 != 0x80 {
				col++
			}
			i++
			continue
		}
		if buf == nil {
			buf = append(make([]byte, 0, i-start+8), src[start+1:i]...)
		}
		if i+1 >= len(src) || src[i+1] == '\n' {
			i++ // a backslash at the end of the line escapes nothing
			continue
		}
		esc, n := src[i+1], 2
		switch esc {
		case '\\', '\'', '"':
			buf = append(buf, esc)
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := rune(0), i+6 <= len(src)
			for k := i + 2; ok && k < i+6; k++ {
				d := rlHexVal(src[k])
				ok = d >= 0
				r = r<<4 | d
			}
			if !ok {
				end := min(i+6, len(src))
				for k := i + 2; k < end; k++ {
					if src[k] == quote || src[k] == '\n' {
						end = k
						break
					}
				}
				t.kind, t.text, t.line, t.col = rlTokErr, src[i:end], lx.line, col
				t.msg = `invalid \u escape: want exactly 4 hex digits, e.g. \u00e9`
				lx.skip(end - start)
				return t
			}
			buf = utf8.AppendRune(buf, r)
			n = 6
		default:
			_, size := utf8.DecodeRuneInString(src[i+1:])
			end := i + 1 + size
			t.kind, t.text, t.line, t.col = rlTokErr, src[i:end], lx.line, col
			t.msg = `unknown escape sequence: write \\ for a backslash (a regexp digit class is written '\\d')`
			lx.skip(end - start)
			return t
		}
		i += n
		col += n
	}
	t.kind, t.text = rlTokString, src[start:i+1]
	if buf != nil {
		t.str = string(buf)
	} else {
		t.str = src[start+1 : i]
	}
	lx.skip(i + 1 - start)
	return t
}

// ---------------------------------------------------------------------------
// Parser

type ruleParser struct {
	lx       ruleLexer
	tok      rlToken
	ahead    rlToken
	hasAhead bool
	depth    int
	nodes    int
	segs     []string
	refs     []AttributeRef
	refMixed []bool
	refIdx   map[string]int
}

func (p *ruleParser) advance() {
	if p.hasAhead {
		p.tok, p.hasAhead = p.ahead, false
		return
	}
	p.tok = p.lx.next()
}

func (p *ruleParser) peek() *rlToken {
	if !p.hasAhead {
		p.ahead, p.hasAhead = p.lx.next(), true
	}
	return &p.ahead
}

// errAt reports msg at token t; a lexical error token reports its own error.
func (p *ruleParser) errAt(t *rlToken, msg string) *SyntaxError {
	if t.kind == rlTokErr {
		return &SyntaxError{Line: t.line, Col: t.col, Token: t.text, Msg: t.msg}
	}
	if t.kind == rlTokIdent {
		for kw := range ruleKeywords {
			if strings.EqualFold(kw, t.text) {
				msg += fmt.Sprintf(" (keywords are case-sensitive: write %q)", kw)
				break
			}
		}
	}
	return &SyntaxError{Line: t.line, Col: t.col, Token: t.text, Msg: msg}
}

func (p *ruleParser) isKeyword(kw string) bool {
	return p.tok.kind == rlTokKeyword && p.tok.text == kw
}

func (p *ruleParser) count(t *rlToken) *SyntaxError {
	p.nodes++
	if p.nodes > ruleMaxNodes {
		return p.errAt(t, fmt.Sprintf(
			"rule has more than %d comparisons and operators; split it, or put long or-chains and lists in a segment",
			ruleMaxNodes))
	}
	return nil
}

func (p *ruleParser) enter(t *rlToken) *SyntaxError {
	p.depth++
	if p.depth > ruleMaxDepth {
		return p.errAt(t, fmt.Sprintf("nesting is deeper than %d levels", ruleMaxDepth))
	}
	return nil
}

func (p *ruleParser) addSegment(name string) {
	if !slices.Contains(p.segs, name) {
		p.segs = append(p.segs, name)
	}
}

func (p *ruleParser) addRef(t *rlToken, kind string) {
	// Rules reference few attributes: a linear scan beats a map until the
	// list grows.
	i, ok := -1, false
	if p.refIdx != nil {
		i, ok = p.refIdx[t.text]
	} else {
		for j := range p.refs {
			if p.refs[j].Path == t.text {
				i, ok = j, true
				break
			}
		}
	}
	if !ok {
		if p.refIdx == nil && len(p.refs) >= 16 {
			p.refIdx = make(map[string]int, 32)
			for j := range p.refs {
				p.refIdx[p.refs[j].Path] = j
			}
		}
		if p.refIdx != nil {
			p.refIdx[t.text] = len(p.refs)
		}
		p.refs = append(p.refs, AttributeRef{Path: t.text, Kind: kind, Line: t.line, Col: t.col})
		p.refMixed = append(p.refMixed, false)
		return
	}
	r := &p.refs[i]
	switch {
	case kind == "" || p.refMixed[i] || r.Kind == kind:
	case r.Kind == "":
		r.Kind = kind
	default:
		r.Kind, p.refMixed[i] = "", true
	}
}

func (p *ruleParser) parseOr() (rlNode, *SyntaxError) {
	n, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	var kids []rlNode
	for p.isKeyword("or") || p.tok.kind == rlTokOrOr {
		if err := p.count(&p.tok); err != nil {
			return nil, err
		}
		p.advance()
		k, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
	}
	if kids == nil {
		return n, nil
	}
	return &rlOr{kids: append([]rlNode{n}, kids...)}, nil
}

func (p *ruleParser) parseAnd() (rlNode, *SyntaxError) {
	n, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	var kids []rlNode
	for p.isKeyword("and") || p.tok.kind == rlTokAndAnd {
		if err := p.count(&p.tok); err != nil {
			return nil, err
		}
		p.advance()
		k, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
	}
	if kids == nil {
		return n, nil
	}
	return &rlAnd{kids: append([]rlNode{n}, kids...)}, nil
}

func (p *ruleParser) parseNot() (rlNode, *SyntaxError) {
	if !p.isKeyword("not") && p.tok.kind != rlTokBang {
		return p.parsePrimary()
	}
	if err := p.enter(&p.tok); err != nil {
		return nil, err
	}
	if err := p.count(&p.tok); err != nil {
		return nil, err
	}
	p.advance()
	k, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	p.depth--
	return &rlNot{kid: k}, nil
}

func (p *ruleParser) parsePrimary() (rlNode, *SyntaxError) {
	t := p.tok
	switch {
	case t.kind == rlTokLParen:
		if err := p.enter(&t); err != nil {
			return nil, err
		}
		p.advance()
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != rlTokRParen {
			return nil, p.errAt(&p.tok, fmt.Sprintf(
				`expected "and", "or" or ")" to close the "(" at %d:%d`, t.line, t.col))
		}
		p.advance()
		p.depth--
		return n, nil
	case t.kind == rlTokKeyword && (t.text == "true" || t.text == "false"):
		if err := p.count(&t); err != nil {
			return nil, err
		}
		p.advance()
		return &rlConst{v: t.text == "true"}, nil
	case t.kind == rlTokKeyword && t.text == "now":
		return p.parseNow()
	case t.kind == rlTokIdent:
		if ruleBuiltins[t.text] && p.peek().kind == rlTokLParen {
			return p.parseCall()
		}
		return p.parsePathTest()
	case t.kind == rlTokString || t.kind == rlTokNumber || t.kind == rlTokLBrack:
		return nil, p.errAt(&t, "expected a condition (a test starts with the attribute, e.g. plan == 'pro')")
	default:
		return nil, p.errAt(&t, "expected a condition")
	}
}

func (p *ruleParser) compareOp() (rlOp, bool) {
	switch p.tok.kind {
	case rlTokEq:
		return rlOpEq, true
	case rlTokNe:
		return rlOpNe, true
	case rlTokLt:
		return rlOpLt, true
	case rlTokLe:
		return rlOpLe, true
	case rlTokGt:
		return rlOpGt, true
	case rlTokGe:
		return rlOpGe, true
	}
	return 0, false
}

func (p *ruleParser) expectCompareOp(after string) (rlOp, *SyntaxError) {
	op, ok := p.compareOp()
	if !ok {
		return 0, p.errAt(&p.tok, "expected a comparison operator (==, !=, <, <=, >, >=) after "+after)
	}
	p.advance()
	return op, nil
}

// parsePathTest parses a Path and the test applied to it.
func (p *ruleParser) parsePathTest() (rlNode, *SyntaxError) {
	pt := p.tok
	if err := p.count(&pt); err != nil {
		return nil, err
	}
	path := rlNewPath(pt.text)
	p.advance()
	if op, ok := p.compareOp(); ok {
		p.advance()
		lt := p.tok
		lit, err := p.parseScalar("expected a value (a string, number, true or false)")
		if err != nil {
			return nil, err
		}
		p.addRef(&pt, lit.kindName())
		switch lit.kind {
		case rlLitString:
			return &rlStrCmp{path: path, op: op, lit: lit.str}, nil
		case rlLitNumber:
			return &rlNumCmp{path: path, op: op, lit: lit.num}, nil
		default:
			if op != rlOpEq && op != rlOpNe {
				return nil, p.errAt(&lt, fmt.Sprintf("a bool can only be compared with == or !=, not %s", op))
			}
			return &rlBoolCmp{path: path, neg: op == rlOpNe, lit: lit.b}, nil
		}
	}
	if p.tok.kind != rlTokKeyword {
		switch p.tok.kind {
		case rlTokEOF, rlTokRParen, rlTokAndAnd, rlTokOrOr:
			p.addRef(&pt, "bool")
			return &rlTruthy{path: path}, nil
		}
		return nil, p.errAt(&p.tok, fmt.Sprintf(
			"expected an operator (==, !=, <, <=, >, >=, in, not in, contains, startsWith, endsWith, matches) after %q", pt.text))
	}
	switch kw := p.tok.text; kw {
	case "and", "or":
		p.addRef(&pt, "bool")
		return &rlTruthy{path: path}, nil
	case "not", "in":
		neg := kw == "not"
		if neg {
			p.advance()
			if !p.isKeyword("in") {
				return nil, p.errAt(&p.tok, `expected "in" after "not"`)
			}
		}
		p.advance()
		n, err := p.parseList()
		if err != nil {
			return nil, err
		}
		n.path, n.neg = path, neg
		p.addRef(&pt, n.elemKind())
		return n, nil
	case "contains":
		p.advance()
		lit, err := p.parseScalar("expected a value (a string, number, true or false)")
		if err != nil {
			return nil, err
		}
		kind := "list"
		if lit.kind == rlLitString {
			kind = ""
		}
		p.addRef(&pt, kind)
		return &rlContains{path: path, lit: lit}, nil
	case "startsWith", "endsWith", "matches":
		p.advance()
		lt := p.tok
		if lt.kind != rlTokString {
			return nil, p.errAt(&lt, fmt.Sprintf("expected a string after %s", kw))
		}
		p.advance()
		p.addRef(&pt, "string")
		switch kw {
		case "startsWith":
			return &rlPrefix{path: path, lit: lt.str}, nil
		case "endsWith":
			return &rlSuffix{path: path, lit: lt.str}, nil
		}
		re, err := regexp.Compile(lt.str)
		if err != nil {
			return nil, p.errAt(&lt, "invalid regular expression: "+strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		return &rlMatches{path: path, re: re}, nil
	}
	return nil, p.errAt(&p.tok, fmt.Sprintf(
		"expected an operator (==, !=, <, <=, >, >=, in, not in, contains, startsWith, endsWith, matches) after %q", pt.text))
}

// parseScalar parses a String, Number, true or false; expected describes
// what was wanted if the token is none of these.
func (p *ruleParser) parseScalar(expected string) (rlLit, *SyntaxError) {
	t := p.tok
	var lit rlLit
	switch {
	case t.kind == rlTokString:
		lit = rlLit{kind: rlLitString, str: t.str}
	case t.kind == rlTokNumber:
		lit = rlLit{kind: rlLitNumber, num: t.num}
	case t.kind == rlTokKeyword && (t.text == "true" || t.text == "false"):
		lit = rlLit{kind: rlLitBool, b: t.text == "true"}
	case t.kind == rlTokIdent:
		return lit, p.errAt(&t, expected+fmt.Sprintf("; strings need quotes: '%s'", t.text))
	case t.kind == rlTokLBrack:
		return lit, p.errAt(&t, expected+`; lists are only allowed after "in" and "not in"`)
	default:
		return lit, p.errAt(&t, expected)
	}
	p.advance()
	return lit, nil
}

func (p *ruleParser) parseList() (*rlIn, *SyntaxError) {
	if p.tok.kind != rlTokLBrack {
		return nil, p.errAt(&p.tok, "expected a list, e.g. ['US', 'CA']")
	}
	p.advance()
	n := &rlIn{}
	for p.tok.kind != rlTokRBrack {
		if len(n.elems) == ruleMaxListLen {
			return nil, p.errAt(&p.tok, fmt.Sprintf(
				"list has more than %d elements; put long lists in a static segment and use segment('name')", ruleMaxListLen))
		}
		lit, err := p.parseScalar(`expected a value (a string, number, true or false) or "]"`)
		if err != nil {
			return nil, err
		}
		n.elems = append(n.elems, lit)
		if p.tok.kind == rlTokComma {
			p.advance()
			continue
		}
		if p.tok.kind != rlTokRBrack {
			return nil, p.errAt(&p.tok, `expected "," or "]"`)
		}
	}
	p.advance()
	n.build()
	return n, nil
}

// parsePathArg parses `Path ")"` after "name(".
func (p *ruleParser) parsePathArg(name string) (rlPath, rlToken, *SyntaxError) {
	t := p.tok
	if t.kind != rlTokIdent {
		return rlPath{}, t, p.errAt(&t, fmt.Sprintf("expected an attribute path in %s(...)", name))
	}
	p.advance()
	if p.tok.kind != rlTokRParen {
		return rlPath{}, t, p.errAt(&p.tok, fmt.Sprintf(`expected ")" to close %s(`, name))
	}
	p.advance()
	return rlNewPath(t.text), t, nil
}

func (p *ruleParser) parseCall() (rlNode, *SyntaxError) {
	nt := p.tok
	if err := p.count(&nt); err != nil {
		return nil, err
	}
	p.advance() // name
	p.advance() // "(" (peeked by the caller)
	switch nt.text {
	case "segment":
		t := p.tok
		if t.kind != rlTokString {
			return nil, p.errAt(&t, "expected a segment name in quotes, e.g. segment('beta_testers')")
		}
		if t.str == "" {
			return nil, p.errAt(&t, "segment name is empty")
		}
		p.advance()
		if p.tok.kind != rlTokRParen {
			return nil, p.errAt(&p.tok, `expected ")" to close segment(`)
		}
		p.advance()
		p.addSegment(t.str)
		return &rlSegment{name: t.str}, nil
	case "has":
		path, pt, err := p.parsePathArg(nt.text)
		if err != nil {
			return nil, err
		}
		p.addRef(&pt, "")
		return &rlHas{path: path}, nil
	case "semver":
		path, pt, err := p.parsePathArg(nt.text)
		if err != nil {
			return nil, err
		}
		op, err := p.expectCompareOp("semver(...)")
		if err != nil {
			return nil, err
		}
		lt := p.tok
		if lt.kind != rlTokString {
			return nil, p.errAt(&lt, "expected a version in quotes, e.g. '2.0.0'")
		}
		v, ok := rlParseVersion(lt.str)
		if !ok {
			return nil, p.errAt(&lt,
				"not a valid semantic version: want [v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], e.g. '2.1.0' or '2.1.0-beta.1'")
		}
		p.advance()
		p.addRef(&pt, "semver")
		return &rlSemverCmp{path: path, op: op, lit: v, text: lt.str}, nil
	default: // "date"
		path, pt, err := p.parsePathArg(nt.text)
		if err != nil {
			return nil, err
		}
		op, err := p.expectCompareOp("date(...)")
		if err != nil {
			return nil, err
		}
		p.addRef(&pt, "date")
		if p.isKeyword("now") {
			p.advance()
			return &rlDateNowCmp{path: path, op: op}, nil
		}
		lit, text, err := p.parseDateLit()
		if err != nil {
			return nil, err
		}
		return &rlDateCmp{path: path, op: op, lit: lit, text: text}, nil
	}
}

func (p *ruleParser) parseNow() (rlNode, *SyntaxError) {
	if err := p.count(&p.tok); err != nil {
		return nil, err
	}
	p.advance()
	op, err := p.expectCompareOp(`"now"`)
	if err != nil {
		return nil, err
	}
	if p.tok.kind == rlTokIdent && p.tok.text == "date" && p.peek().kind == rlTokLParen {
		p.advance()
		p.advance()
		path, pt, err := p.parsePathArg("date")
		if err != nil {
			return nil, err
		}
		p.addRef(&pt, "date")
		return &rlDateNowCmp{path: path, op: op.flip()}, nil
	}
	lit, text, err := p.parseDateLit()
	if err != nil {
		return nil, err
	}
	return &rlNowCmp{op: op, lit: lit, text: text}, nil
}

func (p *ruleParser) parseDateLit() (time.Time, string, *SyntaxError) {
	t := p.tok
	if t.kind != rlTokString {
		return time.Time{}, "", p.errAt(&t, "expected a date in quotes, e.g. '2026-01-01' or '2026-01-01T09:00:00Z'")
	}
	d, ok := rlParseDate(t.str)
	if !ok {
		return time.Time{}, "", p.errAt(&t,
			"not a valid RFC 3339 date or date-time: want 'YYYY-MM-DD' or 'YYYY-MM-DDTHH:MM:SS[.frac]' with Z or a ±HH:MM offset")
	}
	p.advance()
	return d, t.str, nil
}

// ---------------------------------------------------------------------------
// Compiled form: a tree of small nodes with pre-converted literals. eval takes
// the environment by value: passing a pointer through an interface method
// would make it escape to the heap.

type rlEnv struct {
	// list is the subject as a list (see Snapshot.EvaluateAttrs) when
	// non-nil; ext.attrs is then nil.
	list []Attr
	// ext holds the rest behind a pointer: escape analysis does not tell
	// fields apart, so anything passed on to an interface (the segment
	// matcher, the map, now's location) would make list's array escape
	// too were it a field of rlEnv itself.
	ext *rlExt
}

// rlExt is the part of an evaluation's environment that may be handed to
// code the engine does not see (a SegmentMatcher).
type rlExt struct {
	attrs Attributes // the subject as a map
	segs  SegmentMatcher
	now   time.Time
}

// get returns the value of the top-level attribute name: the last of a
// repeated key in a list.
func (e *rlEnv) get(name string) Value {
	if e.list != nil {
		if a := findAttr(e.list, name); a != nil {
			return a.Value
		}
		return Value{}
	}
	x, ok := e.ext.attrs[name]
	if !ok {
		return Value{}
	}
	if s, ok := x.(string); ok { // the common case, inlined
		return StringValue(s)
	}
	return AnyValue(x)
}

// findAttr returns the attribute name of a list subject (the last of a
// repeated key counts), or nil. It compares lengths and first bytes
// before whole keys: most keys differ there.
func findAttr(list []Attr, name string) *Attr {
	for i := len(list) - 1; i >= 0; i-- {
		if k := list[i].Key; len(k) == len(name) && (len(k) == 0 || k[0] == name[0] && k == name) {
			return &list[i]
		}
	}
	return nil
}

type rlNode interface {
	eval(e *rlEnv) bool
}

// evalNode evaluates n in e. It dispatches on the concrete node types,
// not through the interface, so that e (and the subject it points to)
// stays on the caller's stack: a pointer passed through an interface
// method escapes to the heap. Every node type must be listed here
// (TestEvalNodeListsEveryNodeType).
func evalNode(n rlNode, e *rlEnv) bool {
	// The commonest nodes first, each one well-predicted comparison: a
	// type switch over every type searches type hashes, with branches
	// that mispredict as node types alternate.
	if c, ok := n.(*rlStrCmp); ok {
		return c.eval(e)
	}
	if a, ok := n.(*rlAnd); ok {
		return a.eval(e)
	}
	if in, ok := n.(*rlIn); ok {
		return in.eval(e)
	}
	switch n := n.(type) {
	case *rlAnd:
		return n.eval(e)
	case *rlOr:
		return n.eval(e)
	case *rlNot:
		return n.eval(e)
	case *rlConst:
		return n.eval(e)
	case *rlHas:
		return n.eval(e)
	case *rlTruthy:
		return n.eval(e)
	case *rlSegment:
		return n.eval(e)
	case *rlStrCmp:
		return n.eval(e)
	case *rlNumCmp:
		return n.eval(e)
	case *rlBoolCmp:
		return n.eval(e)
	case *rlIn:
		return n.eval(e)
	case *rlContains:
		return n.eval(e)
	case *rlPrefix:
		return n.eval(e)
	case *rlSuffix:
		return n.eval(e)
	case *rlMatches:
		return n.eval(e)
	case *rlSemverCmp:
		return n.eval(e)
	case *rlDateCmp:
		return n.eval(e)
	case *rlDateNowCmp:
		return n.eval(e)
	case *rlNowCmp:
		return n.eval(e)
	}
	return false
}

type rlOp uint8

const (
	rlOpEq rlOp = iota
	rlOpNe
	rlOpLt
	rlOpLe
	rlOpGt
	rlOpGe
)

func (op rlOp) String() string { return [...]string{"==", "!=", "<", "<=", ">", ">="}[op] }

// test reports whether a comparison result c (-1, 0, +1) satisfies op.
func (op rlOp) test(c int) bool {
	switch op {
	case rlOpEq:
		return c == 0
	case rlOpNe:
		return c != 0
	case rlOpLt:
		return c < 0
	case rlOpLe:
		return c <= 0
	case rlOpGt:
		return c > 0
	default:
		return c >= 0
	}
}

// flip returns the operator with its operands swapped (a < b ⇔ b > a).
func (op rlOp) flip() rlOp {
	switch op {
	case rlOpLt:
		return rlOpGt
	case rlOpLe:
		return rlOpGe
	case rlOpGt:
		return rlOpLt
	case rlOpGe:
		return rlOpLe
	}
	return op
}

// rlPath is a dotted attribute path.
type rlPath struct {
	text  string
	names []string
}

func rlNewPath(text string) rlPath { return rlPath{text: text, names: strings.Split(text, ".")} }

// lookupStr is lookup for the tests that read a string: present reports
// the attribute is there (not nil), isStr that it is a string. A
// top-level attribute of a map subject is read without building a Value.
func (p *rlPath) lookupStr(e *rlEnv) (s string, isStr, present bool) {
	s, isStr, _, present = p.lookupStrValue(e)
	return s, isStr, present
}

// lookupStrValue is lookupStr that also returns the value when it is
// not a string (v is unset for a string).
func (p *rlPath) lookupStrValue(e *rlEnv) (s string, isStr bool, v Value, present bool) {
	if e.list != nil && len(p.names) == 1 {
		// get, inlined for the commonest case: a string attribute of a
		// list subject (the last of a repeated key counts).
		a := findAttr(e.list, p.names[0])
		if a == nil {
			return "", false, Value{}, false
		}
		if sp, ok := a.Value.any.(stringptr); ok {
			return unsafe.String((*byte)(sp), int(a.Value.num)), true, Value{}, true
		}
		if v = a.Value; v.null() {
			return "", false, Value{}, false
		}
		s, isStr = v.asOtherString()
		return s, isStr, v, true
	}
	if e.list == nil && len(p.names) == 1 {
		x, ok := e.ext.attrs[p.names[0]]
		if !ok || x == nil {
			return "", false, Value{}, false
		}
		if s, ok := x.(string); ok {
			return s, true, Value{}, true
		}
		if v = AnyValue(x); v.null() {
			return "", false, Value{}, false
		}
	} else if v, present = p.lookup(e); !present {
		return "", false, Value{}, false
	}
	s, isStr = v.asString()
	return s, isStr, v, true
}

// lookup returns the attribute's value; a null value (nil, or a number
// that is not finite: see Value.null) counts as missing.
func (p *rlPath) lookup(e *rlEnv) (Value, bool) {
	v := e.get(p.names[0])
	for _, name := range p.names[1:] {
		m, isMap := v.any.(map[string]any)
		if !isMap {
			return Value{}, false
		}
		v = AnyValue(m[name])
	}
	return v, !v.null()
}

type rlAnd struct{ kids []rlNode }

func (n *rlAnd) eval(e *rlEnv) bool {
	for _, k := range n.kids {
		if !evalNode(k, e) {
			return false
		}
	}
	return true
}

type rlOr struct{ kids []rlNode }

func (n *rlOr) eval(e *rlEnv) bool {
	for _, k := range n.kids {
		if evalNode(k, e) {
			return true
		}
	}
	return false
}

type rlNot struct{ kid rlNode }

func (n *rlNot) eval(e *rlEnv) bool { return !evalNode(n.kid, e) }

type rlConst struct{ v bool }

func (n *rlConst) eval(*rlEnv) bool { return n.v }

type rlHas struct{ path rlPath }

func (n *rlHas) eval(e *rlEnv) bool {
	_, ok := n.path.lookup(e)
	return ok
}

// rlTruthy is a bare path: true when the attribute is the bool true.
type rlTruthy struct{ path rlPath }

func (n *rlTruthy) eval(e *rlEnv) bool {
	v, ok := n.path.lookup(e)
	if !ok {
		return false
	}
	b, isBool := v.asBool()
	return isBool && b
}

type rlSegment struct{ name string }

func (n *rlSegment) eval(e *rlEnv) bool {
	switch m := e.ext.segs.(type) {
	case nil:
		return false
	case *Snapshot:
		if m == nil {
			return false
		}
		cs, ok := m.segments[n.name]
		return ok && cs.matchEnv(e)
	}
	attrs := e.ext.attrs
	if e.list != nil {
		attrs = listMap(e.list) // a foreign matcher reads a map
	}
	switch m := e.ext.segs.(type) {
	case SegmentMatcherAt:
		return m.MatchSegmentAt(n.name, attrs, e.ext.now)
	}
	return e.ext.segs.MatchSegment(n.name, attrs)
}

type rlStrCmp struct {
	path rlPath
	op   rlOp
	lit  string
}

func (n *rlStrCmp) eval(e *rlEnv) bool {
	s, isStr, ok := n.path.lookupStr(e)
	if !ok {
		return false
	}
	if !isStr {
		return n.op == rlOpNe
	}
	return n.op.test(strings.Compare(s, n.lit))
}

type rlNumCmp struct {
	path rlPath
	op   rlOp
	lit  rlNumber
}

func (n *rlNumCmp) eval(e *rlEnv) bool {
	v, ok := n.path.lookup(e)
	if !ok {
		return false
	}
	x, isNum := v.asNumber()
	if !isNum {
		return n.op == rlOpNe
	}
	return n.op.test(rlCmpNum(x, n.lit))
}

type rlBoolCmp struct {
	path rlPath
	neg  bool // !=
	lit  bool
}

func (n *rlBoolCmp) eval(e *rlEnv) bool {
	v, ok := n.path.lookup(e)
	if !ok {
		return false
	}
	b, isBool := v.asBool()
	return (isBool && b == n.lit) != n.neg
}

// rlIn is `path in [...]` / `path not in [...]`. Lists longer than
// ruleSetThreshold elements of a kind are matched through a set.
type rlIn struct {
	path  rlPath
	neg   bool
	elems []rlLit // as written

	strs     []string
	nums     []rlNumber
	hasTrue  bool
	hasFalse bool
	strSet   map[string]struct{}
	intSet   map[int64]struct{}   // numbers that are exact int64s
	fltSet   map[float64]struct{} // other numbers
}

func (n *rlIn) build() {
	for _, l := range n.elems {
		switch l.kind {
		case rlLitString:
			n.strs = append(n.strs, l.str)
		case rlLitNumber:
			n.nums = append(n.nums, l.num)
		default:
			n.hasTrue = n.hasTrue || l.b
			n.hasFalse = n.hasFalse || !l.b
		}
	}
	if len(n.strs) > ruleSetThreshold {
		n.strSet = make(map[string]struct{}, len(n.strs))
		for _, s := range n.strs {
			n.strSet[s] = struct{}{}
		}
	}
	if len(n.nums) > ruleSetThreshold {
		n.intSet = make(map[int64]struct{})
		n.fltSet = make(map[float64]struct{})
		for _, x := range n.nums {
			if x.exact {
				n.intSet[x.i] = struct{}{}
			} else {
				n.fltSet[x.f] = struct{}{}
			}
		}
	}
}

// elemKind is the AttributeRef kind implied by the list's elements.
func (n *rlIn) elemKind() string {
	if len(n.elems) == 0 {
		return ""
	}
	kind := n.elems[0].kind
	for _, l := range n.elems[1:] {
		if l.kind != kind {
			return ""
		}
	}
	return n.elems[0].kindName()
}

func (n *rlIn) has(v Value) bool {
	if s, ok := v.asString(); ok {
		return n.hasString(s)
	}
	if b, ok := v.asBool(); ok {
		return b && n.hasTrue || !b && n.hasFalse
	}
	x, ok := v.asNumber()
	if !ok {
		return false
	}
	if n.intSet != nil {
		var found bool
		if x.exact {
			_, found = n.intSet[x.i]
		} else {
			_, found = n.fltSet[x.f]
		}
		return found
	}
	for _, y := range n.nums {
		if rlCmpNum(x, y) == 0 {
			return true
		}
	}
	return false
}

func (n *rlIn) hasString(s string) bool {
	if n.strSet != nil {
		_, found := n.strSet[s]
		return found
	}
	return slices.Contains(n.strs, s)
}

func (n *rlIn) eval(e *rlEnv) bool {
	s, isStr, v, ok := n.path.lookupStrValue(e)
	switch {
	case !ok:
		return false
	case isStr:
		return n.hasString(s) != n.neg
	}
	return n.has(v) != n.neg
}

type rlContains struct {
	path rlPath
	lit  rlLit
}

func (n *rlContains) eval(e *rlEnv) bool {
	v, ok := n.path.lookup(e)
	if !ok {
		return false
	}
	if s, isStr := v.any.(stringptr); isStr {
		return n.lit.kind == rlLitString && strings.Contains(v.str(s), n.lit.str)
	}
	if v.Kind() != KindAny {
		return false // a bool or number contains nothing
	}
	switch x := v.any.(type) {
	case []string:
		return n.lit.kind == rlLitString && slices.Contains(x, n.lit.str)
	case []any:
		for _, el := range x {
			if n.lit.equal(el) {
				return true
			}
		}
		return false
	}
	rv := reflect.ValueOf(v.any)
	switch rv.Kind() {
	case reflect.String:
		return n.lit.kind == rlLitString && strings.Contains(rv.String(), n.lit.str)
	case reflect.Slice, reflect.Array:
		for i := range rv.Len() {
			if n.lit.equalValue(rv.Index(i)) {
				return true
			}
		}
	}
	return false
}

type rlPrefix struct {
	path rlPath
	lit  string
}

func (n *rlPrefix) eval(e *rlEnv) bool {
	s, isStr, _ := n.path.lookupStr(e)
	return isStr && strings.HasPrefix(s, n.lit)
}

type rlSuffix struct {
	path rlPath
	lit  string
}

func (n *rlSuffix) eval(e *rlEnv) bool {
	s, isStr, _ := n.path.lookupStr(e)
	return isStr && strings.HasSuffix(s, n.lit)
}

type rlMatches struct {
	path rlPath
	re   *regexp.Regexp
}

func (n *rlMatches) eval(e *rlEnv) bool {
	s, isStr, _ := n.path.lookupStr(e)
	return isStr && n.re.MatchString(s)
}

type rlSemverCmp struct {
	path rlPath
	op   rlOp
	lit  rlVersion
	text string // literal as decoded
}

func (n *rlSemverCmp) eval(e *rlEnv) bool {
	s, isStr, _ := n.path.lookupStr(e)
	if !isStr {
		return false
	}
	if c, ok := rlCmpPlainVersion(s, &n.lit); ok {
		return n.op.test(c)
	}
	ver, valid := rlParseVersion(s)
	return valid && n.op.test(rlCmpVersion(ver, n.lit))
}

// rlCmpPlainVersion is rlCmpVersion(rlParseVersion(s), *lit) for the common
// plain form [v]MAJOR[.MINOR[.PATCH]] with parts of at most 18 digits
// (which cannot overflow); ok is false for anything else, which the general
// parser then decides.
func rlCmpPlainVersion(s string, lit *rlVersion) (c int, ok bool) {
	if len(s) > 0 && (s[0] == 'v' || s[0] == 'V') {
		s = s[1:]
	}
	var part [3]uint64
	i := 0
	for p := 0; p < 3; p++ {
		start := i
		var x uint64
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			x = x*10 + uint64(s[i]-'0')
			i++
		}
		if n := i - start; n == 0 || n > 18 || n > 1 && s[start] == '0' {
			return 0, false
		}
		part[p] = x
		if i == len(s) {
			break
		}
		if p == 2 || s[i] != '.' {
			return 0, false
		}
		i++
	}
	if c = cmp.Compare(part[0], lit.major); c == 0 {
		if c = cmp.Compare(part[1], lit.minor); c == 0 {
			c = cmp.Compare(part[2], lit.patch)
		}
	}
	if c == 0 && lit.pre != "" {
		c = 1 // a release follows its pre-releases
	}
	return c, true
}

type rlDateCmp struct {
	path rlPath
	op   rlOp
	lit  time.Time
	text string // literal as decoded
}

func (n *rlDateCmp) eval(e *rlEnv) bool {
	v, ok := n.path.lookup(e)
	if !ok {
		return false
	}
	t, valid := v.asTime()
	return valid && n.op.test(t.Compare(n.lit))
}

// rlDateNowCmp is `date(path) op now` (`now op date(path)` is flipped to it).
type rlDateNowCmp struct {
	path rlPath
	op   rlOp
}

func (n *rlDateNowCmp) eval(e *rlEnv) bool {
	v, ok := n.path.lookup(e)
	if !ok {
		return false
	}
	t, valid := v.asTime()
	return valid && n.op.test(t.Compare(e.ext.now))
}

// rlNowCmp is `now op 'date'`.
type rlNowCmp struct {
	op   rlOp
	lit  time.Time
	text string
}

func (n *rlNowCmp) eval(e *rlEnv) bool { return n.op.test(e.ext.now.Compare(n.lit)) }

// ---------------------------------------------------------------------------
// Values

type rlLitKind uint8

const (
	rlLitString rlLitKind = iota + 1
	rlLitNumber
	rlLitBool
)

// rlLit is a scalar literal.
type rlLit struct {
	kind rlLitKind
	str  string
	num  rlNumber
	b    bool
}

func (l *rlLit) kindName() string {
	switch l.kind {
	case rlLitString:
		return "string"
	case rlLitNumber:
		return "number"
	default:
		return "bool"
	}
}

// equal reports whether attribute value v equals the literal (same kind).
func (l *rlLit) equal(v any) bool {
	switch l.kind {
	case rlLitString:
		s, ok := rlAsString(v)
		return ok && s == l.str
	case rlLitNumber:
		x, ok := rlToNumber(v)
		return ok && rlCmpNum(x, l.num) == 0
	default:
		b, ok := rlAsBool(v)
		return ok && b == l.b
	}
}

// equalValue is equal for an element of a slice of some other type, read
// without boxing it into an interface (which could allocate).
func (l *rlLit) equalValue(rv reflect.Value) bool {
	if rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return false
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.String:
		return l.kind == rlLitString && rv.String() == l.str
	case reflect.Bool:
		return l.kind == rlLitBool && rv.Bool() == l.b
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return l.kind == rlLitNumber && rlCmpNum(rlExact(rv.Int()), l.num) == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return l.kind == rlLitNumber && rlCmpNum(rlUint(rv.Uint()), l.num) == 0
	case reflect.Float32, reflect.Float64:
		x, ok := rlFloat(rv.Float())
		return ok && l.kind == rlLitNumber && rlCmpNum(x, l.num) == 0
	}
	return false
}

// rlAsString returns v as a string: a string or a value of a named string
// type (but not json.Number, which is a number).
func rlAsString(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case json.Number, bool, int, int64, float64, []any, map[string]any:
		return "", false
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.String {
		return rv.String(), true
	}
	return "", false
}

// rlAsBool returns v as a bool: a bool or a value of a named bool type.
func rlAsBool(v any) (bool, bool) {
	switch b := v.(type) {
	case bool:
		return b, true
	case string, json.Number, int, int64, float64, []any, map[string]any:
		return false, false
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Bool {
		return rv.Bool(), true
	}
	return false, false
}

// rlNumber is a number; exact numbers are integers that fit an int64, held
// in i (and approximately in f). Other numbers are in f only.
type rlNumber struct {
	f     float64
	i     int64
	exact bool
}

func rlExact(i int64) rlNumber { return rlNumber{f: float64(i), i: i, exact: true} }

func rlUint(u uint64) rlNumber {
	if u > math.MaxInt64 {
		return rlNumber{f: float64(u)}
	}
	return rlExact(int64(u))
}

// rlFloat converts f, rejecting NaN.
func rlFloat(f float64) (rlNumber, bool) {
	if f != f {
		return rlNumber{}, false
	}
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
		return rlExact(int64(f)), true
	}
	return rlNumber{f: f}, true
}

// rlCmpNum compares two numbers: exactly when both are int64s, otherwise as
// float64s.
func rlCmpNum(a, b rlNumber) int {
	if a.exact && b.exact {
		return cmp.Compare(a.i, b.i)
	}
	if c := cmp.Compare(a.f, b.f); c != 0 || a.exact == b.exact {
		return c
	}
	// Equal as float64s, but exactly one is an int64: the other one lies
	// outside the int64 range, so the sign of the other one decides.
	if a.exact {
		if b.f > 0 {
			return -1
		}
		return 1
	}
	if a.f > 0 {
		return 1
	}
	return -1
}

// rlParseNumber parses a decimal number (a literal, or a json.Number) without
// allocating for valid input.
func rlParseNumber(s string) (rlNumber, bool) {
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	// Only call ParseInt when it cannot fail: its errors allocate.
	isInt := len(digits) > 0 && (len(digits) < 19 || len(digits) == 19 && digits <= "9223372036854775807")
	for i := 0; isInt && i < len(digits); i++ {
		isInt = rlIsDigit(digits[i])
	}
	if isInt {
		i, err := strconv.ParseInt(s, 10, 64)
		if err == nil {
			return rlExact(i), true
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) || math.IsInf(f, 0) {
		return rlNumber{}, false // syntax error or overflow; underflow rounds to 0
	}
	return rlFloat(f)
}

// rlToNumber returns v as a number: any Go integer or float type (or named
// type of one), or a json.Number.
func rlToNumber(v any) (rlNumber, bool) {
	switch x := v.(type) {
	case int:
		return rlExact(int64(x)), true
	case int64:
		return rlExact(x), true
	case float64:
		return rlFloat(x)
	case int32:
		return rlExact(int64(x)), true
	case int16:
		return rlExact(int64(x)), true
	case int8:
		return rlExact(int64(x)), true
	case uint:
		return rlUint(uint64(x)), true
	case uint64:
		return rlUint(x), true
	case uint32:
		return rlExact(int64(x)), true
	case uint16:
		return rlExact(int64(x)), true
	case uint8:
		return rlExact(int64(x)), true
	case float32:
		return rlFloat(float64(x))
	case json.Number:
		return rlParseNumber(string(x))
	case string, bool, []any, map[string]any:
		return rlNumber{}, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rlExact(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return rlUint(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rlFloat(rv.Float())
	}
	return rlNumber{}, false
}

// rlVersion is a parsed semantic version; pre is the pre-release part
// (without "-"), a substring of the parsed text. Build metadata is dropped.
type rlVersion struct {
	major, minor, patch uint64
	pre                 string
}

// rlParseVersion parses [v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD]
// (SemVer 2.0.0, with an optional "v" and optional minor and patch) without
// allocating.
func rlParseVersion(s string) (rlVersion, bool) {
	var v rlVersion
	if len(s) > 0 && (s[0] == 'v' || s[0] == 'V') {
		s = s[1:]
	}
	i := 0
	for part := 0; part < 3; part++ {
		start := i
		var x uint64
		for i < len(s) && rlIsDigit(s[i]) {
			d := uint64(s[i] - '0')
			if x > (math.MaxUint64-d)/10 {
				return v, false
			}
			x = x*10 + d
			i++
		}
		if i == start || s[start] == '0' && i-start > 1 {
			return v, false
		}
		switch part {
		case 0:
			v.major = x
		case 1:
			v.minor = x
		default:
			v.patch = x
		}
		if part == 2 || i >= len(s) || s[i] != '.' {
			break
		}
		i++
	}
	if i < len(s) && s[i] == '-' {
		start := i + 1
		for i < len(s) && s[i] != '+' {
			i++
		}
		v.pre = s[start:i]
		if !rlValidIdents(v.pre, true) {
			return v, false
		}
	}
	if i < len(s) && s[i] == '+' {
		if !rlValidIdents(s[i+1:], false) {
			return v, false
		}
		i = len(s)
	}
	return v, i == len(s)
}

// rlValidIdents reports whether s is a dot-separated list of non-empty
// [0-9A-Za-z-] identifiers; pre-release numeric identifiers have no leading
// zeros.
func rlValidIdents(s string, pre bool) bool {
	for id := range strings.SplitSeq(s, ".") {
		if id == "" {
			return false
		}
		numeric := true
		for j := 0; j < len(id); j++ {
			c := id[j]
			if !rlIsDigit(c) && c != '-' && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return false
			}
			numeric = numeric && rlIsDigit(c)
		}
		if pre && numeric && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

// rlCmpVersion compares versions by SemVer 2.0.0 precedence.
func rlCmpVersion(a, b rlVersion) int {
	if c := cmp.Compare(a.major, b.major); c != 0 {
		return c
	}
	if c := cmp.Compare(a.minor, b.minor); c != 0 {
		return c
	}
	if c := cmp.Compare(a.patch, b.patch); c != 0 {
		return c
	}
	switch {
	case a.pre == b.pre:
		return 0
	case a.pre == "":
		return 1 // a release follows its pre-releases
	case b.pre == "":
		return -1
	}
	x, y := a.pre, b.pre
	for {
		var xi, yi string
		xi, x, _ = strings.Cut(x, ".")
		yi, y, _ = strings.Cut(y, ".")
		if c := rlCmpIdent(xi, yi); c != 0 {
			return c
		}
		switch {
		case x == "" && y == "":
			return 0
		case x == "":
			return -1 // fewer identifiers sort first
		case y == "":
			return 1
		}
	}
}

// rlCmpIdent compares pre-release identifiers: numeric ones numerically and
// before alphanumeric ones, which compare in ASCII order.
func rlCmpIdent(a, b string) int {
	an, bn := rlAllDigits(a), rlAllDigits(b)
	switch {
	case an && bn:
		if c := cmp.Compare(len(a), len(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	case an:
		return -1
	case bn:
		return 1
	}
	return strings.Compare(a, b)
}

func rlAllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !rlIsDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// rlAsTime returns v as an instant: an RFC 3339 date or date-time string, a
// time.Time, or a number of Unix seconds.
func rlAsTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case string:
		return rlParseDate(x)
	case time.Time:
		return x, true
	case *time.Time:
		if x == nil {
			return time.Time{}, false
		}
		return *x, true
	case bool, []any, map[string]any:
		return time.Time{}, false
	}
	n, ok := rlToNumber(v)
	if !ok {
		if s, isStr := rlAsString(v); isStr {
			return rlParseDate(s)
		}
		return time.Time{}, false
	}
	return rlNumberTime(n)
}

// asTime is rlAsTime for a Value, without boxing it.
func (v Value) asTime() (time.Time, bool) {
	switch x := v.any.(type) {
	case stringptr:
		return rlParseDate(v.str(x))
	case Kind:
		if n, ok := v.asNumber(); ok {
			return rlNumberTime(n)
		}
		return time.Time{}, false
	}
	return rlAsTime(v.any)
}

// rlNumberTime is a number of Unix seconds as an instant.
func rlNumberTime(n rlNumber) (time.Time, bool) {
	if n.exact {
		return time.Unix(n.i, 0), true
	}
	if math.IsInf(n.f, 0) || math.Abs(n.f) > 1<<62 {
		return time.Time{}, false
	}
	sec := math.Floor(n.f)
	return time.Unix(int64(sec), int64((n.f-sec)*1e9)), true
}

// rlDaysIn returns the number of days in month (1-12) of year.
func rlDaysIn(year, month int) int {
	if month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		return 29
	}
	return [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[month-1]
}

// rlParseDate parses YYYY-MM-DD (midnight UTC) or an RFC 3339 date-time
// (YYYY-MM-DD[Tt ]HH:MM:SS[.frac](Z|z|±HH:MM)) without allocating.
func rlParseDate(s string) (time.Time, bool) {
	num := func(s string) (int, bool) {
		n := 0
		for i := 0; i < len(s); i++ {
			if !rlIsDigit(s[i]) {
				return 0, false
			}
			n = n*10 + int(s[i]-'0')
		}
		return n, true
	}
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	year, ok1 := num(s[0:4])
	month, ok2 := num(s[5:7])
	day, ok3 := num(s[8:10])
	if !ok1 || !ok2 || !ok3 || month < 1 || month > 12 || day < 1 || day > rlDaysIn(year, month) {
		return time.Time{}, false
	}
	if len(s) == 10 {
		return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC), true
	}
	s = s[10:]
	if len(s) < 10 || s[0] != 'T' && s[0] != 't' && s[0] != ' ' || s[3] != ':' || s[6] != ':' {
		return time.Time{}, false
	}
	hour, ok1 := num(s[1:3])
	minute, ok2 := num(s[4:6])
	sec, ok3 := num(s[7:9])
	if !ok1 || !ok2 || !ok3 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	s = s[9:]
	nsec := 0
	if s[0] == '.' {
		i := 1
		for i < len(s) && rlIsDigit(s[i]) {
			if i <= 9 {
				nsec = nsec*10 + int(s[i]-'0')
			}
			i++
		}
		if i == 1 {
			return time.Time{}, false
		}
		for k := i; k <= 9; k++ {
			nsec *= 10
		}
		s = s[i:]
	}
	offset := 0
	switch {
	case s == "Z" || s == "z":
	case len(s) == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':':
		oh, ok1 := num(s[1:3])
		om, ok2 := num(s[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = oh*3600 + om*60
		if s[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}
