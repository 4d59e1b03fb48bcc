package evaluate

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limits applied by Compile. Inputs beyond them are rejected with a
// CompileError rather than risking unbounded memory or time.
const (
	MaxFlags            = 100000
	MaxRulesPerFlag     = 1000
	MaxVariantsPerFlag  = 1000
	MaxSegmentIDs       = 5000000
	MaxKeyLength        = 256
	MaxPrerequisiteDeep = 32
	// MaxPrerequisiteWork bounds the flag evaluations one evaluation may
	// cause through prerequisites (counting shared prerequisites once per
	// path), so a hostile config cannot make one evaluation exponential.
	MaxPrerequisiteWork = 256
	// MaxFlagMetadataEntries bounds the entries of one flag's FlagMetadata.
	MaxFlagMetadataEntries = 64
	// MaxFlagMetadataValueLen bounds a FlagMetadata string value (and key), in bytes.
	MaxFlagMetadataValueLen = 1024
)

// reservedFlagMetadataKeys are Flagwire's own entries in OFREP answers'
// metadata and in the OpenFeature provider's flag metadata.
var reservedFlagMetadataKeys = [...]string{"source", "reasonKind", "ruleId", "segment", "prerequisite", "bucket", "flagVersion", "flagType", "payload", "errorCode"}

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-]*$`)

// Severity grades a Finding.
type Severity string

// The severities. Errors fail compilation (and lint); warnings do not.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Position is a place in a source file. Line and Col are 1-based; a zero
// Line means unknown.
type Position struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

// String formats the position as file:line:col, omitting what is unknown.
func (p Position) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(p.Line))
		if p.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Col))
		}
	}
	return b.String()
}

// Finding is one compile error or lint finding.
type Finding struct {
	Severity Severity `json:"severity"`
	// Code is a stable short identifier such as "unknown-segment".
	Code string `json:"code"`
	// Flag, Segment and Rule locate the finding in the model.
	Flag    string `json:"flag,omitempty"`
	Segment string `json:"segment,omitempty"`
	Rule    string `json:"rule,omitempty"`
	// Field is the offending field ("when", "rollout", "variant", …).
	Field string `json:"field,omitempty"`
	// Pos is the position in the source file when known (flags as code);
	// otherwise, for rule syntax errors, the position inside the rule text.
	Pos Position `json:"pos"`
	// Msg says what is wrong.
	Msg string `json:"message"`
}

// String formats the finding as "file:line:col: severity: flag X rule Y: msg".
func (f Finding) String() string {
	var b strings.Builder
	if p := f.Pos.String(); p != "" {
		b.WriteString(p)
		b.WriteString(": ")
	}
	b.WriteString(string(f.Severity))
	b.WriteString(": ")
	if f.Flag != "" {
		fmt.Fprintf(&b, "flag %q", f.Flag)
	} else if f.Segment != "" {
		fmt.Fprintf(&b, "segment %q", f.Segment)
	}
	if f.Rule != "" {
		fmt.Fprintf(&b, " rule %q", f.Rule)
	}
	if f.Field != "" {
		if f.Flag != "" || f.Segment != "" || f.Rule != "" {
			b.WriteByte(' ')
		}
		b.WriteString(f.Field)
	}
	if f.Flag != "" || f.Segment != "" || f.Rule != "" || f.Field != "" {
		b.WriteString(": ")
	}
	b.WriteString(f.Msg)
	return b.String()
}

// CompileError lists every error found while compiling a Config. Nothing of
// a config that fails to compile is used.
type CompileError struct {
	Findings []Finding
}

// Error joins the findings, one per line.
func (e *CompileError) Error() string { return joinFindings("compile: ", e.Findings) }

// joinFindings formats findings after prefix: the one finding, or their
// count and each on a line of its own.
func joinFindings(prefix string, fs []Finding) string {
	if len(fs) == 1 {
		return prefix + fs[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s%d errors:", prefix, len(fs))
	for _, f := range fs {
		b.WriteString("\n\t")
		b.WriteString(f.String())
	}
	return b.String()
}

// Locator translates a finding's model location (Flag, Segment, Rule,
// Field, and for a rule condition the Pos inside the condition text) into a
// source position, setting f.Pos. The flags-as-code loader attaches one to
// the Configs it builds (Config.Locator).
type Locator interface {
	Locate(f *Finding)
}

type compiledVariant struct {
	name        string
	value       any
	payload     any
	valueJSON   []byte
	payloadJSON []byte
}

type serveKind uint8

const (
	serveNone serveKind = iota
	serveFixed
	servePercentage
	serveRollout
	serveProgressive
)

type compiledStep struct {
	at        int64 // unix nanoseconds
	threshold uint32
}

type compiledServe struct {
	kind       serveKind
	variant    int
	threshold  uint32   // percentage
	cumulative []uint32 // rollout: cumulative upper bounds
	variants   []int    // rollout: variant indexes
	steps      []compiledStep
	paused     bool
	pausedAt   int64
	seed       string
	prefix     string // salt ":" seed ":", the start of every hashed input
}

type compiledRule struct {
	id      string
	cond    *Condition
	segment string
	seg     *compiledSegment // segment, resolved at compile time
	serve   compiledServe
}

type compiledPrereq struct {
	flag    string
	allowed []int
	target  *compiledFlag
}

type compiledFlag struct {
	key      string
	typ      FlagType
	on       bool
	variants []compiledVariant
	off      int
	targets  map[string]int
	rules    []compiledRule
	def      compiledServe
	seed     string
	by       string
	byPath   []string
	prereqs  []compiledPrereq
	version  int64
	source   *Flag
	// meta is the flag's FlagMetadata, normalized (numbers as float64);
	// nil when empty. Shared by every Result: read-only.
	meta map[string]any
}

type compiledSegment struct {
	key      string
	cond     *Condition
	by       string
	byPath   []string
	included *idSet
	excluded *idSet
}

// Snapshot is a compiled Config: immutable, safe for concurrent use, and
// cheap to swap atomically. Build one with Compile.
type Snapshot struct {
	env      string
	version  int64
	salt     string
	flags    map[string]*compiledFlag
	segments map[string]*compiledSegment
	keys     []string
	config   *Config
}

// Compile checks cfg and builds an immutable Snapshot from it. It rejects
// unknown segment references, duplicate keys and rule ids, weights that do not
// sum to 100, variants that do not match the flag type, prerequisite cycles,
// bad rule syntax, regexes and versions. Every problem found is reported in a
// *CompileError (a Finding each: its Code, and the flag, segment, rule and
// field it is about); nothing is half-applied. A reference to a flag or
// segment that exists but has errors of its own is not reported again as
// unknown, and a cycle is reported once, at the flag (segment) with the
// smallest key from which it is reached. cfg is not modified, and it must
// not be modified afterwards (the Snapshot keeps it for Config).
func Compile(cfg *Config) (*Snapshot, error) { return compileWith(cfg, nil) }

func compileWith(cfg *Config, prev *Snapshot) (*Snapshot, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	c := &compiler{cfg: cfg, prev: prev}
	snap := c.compile()
	if len(c.errs) > 0 {
		if cfg.Locator != nil {
			for i := range c.errs {
				cfg.Locator.Locate(&c.errs[i])
			}
		}
		return nil, &CompileError{Findings: c.errs}
	}
	return snap, nil
}

type compiler struct {
	cfg  *Config
	prev *Snapshot // reuse.go: compiled segments to reuse, or nil
	errs []Finding
	// broken holds the keys of the segments and flags that exist but did
	// not compile: a reference to one is not also reported as unknown.
	brokenSegments, brokenFlags map[string]bool
}

// missingSegment reports whether a reference to segment key is to a
// segment the config does not have (not one that failed to compile).
func (c *compiler) missingSegment(s *Snapshot, key string) bool {
	_, ok := s.segments[key]
	return !ok && !c.brokenSegments[key]
}

func (c *compiler) errorf(f Finding, format string, args ...any) {
	f.Severity = SeverityError
	f.Msg = fmt.Sprintf(format, args...)
	c.errs = append(c.errs, f)
}

func (c *compiler) compile() *Snapshot {
	cfg := c.cfg
	s := &Snapshot{
		env:      cfg.Environment,
		version:  cfg.Version,
		salt:     cfg.Salt,
		flags:    make(map[string]*compiledFlag, len(cfg.Flags)),
		segments: make(map[string]*compiledSegment, len(cfg.Segments)),
		config:   cfg,
	}
	if len(cfg.Flags) > MaxFlags {
		c.errorf(Finding{Code: "limit"}, "%d flags exceed the limit of %d", len(cfg.Flags), MaxFlags)
		return nil
	}
	for i := range cfg.Segments {
		seg := &cfg.Segments[i]
		cs := c.compileSegment(seg)
		if cs == nil {
			if c.brokenSegments == nil {
				c.brokenSegments = map[string]bool{}
			}
			c.brokenSegments[seg.Key] = true
			continue
		}
		if _, dup := s.segments[seg.Key]; dup {
			c.errorf(Finding{Code: "duplicate-segment", Segment: seg.Key, Field: "key"}, "duplicate segment key")
			continue
		}
		s.segments[seg.Key] = cs
	}
	// Segment conditions may reference other segments: reject unknown ones
	// and cycles.
	for _, cs := range s.segments {
		if cs.cond == nil {
			continue
		}
		for _, ref := range cs.cond.Segments() {
			if c.missingSegment(s, ref) {
				c.errorf(Finding{Code: "unknown-segment", Segment: cs.key, Field: "when"}, "references unknown segment %q", ref)
			}
		}
	}
	c.checkSegmentCycles(s)

	for i := range cfg.Flags {
		f := &cfg.Flags[i]
		cf := c.compileFlag(f, s)
		if cf == nil {
			if c.brokenFlags == nil {
				c.brokenFlags = map[string]bool{}
			}
			c.brokenFlags[f.Key] = true
			continue
		}
		if _, dup := s.flags[f.Key]; dup {
			c.errorf(Finding{Code: "duplicate-flag", Flag: f.Key, Field: "flagKey"}, "duplicate flag key")
			continue
		}
		s.flags[f.Key] = cf
		s.keys = append(s.keys, f.Key)
	}
	// Resolve prerequisites now that every flag is known.
	for _, cf := range s.flags {
		for i := range cf.prereqs {
			p := &cf.prereqs[i]
			t, ok := s.flags[p.flag]
			if !ok {
				if !c.brokenFlags[p.flag] {
					c.errorf(Finding{Code: "unknown-prerequisite", Flag: cf.key, Field: "prerequisites"}, "prerequisite flag %q does not exist", p.flag)
				}
				continue
			}
			p.target = t
			for _, ref := range cf.source.Prerequisites[i].Variants {
				idx, err := t.variantIndex(ref)
				if err != nil {
					c.errorf(Finding{Code: "unknown-variant", Flag: cf.key, Field: "prerequisites"}, "prerequisite %q: %v", p.flag, err)
					continue
				}
				p.allowed = append(p.allowed, idx)
			}
			if len(cf.source.Prerequisites[i].Variants) == 0 {
				c.errorf(Finding{Code: "invalid-prerequisite", Flag: cf.key, Field: "prerequisites"}, "prerequisite %q lists no variants", p.flag)
			}
		}
	}
	sort.Strings(s.keys) // before the cycle check: a cycle is reported at its smallest key
	c.checkPrereqCycles(s)
	return s
}

func (c *compiler) checkSegmentCycles(s *Snapshot) {
	const (
		white = 0
		grey  = 1
		black = 2
	)
	color := make(map[string]int, len(s.segments))
	var visit func(k string, path []string) bool
	visit = func(k string, path []string) bool {
		switch color[k] {
		case grey:
			c.errorf(Finding{Code: "segment-cycle", Segment: k, Field: "when"}, "segment cycle: %s", strings.Join(append(path, k), " → "))
			return false
		case black:
			return true
		}
		color[k] = grey
		cs := s.segments[k]
		if cs != nil && cs.cond != nil {
			for _, ref := range cs.cond.Segments() {
				if _, ok := s.segments[ref]; ok && !visit(ref, append(path, k)) {
					color[k] = black
					return false
				}
			}
		}
		color[k] = black
		return true
	}
	keys := make([]string, 0, len(s.segments))
	for k := range s.segments {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		visit(k, nil)
	}
}

func (c *compiler) checkPrereqCycles(s *Snapshot) {
	color := make(map[string]int, len(s.flags))
	var visit func(k string, path []string, depth int) bool
	visit = func(k string, path []string, depth int) bool {
		switch color[k] {
		case 1:
			c.errorf(Finding{Code: "prerequisite-cycle", Flag: k, Field: "prerequisites"}, "prerequisite cycle: %s", strings.Join(append(path, k), " → "))
			return false
		case 2:
			return true
		}
		if depth > MaxPrerequisiteDeep {
			c.errorf(Finding{Code: "limit", Flag: k, Field: "prerequisites"}, "prerequisite chain deeper than %d", MaxPrerequisiteDeep)
			return false
		}
		color[k] = 1
		for _, p := range s.flags[k].prereqs {
			if p.target != nil && !visit(p.flag, append(path, k), depth+1) {
				color[k] = 2
				return false
			}
		}
		color[k] = 2
		return true
	}
	for _, k := range s.keys {
		visit(k, nil, 0)
	}
	if len(c.errs) > 0 {
		return
	}
	// The work of one evaluation: 1 + the work of each prerequisite. Acyclic
	// by now, so memoized recursion terminates.
	work := make(map[string]int, len(s.flags))
	var cost func(k string) int
	cost = func(k string) int {
		if w, ok := work[k]; ok {
			return w
		}
		w := 1
		for _, p := range s.flags[k].prereqs {
			if p.target != nil {
				w += cost(p.flag)
			}
			if w > MaxPrerequisiteWork {
				w = MaxPrerequisiteWork + 1
				break
			}
		}
		work[k] = w
		return w
	}
	for _, k := range s.keys {
		if cost(k) > MaxPrerequisiteWork {
			c.errorf(Finding{Code: "limit", Flag: k, Field: "prerequisites"}, "evaluating this flag would evaluate more than %d flags through prerequisites", MaxPrerequisiteWork)
		}
	}
}

func (c *compiler) compileSegment(seg *Segment) *compiledSegment {
	if cs := c.reusedSegment(seg); cs != nil {
		return cs
	}
	where := Finding{Segment: seg.Key}
	if !validKey(seg.Key) {
		c.errorf(withField(where, "key", "invalid-key"), "invalid segment key %q: use letters, digits, '-', '_' and '.' (at most %d characters)", seg.Key, MaxKeyLength)
		return nil
	}
	if n := len(seg.Included) + len(seg.Excluded); n > MaxSegmentIDs {
		c.errorf(withField(where, "included", "limit"), "%d ids exceed the limit of %d per segment", n, MaxSegmentIDs)
		return nil
	}
	cs := &compiledSegment{key: seg.Key, by: seg.By}
	if cs.by == "" {
		cs.by = DefaultBucketBy
	}
	cs.byPath = attrPath(cs.by)
	if seg.When != "" {
		cond, err := ParseCondition(seg.When)
		if err != nil {
			c.ruleError(where, "when", err)
			return nil
		}
		cs.cond = cond
	}
	cs.included = newIDSet(seg.Included)
	cs.excluded = newIDSet(seg.Excluded)
	return cs
}

func withField(f Finding, field, code string) Finding {
	f.Field = field
	f.Code = code
	return f
}

func (c *compiler) ruleError(where Finding, field string, err error) {
	f := withField(where, field, "syntax")
	if se, ok := err.(*SyntaxError); ok {
		f.Pos = Position{Line: se.Line, Col: se.Col}
	}
	c.errorf(f, "%v", err)
}

func validKey(k string) bool {
	return k != "" && len(k) <= MaxKeyLength && keyPattern.MatchString(k)
}

func (c *compiler) compileFlag(f *Flag, s *Snapshot) *compiledFlag {
	where := Finding{Flag: f.Key}
	if !validKey(f.Key) {
		c.errorf(withField(where, "flagKey", "invalid-key"), "invalid flag key %q: use letters, digits, '-', '_' and '.' (at most %d characters)", f.Key, MaxKeyLength)
		return nil
	}
	nerr := len(c.errs)
	cf := &compiledFlag{key: f.Key, version: f.Version, source: f, seed: f.Bucketing.Seed, by: f.Bucketing.By}
	if cf.seed == "" {
		cf.seed = f.Key
	}
	if cf.by == "" {
		cf.by = DefaultBucketBy
	}
	cf.byPath = attrPath(cf.by)
	switch f.State {
	case "", StateOn:
		cf.on = true
	case StateOff:
	default:
		c.errorf(withField(where, "state", "invalid-state"), "state %q must be \"on\" or \"off\"", f.State)
	}
	cf.meta = c.compileFlagMetadata(f, where)
	if !c.compileVariants(f, cf, where) {
		return nil
	}
	// Off variant.
	if f.OffVariant != nil {
		idx, err := cf.variantIndex(f.OffVariant)
		if err != nil {
			c.errorf(withField(where, "offVariant", "unknown-variant"), "%v", err)
		}
		cf.off = idx
	} else if cf.typ == TypeBoolean {
		cf.off, _ = cf.variantIndex(false)
	}
	// Targets.
	for ti, t := range f.Targets {
		idx, err := cf.variantIndex(t.Variant)
		if err != nil {
			c.errorf(withField(where, fmt.Sprintf("targets[%d].variant", ti), "unknown-variant"), "%v", err)
			continue
		}
		if cf.targets == nil {
			cf.targets = make(map[string]int)
		}
		for _, v := range t.Values {
			if _, dup := cf.targets[v]; !dup {
				cf.targets[v] = idx
			}
		}
	}
	// Rules.
	if len(f.Rules) > MaxRulesPerFlag {
		c.errorf(withField(where, "rules", "limit"), "%d rules exceed the limit of %d", len(f.Rules), MaxRulesPerFlag)
		return nil
	}
	cf.rules = make([]compiledRule, 0, len(f.Rules))
	var ids map[string]bool
	if len(f.Rules) > 1 {
		ids = make(map[string]bool, len(f.Rules))
	}
	for ri := range f.Rules {
		r := &f.Rules[ri]
		rw := where
		rw.Rule = r.ID
		if r.ID == "" {
			rw.Rule = fmt.Sprintf("#%d", ri+1)
			c.errorf(withField(rw, "id", "missing-rule-id"), "rule has no id")
		} else if ids[r.ID] {
			c.errorf(withField(rw, "id", "duplicate-rule-id"), "duplicate rule id")
		}
		if ids != nil {
			ids[r.ID] = true
		}
		cr := compiledRule{id: r.ID, segment: r.Segment}
		if r.When != "" {
			cond, err := ParseCondition(r.When)
			if err != nil {
				c.ruleError(rw, "when", err)
			} else {
				cr.cond = cond
				for _, ref := range cond.Segments() {
					if c.missingSegment(s, ref) {
						c.errorf(withField(rw, "when", "unknown-segment"), "references unknown segment %q", ref)
					}
				}
			}
		}
		if r.Segment != "" {
			if cr.seg = s.segments[r.Segment]; cr.seg == nil && !c.brokenSegments[r.Segment] {
				c.errorf(withField(rw, "segment", "unknown-segment"), "references unknown segment %q", r.Segment)
			}
		}
		cr.serve = c.compileServe(&r.Serve, cf, rw, true)
		cf.rules = append(cf.rules, cr)
	}
	if f.Default != nil {
		cf.def = c.compileServe(f.Default, cf, withField(where, "default", ""), false)
	} else {
		cf.def = compiledServe{kind: serveFixed, variant: cf.off}
	}
	var seenPrereq map[string]bool
	if len(f.Prerequisites) > 0 {
		seenPrereq = make(map[string]bool, len(f.Prerequisites))
	}
	for _, p := range f.Prerequisites {
		if p.FlagKey == f.Key {
			c.errorf(withField(where, "prerequisites", "prerequisite-cycle"), "flag lists itself as a prerequisite")
			continue
		}
		if seenPrereq[p.FlagKey] {
			c.errorf(withField(where, "prerequisites", "duplicate-prerequisite"), "prerequisite %q is listed twice: merge its variants into one entry", p.FlagKey)
			continue
		}
		seenPrereq[p.FlagKey] = true
		cf.prereqs = append(cf.prereqs, compiledPrereq{flag: p.FlagKey})
	}
	if len(c.errs) > nerr {
		return nil
	}
	return cf
}

// compileFlagMetadata checks f.FlagMetadata and returns its normalized
// copy (numbers as float64), or nil when it is empty or invalid.
func (c *compiler) compileFlagMetadata(f *Flag, where Finding) map[string]any {
	if len(f.FlagMetadata) == 0 {
		return nil
	}
	if len(f.FlagMetadata) > MaxFlagMetadataEntries {
		c.errorf(withField(where, "flagMetadata", "limit"), "%d flagMetadata entries exceed the limit of %d", len(f.FlagMetadata), MaxFlagMetadataEntries)
		return nil
	}
	keys := make([]string, 0, len(f.FlagMetadata))
	for k := range f.FlagMetadata {
		keys = append(keys, k)
	}
	sort.Strings(keys) // findings in a stable order
	out := make(map[string]any, len(keys))
	ok := true
	for _, k := range keys {
		field := "flagMetadata." + k
		switch {
		case k == "":
			c.errorf(withField(where, "flagMetadata", "invalid-flag-metadata"), "flagMetadata has an empty key")
			ok = false
			continue
		case len(k) > MaxFlagMetadataValueLen:
			c.errorf(withField(where, "flagMetadata", "limit"), "flagMetadata key of %d bytes exceeds the limit of %d", len(k), MaxFlagMetadataValueLen)
			ok = false
			continue
		case IsReservedFlagMetadataKey(k):
			c.errorf(withField(where, field, "invalid-flag-metadata"), "flagMetadata key %q is reserved: Flagwire's own OFREP and OpenFeature metadata use it", k)
			ok = false
			continue
		}
		v, err := flagMetadataValue(f.FlagMetadata[k])
		if err != nil {
			c.errorf(withField(where, field, "invalid-flag-metadata"), "flagMetadata %q: %v", k, err)
			ok = false
			continue
		}
		if s, isStr := v.(string); isStr && len(s) > MaxFlagMetadataValueLen {
			c.errorf(withField(where, field, "limit"), "flagMetadata %q: string of %d bytes exceeds the limit of %d", k, len(s), MaxFlagMetadataValueLen)
			ok = false
			continue
		}
		out[k] = v
	}
	if !ok {
		return nil
	}
	return out
}

// IsReservedFlagMetadataKey reports whether k is one of the names Flagwire
// uses for its own entries in OFREP answers' metadata and in the
// OpenFeature provider's flag metadata: source, reasonKind, ruleId,
// segment, prerequisite, bucket, flagVersion, flagType, payload and
// errorCode.
// Compile rejects them as Flag.FlagMetadata keys, so a user entry never
// hides, and is never hidden by, one of Flagwire's.
func IsReservedFlagMetadataKey(k string) bool {
	for _, r := range reservedFlagMetadataKeys {
		if k == r {
			return true
		}
	}
	return false
}

// flagMetadataValue normalizes one FlagMetadata value: a string, a bool, or
// a finite number as float64.
func flagMetadataValue(v any) (any, error) {
	switch x := v.(type) {
	case string, bool:
		return x, nil
	case nil:
		return nil, fmt.Errorf("null is not allowed: use a string, a boolean or a number")
	}
	f, ok := toFloat(v)
	if !ok {
		if n, isNumber := v.(json.Number); isNumber {
			return nil, fmt.Errorf("number %s does not fit a float64", n)
		}
		return nil, fmt.Errorf("%T is not allowed: use a string, a boolean or a number", v)
	}
	if nonFinite(f) {
		return nil, fmt.Errorf("number %v is not finite", f)
	}
	return f, nil
}

func (c *compiler) compileVariants(f *Flag, cf *compiledFlag, where Finding) bool {
	typ := f.Type
	if len(f.Variants) > MaxVariantsPerFlag {
		c.errorf(withField(where, "variants", "limit"), "%d variants exceed the limit of %d", len(f.Variants), MaxVariantsPerFlag)
		return false
	}
	if len(f.Variants) == 0 {
		switch typ {
		case "", TypeBoolean:
			cf.typ = TypeBoolean
			cf.variants = booleanVariants // shared and read-only
			return true
		default:
			c.errorf(withField(where, "variants", "missing-variants"), "a %s flag must declare its variants", typ)
			return false
		}
	}
	if typ == "" {
		typ = inferType(f.Variants[0].Value)
	}
	switch typ {
	case TypeBoolean, TypeString, TypeNumber, TypeJSON:
	default:
		c.errorf(withField(where, "type", "invalid-type"), "type %q must be boolean, string, number or json", typ)
		return false
	}
	cf.typ = typ
	names := make(map[string]bool, len(f.Variants))
	ok := true
	for i, v := range f.Variants {
		field := fmt.Sprintf("variants[%d]", i)
		if v.Name == "" {
			c.errorf(withField(where, field, "invalid-variant"), "variant has no name")
			ok = false
			continue
		}
		if names[v.Name] {
			c.errorf(withField(where, field, "duplicate-variant"), "duplicate variant name %q", v.Name)
			ok = false
			continue
		}
		names[v.Name] = true
		val, err := normalizeValue(typ, v.Name, v.Value)
		if err != nil {
			c.errorf(withField(where, field, "type-mismatch"), "variant %q: %v", v.Name, err)
			ok = false
			continue
		}
		payload, err := normalizeJSON(v.Payload)
		if err != nil {
			c.errorf(withField(where, field+".payload", "invalid-payload"), "variant %q payload: %v", v.Name, err)
			ok = false
			continue
		}
		cf.variants = append(cf.variants, newCompiledVariant(v.Name, val, payload))
	}
	return ok
}

// booleanVariants are the variants of every boolean flag that declares
// none. Shared between flags and snapshots; never modified.
var booleanVariants = []compiledVariant{newCompiledVariant("true", true, nil), newCompiledVariant("false", false, nil)}

// defaultByPath is the shared path of the default bucketing attribute.
var defaultByPath = []string{DefaultBucketBy}

// attrPath splits a dotted attribute path, sharing the common default.
func attrPath(p string) []string {
	if p == DefaultBucketBy {
		return defaultByPath
	}
	return strings.Split(p, ".")
}

func newCompiledVariant(name string, value, payload any) compiledVariant {
	cv := compiledVariant{name: name, value: value, payload: payload}
	cv.valueJSON, _ = json.Marshal(value)
	if payload != nil {
		cv.payloadJSON, _ = json.Marshal(payload)
	}
	return cv
}

func inferType(v any) FlagType {
	switch v.(type) {
	case bool:
		return TypeBoolean
	case nil, string:
		return TypeString
	case float64, float32, int, int64, int32, uint, uint64, uint32, json.Number:
		return TypeNumber
	default:
		return TypeJSON
	}
}

// normalizeValue converts a variant value to its canonical Go form for typ:
// bool, string, float64, or a JSON-decoded value.
func normalizeValue(typ FlagType, name string, v any) (any, error) {
	switch typ {
	case TypeBoolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case nil:
			switch name {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
		return nil, fmt.Errorf("value %s is not a boolean", describe(v))
	case TypeString:
		switch x := v.(type) {
		case string:
			return x, nil
		case nil:
			return name, nil
		}
		return nil, fmt.Errorf("value %s is not a string", describe(v))
	case TypeNumber:
		f, ok := toFloat(v)
		if !ok || nonFinite(f) {
			return nil, fmt.Errorf("value %s is not a finite number", describe(v))
		}
		return f, nil
	default:
		if v == nil {
			return nil, fmt.Errorf("a json variant needs a value")
		}
		return normalizeJSON(v)
	}
}

func describe(v any) string {
	if v == nil {
		return "(missing)"
	}
	b, err := json.Marshal(v)
	if err != nil || len(b) > 40 {
		return fmt.Sprintf("of type %T", v)
	}
	return string(b)
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case int16:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint8:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// normalizeJSON turns any value (as decoded from JSON or YAML) into the
// canonical JSON-decoded form: map[string]any, []any, string, float64, bool.
func normalizeJSON(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("not representable as JSON: %v", err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// variantIndex resolves a variant reference: a variant name, or for boolean
// flags true/false, or a scalar equal to a variant's value.
func (cf *compiledFlag) variantIndex(ref any) (int, error) {
	switch x := ref.(type) {
	case string:
		for i, v := range cf.variants {
			if v.name == x {
				return i, nil
			}
		}
		if cf.typ == TypeString {
			for i, v := range cf.variants {
				if v.value == x {
					return i, nil
				}
			}
		}
	case bool:
		for i, v := range cf.variants {
			if b, ok := v.value.(bool); ok && b == x {
				return i, nil
			}
		}
	case nil:
		return 0, fmt.Errorf("no variant given")
	default:
		if f, ok := toFloat(x); ok && cf.typ == TypeNumber {
			for i, v := range cf.variants {
				if v.value == f {
					return i, nil
				}
			}
		}
	}
	names := make([]string, len(cf.variants))
	for i, v := range cf.variants {
		names[i] = v.name
	}
	return 0, fmt.Errorf("unknown variant %s (variants: %s)", describe(ref), strings.Join(names, ", "))
}

func (c *compiler) compileServe(sv *Serve, cf *compiledFlag, where Finding, isRule bool) compiledServe {
	out := compiledServe{seed: sv.Seed}
	if out.seed == "" {
		out.seed = cf.seed
	}
	set := 0
	if sv.Rollout != nil {
		set++
	}
	if sv.Progressive != nil {
		set++
	}
	if sv.Variant != nil || sv.Percentage != nil {
		set++
	}
	if set != 1 {
		if set == 0 {
			c.errorf(withField(where, "variant", "missing-serve"), "serves nothing: set variant, percentage, rollout or progressive")
		} else {
			c.errorf(withField(where, "variant", "ambiguous-serve"), "set only one of variant/percentage, rollout and progressive")
		}
		return out
	}
	defaultVariant := func(ref any, field string) int {
		if ref == nil {
			if cf.typ == TypeBoolean {
				ref = true
			} else {
				c.errorf(withField(where, field, "missing-variant"), "a %s flag must name the variant served", cf.typ)
				return 0
			}
		}
		idx, err := cf.variantIndex(ref)
		if err != nil {
			c.errorf(withField(where, field, "unknown-variant"), "%v", err)
		}
		return idx
	}
	switch {
	case sv.Rollout != nil:
		out.kind = serveRollout
		if len(sv.Rollout) == 0 {
			c.errorf(withField(where, "rollout", "invalid-rollout"), "rollout lists no variants")
			return out
		}
		var sum float64
		var cum uint32
		badWeight := false
		for i, wv := range sv.Rollout {
			if wv.Weight < 0 || math.IsNaN(wv.Weight) || wv.Weight > 100 {
				c.errorf(withField(where, fmt.Sprintf("rollout[%d].weight", i), "invalid-weight"), "weight %v must be between 0 and 100", wv.Weight)
				badWeight = true
				continue
			}
			sum += wv.Weight
			idx, err := cf.variantIndex(wv.Variant)
			if err != nil {
				c.errorf(withField(where, fmt.Sprintf("rollout[%d].variant", i), "unknown-variant"), "%v", err)
				continue
			}
			cum = percentToBuckets(sum)
			out.cumulative = append(out.cumulative, cum)
			out.variants = append(out.variants, idx)
		}
		if badWeight {
			return out // every bad weight is reported; their sum means nothing
		}
		if math.Abs(sum-100) > 1e-6 {
			c.errorf(withField(where, "rollout", "weights-sum"), "weights sum to %v, not 100", sum)
		}
		if n := len(out.cumulative); n > 0 {
			out.cumulative[n-1] = BucketCount
		}
	case sv.Progressive != nil:
		p := sv.Progressive
		out.kind = serveProgressive
		out.variant = defaultVariant(p.Variant, "progressive.variant")
		if len(p.Steps) == 0 {
			c.errorf(withField(where, "progressive.steps", "invalid-progressive"), "progressive rollout has no steps")
		}
		var prevAt time.Time
		var prevPct float64
		for i, st := range p.Steps {
			if st.Percentage < 0 || st.Percentage > 100 || math.IsNaN(st.Percentage) {
				c.errorf(withField(where, fmt.Sprintf("progressive.steps[%d]", i), "invalid-percentage"), "percentage %v must be between 0 and 100", st.Percentage)
			}
			if i > 0 && !st.At.After(prevAt) {
				c.errorf(withField(where, fmt.Sprintf("progressive.steps[%d]", i), "invalid-progressive"), "step times must increase (%s is not after %s)", st.At.Format(time.RFC3339), prevAt.Format(time.RFC3339))
			}
			if i > 0 && st.Percentage < prevPct {
				c.errorf(withField(where, fmt.Sprintf("progressive.steps[%d]", i), "invalid-progressive"), "a ramp never goes down (%v%% after %v%%): pause it or change the flag instead", st.Percentage, prevPct)
			}
			prevAt, prevPct = st.At, st.Percentage
			out.steps = append(out.steps, compiledStep{at: st.At.UnixNano(), threshold: percentToBuckets(st.Percentage)})
		}
		if p.Paused {
			out.paused = true
			if p.PausedAt.IsZero() {
				c.errorf(withField(where, "progressive.pausedAt", "invalid-progressive"), "a paused ramp needs pausedAt")
			}
			out.pausedAt = p.PausedAt.UnixNano()
		}
	case sv.Percentage != nil:
		pct := *sv.Percentage
		if pct < 0 || pct > 100 || math.IsNaN(pct) {
			c.errorf(withField(where, "percentage", "invalid-percentage"), "percentage %v must be between 0 and 100", pct)
		}
		out.kind = servePercentage
		out.threshold = percentToBuckets(pct)
		out.variant = defaultVariant(sv.Variant, "variant")
	default:
		out.kind = serveFixed
		out.variant = defaultVariant(sv.Variant, "variant")
	}
	if out.kind != serveFixed {
		out.prefix = c.cfg.Salt + ":" + out.seed + ":"
	}
	_ = isRule
	return out
}
