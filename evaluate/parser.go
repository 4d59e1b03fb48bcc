package evaluate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The parser of the rule language: a recursive descent over the lexer's
// tokens that builds the compiled node tree (see nodes.go) and checks the
// limits as it goes.

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
	return p.parseChain("or", rlTokOrOr, p.parseAnd, func(kids []rlNode) rlNode { return &rlOr{kids: kids} })
}

func (p *ruleParser) parseAnd() (rlNode, *SyntaxError) {
	return p.parseChain("and", rlTokAndAnd, p.parseNot, func(kids []rlNode) rlNode { return &rlAnd{kids: kids} })
}

// parseChain parses operand { op operand }, where op is the keyword kw or
// the symbol sym: the lone operand, or join of all of them.
func (p *ruleParser) parseChain(kw string, sym rlTokKind, operand func() (rlNode, *SyntaxError), join func([]rlNode) rlNode) (rlNode, *SyntaxError) {
	n, err := operand()
	if err != nil {
		return nil, err
	}
	var kids []rlNode
	for p.isKeyword(kw) || p.tok.kind == sym {
		if err := p.count(&p.tok); err != nil {
			return nil, err
		}
		p.advance()
		k, err := operand()
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
	}
	if kids == nil {
		return n, nil
	}
	return join(append([]rlNode{n}, kids...)), nil
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
		path, op, err := p.parseCompareCall("semver", "semver(...)")
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
		return &rlSemverCmp{path: path, op: op, lit: v, text: lt.str}, nil
	default: // "date"
		path, op, err := p.parseCompareCall("date", "date(...)")
		if err != nil {
			return nil, err
		}
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

// parseCompareCall parses the rest of name(path) and the comparison
// operator after it (call is "name(...)", for messages), as semver and date
// take them, and records the reference with the kind name.
func (p *ruleParser) parseCompareCall(name, call string) (rlPath, rlOp, *SyntaxError) {
	path, pt, err := p.parsePathArg(name)
	if err != nil {
		return rlPath{}, 0, err
	}
	op, err := p.expectCompareOp(call)
	if err != nil {
		return rlPath{}, 0, err
	}
	p.addRef(&pt, name)
	return path, op, nil
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
