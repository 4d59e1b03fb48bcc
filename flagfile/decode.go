package flagfile

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/fieldpath"
	"github.com/flagwire/flagwire/internal/suggest"
	"go.yaml.in/yaml/v3"
)

// decoder walks yaml.Nodes into the model, recording positions.
type decoder struct {
	file      string
	src       []byte
	lineStart []int // byte offset of each line, computed on first use
	errs      []evaluate.Finding
	stop      bool
	depth     int
	visits    int
	maxVisits int
	obj       *objPos // positions of the flag or segment being decoded
	flagKey   string
	segKey    string
	marks     int
	aliased   int // > 0 inside a free-form value reached through an alias
	structs   map[reflect.Type]*structInfo
}

// maxYAMLMarks bounds the positions recorded per file (payload paths can be
// many); past it, findings fall back to the enclosing field's position.
const maxYAMLMarks = 1 << 20

func (d *decoder) loadError() *evaluate.LoadError {
	evaluate.SortFindings(d.errs)
	return &evaluate.LoadError{Findings: d.errs}
}

func (d *decoder) posOf(n *yaml.Node) evaluate.Position {
	return evaluate.Position{File: d.file, Line: n.Line, Col: n.Column}
}

func (d *decoder) fail(n *yaml.Node, code, field, format string, args ...any) {
	if len(d.errs) >= evaluate.MaxLoadFindings {
		d.stop = true
		return
	}
	f := evaluate.Finding{Severity: evaluate.SeverityError, Code: code, Flag: d.flagKey, Segment: d.segKey, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		f.Pos = d.posOf(n)
	} else {
		f.Pos = evaluate.Position{File: d.file}
	}
	d.errs = append(d.errs, f)
	if len(d.errs) >= evaluate.MaxLoadFindings {
		d.stop = true
	}
}

// syntaxError converts an error of the YAML library ("yaml: line 3: …")
// into a finding at the place where the library stopped (see stopPoint):
// the library's own message reports a line only, and for a parse error the
// line of the enclosing collection rather than the problem's. The message
// keeps the library's words, with the collection or scalar that was being
// read and where it starts.
func (d *decoder) syntaxError(err error, dec *yaml.Decoder) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	pos := evaluate.Position{File: d.file}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				pos.Line = n
				msg = rest[i+2:]
			}
		}
	}
	if sp, ok := stopPoint(dec, d.src); ok {
		pos.Line, pos.Col = sp.line, sp.col
		if sp.context != "" && (sp.ctxLine != sp.line || sp.ctxCol != sp.col) {
			msg += fmt.Sprintf(" (%s that starts at %d:%d)", sp.context, sp.ctxLine, sp.ctxCol)
		}
	}
	d.errs = append(d.errs, evaluate.Finding{Severity: evaluate.SeverityError, Code: "yaml-syntax", Pos: pos, Msg: "invalid YAML: " + msg})
}

// node resolves aliases and charges the visit budget. It returns nil when
// the walk must not go on.
func (d *decoder) node(n *yaml.Node) *yaml.Node {
	if d.stop || n == nil {
		return nil
	}
	d.visits++
	if d.visits > d.maxVisits {
		d.fail(n, "limit", "", "aliases expand to more than %d nodes", MaxYAMLAliasNodes)
		d.stop = true
		return nil
	}
	for i := 0; n.Kind == yaml.AliasNode; i++ {
		if n.Alias == nil || i > 100 {
			d.fail(n, "yaml-syntax", "", "unresolvable alias *%s", n.Value)
			return nil
		}
		n = n.Alias
	}
	return n
}

func (d *decoder) mark(p string, n *yaml.Node) {
	if d.obj == nil || d.marks >= maxYAMLMarks || d.aliased > 0 {
		return
	}
	d.marks++
	d.obj.fields[p] = d.posOf(n)
}

// enter increases the nesting depth; the caller calls leave when enter
// returned true.
func (d *decoder) enter(n *yaml.Node, p string) bool {
	if d.depth >= evaluate.MaxNestingDepth {
		if len(p) > 60 {
			p = p[:57] + "..."
		}
		d.fail(n, "limit", p, "nesting deeper than %d levels (or an alias that contains itself)", evaluate.MaxNestingDepth)
		return false
	}
	d.depth++
	return true
}

func (d *decoder) leave() { d.depth-- }

func countNodes(n *yaml.Node) int {
	c := 1
	for _, k := range n.Content {
		c += countNodes(k)
	}
	return c
}

// describe says what a node is, for type errors.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "the boolean " + v
		case "!!int", "!!float":
			return "the number " + v
		case "!!str":
			return strconv.Quote(v)
		default:
			return n.ShortTag() + " " + strconv.Quote(v)
		}
	}
	return "an alias"
}

func (d *decoder) typeError(raw *yaml.Node, p, want string) {
	n := raw
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	d.fail(raw, "type", p, "expected %s, got %s", want, describe(n))
}

type entry struct {
	key    string
	k, val *yaml.Node
}

// mapping returns the entries of the mapping n (after merge keys), checking
// duplicate and, when known is not nil, unknown keys. ok is false for null
// (no error) and for a non-mapping (an error); when ok the caller must call
// d.leave.
func (d *decoder) mapping(raw *yaml.Node, p string, known []string) (entries []entry, ok bool) {
	n, ok := d.open(raw, p, yaml.MappingNode, "a mapping")
	if !ok {
		return nil, false
	}
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	entries = d.collect(n, p, seen, entries, true)
	if known != nil {
		for _, e := range entries {
			if !slices.Contains(known, e.key) {
				d.fail(e.k, "unknown-field", p, "unknown field %q%s", e.key, suggest.Field(e.key, known))
			}
		}
	}
	return entries, true
}

// collect appends the entries of mapping n, explicit keys first, then the
// keys of merged mappings ("<<: *base") that are not already present.
func (d *decoder) collect(n *yaml.Node, p string, seen map[string]*yaml.Node, out []entry, explicit bool) []entry {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kn := d.node(k)
		if kn == nil {
			return out
		}
		if kn.Kind != yaml.ScalarNode {
			d.fail(k, "type", p, "mapping keys must be strings, got %s", describe(kn))
			continue
		}
		if kn.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if first, dup := seen[kn.Value]; dup {
			if explicit {
				d.fail(k, "duplicate-key", p, "duplicate key %q (first at line %d)", kn.Value, first.Line)
			}
			continue
		}
		seen[kn.Value] = k
		out = append(out, entry{key: kn.Value, k: k, val: v})
	}
	for _, m := range merges {
		mn := d.node(m)
		if mn == nil {
			return out
		}
		var srcs []*yaml.Node
		switch mn.Kind {
		case yaml.MappingNode:
			srcs = []*yaml.Node{mn}
		case yaml.SequenceNode:
			for _, c := range mn.Content {
				if cn := d.node(c); cn != nil {
					srcs = append(srcs, cn)
				}
			}
		default:
			srcs = []*yaml.Node{mn}
		}
		for _, s := range srcs {
			if s.Kind != yaml.MappingNode {
				d.fail(m, "type", p, "a merge key (<<) needs a mapping or a list of mappings, got %s", describe(s))
				continue
			}
			if !d.enter(s, p) {
				continue
			}
			out = d.collect(s, p, seen, out, false)
			d.leave()
		}
	}
	return out
}

// sequence returns the items of the list n. ok is false for null and for a
// non-list (an error); when ok the caller must call d.leave.
func (d *decoder) sequence(raw *yaml.Node, p string) (items []*yaml.Node, ok bool) {
	n, ok := d.open(raw, p, yaml.SequenceNode, "a list")
	if !ok {
		return nil, false
	}
	return n.Content, true
}

// open resolves raw (aliases), records its position for p, and enters it
// when it is a node of kind; ok is false for null (no error) and for a
// node of another kind (an error saying it should be what). When ok the
// caller must call d.leave.
func (d *decoder) open(raw *yaml.Node, p string, kind yaml.Kind, what string) (n *yaml.Node, ok bool) {
	n = d.node(raw)
	if n == nil {
		return nil, false
	}
	d.mark(p, raw)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, false
	}
	if n.Kind != kind {
		d.typeError(raw, p, what)
		return nil, false
	}
	if !d.enter(n, p) {
		return nil, false
	}
	return n, true
}

// scalar resolves a scalar node; it reports a type error for anything else.
func (d *decoder) scalar(raw *yaml.Node, p, want string, mark bool) *yaml.Node {
	n := d.node(raw)
	if n == nil {
		return nil
	}
	if mark {
		d.mark(p, raw)
	}
	if n.Kind != yaml.ScalarNode {
		d.typeError(raw, p, want)
		return nil
	}
	return n
}

// str decodes a string field. Numbers and timestamps keep their source
// text; null is ""; a boolean is an error (quote it).
func (d *decoder) str(raw *yaml.Node, p string) string {
	return d.strMark(raw, p, true)
}

func (d *decoder) strMark(raw *yaml.Node, p string, mark bool) string {
	n := d.scalar(raw, p, "a string", mark)
	if n == nil {
		return ""
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!timestamp":
		return n.Value
	case "!!null":
		return ""
	case "!!bool":
		d.fail(raw, "type", p, "expected a string, got the boolean %s (quote it: %q)", n.Value, n.Value)
	default:
		d.typeError(raw, p, "a string")
	}
	return ""
}

func (d *decoder) boolean(raw *yaml.Node, p string) bool {
	return typedScalar[bool](d, raw, p, "true or false", "!!bool")
}

func (d *decoder) float(raw *yaml.Node, p string) float64 {
	return typedScalar[float64](d, raw, p, "a number", "!!int", "!!float")
}

// typedScalar decodes the scalar raw, of one of the tags, into a T: null is
// T's zero value, and anything else a type error that says want.
func typedScalar[T any](d *decoder, raw *yaml.Node, p, want string, tags ...string) T {
	var zero T
	n := d.scalar(raw, p, want, true)
	if n == nil || n.ShortTag() == "!!null" {
		return zero
	}
	if slices.Contains(tags, n.ShortTag()) {
		if v, ok := decodeAs[T](n); ok {
			return v
		}
	}
	d.typeError(raw, p, want)
	return zero
}

// decodeAs decodes the scalar n into a T.
func decodeAs[T any](n *yaml.Node) (T, bool) {
	var v T
	err := n.Decode(&v)
	return v, err == nil
}

// isNull reports whether raw is (an alias of) null.
func (d *decoder) isNull(raw *yaml.Node) bool {
	for i := 0; raw != nil && raw.Kind == yaml.AliasNode && i < 100; i++ {
		raw = raw.Alias
	}
	return raw != nil && raw.Kind == yaml.ScalarNode && raw.ShortTag() == "!!null"
}

func (d *decoder) integer(raw *yaml.Node, p string) int64 {
	return typedScalar[int64](d, raw, p, "an integer", "!!int")
}

// timeValue decodes a timestamp: a YAML timestamp, or an RFC 3339 string
// or a YYYY-MM-DD date (midnight UTC).
func (d *decoder) timeValue(raw *yaml.Node, p string) time.Time {
	n := d.scalar(raw, p, "a time (RFC 3339)", true)
	if n == nil {
		return time.Time{}
	}
	switch n.ShortTag() {
	case "!!null":
		return time.Time{}
	case "!!timestamp", "!!str":
		if t, ok := parseTime(n.Value); ok {
			return t
		}
		var t time.Time
		if n.ShortTag() == "!!timestamp" && n.Decode(&t) == nil {
			return t
		}
	}
	d.typeError(raw, p, "a time (RFC 3339, such as 2026-06-25T10:00:00Z)")
	return time.Time{}
}

func parseTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// strList decodes a list of strings. Element positions are recorded only
// when markItems (not for segment ids, which can be millions).
func (d *decoder) strList(raw *yaml.Node, p string, markItems bool) []string {
	items, ok := d.sequence(raw, p)
	if !ok {
		return nil
	}
	defer d.leave()
	out := make([]string, 0, len(items))
	for i, it := range items {
		if d.stop {
			break
		}
		out = append(out, d.strMark(it, fieldpath.Index(p, i), markItems))
	}
	return out
}

// value decodes a free-form value (variant values and references,
// payloads): null, bool, int, float, string (timestamps keep their text),
// []any and map[string]any (keys are the keys' text).
func (d *decoder) value(raw *yaml.Node, p string) any {
	n := d.node(raw)
	if n == nil {
		return nil
	}
	d.mark(p, raw)
	if raw.Kind == yaml.AliasNode {
		// Positions inside an aliased value are those of the anchor:
		// record none (an alias bomb would otherwise record millions).
		d.aliased++
		defer func() { d.aliased-- }()
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return d.scalarValue(raw, n, p)
	case yaml.SequenceNode:
		if !d.enter(n, p) {
			return nil
		}
		defer d.leave()
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			if d.stop {
				break
			}
			out = append(out, d.value(c, fieldpath.Index(p, i)))
		}
		return out
	case yaml.MappingNode:
		entries, ok := d.mapping(raw, p, nil)
		if !ok {
			return nil
		}
		defer d.leave()
		m := make(map[string]any, len(entries))
		for _, e := range entries {
			if d.stop {
				break
			}
			m[e.key] = d.value(e.val, fieldpath.Join(p, e.key))
		}
		return m
	}
	return nil
}

func (d *decoder) scalarValue(raw, n *yaml.Node, p string) any {
	var v any
	ok := false
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!str", "!!timestamp":
		return n.Value
	case "!!bool":
		v, ok = decodeAs[bool](n)
	case "!!int":
		if v, ok = decodeAs[int64](n); !ok {
			v, ok = decodeAs[float64](n)
		}
	case "!!float":
		v, ok = decodeAs[float64](n)
	case "!!binary":
		v, ok = decodeAs[string](n)
	}
	if !ok {
		d.fail(raw, "type", p, "unsupported value %s", describe(n))
		return nil
	}
	return v
}

// peek returns the text of a scalar key's value in mapping n, without
// decoding (for naming the flag in findings before its fields are read).
func peek(n *yaml.Node, key string) string {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Kind == yaml.ScalarNode && n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}
