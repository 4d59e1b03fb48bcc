package evaluate

import (
	"unicode/utf8"
)

// The lexer of the rule language: it turns rule source into tokens, decoding
// strings and numbers as it goes.

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

// rlPunct1 gives the kind of each single-character token by its character,
// and rlPunct2 the two-character operators by their first character
// (rlTokEOF: none); "<=" is tried before "<".
var (
	rlPunct1 = [128]rlTokKind{
		'(': rlTokLParen, ')': rlTokRParen, '[': rlTokLBrack, ']': rlTokRBrack, ',': rlTokComma,
		'<': rlTokLt, '>': rlTokGt, '!': rlTokBang,
	}
	rlPunct2 = [128]struct {
		second byte
		kind   rlTokKind
	}{
		'=': {'=', rlTokEq}, '!': {'=', rlTokNe}, '<': {'=', rlTokLe}, '>': {'=', rlTokGe},
		'&': {'&', rlTokAndAnd}, '|': {'|', rlTokOrOr},
	}
)

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
	if c < 128 {
		if op := rlPunct2[c]; op.kind != rlTokEOF && start+1 < len(src) && src[start+1] == op.second {
			t.kind, t.text = op.kind, src[start:start+2]
			lx.skip(2)
			return t
		}
		if kind := rlPunct1[c]; kind != rlTokEOF {
			t.kind, t.text = kind, src[start:start+1]
			lx.skip(1)
			return t
		}
	}
	t.text = src[start : start+1]
	switch c {
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
