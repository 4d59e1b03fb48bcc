package evaluate

import (
	"fmt"
	"time"
)

// TraceStep is one step of an explained evaluation (see
// Snapshot.EvaluateExplain): what was considered and whether it matched.
type TraceStep struct {
	// Step is "state", "prerequisite", "target", "rule" or "default".
	Step string `json:"step"`
	// ID names the rule, prerequisite flag or segment considered.
	ID string `json:"id,omitempty"`
	// Matched reports whether the step decided or held.
	Matched bool `json:"matched"`
	// Detail is a human-readable explanation.
	Detail string `json:"detail,omitempty"`
}

// Environment returns the environment the snapshot was compiled for.
func (s *Snapshot) Environment() string { return s.env }

// Version returns the config version.
func (s *Snapshot) Version() int64 { return s.version }

// Salt returns the environment's bucketing salt.
func (s *Snapshot) Salt() string { return s.salt }

// Keys returns the flag keys in sorted order. The slice must not be modified.
func (s *Snapshot) Keys() []string { return s.keys }

// Len returns the number of flags.
func (s *Snapshot) Len() int { return len(s.flags) }

// Config returns the config the snapshot was compiled from. It must not be
// modified.
func (s *Snapshot) Config() *Config { return s.config }

// Flag returns the source definition of a flag. It must not be modified.
func (s *Snapshot) Flag(key string) (*Flag, bool) {
	cf, ok := s.flags[key]
	if !ok {
		return nil, false
	}
	return cf.source, true
}

// FlagType returns the type of a flag.
func (s *Snapshot) FlagType(key string) (FlagType, bool) {
	cf, ok := s.flags[key]
	if !ok {
		return "", false
	}
	return cf.typ, true
}

// MatchSegment implements SegmentMatcher: it is MatchSegmentAt at the zero
// time. Use MatchSegmentAt for segments whose conditions use now or date().
func (s *Snapshot) MatchSegment(name string, attrs Attributes) bool {
	return s.MatchSegmentAt(name, attrs, time.Time{})
}

// MatchSegmentAt implements SegmentMatcherAt: it reports whether attrs
// belong to the named segment at time now. An excluded id is never in the
// segment; an included id always is; otherwise the segment's condition
// decides, at now. An unknown segment (or a nil Snapshot) never matches. It
// does not allocate.
func (s *Snapshot) MatchSegmentAt(name string, attrs Attributes, now time.Time) bool {
	if s == nil {
		return false
	}
	cs, ok := s.segments[name]
	if !ok {
		return false
	}
	ext := rlExt{attrs: attrs, segs: s, now: now}
	sub := subject{ext: &ext}
	return cs.match(s, &sub)
}

func (cs *compiledSegment) match(s *Snapshot, sub *subject) bool {
	if cs.included != nil || cs.excluded != nil {
		if id, ok := sub.id(cs.byPath); ok {
			if member, decided := cs.static(id); decided {
				return member
			}
		}
	}
	if cs.cond != nil {
		return cs.cond.match(sub.env())
	}
	return false
}

// matchEnv is match for segment() in a condition: it reads the subject
// through the condition's environment (whose segment matcher is the
// Snapshot), so the evaluation's subject stays on the stack.
func (cs *compiledSegment) matchEnv(e *rlEnv) bool {
	if cs.included != nil || cs.excluded != nil {
		var buf [64]byte
		if id, ok := e.lookupPath(cs.byPath).appendID(buf[:0]); ok {
			if member, decided := cs.static(id); decided {
				return member
			}
		}
	}
	if cs.cond != nil && cs.cond.root != nil {
		return evalNode(cs.cond.root, e)
	}
	return false
}

// static decides membership by the static lists: an excluded id is out,
// an included one in; decided is false for any other id.
func (cs *compiledSegment) static(id []byte) (member, decided bool) {
	if cs.excluded.has(id) {
		return false, true
	}
	if cs.included.has(id) {
		return true, true
	}
	return false, false
}

// subject is one evaluation's input, with the canonical id (see Bucket) of
// one attribute path computed at most once: targets, static segments and
// rollouts usually all read the same attribute (userId).
type subject struct {
	list []Attr // the subject as a list, when non-nil (ext.attrs is then nil)
	// ext is the map form, the segment matcher (the Snapshot) and now,
	// in an object of its own (see rlEnv).
	ext *rlExt
	// path is the attribute path whose id is cached (nil: none yet); the
	// id is buf[:n] when ok and n <= len(buf). An id too long for buf is
	// recomputed at each use (n < 0).
	path []string
	ok   bool
	n    int
	buf  [64]byte
}

// id returns the canonical id of the attribute at path, and false when it
// is missing. The bytes are valid until the next call with another path.
func (sub *subject) id(path []string) ([]byte, bool) {
	if sub.path == nil || !samePath(sub.path, path) {
		var b []byte
		var ok bool
		if sub.list != nil && len(path) == 1 {
			// lookupPath, inlined for the commonest case.
			if a := findAttr(sub.list, path[0]); a != nil {
				b, ok = a.Value.appendID(sub.buf[:0])
			}
		} else {
			b, ok = sub.lookupPath(path).appendID(sub.buf[:0])
		}
		sub.path, sub.ok, sub.n = path, ok, len(b)
		if len(b) > len(sub.buf) {
			sub.n = -1
			return b, ok
		}
	}
	if sub.n < 0 {
		return sub.lookupPath(path).appendID(nil)
	}
	return sub.buf[:sub.n], sub.ok
}

// samePath reports whether two attribute paths are equal; compiled paths of
// the default attribute share one slice.
func samePath(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) > 0 && &a[0] == &b[0] {
		return true
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// env is the rule environment of the subject.
func (sub *subject) env() rlEnv {
	return rlEnv{list: sub.list, ext: sub.ext}
}

// lookupPath finds a dotted attribute path of the subject.
func (sub *subject) lookupPath(path []string) Value {
	e := sub.env()
	return e.lookupPath(path)
}

// lookupPath finds a dotted attribute path. A single-element path is one map
// lookup (or one scan of a list).
func (e *rlEnv) lookupPath(path []string) Value {
	v := e.get(path[0])
	for _, p := range path[1:] {
		m, isMap := v.any.(map[string]any)
		if !isMap {
			return Value{}
		}
		v = AnyValue(m[p])
	}
	return v
}

// listMap returns a subject list as a map (the last of a repeated key
// counts). It allocates; the engine calls it only to hand a list subject
// to a SegmentMatcher other than a Snapshot.
func listMap(list []Attr) Attributes {
	m := make(Attributes, len(list))
	for _, a := range list {
		m[a.Key] = a.Value.Any()
	}
	return m
}

// Evaluate decides flag key for the subject attrs at time now (used only by
// progressive rollouts and date rules). It never panics and does not
// allocate. An unknown key returns a Result with Reason ERROR and
// FLAG_NOT_FOUND and a nil Value.
func (s *Snapshot) Evaluate(key string, attrs Attributes, now time.Time) (r Result) {
	if s == nil {
		return Result{Reason: Reason{Kind: ReasonError, ErrorCode: ErrorFlagNotFound, RuleIndex: -1}}
	}
	cf, ok := s.flags[key]
	if !ok {
		return Result{Reason: Reason{Kind: ReasonError, ErrorCode: ErrorFlagNotFound, RuleIndex: -1}}
	}
	ext := rlExt{attrs: attrs, segs: s, now: now}
	sub := subject{ext: &ext}
	s.eval(&r, cf, &sub, nil, 0)
	return r
}

// EvaluateAttrs is Evaluate for a subject stated as a list of Attrs
// instead of a map: the same decision as Evaluate gives the equal map
// (the last of a repeated key counts), without building one. Strings,
// bools and numbers held in Values are read without boxing, so a service
// that states its subject per request with StringValue and friends
// evaluates without allocating.
func (s *Snapshot) EvaluateAttrs(key string, attrs []Attr, now time.Time) (r Result) {
	s.EvaluateAttrsTo(&r, key, attrs, now)
	return r
}

// EvaluateAttrsTo is EvaluateAttrs writing the Result to *out (which it
// overwrites whole), for callers on a hot path that keep a Result of
// their own instead of copying one out.
func (s *Snapshot) EvaluateAttrsTo(out *Result, key string, attrs []Attr, now time.Time) {
	if attrs == nil {
		attrs = []Attr{} // a non-nil list: the list form, with no attributes
	}
	ext := rlExt{now: now}
	s.evaluateTo(out, key, &subject{list: attrs, ext: &ext})
}

// EvaluateTo is Evaluate writing the Result to *out (which it overwrites
// whole).
func (s *Snapshot) EvaluateTo(out *Result, key string, attrs Attributes, now time.Time) {
	ext := rlExt{attrs: attrs, now: now}
	s.evaluateTo(out, key, &subject{ext: &ext})
}

func (s *Snapshot) evaluateTo(out *Result, key string, sub *subject) {
	// *out is not cleared first: every path of eval ends in result, which
	// writes every field.
	if s == nil {
		*out = Result{Reason: Reason{Kind: ReasonError, ErrorCode: ErrorFlagNotFound, RuleIndex: -1}}
		return
	}
	cf, ok := s.flags[key]
	if !ok {
		*out = Result{Reason: Reason{Kind: ReasonError, ErrorCode: ErrorFlagNotFound, RuleIndex: -1}}
		return
	}
	sub.ext.segs = s
	s.eval(out, cf, sub, nil, 0)
}

// EvaluateExplain is Evaluate with a trace of every step considered, for the
// API's explain option and the CLI. It allocates.
func (s *Snapshot) EvaluateExplain(key string, attrs Attributes, now time.Time) (Result, []TraceStep) {
	if s == nil {
		return s.Evaluate(key, attrs, now), nil
	}
	cf, ok := s.flags[key]
	if !ok {
		return s.Evaluate(key, attrs, now), []TraceStep{{Step: "flag", ID: key, Detail: "flag not found"}}
	}
	trace := make([]TraceStep, 0, 4+len(cf.rules))
	var r Result
	ext := rlExt{attrs: attrs, segs: s, now: now}
	sub := subject{ext: &ext}
	s.eval(&r, cf, &sub, &trace, 0)
	return r, trace
}

// why is what the Reason of a result says, passed by value (in registers)
// and written into the result field by field: a Reason built on the stack
// and copied whole stalled on store-to-load forwarding in profiles.
type why struct {
	kind      ReasonKind
	rule      *compiledRule // the matched rule, or nil
	ruleIndex int
	inRollout bool
}

// result fills out with variant idx of cf, for the reason w. It writes
// every field (so out need not be cleared first), except Bucketing and
// HasBucketing when w.inRollout: serve sets those. Results are written in
// place: the struct is large and copying it between frames showed in
// profiles. Reason.Prerequisite and Reason.ErrorCode are left empty; the
// rare callers that need them set them after.
func (s *Snapshot) result(out *Result, cf *compiledFlag, idx int, w why) {
	if !w.inRollout {
		out.Bucketing, out.HasBucketing = BucketingInfo{}, false
	}
	v := &cf.variants[idx]
	out.Value, out.Variant, out.Payload = v.value, v.name, v.payload
	out.ValueJSON, out.PayloadJSON = v.valueJSON, v.payloadJSON
	rs := &out.Reason
	rs.Kind, rs.RuleIndex, rs.InRollout = w.kind, -1, w.inRollout
	rs.RuleID, rs.Segment, rs.Prerequisite, rs.ErrorCode = "", "", "", ""
	if w.rule != nil {
		rs.RuleID, rs.RuleIndex, rs.Segment = w.rule.id, w.ruleIndex, w.rule.segment
	}
	out.FlagVersion = cf.version
	out.Type = cf.typ
	out.FlagMetadata = cf.meta
}

func (s *Snapshot) eval(out *Result, cf *compiledFlag, sub *subject, trace *[]TraceStep, depth int) {
	if !cf.on {
		if trace != nil {
			*trace = append(*trace, TraceStep{Step: "state", Matched: true, Detail: "flag is off: serving off variant " + cf.variants[cf.off].name})
		}
		s.result(out, cf, cf.off, why{kind: ReasonOff})
		return
	}
	for i := range cf.prereqs {
		p := &cf.prereqs[i]
		var pr Result
		s.eval(&pr, p.target, sub, nil, depth+1)
		held := false
		if pr.Reason.Kind != ReasonError && pr.Reason.Kind != ReasonOff {
			for _, a := range p.allowed {
				if p.target.variants[a].name == pr.Variant {
					held = true
					break
				}
			}
		}
		if trace != nil {
			*trace = append(*trace, TraceStep{Step: "prerequisite", ID: p.flag, Matched: held, Detail: fmt.Sprintf("%s served %q (%s)", p.flag, pr.Variant, pr.Reason.Kind)})
		}
		if !held {
			s.result(out, cf, cf.off, why{kind: ReasonPrerequisiteFailed})
			out.Reason.Prerequisite = p.flag
			return
		}
	}
	if cf.targets != nil {
		if id, ok := sub.id(cf.byPath); ok {
			if idx, hit := cf.targets[string(id)]; hit {
				if trace != nil {
					*trace = append(*trace, TraceStep{Step: "target", ID: cf.by, Matched: true, Detail: "subject is individually targeted"})
				}
				s.result(out, cf, idx, why{kind: ReasonTargetMatch})
				return
			}
		}
	}
	for i := range cf.rules {
		r := &cf.rules[i]
		if r.segment != "" {
			if r.seg == nil || !r.seg.match(s, sub) {
				if trace != nil {
					*trace = append(*trace, TraceStep{Step: "rule", ID: r.id, Detail: "not in segment " + r.segment})
				}
				continue
			}
		}
		if r.cond != nil && !r.cond.match(sub.env()) {
			if trace != nil {
				*trace = append(*trace, TraceStep{Step: "rule", ID: r.id, Detail: "condition false: " + r.cond.String()})
			}
			continue
		}
		kind := ReasonRuleMatch
		if r.segment != "" {
			kind = ReasonSegmentMatch
		}
		matched, missing := s.serve(out, cf, &r.serve, sub, why{kind: kind, rule: r, ruleIndex: i}, true)
		if trace != nil {
			d := "matched"
			res := out
			if !matched {
				d = "condition held but subject is outside the rollout share"
				if missing {
					d = "condition held but the bucketing attribute " + cf.by + " is missing"
				}
			} else if res.HasBucketing {
				d = fmt.Sprintf("matched; bucket %d of %d", res.Bucketing.Bucket, BucketCount)
			}
			*trace = append(*trace, TraceStep{Step: "rule", ID: r.id, Matched: matched, Detail: d})
		}
		if matched {
			return
		}
	}
	kind := ReasonDefault
	if cf.static() {
		kind = ReasonStatic
	}
	s.serve(out, cf, &cf.def, sub, why{kind: kind}, false)
	if trace != nil {
		res := out
		d := "no rule matched: serving " + res.Variant
		if res.HasBucketing {
			d += fmt.Sprintf(" (bucket %d of %d)", res.Bucketing.Bucket, BucketCount)
		}
		*trace = append(*trace, TraceStep{Step: "default", Matched: true, Detail: d})
	}
}

// static reports whether cf has no targeting: no prerequisites, targets or
// rules, and a fixed default. Such a flag serves one variant to everyone.
func (cf *compiledFlag) static() bool {
	return len(cf.prereqs) == 0 && len(cf.targets) == 0 && len(cf.rules) == 0 && cf.def.kind == serveFixed
}

// serve applies a Serve. For a rule, matched is false when the subject falls
// outside a percentage or progressive share (the next rule is tried). For
// the default, a miss serves the off variant.
//
// It fills out only when it reports matched (a rollout it consulted
// writes the hash in place either way); missing reports a rule skipped for
// lack of the bucketing attribute.
func (s *Snapshot) serve(out *Result, cf *compiledFlag, sv *compiledServe, sub *subject, w why, isRule bool) (matched, missing bool) {
	switch sv.kind {
	case serveFixed:
		s.result(out, cf, sv.variant, w)
		return true, false
	}
	threshold := sv.threshold
	if sv.kind == serveProgressive {
		t := sub.ext.now.UnixNano()
		if sv.paused {
			t = sv.pausedAt
		}
		threshold = 0
		for _, st := range sv.steps {
			if st.at > t {
				break
			}
			threshold = st.threshold
		}
	}
	id, ok := sub.id(cf.byPath)
	if !ok {
		// No bucketing attribute: a defined, non-random answer. A rule is
		// skipped; the default serves the off variant.
		if isRule {
			return false, true
		}
		s.result(out, cf, cf.off, why{kind: ReasonDefault})
		out.Reason.ErrorCode = ErrorMissingBucketAttr
		return true, false
	}
	// The hash goes straight to its place in the result (32 bytes copied
	// twice showed in profiles). A rule that then does not match leaves it
	// there: whatever serves next goes through result, which rewrites or
	// clears it.
	bucket := sv.bucketTo(&out.Bucketing.Hash, id)
	w.inRollout = true
	if w.kind == ReasonDefault {
		w.kind = ReasonRollout
	}
	var idx int
	switch sv.kind {
	case serveRollout:
		idx = sv.variants[len(sv.variants)-1]
		for i, c := range sv.cumulative {
			if bucket < c {
				idx = sv.variants[i]
				break
			}
		}
	default: // percentage, progressive
		if bucket >= threshold {
			if isRule {
				return false, false
			}
			idx = cf.off
		} else {
			idx = sv.variant
		}
	}
	s.result(out, cf, idx, w)
	out.Bucketing.Seed, out.Bucketing.Bucket = sv.seed, bucket
	out.HasBucketing = true
	return true, false
}
