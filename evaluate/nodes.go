package evaluate

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	"unsafe"
)

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
