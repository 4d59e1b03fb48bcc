package flagfile

// The YAML encoding of flags and segments (LoadYAML, LoadDir, MergeFiles,
// MarshalYAML). Every error carries a file:line:col position, and the
// Configs built from files carry a Locator that gives Compile and Lint
// findings their source positions.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/fieldpath"
	"github.com/flagwire/flagwire/internal/suggest"
	"go.yaml.in/yaml/v3"
)

// Limits applied to flags-as-code files. Input beyond them is rejected
// with a *evaluate.LoadError, never with unbounded memory or time; nesting
// is bounded by evaluate.MaxNestingDepth and the findings of one error by
// evaluate.MaxLoadFindings.
const (
	// MaxYAMLFileSize is the largest flags-as-code file LoadYAML and
	// LoadDir accept: 32 MiB.
	MaxYAMLFileSize = 32 << 20
	// MaxYAMLFiles is the most flags-as-code files LoadDir reads.
	MaxYAMLFiles = 100000
	// MaxYAMLAliasNodes bounds the YAML nodes visited through aliases in
	// one document, beyond the document's own nodes ("billion laughs"
	// protection).
	MaxYAMLAliasNodes = 100000
)

// File is one flags-as-code file, as LoadYAML parsed it: the file-level
// settings of its config documents, and its flags and segments from both
// kinds of document (flag documents, which have a flagKey, and the flags
// and segments lists of config documents). The package documentation
// describes the format, every field with an example.
type File struct {
	// Name is the file name given to LoadYAML, used in positions.
	Name string
	// Environment, Salt, Version, RequireChangeReason and Attributes are
	// the file-level settings of config documents (see Config).
	Environment         string
	Salt                string
	Version             int64
	RequireChangeReason bool
	Attributes          map[string]string
	// Flags and Segments are in file order.
	Flags    []evaluate.Flag
	Segments []evaluate.Segment

	pos *ymlFilePos
}

// ymlFilePos holds the source positions of one file: parallel to its Flags
// and Segments, plus the file-level settings.
type ymlFilePos struct {
	flags    []*ymlObjPos
	segments []*ymlObjPos
	config   *ymlObjPos
}

// ymlObjPos maps the field paths of one flag, segment or file-level config
// ("state", "rules[0].when", "variants[1].payload.price") to positions.
type ymlObjPos struct {
	at     evaluate.Position
	fields map[string]evaluate.Position
	texts  map[string]*ymlText // rule text of "when" fields, for offsets
	rules  []string            // rule ids by index
}

func newYmlObjPos(at evaluate.Position) *ymlObjPos {
	return &ymlObjPos{at: at, fields: make(map[string]evaluate.Position)}
}

// lookup returns the position of path, or of its closest recorded parent.
func (op *ymlObjPos) lookup(p string) evaluate.Position {
	for p != "" {
		if pos, ok := op.fields[p]; ok {
			return pos
		}
		p = ymlParentPath(p)
	}
	return op.at
}

// ruleIndex resolves a rule id ("#3" for a rule without one). For a
// duplicate id it returns the second rule with that id.
func (op *ymlObjPos) ruleIndex(id string, dup bool) int {
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

// ymlParentPath strips the last ".key" or "[n]" of a field path.
func ymlParentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// ymlLocator gives findings on a Config built from files their positions.
type ymlLocator struct {
	flags    map[string]*ymlObjPos
	segments map[string]*ymlObjPos
	config   []*ymlObjPos // file-level settings of the environment's files
}

// Locate implements evaluate.Locator. A finding that already has a file keeps it.
// A finding on a rule's "when" with a Pos relative to the rule text (line
// and column in the condition) gets the file position of that character.
func (l *ymlLocator) Locate(f *evaluate.Finding) {
	if l == nil || f.Pos.File != "" {
		return
	}
	var op *ymlObjPos
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
		} else if ymlIsServeField(f.Field) {
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

// ymlIsServeField reports whether a flag-level finding field belongs to the
// default serve (Compile reports the default's problems without a rule).
func ymlIsServeField(field string) bool {
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

// LoadYAML parses one flags-as-code file (see File for the format). name is
// used in positions only. Every problem is reported in a *[evaluate.LoadError] with
// file:line:col positions; the file is not checked against other files or
// compiled (see MergeFiles and LoadDir). Files larger than MaxYAMLFileSize
// are rejected. An empty file yields an empty File.
func LoadYAML(name string, data []byte) (*File, error) {
	if len(data) > MaxYAMLFileSize {
		return nil, &evaluate.LoadError{Findings: []evaluate.Finding{{Severity: evaluate.SeverityError, Code: "limit", Pos: evaluate.Position{File: name}, Msg: fmt.Sprintf("file of %d bytes exceeds the limit of %d", len(data), MaxYAMLFileSize)}}}
	}
	d := &ymlDecoder{file: name, src: data}
	out := &File{Name: name, pos: &ymlFilePos{config: newYmlObjPos(evaluate.Position{File: name, Line: 1, Col: 1})}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for !d.stop {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			d.syntaxError(err)
			break
		}
		d.document(&doc, out)
	}
	if len(d.errs) > 0 {
		return nil, d.loadError()
	}
	return out, nil
}

// ymlDecoder walks yaml.Nodes into the model, recording positions.
type ymlDecoder struct {
	file      string
	src       []byte
	lineStart []int // byte offset of each line, computed on first use
	errs      []evaluate.Finding
	stop      bool
	depth     int
	visits    int
	maxVisits int
	obj       *ymlObjPos // positions of the flag or segment being decoded
	flagKey   string
	segKey    string
	marks     int
	aliased   int // > 0 inside a free-form value reached through an alias
	structs   map[reflect.Type]*ymlStruct
}

// maxYAMLMarks bounds the positions recorded per file (payload paths can be
// many); past it, findings fall back to the enclosing field's position.
const maxYAMLMarks = 1 << 20

func (d *ymlDecoder) loadError() *evaluate.LoadError {
	evaluate.SortFindings(d.errs)
	return &evaluate.LoadError{Findings: d.errs}
}

func (d *ymlDecoder) posOf(n *yaml.Node) evaluate.Position {
	return evaluate.Position{File: d.file, Line: n.Line, Col: n.Column}
}

func (d *ymlDecoder) fail(n *yaml.Node, code, field, format string, args ...any) {
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

// syntaxError converts a YAML parser error ("yaml: line 3: …").
func (d *ymlDecoder) syntaxError(err error) {
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
	d.errs = append(d.errs, evaluate.Finding{Severity: evaluate.SeverityError, Code: "yaml-syntax", Pos: pos, Msg: "invalid YAML: " + msg})
}

// node resolves aliases and charges the visit budget. It returns nil when
// the walk must not go on.
func (d *ymlDecoder) node(n *yaml.Node) *yaml.Node {
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

func (d *ymlDecoder) mark(p string, n *yaml.Node) {
	if d.obj == nil || d.marks >= maxYAMLMarks || d.aliased > 0 {
		return
	}
	d.marks++
	d.obj.fields[p] = d.posOf(n)
}

// enter increases the nesting depth; the caller calls leave when enter
// returned true.
func (d *ymlDecoder) enter(n *yaml.Node, p string) bool {
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

func (d *ymlDecoder) leave() { d.depth-- }

func ymlCountNodes(n *yaml.Node) int {
	c := 1
	for _, k := range n.Content {
		c += ymlCountNodes(k)
	}
	return c
}

// ymlDescribe says what a node is, for type errors.
func ymlDescribe(n *yaml.Node) string {
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

func (d *ymlDecoder) typeError(raw *yaml.Node, p, want string) {
	n := raw
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	d.fail(raw, "type", p, "expected %s, got %s", want, ymlDescribe(n))
}

type ymlEntry struct {
	key    string
	k, val *yaml.Node
}

// mapping returns the entries of the mapping n (after merge keys), checking
// duplicate and, when known is not nil, unknown keys. ok is false for null
// (no error) and for a non-mapping (an error); when ok the caller must call
// d.leave.
func (d *ymlDecoder) mapping(raw *yaml.Node, p string, known []string) (entries []ymlEntry, ok bool) {
	n, ok := d.open(raw, p, yaml.MappingNode, "a mapping")
	if !ok {
		return nil, false
	}
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	entries = d.collect(n, p, seen, entries, true)
	if known != nil {
		for _, e := range entries {
			if !ymlContains(known, e.key) {
				d.fail(e.k, "unknown-field", p, "unknown field %q%s", e.key, suggest.Field(e.key, known))
			}
		}
	}
	return entries, true
}

// collect appends the entries of mapping n, explicit keys first, then the
// keys of merged mappings ("<<: *base") that are not already present.
func (d *ymlDecoder) collect(n *yaml.Node, p string, seen map[string]*yaml.Node, out []ymlEntry, explicit bool) []ymlEntry {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kn := d.node(k)
		if kn == nil {
			return out
		}
		if kn.Kind != yaml.ScalarNode {
			d.fail(k, "type", p, "mapping keys must be strings, got %s", ymlDescribe(kn))
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
		out = append(out, ymlEntry{key: kn.Value, k: k, val: v})
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
				d.fail(m, "type", p, "a merge key (<<) needs a mapping or a list of mappings, got %s", ymlDescribe(s))
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

func ymlContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sequence returns the items of the list n. ok is false for null and for a
// non-list (an error); when ok the caller must call d.leave.
func (d *ymlDecoder) sequence(raw *yaml.Node, p string) (items []*yaml.Node, ok bool) {
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
func (d *ymlDecoder) open(raw *yaml.Node, p string, kind yaml.Kind, what string) (n *yaml.Node, ok bool) {
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
func (d *ymlDecoder) scalar(raw *yaml.Node, p, want string, mark bool) *yaml.Node {
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
func (d *ymlDecoder) str(raw *yaml.Node, p string) string {
	return d.strMark(raw, p, true)
}

func (d *ymlDecoder) strMark(raw *yaml.Node, p string, mark bool) string {
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

func (d *ymlDecoder) boolean(raw *yaml.Node, p string) bool {
	n := d.scalar(raw, p, "true or false", true)
	if n == nil {
		return false
	}
	switch n.ShortTag() {
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err == nil {
			return b
		}
	case "!!null":
		return false
	}
	d.typeError(raw, p, "true or false")
	return false
}

func (d *ymlDecoder) float(raw *yaml.Node, p string) float64 {
	n := d.scalar(raw, p, "a number", true)
	if n == nil {
		return 0
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		var f float64
		if err := n.Decode(&f); err == nil {
			return f
		}
	case "!!null":
		return 0
	}
	d.typeError(raw, p, "a number")
	return 0
}

// isNull reports whether raw is (an alias of) null.
func (d *ymlDecoder) isNull(raw *yaml.Node) bool {
	for i := 0; raw != nil && raw.Kind == yaml.AliasNode && i < 100; i++ {
		raw = raw.Alias
	}
	return raw != nil && raw.Kind == yaml.ScalarNode && raw.ShortTag() == "!!null"
}

func (d *ymlDecoder) integer(raw *yaml.Node, p string) int64 {
	n := d.scalar(raw, p, "an integer", true)
	if n == nil {
		return 0
	}
	switch n.ShortTag() {
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return i
		}
	case "!!null":
		return 0
	}
	d.typeError(raw, p, "an integer")
	return 0
}

// timeValue decodes a timestamp: a YAML timestamp, or an RFC 3339 string
// or a YYYY-MM-DD date (midnight UTC).
func (d *ymlDecoder) timeValue(raw *yaml.Node, p string) time.Time {
	n := d.scalar(raw, p, "a time (RFC 3339)", true)
	if n == nil {
		return time.Time{}
	}
	switch n.ShortTag() {
	case "!!null":
		return time.Time{}
	case "!!timestamp", "!!str":
		if t, ok := ymlParseTime(n.Value); ok {
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

func ymlParseTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// strList decodes a list of strings. Element positions are recorded only
// when markItems (not for segment ids, which can be millions).
func (d *ymlDecoder) strList(raw *yaml.Node, p string, markItems bool) []string {
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
func (d *ymlDecoder) value(raw *yaml.Node, p string) any {
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

func (d *ymlDecoder) scalarValue(raw, n *yaml.Node, p string) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!str", "!!timestamp":
		return n.Value
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return i
		}
		var f float64
		if n.Decode(&f) == nil {
			return f
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil {
			return f
		}
	case "!!binary":
		var s string
		if n.Decode(&s) == nil {
			return s
		}
	}
	d.fail(raw, "type", p, "unsupported value %s", ymlDescribe(n))
	return nil
}

// ymlPeek returns the text of a scalar key's value in mapping n, without
// decoding (for naming the flag in findings before its fields are read).
func ymlPeek(n *yaml.Node, key string) string {
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

// document decodes one YAML document into out.
func (d *ymlDecoder) document(doc *yaml.Node, out *File) {
	d.visits = 0
	d.maxVisits = ymlCountNodes(doc) + MaxYAMLAliasNodes
	root := doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return
		}
		root = doc.Content[0]
	}
	n := d.node(root)
	if n == nil {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty document
	}
	if n.Kind != yaml.MappingNode {
		d.fail(root, "type", "", "a flags-as-code document must be a mapping (a flag with flagKey, or a config with flags/segments/environment), got %s", ymlDescribe(n))
		return
	}
	if ymlHasKey(n, "flagKey") {
		f, op := d.flag(root)
		out.Flags = append(out.Flags, f)
		out.pos.flags = append(out.pos.flags, op)
		return
	}
	d.config(root, out)
}

func ymlHasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Kind == yaml.ScalarNode && n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// config decodes a config document: file-level settings, flags, segments.
func (d *ymlDecoder) config(raw *yaml.Node, out *File) {
	cp := out.pos.config
	d.obj = cp
	entries, ok := d.mapping(raw, "", d.structOf(reflect.TypeFor[evaluate.Config]()).names)
	if !ok {
		return
	}
	defer d.leave()
	for _, e := range entries {
		if d.stop {
			return
		}
		d.obj = cp
		switch e.key {
		case "environment":
			d.setOnce(e, cp, &out.Environment)
		case "salt":
			d.setOnce(e, cp, &out.Salt)
		case "version":
			v := d.integer(e.val, e.key)
			if out.Version != 0 && v != out.Version {
				d.fail(e.val, "conflict", e.key, "version %d conflicts with version %d set earlier in the file", v, out.Version)
			}
			out.Version = v
		case "requireChangeReason":
			out.RequireChangeReason = d.boolean(e.val, e.key) || out.RequireChangeReason
		case "attributes":
			d.attributes(e.val, out)
		case "flags":
			ymlList(d, e, d.flag, &out.Flags, &out.pos.flags)
		case "segments":
			ymlList(d, e, d.segment, &out.Segments, &out.pos.segments)
		}
	}
	d.obj = nil
}

// ymlList decodes the sequence e.val with one, appending each item and
// its positions, until the decoder stops.
func ymlList[T any](d *ymlDecoder, e ymlEntry, one func(*yaml.Node) (T, *ymlObjPos), vals *[]T, pos *[]*ymlObjPos) {
	items, ok := d.sequence(e.val, e.key)
	if !ok {
		return
	}
	for _, it := range items {
		if d.stop {
			break
		}
		v, op := one(it)
		*vals = append(*vals, v)
		*pos = append(*pos, op)
	}
	d.leave()
}

func (d *ymlDecoder) setOnce(e ymlEntry, cp *ymlObjPos, dst *string) {
	prev, had := cp.fields[e.key]
	v := d.str(e.val, e.key)
	if had && *dst != "" && v != *dst {
		d.fail(e.val, "conflict", e.key, "%s %q conflicts with %q set at line %d", e.key, v, *dst, prev.Line)
		cp.fields[e.key] = prev
		return
	}
	if *dst == "" {
		*dst = v
	}
}

// attributes decodes the schema: attribute path → type.
func (d *ymlDecoder) attributes(raw *yaml.Node, out *File) {
	entries, ok := d.mapping(raw, "attributes", nil)
	if !ok {
		return
	}
	defer d.leave()
	if out.Attributes == nil {
		out.Attributes = make(map[string]string, len(entries))
	}
	for _, e := range entries {
		p := "attributes." + e.key
		v := d.str(e.val, p)
		if prev, dup := out.Attributes[e.key]; dup && prev != v {
			d.fail(e.val, "conflict", p, "attribute %q declared as %q and as %q", e.key, prev, v)
			continue
		}
		out.Attributes[e.key] = v
	}
}

// ymlField is one known key of a model struct: its yaml name and the index
// path of the Go field (through inline structs such as Rule's Serve).
type ymlField struct {
	name  string
	index []int
}

// ymlStruct is the decoding plan of a model struct type, read from its
// yaml tags: the known keys in declaration order (for "did you mean"
// hints and the list of known fields) and where each goes.
type ymlStruct struct {
	names  []string
	fields map[string]ymlField
}

var ymlTimeType = reflect.TypeFor[time.Time]()

// structOf returns the plan of struct type t, building it on first use.
// As in the YAML library, a field tagged "-" or unexported is skipped, an
// untagged field is known by its lowercased name, and an ",inline" struct
// contributes its fields.
func (d *ymlDecoder) structOf(t reflect.Type) *ymlStruct {
	if st, ok := d.structs[t]; ok {
		return st
	}
	st := &ymlStruct{fields: make(map[string]ymlField)}
	var add func(t reflect.Type, prefix []int)
	add = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			index := append(append([]int(nil), prefix...), i)
			if sf.Anonymous && sf.Type.Kind() == reflect.Struct && strings.Contains(opts, "inline") {
				add(sf.Type, index)
				continue
			}
			if !sf.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			if _, dup := st.fields[name]; !dup {
				st.names = append(st.names, name)
				st.fields[name] = ymlField{name: name, index: index}
			}
		}
	}
	add(t, nil)
	if d.structs == nil {
		d.structs = make(map[reflect.Type]*ymlStruct)
	}
	d.structs[t] = st
	return st
}

// object decodes the mapping raw into the struct v, key by key in file
// order; unknown keys are errors naming the closest known one. ok is false
// when raw is null or not a mapping (an error).
func (d *ymlDecoder) object(raw *yaml.Node, p string, v reflect.Value) (entries []ymlEntry, ok bool) {
	st := d.structOf(v.Type())
	entries, ok = d.mapping(raw, p, st.names)
	if !ok {
		return nil, false
	}
	defer d.leave()
	for _, e := range entries {
		if d.stop {
			break
		}
		f, known := st.fields[e.key]
		if !known {
			continue
		}
		q := fieldpath.Join(p, e.key)
		fv := v.FieldByIndex(f.index)
		if f.name == "when" && fv.Kind() == reflect.String {
			fv.SetString(d.when(e.val, q))
			continue
		}
		d.decode(e.val, q, fv)
	}
	return entries, true
}

// decode decodes raw into v, driven by v's type: structs by their yaml
// tags, lists item by item, free-form values (interfaces) with their YAML
// types, and scalars strictly (see File).
func (d *ymlDecoder) decode(raw *yaml.Node, p string, v reflect.Value) {
	t := v.Type()
	if t == ymlTimeType {
		v.Set(reflect.ValueOf(d.timeValue(raw, p)))
		return
	}
	switch t.Kind() {
	case reflect.Interface:
		if x := d.value(raw, p); x != nil {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.String:
		v.SetString(d.str(raw, p))
	case reflect.Bool:
		v.SetBool(d.boolean(raw, p))
	case reflect.Int, reflect.Int64:
		v.SetInt(d.integer(raw, p))
	case reflect.Float64:
		v.SetFloat(d.float(raw, p))
	case reflect.Pointer:
		if d.isNull(raw) {
			d.mark(p, raw)
			return
		}
		e := reflect.New(t.Elem())
		d.decode(raw, p, e.Elem())
		v.Set(e)
	case reflect.Struct:
		d.object(raw, p, v)
	case reflect.Map:
		// Free-form mappings with string keys (Flag.FlagMetadata): each
		// value with its YAML type and position. Compile checks the values.
		if t.Key().Kind() != reflect.String || t.Elem().Kind() != reflect.Interface {
			d.fail(raw, "type", p, "cannot decode into %s", t)
			return
		}
		entries, ok := d.mapping(raw, p, nil)
		if !ok {
			return
		}
		defer d.leave()
		m := reflect.MakeMapWithSize(t, len(entries))
		for _, e := range entries {
			if d.stop {
				break
			}
			if x := d.value(e.val, fieldpath.Join(p, e.key)); x != nil {
				m.SetMapIndex(reflect.ValueOf(e.key), reflect.ValueOf(x))
			} else {
				// Kept as null: Compile names the key.
				m.SetMapIndex(reflect.ValueOf(e.key), reflect.Zero(t.Elem()))
			}
		}
		v.Set(m)
	case reflect.Slice:
		// An empty list is an empty, non-nil slice: for a rollout,
		// "rollout: []" is a rollout that lists nothing.
		items, ok := d.sequence(raw, p)
		if !ok {
			return
		}
		defer d.leave()
		// Lists of bucketing ids can hold millions: their items'
		// positions are not recorded.
		markItems := !ymlIsIDList(p)
		s := reflect.MakeSlice(t, len(items), len(items))
		n := 0
		for i, it := range items {
			if d.stop {
				break
			}
			q := fieldpath.Index(p, i)
			if t.Elem().Kind() == reflect.String {
				s.Index(i).SetString(d.strMark(it, q, markItems))
			} else {
				d.decode(it, q, s.Index(i))
			}
			n++
		}
		v.Set(s.Slice(0, n))
	default:
		// Not reached for the model's types (TestLoadYAMLEveryField
		// sets every field).
		d.fail(raw, "type", p, "cannot decode into %s", t)
	}
}

// ymlIsIDList reports whether the list at path p holds bucketing ids: a
// target's values or a segment's included and excluded ids.
func ymlIsIDList(p string) bool {
	if i := strings.LastIndexAny(p, ".]"); i >= 0 {
		p = p[i+1:]
	}
	switch p {
	case "values", "included", "excluded":
		return true
	}
	return false
}

// when decodes a rule or segment condition and records how its characters
// map to the source, for positions inside the condition.
func (d *ymlDecoder) when(raw *yaml.Node, p string) string {
	s := d.str(raw, p)
	if s == "" || d.obj == nil {
		return s
	}
	if n := d.node(raw); n != nil && n.Kind == yaml.ScalarNode {
		if d.obj.texts == nil {
			d.obj.texts = make(map[string]*ymlText)
		}
		if d.lineStart == nil {
			d.lineStart = ymlLineStarts(d.src)
		}
		d.obj.texts[p] = ymlMapScalar(d.file, d.src, d.lineStart, n)
	}
	return s
}

// flag decodes one flag mapping with its positions.
func (d *ymlDecoder) flag(raw *yaml.Node) (evaluate.Flag, *ymlObjPos) {
	var f evaluate.Flag
	op := d.top(raw, "flagKey", func() {
		entries, ok := d.object(raw, "", reflect.ValueOf(&f).Elem())
		if !ok {
			if d.isNull(raw) {
				d.fail(raw, "type", "", "expected a flag mapping, got null")
			}
			return
		}
		if !ymlHasEntry(entries, "flagKey") && !d.stop {
			d.fail(raw, "missing-field", "", "flag has no flagKey")
		}
	})
	op.rules = make([]string, len(f.Rules))
	for i, r := range f.Rules {
		op.rules[i] = r.ID
	}
	return f, op
}

// segment decodes one segment mapping with its positions.
func (d *ymlDecoder) segment(raw *yaml.Node) (evaluate.Segment, *ymlObjPos) {
	var s evaluate.Segment
	op := d.top(raw, "key", func() {
		entries, ok := d.object(raw, "", reflect.ValueOf(&s).Elem())
		if !ok {
			if d.isNull(raw) {
				d.fail(raw, "type", "", "expected a segment mapping, got null")
			}
			return
		}
		if !ymlHasEntry(entries, "key") && !d.stop {
			d.fail(raw, "missing-field", "", "segment has no key")
		}
	})
	return s, op
}

// top runs decode for a flag (key "flagKey") or segment (key "key")
// document with its own positions, findings naming it by that key.
func (d *ymlDecoder) top(raw *yaml.Node, key string, decode func()) *ymlObjPos {
	saved, savedFlag, savedSeg := d.obj, d.flagKey, d.segKey
	defer func() { d.obj, d.flagKey, d.segKey = saved, savedFlag, savedSeg }()
	op := newYmlObjPos(d.posOf(raw))
	d.obj = op
	if key == "flagKey" {
		d.flagKey = ymlPeek(raw, key)
	} else {
		d.segKey = ymlPeek(raw, key)
	}
	decode()
	return op
}

func ymlHasEntry(entries []ymlEntry, key string) bool {
	for _, e := range entries {
		if e.key == key {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------
// Positions inside a scalar: how each byte of a scalar's value maps back to
// the source, for errors inside rule conditions.

// ymlText maps the bytes of a scalar's value to source positions.
type ymlText struct {
	start evaluate.Position // the scalar itself: the fallback
	value string
	lines []int32 // per byte of value
	cols  []int32
	valid int // leading bytes of value whose positions are known
}

// position returns the source position of the character at line:col of
// the value (both 1-based; col counts characters). Where the mapping is
// unknown (an unusual block scalar) it returns the scalar's position.
func (t *ymlText) position(line, col int) evaluate.Position {
	off, ok := ymlTextOffset(t.value, line, col)
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

// ymlTextOffset converts a 1-based line and character column in s to a
// byte offset. A column past the end of its line gives the offsets after
// it (the end of the text is len(s)).
func ymlTextOffset(s string, line, col int) (int, bool) {
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

// ymlLineStarts returns the byte offset of each line of src. Lines end as
// YAML ends them: at "\n", "\r\n" or a lone "\r".
func ymlLineStarts(src []byte) []int {
	starts := []int{0}
	for i, c := range src {
		if c == '\n' || c == '\r' && (i+1 == len(src) || src[i+1] != '\n') {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// ymlMapScalar maps the value of scalar n to source positions, byte by
// byte. The value's characters appear in the source in order; between them
// the source only adds what YAML's syntax takes away: the opening quote, a
// doubled single quote, escapes, and line breaks and indentation that fold
// into a space or a newline (for a block scalar, also its header line). So
// one walk over both suffices: a value character matches the same source
// character (after any indentation and folded line breaks), an escaped one
// its escape sequence, and a white-space one (folding) any source white
// space. The walk stops at the first character it cannot explain; only
// that verified prefix is trusted.
func ymlMapScalar(file string, src []byte, lineStart []int, n *yaml.Node) *ymlText {
	t := &ymlText{start: evaluate.Position{File: file, Line: n.Line, Col: n.Column}, value: n.Value}
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
			b, w, ok := ymlUnescape(src[i:])
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

// ymlUnescape decodes the double-quoted escape at the start of b, returning
// the bytes it stands for and its length in b.
func ymlUnescape(b []byte) ([]byte, int, bool) {
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

// ---------------------------------------------------------------------
// Files to Configs.

// MergeFiles builds one [evaluate.Config] per environment from parsed files. A flag
// belongs to its own environment, or else to its file's; a flag with
// neither is an error (there is no implicit "every environment"), and so
// are segments and file-level settings in a file without an environment.
// Within an environment, flag keys and segment keys must be unique across
// files, and files must agree on salt, version and attribute types;
// requireChangeReason holds if any file sets it.
//
// Flags and segments are sorted by key, so the result does not depend on
// how they are spread over files. Each Config remembers where its flags
// came from (Config.Locator), so that [evaluate.Compile] and Lint report
// file:line:col positions. The Configs are not compiled; problems are
// reported in a *[evaluate.LoadError].
func MergeFiles(files ...*File) (map[string]*evaluate.Config, error) {
	type envState struct {
		cfg      *evaluate.Config
		loc      *ymlLocator
		flagAt   map[string]evaluate.Position
		segAt    map[string]evaluate.Position
		saltAt   evaluate.Position
		verAt    evaluate.Position
		attrFrom map[string]evaluate.Position
	}
	envs := make(map[string]*envState)
	var errs []evaluate.Finding
	fail := func(f evaluate.Finding) {
		f.Severity = evaluate.SeverityError
		errs = append(errs, f)
	}
	get := func(name string, at evaluate.Position) *envState {
		if es, ok := envs[name]; ok {
			return es
		}
		if !validKey(name) {
			fail(evaluate.Finding{Code: "invalid-environment", Field: "environment", Pos: at, Msg: fmt.Sprintf("invalid environment name %q: use letters, digits, '-', '_' and '.'", name)})
		}
		es := &envState{
			cfg:      &evaluate.Config{Environment: name},
			loc:      &ymlLocator{flags: make(map[string]*ymlObjPos), segments: make(map[string]*ymlObjPos)},
			flagAt:   make(map[string]evaluate.Position),
			segAt:    make(map[string]evaluate.Position),
			attrFrom: make(map[string]evaluate.Position),
		}
		es.cfg.Locator = es.loc
		envs[name] = es
		return es
	}
	for _, f := range files {
		if f == nil {
			continue
		}
		fp := f.pos
		if fp == nil {
			fp = &ymlFilePos{}
		}
		if fp.config == nil {
			fp.config = newYmlObjPos(evaluate.Position{File: f.Name})
		}
		cpos := func(field string) evaluate.Position {
			if p, ok := fp.config.fields[field]; ok {
				return p
			}
			return evaluate.Position{File: f.Name}
		}
		objPos := func(list []*ymlObjPos, i int) *ymlObjPos {
			if i < len(list) && list[i] != nil {
				return list[i]
			}
			return newYmlObjPos(evaluate.Position{File: f.Name})
		}
		var es *envState
		if f.Environment != "" {
			es = get(f.Environment, cpos("environment"))
			es.loc.config = append(es.loc.config, fp.config)
		} else {
			for _, field := range []string{"salt", "version", "requireChangeReason", "attributes"} {
				if _, set := fp.config.fields[field]; set {
					fail(evaluate.Finding{Code: "missing-environment", Field: field, Pos: cpos(field), Msg: field + " needs a file-level environment"})
				}
			}
		}
		if es != nil {
			cfg := es.cfg
			if f.Salt != "" {
				if cfg.Salt != "" && cfg.Salt != f.Salt {
					fail(evaluate.Finding{Code: "conflict", Field: "salt", Pos: cpos("salt"), Msg: fmt.Sprintf("environment %q: salt differs from the one set at %s", f.Environment, es.saltAt)})
				} else if cfg.Salt == "" {
					cfg.Salt, es.saltAt = f.Salt, cpos("salt")
				}
			}
			if f.Version != 0 {
				if cfg.Version != 0 && cfg.Version != f.Version {
					fail(evaluate.Finding{Code: "conflict", Field: "version", Pos: cpos("version"), Msg: fmt.Sprintf("environment %q: version %d differs from %d set at %s", f.Environment, f.Version, cfg.Version, es.verAt)})
				} else if cfg.Version == 0 {
					cfg.Version, es.verAt = f.Version, cpos("version")
				}
			}
			cfg.RequireChangeReason = cfg.RequireChangeReason || f.RequireChangeReason
			for _, k := range ymlSortedKeys(f.Attributes) {
				t := f.Attributes[k]
				if prev, dup := cfg.Attributes[k]; dup {
					if prev != t {
						fail(evaluate.Finding{Code: "conflict", Field: "attributes." + k, Pos: cpos("attributes." + k), Msg: fmt.Sprintf("attribute %q declared as %q here and as %q at %s", k, t, prev, es.attrFrom[k])})
					}
					continue
				}
				if cfg.Attributes == nil {
					cfg.Attributes = make(map[string]string)
				}
				cfg.Attributes[k] = t
				es.attrFrom[k] = cpos("attributes." + k)
			}
		}
		for i, s := range f.Segments {
			op := objPos(fp.segments, i)
			if es == nil {
				fail(evaluate.Finding{Code: "missing-environment", Segment: s.Key, Pos: op.at, Msg: "segment has no environment: set environment: at the top of the file"})
				continue
			}
			if first, dup := es.segAt[s.Key]; dup {
				fail(evaluate.Finding{Code: "duplicate-segment", Segment: s.Key, Field: "key", Pos: op.lookup("key"), Msg: fmt.Sprintf("segment defined twice in environment %q (first at %s)", f.Environment, first)})
				continue
			}
			es.segAt[s.Key] = op.lookup("key")
			es.cfg.Segments = append(es.cfg.Segments, s)
			es.loc.segments[s.Key] = op
		}
		for i, fl := range f.Flags {
			op := objPos(fp.flags, i)
			env := fl.Environment
			at := op.lookup("environment")
			if env == "" {
				env, at = f.Environment, cpos("environment")
			}
			if env == "" {
				fail(evaluate.Finding{Code: "missing-environment", Flag: fl.Key, Pos: op.lookup("flagKey"), Msg: "flag has no environment: set environment: on the flag or at the top of the file"})
				continue
			}
			fes := get(env, at)
			if first, dup := fes.flagAt[fl.Key]; dup {
				fail(evaluate.Finding{Code: "duplicate-flag", Flag: fl.Key, Field: "flagKey", Pos: op.lookup("flagKey"), Msg: fmt.Sprintf("flag defined twice in environment %q (first at %s)", env, first)})
				continue
			}
			fes.flagAt[fl.Key] = op.lookup("flagKey")
			fes.cfg.Flags = append(fes.cfg.Flags, fl)
			if op.rules == nil {
				op.rules = make([]string, len(fl.Rules))
				for j, r := range fl.Rules {
					op.rules[j] = r.ID
				}
			}
			fes.loc.flags[fl.Key] = op
		}
	}
	if len(errs) > 0 {
		evaluate.SortFindings(errs)
		if len(errs) > evaluate.MaxLoadFindings {
			errs = errs[:evaluate.MaxLoadFindings]
		}
		return nil, &evaluate.LoadError{Findings: errs}
	}
	out := make(map[string]*evaluate.Config, len(envs))
	for name, es := range envs {
		sort.SliceStable(es.cfg.Flags, func(i, j int) bool { return es.cfg.Flags[i].Key < es.cfg.Flags[j].Key })
		sort.SliceStable(es.cfg.Segments, func(i, j int) bool { return es.cfg.Segments[i].Key < es.cfg.Segments[j].Key })
		out[name] = es.cfg
	}
	return out, nil
}

func ymlSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// LoadDir reads every *.yaml and *.yml file under dir in fsys (recursively,
// in lexical order, skipping names that start with "."), parses each with
// LoadYAML and merges them with MergeFiles into one Config per environment.
// dir may also name a single such file; "." is the root of fsys. Positions
// name files by their path in fsys ("flags/checkout.yaml").
// Problems in all files are reported together in one *[evaluate.LoadError]; I/O
// errors are returned as they are. At most MaxYAMLFiles files of at most
// MaxYAMLFileSize bytes each are read. A directory without flag files
// yields an empty map.
func LoadDir(fsys fs.FS, dir string) (map[string]*evaluate.Config, error) {
	var files []*File
	var errs []evaluate.Finding
	count := 0
	err := fs.WalkDir(fsys, dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := de.Name()
		if de.IsDir() {
			if p != dir && strings.HasPrefix(name, ".") {
				return fs.SkipDir
			}
			return nil
		}
		ext := strings.ToLower(path.Ext(name))
		if (p != dir && strings.HasPrefix(name, ".")) || (ext != ".yaml" && ext != ".yml") {
			return nil
		}
		if count++; count > MaxYAMLFiles {
			return &evaluate.LoadError{Findings: []evaluate.Finding{{Severity: evaluate.SeverityError, Code: "limit", Pos: evaluate.Position{File: p}, Msg: fmt.Sprintf("more than %d flag files under %s", MaxYAMLFiles, dir)}}}
		}
		data, err := ymlReadFile(fsys, p)
		if err != nil {
			return err
		}
		f, err := LoadYAML(p, data)
		if le := (*evaluate.LoadError)(nil); errors.As(err, &le) {
			errs = append(errs, le.Findings...)
			return nil
		} else if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		evaluate.SortFindings(errs)
		if len(errs) > evaluate.MaxLoadFindings {
			errs = errs[:evaluate.MaxLoadFindings]
		}
		return nil, &evaluate.LoadError{Findings: errs}
	}
	return MergeFiles(files...)
}

// ymlReadFile reads a file of at most MaxYAMLFileSize bytes.
func ymlReadFile(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxYAMLFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxYAMLFileSize {
		return nil, &evaluate.LoadError{Findings: []evaluate.Finding{{Severity: evaluate.SeverityError, Code: "limit", Pos: evaluate.Position{File: name}, Msg: fmt.Sprintf("file exceeds the limit of %d bytes", MaxYAMLFileSize)}}}
	}
	return data, nil
}

// ---------------------------------------------------------------------
// Marshaling back to YAML.

// MarshalYAML encodes one flag as a flags-as-code document in the style of
// the package documentation's examples: two-space indentation, fields in the order flagKey,
// environment, type, state, owners, variants, offVariant, prerequisites,
// targets, rules, default, bucketing, metadata, flagMetadata, version, empty fields
// omitted, owners as a flow list, rollouts and small payloads in flow
// style. LoadYAML reads the output back to an equal flag (numbers as
// numbers, strings as strings: a string that would read as a boolean or
// null is quoted). It fails only for values YAML cannot represent.
func MarshalYAML(flag evaluate.Flag) ([]byte, error) {
	n, err := ymlFlagNode(&flag)
	if err != nil {
		return nil, err
	}
	return ymlEncode(n)
}

// MarshalConfigYAML encodes a whole environment as one flags-as-code file:
// a config document with environment, salt, version, requireChangeReason,
// attributes, segments and flags. LoadYAML and MergeFiles read it back to
// an equal Config. Used by "flagwire import-env".
func MarshalConfigYAML(cfg *evaluate.Config) ([]byte, error) {
	if cfg == nil {
		cfg = &evaluate.Config{}
	}
	m := ymlMap()
	if cfg.Environment != "" {
		ymlPut(m, "environment", ymlStr(cfg.Environment))
	}
	if cfg.Salt != "" {
		ymlPut(m, "salt", ymlStr(cfg.Salt))
	}
	if cfg.Version != 0 {
		ymlPut(m, "version", ymlInt(cfg.Version))
	}
	if cfg.RequireChangeReason {
		ymlPut(m, "requireChangeReason", ymlBool(true))
	}
	if len(cfg.Attributes) > 0 {
		am := ymlMap()
		for _, k := range ymlSortedKeys(cfg.Attributes) {
			ymlPut(am, k, ymlStr(cfg.Attributes[k]))
		}
		ymlPut(m, "attributes", am)
	}
	if len(cfg.Segments) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range cfg.Segments {
			seq.Content = append(seq.Content, ymlSegmentNode(&cfg.Segments[i]))
		}
		ymlPut(m, "segments", seq)
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	for i := range cfg.Flags {
		fn, err := ymlFlagNode(&cfg.Flags[i])
		if err != nil {
			return nil, err
		}
		seq.Content = append(seq.Content, fn)
	}
	ymlPut(m, "flags", seq)
	return ymlEncode(m)
}

func ymlEncode(n *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func ymlMap() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

func ymlPut(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, ymlStr(key), v)
}

// ymlStr encodes a string field. LoadYAML reads numbers and timestamps back
// as their text, so those stay plain ("ttl: 2026-12-31"); strings that
// would read as a boolean or null are quoted.
func ymlStr(s string) *yaml.Node {
	probe := yaml.Node{Kind: yaml.ScalarNode, Value: s}
	switch probe.ShortTag() {
	case "!!str", "!!int", "!!float", "!!timestamp":
		n := &yaml.Node{Kind: yaml.ScalarNode, Value: s}
		if strings.Contains(s, "\n") {
			n.Style = yaml.LiteralStyle
		}
		return n
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func ymlInt(i int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(i, 10)}
}

func ymlBool(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

func ymlFloat(f float64) *yaml.Node {
	var n yaml.Node
	_ = n.Encode(f) // a float64 always encodes
	return &n
}

// ymlValue encodes a free-form value (variant values, payloads).
func ymlValue(v any) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	return &n, nil
}

// ymlFlowIfSmall switches a mapping or list of scalars to flow style.
func ymlFlowIfSmall(n *yaml.Node) {
	if (n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode) || len(n.Content) == 0 || len(n.Content) > 8 {
		return
	}
	size := 0
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode || strings.Contains(c.Value, "\n") {
			return
		}
		size += len(c.Value) + 2
	}
	if size <= 60 {
		n.Style = yaml.FlowStyle
	}
}

func ymlStrList(list []string, flow bool) *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	if flow {
		seq.Style = yaml.FlowStyle
	}
	for _, s := range list {
		seq.Content = append(seq.Content, ymlStr(s))
	}
	return seq
}

func ymlFlagNode(f *evaluate.Flag) (*yaml.Node, error) {
	m := ymlMap()
	val := func(key string, v any) error {
		if v == nil {
			return nil
		}
		n, err := ymlValue(v)
		if err != nil {
			return fmt.Errorf("flag %q %s: %w", f.Key, key, err)
		}
		ymlFlowIfSmall(n)
		ymlPut(m, key, n)
		return nil
	}
	ymlPut(m, "flagKey", ymlStr(f.Key))
	if f.Environment != "" {
		ymlPut(m, "environment", ymlStr(f.Environment))
	}
	if f.Type != "" {
		ymlPut(m, "type", ymlStr(string(f.Type)))
	}
	if f.State != "" {
		ymlPut(m, "state", ymlStr(f.State))
	}
	if len(f.Owners) > 0 {
		owners := ymlStrList(f.Owners, true)
		for _, o := range owners.Content {
			o.Style = yaml.DoubleQuotedStyle
		}
		ymlPut(m, "owners", owners)
	}
	if len(f.Variants) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, v := range f.Variants {
			vm := ymlMap()
			ymlPut(vm, "name", ymlStr(v.Name))
			for _, kv := range []struct {
				key string
				v   any
			}{{"value", v.Value}, {"payload", v.Payload}} {
				if kv.v == nil {
					continue
				}
				n, err := ymlValue(kv.v)
				if err != nil {
					return nil, fmt.Errorf("flag %q variant %q %s: %w", f.Key, v.Name, kv.key, err)
				}
				ymlFlowIfSmall(n)
				ymlPut(vm, kv.key, n)
			}
			seq.Content = append(seq.Content, vm)
		}
		ymlPut(m, "variants", seq)
	}
	if err := val("offVariant", f.OffVariant); err != nil {
		return nil, err
	}
	if len(f.Prerequisites) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, p := range f.Prerequisites {
			pm := ymlMap()
			ymlPut(pm, "flagKey", ymlStr(p.FlagKey))
			vs, err := ymlValue(p.Variants)
			if err != nil {
				return nil, fmt.Errorf("flag %q prerequisite %q: %w", f.Key, p.FlagKey, err)
			}
			vs.Style = yaml.FlowStyle
			ymlPut(pm, "variants", vs)
			seq.Content = append(seq.Content, pm)
		}
		ymlPut(m, "prerequisites", seq)
	}
	if len(f.Targets) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, t := range f.Targets {
			tm := ymlMap()
			vn, err := ymlValue(t.Variant)
			if err != nil {
				return nil, fmt.Errorf("flag %q target: %w", f.Key, err)
			}
			ymlPut(tm, "variant", vn)
			ymlPut(tm, "values", ymlStrList(t.Values, true))
			seq.Content = append(seq.Content, tm)
		}
		ymlPut(m, "targets", seq)
	}
	if len(f.Rules) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range f.Rules {
			r := &f.Rules[i]
			rm := ymlMap()
			ymlPut(rm, "id", ymlStr(r.ID))
			if r.When != "" {
				ymlPut(rm, "when", ymlStr(r.When))
			}
			if r.Segment != "" {
				ymlPut(rm, "segment", ymlStr(r.Segment))
			}
			if err := ymlServeInto(rm, &r.Serve); err != nil {
				return nil, fmt.Errorf("flag %q rule %q: %w", f.Key, r.ID, err)
			}
			seq.Content = append(seq.Content, rm)
		}
		ymlPut(m, "rules", seq)
	}
	if f.Default != nil {
		dm := ymlMap()
		if err := ymlServeInto(dm, f.Default); err != nil {
			return nil, fmt.Errorf("flag %q default: %w", f.Key, err)
		}
		if len(dm.Content) == 2 && dm.Content[1].Kind == yaml.ScalarNode {
			dm.Style = yaml.FlowStyle
		}
		ymlPut(m, "default", dm)
	}
	if f.Bucketing != (evaluate.Bucketing{}) {
		bm := ymlMap()
		if f.Bucketing.Seed != "" {
			ymlPut(bm, "seed", ymlStr(f.Bucketing.Seed))
		}
		if f.Bucketing.By != "" {
			ymlPut(bm, "by", ymlStr(f.Bucketing.By))
		}
		ymlPut(m, "bucketing", bm)
	}
	if md := ymlMetadataNode(&f.Metadata); md != nil {
		ymlPut(m, "metadata", md)
	}
	if len(f.FlagMetadata) > 0 {
		fm := ymlMap()
		for _, k := range ymlSortedKeys(f.FlagMetadata) {
			n, err := ymlValue(f.FlagMetadata[k])
			if err != nil {
				return nil, fmt.Errorf("flag %q flagMetadata %q: %w", f.Key, k, err)
			}
			ymlPut(fm, k, n)
		}
		ymlPut(m, "flagMetadata", fm)
	}
	if f.Version != 0 {
		ymlPut(m, "version", ymlInt(f.Version))
	}
	return m, nil
}

func ymlServeInto(m *yaml.Node, s *evaluate.Serve) error {
	if s.Variant != nil {
		n, err := ymlValue(s.Variant)
		if err != nil {
			return err
		}
		ymlPut(m, "variant", n)
	}
	if s.Percentage != nil {
		ymlPut(m, "percentage", ymlFloat(*s.Percentage))
	}
	if s.Rollout != nil {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, w := range s.Rollout {
			wm := ymlMap()
			wm.Style = yaml.FlowStyle
			vn, err := ymlValue(w.Variant)
			if err != nil {
				return err
			}
			ymlPut(wm, "variant", vn)
			ymlPut(wm, "weight", ymlFloat(w.Weight))
			seq.Content = append(seq.Content, wm)
		}
		ymlPut(m, "rollout", seq)
	}
	if p := s.Progressive; p != nil {
		pm := ymlMap()
		if p.Variant != nil {
			vn, err := ymlValue(p.Variant)
			if err != nil {
				return err
			}
			ymlPut(pm, "variant", vn)
		}
		steps := &yaml.Node{Kind: yaml.SequenceNode}
		for _, st := range p.Steps {
			sm := ymlMap()
			sm.Style = yaml.FlowStyle
			ymlPut(sm, "at", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!timestamp", Value: st.At.Format(time.RFC3339Nano)})
			ymlPut(sm, "percentage", ymlFloat(st.Percentage))
			steps.Content = append(steps.Content, sm)
		}
		ymlPut(pm, "steps", steps)
		if p.Paused {
			ymlPut(pm, "paused", ymlBool(true))
		}
		if !p.PausedAt.IsZero() {
			ymlPut(pm, "pausedAt", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!timestamp", Value: p.PausedAt.Format(time.RFC3339Nano)})
		}
		ymlPut(m, "progressive", pm)
	}
	if s.Seed != "" {
		ymlPut(m, "seed", ymlStr(s.Seed))
	}
	return nil
}

func ymlMetadataNode(md *evaluate.Metadata) *yaml.Node {
	m := ymlMap()
	for _, kv := range []struct{ key, v string }{{"team", md.Team}, {"description", md.Description}, {"jira", md.Jira}, {"ttl", md.TTL}, {"riskLevel", md.RiskLevel}} {
		if kv.v != "" {
			ymlPut(m, kv.key, ymlStr(kv.v))
		}
	}
	if md.KillSwitch {
		ymlPut(m, "killSwitch", ymlBool(true))
	}
	if len(md.Dashboards) > 0 {
		ymlPut(m, "dashboards", ymlStrList(md.Dashboards, false))
	}
	if len(m.Content) == 0 {
		return nil
	}
	return m
}

func ymlSegmentNode(s *evaluate.Segment) *yaml.Node {
	m := ymlMap()
	ymlPut(m, "key", ymlStr(s.Key))
	if s.Description != "" {
		ymlPut(m, "description", ymlStr(s.Description))
	}
	if s.When != "" {
		ymlPut(m, "when", ymlStr(s.When))
	}
	if s.By != "" {
		ymlPut(m, "by", ymlStr(s.By))
	}
	if s.Included != nil {
		ymlPut(m, "included", ymlStrList(s.Included, true))
	}
	if s.Excluded != nil {
		ymlPut(m, "excluded", ymlStrList(s.Excluded, true))
	}
	if s.Version != 0 {
		ymlPut(m, "version", ymlInt(s.Version))
	}
	return m
}

// validKey reports whether k is a valid environment name: the key syntax
// evaluate.Compile enforces for flags and segments (letters, digits, '-',
// '_' and '.', not starting with a punctuation mark, at most
// evaluate.MaxKeyLength bytes).
func validKey(k string) bool {
	if k == "" || len(k) > evaluate.MaxKeyLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '-' && c != '_' && c != '.') {
			return false
		}
	}
	return true
}
