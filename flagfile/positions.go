package flagfile

import (
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/fieldpath"
	"go.yaml.in/yaml/v3"
)

// filePos holds the source positions of one file: parallel to its Flags
// and Segments, plus the file-level settings.
type filePos struct {
	flags    []*objPos
	segments []*objPos
	config   *objPos
}

// objPos maps the field paths of one flag, segment or file-level config
// ("state", "rules[0].when", "variants[1].payload.price") to positions.
type objPos struct {
	at     evaluate.Position
	fields map[string]evaluate.Position
	texts  map[string]*scalarText // rule text of "when" fields, for offsets
	rules  []string               // rule ids by index
}

func newObjPos(at evaluate.Position) *objPos {
	return &objPos{at: at, fields: make(map[string]evaluate.Position)}
}

// lookup returns the position of path, or of its closest recorded parent.
func (op *objPos) lookup(p string) evaluate.Position {
	for p != "" {
		if pos, ok := op.fields[p]; ok {
			return pos
		}
		p = parentPath(p)
	}
	return op.at
}

// ruleIndex resolves a rule id ("#3" for a rule without one). For a
// duplicate id it returns the second rule with that id.
func (op *objPos) ruleIndex(id string, dup bool) int {
	if strings.HasPrefix(id, "#") {
		if n, err := strconv.Atoi(id[1:]); err == nil && n >= 1 && n <= len(op.rules) {
			return n - 1
		}
	}
	first := -1
	for i, r := range op.rules {
		if r != id {
			continue
		}
		if !dup {
			return i
		}
		if first >= 0 {
			return i
		}
		first = i
	}
	return first
}

// parentPath strips the last ".key" or "[n]" of a field path.
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// locator gives findings on a Config built from files their positions.
type locator struct {
	flags    map[string]*objPos
	segments map[string]*objPos
	config   []*objPos // file-level settings of the environment's files
}

// Locate implements evaluate.Locator. A finding that already has a file keeps it.
// A finding on a rule's "when" with a Pos relative to the rule text (line
// and column in the condition) gets the file position of that character.
func (l *locator) Locate(f *evaluate.Finding) {
	if l == nil || f.Pos.File != "" {
		return
	}
	var op *objPos
	switch {
	case f.Flag != "":
		op = l.flags[f.Flag]
	case f.Segment != "":
		op = l.segments[f.Segment]
	default:
		for _, c := range l.config {
			if p, ok := c.fields[f.Field]; ok {
				f.Pos = p
				return
			}
		}
		return
	}
	if op == nil {
		return
	}
	p := f.Field
	if f.Flag != "" {
		if f.Rule != "" {
			if i := op.ruleIndex(f.Rule, f.Code == "duplicate-rule-id"); i >= 0 {
				p = fieldpath.Join(fieldpath.Index("rules", i), f.Field)
			}
		} else if isServeField(f.Field) {
			p = fieldpath.Join("default", f.Field)
		}
	}
	if rel := f.Pos; rel.Line > 0 {
		if t := op.texts[p]; t != nil {
			f.Pos = t.position(rel.Line, rel.Col)
			return
		}
	}
	f.Pos = op.lookup(p)
}

// isServeField reports whether a flag-level finding field belongs to the
// default serve (Compile reports the default's problems without a rule).
func isServeField(field string) bool {
	head := field
	if i := strings.IndexAny(head, ".["); i >= 0 {
		head = head[:i]
	}
	switch head {
	case "variant", "percentage", "rollout", "progressive", "seed":
		return true
	}
	return false
}

// Positions inside a scalar: how each byte of a scalar's value maps back to
// the source, for errors inside rule conditions.

// scalarText maps the bytes of a scalar's value to source positions.
type scalarText struct {
	start evaluate.Position // the scalar itself: the fallback
	value string
	lines []int32 // per byte of value
	cols  []int32
	valid int // leading bytes of value whose positions are known
}

// position returns the source position of the character at line:col of
// the value (both 1-based; col counts characters). Where the mapping is
// unknown (an unusual block scalar) it returns the scalar's position.
func (t *scalarText) position(line, col int) evaluate.Position {
	off, ok := textOffset(t.value, line, col)
	if !ok {
		return t.start
	}
	switch {
	case off < t.valid:
		return evaluate.Position{File: t.start.File, Line: int(t.lines[off]), Col: int(t.cols[off])}
	case off >= len(t.value) && t.valid == len(t.value) && t.valid > 0:
		last := t.valid - 1
		return evaluate.Position{File: t.start.File, Line: int(t.lines[last]), Col: int(t.cols[last]) + 1 + (off - len(t.value))}
	}
	return t.start
}

// textOffset converts a 1-based line and character column in s to a
// byte offset. A column past the end of its line gives the offsets after
// it (the end of the text is len(s)).
func textOffset(s string, line, col int) (int, bool) {
	if line < 1 || col < 1 {
		return 0, false
	}
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(s[off:], '\n')
		if i < 0 {
			return 0, false
		}
		off += i + 1
	}
	for c := 1; c < col; c++ {
		if off >= len(s) || s[off] == '\n' {
			off += col - c
			break
		}
		_, w := utf8.DecodeRuneInString(s[off:])
		off += w
	}
	return off, true
}

// lineStarts returns the byte offset of each line of src. Lines end as
// YAML ends them: at "\n", "\r\n" or a lone "\r".
func lineStarts(src []byte) []int {
	starts := []int{0}
	for i, c := range src {
		if c == '\n' || c == '\r' && (i+1 == len(src) || src[i+1] != '\n') {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// mapScalar maps the value of scalar n to source positions, byte by
// byte. The value's characters appear in the source in order; between them
// the source only adds what YAML's syntax takes away: the opening quote, a
// doubled single quote, escapes, and line breaks and indentation that fold
// into a space or a newline (for a block scalar, also its header line). So
// one walk over both suffices: a value character matches the same source
// character (after any indentation and folded line breaks), an escaped one
// its escape sequence, and a white-space one (folding) any source white
// space. The walk stops at the first character it cannot explain; only
// that verified prefix is trusted.
func mapScalar(file string, src []byte, lineStart []int, n *yaml.Node) *scalarText {
	t := &scalarText{start: evaluate.Position{File: file, Line: n.Line, Col: n.Column}, value: n.Value}
	if n.Line < 1 || n.Line > len(lineStart) {
		return t
	}
	i, line, col := lineStart[n.Line-1], n.Line, 1
	next := func() { // past the source character at i
		if src[i] == '\n' || src[i] == '\r' && (i+1 == len(src) || src[i+1] != '\n') {
			line, col = line+1, 1
			i++
			return
		}
		_, w := utf8.DecodeRune(src[i:])
		i += w
		col++
	}
	for col < n.Column && i < len(src) && src[i] != '\n' {
		next()
	}
	var quote byte
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		for i < len(src) && src[i] != '\n' {
			next() // the header line: "|", ">-", "|2 # comment"…
		}
	case n.Style&yaml.DoubleQuotedStyle != 0:
		quote = '"'
	case n.Style&yaml.SingleQuotedStyle != 0:
		quote = '\''
	}
	if quote != 0 {
		if i >= len(src) || src[i] != quote {
			return t
		}
		next()
	}
	v := n.Value
	t.lines, t.cols = make([]int32, 0, len(v)), make([]int32, 0, len(v))
	emit := func(k int) {
		for range k {
			t.lines = append(t.lines, int32(line))
			t.cols = append(t.cols, int32(col))
		}
	}
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
walk:
	for j := 0; j < len(v) && i < len(src); {
		c := src[i]
		escapedBreak := quote == '"' && c == '\\' && i+1 < len(src) && (src[i+1] == '\n' || src[i+1] == '\r')
		switch {
		case quote == '"' && c == '\\' && !escapedBreak:
			b, w, ok := unescape(src[i:])
			if !ok || !strings.HasPrefix(v[j:], string(b)) {
				break walk
			}
			emit(len(b))
			j += len(b)
			i, col = i+w, col+w // escapes are ASCII
		case isSpace(v[j]):
			// Folding turns source white space into the value's.
			if !isSpace(c) {
				break walk
			}
			emit(1)
			j++
			next()
		case isSpace(c) || escapedBreak:
			next() // indentation, a folded or an escaped line break
		case quote == '\'' && v[j] == '\'':
			if i+1 >= len(src) || c != '\'' || src[i+1] != '\'' {
				break walk
			}
			emit(1)
			j++
			i, col = i+2, col+2
		default:
			_, w := utf8.DecodeRuneInString(v[j:])
			if i+w > len(src) || string(src[i:i+w]) != v[j:j+w] {
				break walk
			}
			emit(w)
			j += w
			next()
		}
	}
	t.valid = len(t.lines)
	return t
}

// unescape decodes the double-quoted escape at the start of b, returning
// the bytes it stands for and its length in b.
func unescape(b []byte) ([]byte, int, bool) {
	if len(b) < 2 {
		return nil, 0, false
	}
	if i := strings.IndexByte("0abt\tnvfre \"/\\NL_P", b[1]); i >= 0 {
		s := [...]string{"\x00", "\a", "\b", "\t", "\t", "\n", "\v", "\f", "\r", "\x1b", " ", "\"", "/", "\\", "\u0085", "\u2028", "\u00a0", "\u2029"}[i]
		return []byte(s), 2, true
	}
	digits := map[byte]int{'x': 2, 'u': 4, 'U': 8}[b[1]]
	if digits == 0 || len(b) < 2+digits {
		return nil, 0, false
	}
	v, err := strconv.ParseUint(string(b[2:2+digits]), 16, 32)
	if err != nil {
		return nil, 0, false
	}
	if b[1] == 'x' {
		return []byte{byte(v)}, 2 + digits, true
	}
	return utf8.AppendRune(nil, rune(v)), 2 + digits, true
}

// stopped is where the YAML library stopped on an error: line and col
// (1-based, col in characters, as yaml.Node counts them) and, when the
// library names one, the construct it was reading ("while parsing a flow
// sequence") with where that starts.
type stopped struct {
	line, col       int
	context         string
	ctxLine, ctxCol int
}

// The library's error kinds (yaml_error_type_t), in its order.
const (
	yamlNoError     = 0 // the error came from the composer (an unknown anchor)
	yamlReaderError = 2 // invalid encoding: the position is a byte offset
)

// stopPoint reads where dec stopped from the library's parser state: the
// problem mark of a scanner or parser error, the byte offset of a reader
// (encoding) error, or the event being composed for an error of the
// composer such as an unknown anchor. The library keeps these marks (each
// error of its C ancestor libyaml has one) but its error value carries only
// a line, so they are read by reflection; ok is false, and the caller
// falls back to the line of the error text, if that state is not there
// (the tests pin that it is, for the library version in go.mod). Reading
// unexported fields through reflect never writes them and cannot panic
// here: every step checks the kind it expects.
func stopPoint(dec *yaml.Decoder, src []byte) (sp stopped, ok bool) {
	if dec == nil {
		return sp, false
	}
	p := fieldOf(reflect.ValueOf(dec), "parser")
	lib := fieldOf(p, "parser")
	kind, ok := intField(lib, "error")
	if !ok {
		return sp, false
	}
	switch kind {
	case yamlReaderError:
		off, ok := intField(lib, "problem_offset")
		if !ok || off < 0 || off > len(src) {
			return sp, false
		}
		starts := lineStarts(src)
		i := sort.Search(len(starts), func(i int) bool { return starts[i] > off }) - 1
		return stopped{line: i + 1, col: utf8.RuneCount(src[starts[i]:off]) + 1}, true
	case yamlNoError:
		sp.line, sp.col, ok = libMark(fieldOf(fieldOf(p, "event"), "start_mark"))
		return sp, ok
	}
	if sp.line, sp.col, ok = libMark(fieldOf(lib, "problem_mark")); !ok {
		return sp, false
	}
	if c := fieldOf(lib, "context"); c.IsValid() && c.Kind() == reflect.String && c.String() != "" {
		if sp.ctxLine, sp.ctxCol, ok = libMark(fieldOf(lib, "context_mark")); ok {
			sp.context = c.String()
		}
	}
	return sp, true
}

// libMark converts a library mark (0-based line and column) to 1-based ones.
func libMark(m reflect.Value) (line, col int, ok bool) {
	l, ok1 := intField(m, "line")
	c, ok2 := intField(m, "column")
	if !ok1 || !ok2 || l < 0 || c < 0 {
		return 0, 0, false
	}
	return l + 1, c + 1, true
}

// fieldOf returns the field name of the struct v (or of the struct v
// points to), or the zero Value if v is not one or has no such field.
func fieldOf(v reflect.Value, name string) reflect.Value {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return v.FieldByName(name)
}

// intField returns the integer field name of the struct v.
func intField(v reflect.Value, name string) (int, bool) {
	f := fieldOf(v, name)
	if !f.IsValid() || !f.CanInt() {
		return 0, false
	}
	return int(f.Int()), true
}
