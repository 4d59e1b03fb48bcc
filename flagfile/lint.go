package flagfile

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/fieldpath"
	"github.com/flagwire/flagwire/internal/suggest"
)

// DefaultMaxStaticSegmentIDs is the number of static ids above which Lint
// warns about a segment (segment bloat: shard it, or target by attribute).
const DefaultMaxStaticSegmentIDs = 10000

// The attribute types an [evaluate.Config] Attributes schema may declare.
const (
	AttrString = "string"
	AttrNumber = "number"
	AttrBool   = "bool"
	AttrSemver = "semver"
	AttrDate   = "date"
	AttrList   = "list"
)

// LintOptions tunes Lint. The zero value uses every default.
type LintOptions struct {
	// MaxStaticSegmentIDs is the number of static ids (included plus
	// excluded) above which a segment gets a "large-segment" warning.
	// Zero means DefaultMaxStaticSegmentIDs; negative disables the check.
	MaxStaticSegmentIDs int
}

// Lint runs the flags-as-code pipeline checks on cfg as of now and
// returns every finding, sorted by file, line and column (then by flag,
// segment, rule and code). The codes, with their severities:
//
//   - every [evaluate.Compile] error (error), with Compile's codes;
//   - "invalid-schema" (error): a Config.Attributes type that is not one
//     of string, number, bool, semver, date, list;
//   - "unknown-attribute" (error): a rule, segment or bucketing attribute
//     missing from the declared schema (only when a schema is declared);
//   - "attribute-type" (error): a rule uses an attribute as a type its
//     schema declaration contradicts (a number compared with a string…);
//   - "unreachable-rule" (warning): a rule after a rule that always
//     serves (no condition, no segment, no partial percentage), or with
//     the same condition and segment as an earlier rule that always serves
//     when it matches;
//   - "pii" (error): an email-, phone- or card-shaped value (card numbers
//     pass the Luhn check) in a variant's name, value or payload, or a
//     payload key such as email, phone, ssn or password;
//   - "expired-flag": metadata.ttl has passed — an error while the flag is
//     on (CI fails if expired flags remain active), a warning when off;
//   - "invalid-ttl" (error): a ttl that is neither YYYY-MM-DD nor RFC 3339;
//     a date-only ttl expires at the end of that day, UTC;
//   - "missing-ttl" (warning): a flag without a ttl that is no kill switch;
//   - "missing-owners" (warning): a flag without owners;
//   - "large-segment" (warning): a static segment over the threshold;
//   - "kill-switch-type" (warning): metadata.killSwitch on a non-boolean
//     flag.
//
// Findings on a Config loaded from files (LoadDir, MergeFiles) carry the
// file:line:col of what they are about — for rule conditions, of the very
// attribute or token. Lint does not modify cfg. A nil cfg has no findings.
func Lint(cfg *evaluate.Config, now time.Time, opts LintOptions) []evaluate.Finding {
	if cfg == nil {
		return nil
	}
	l := &linter{cfg: cfg, now: now, opts: opts}
	if _, err := evaluate.Compile(cfg); err != nil {
		if ce, ok := err.(*evaluate.CompileError); ok {
			l.out = append(l.out, ce.Findings...)
		}
	}
	l.schema()
	for i := range cfg.Segments {
		l.segment(&cfg.Segments[i])
	}
	for i := range cfg.Flags {
		l.flag(&cfg.Flags[i])
	}
	if cfg.Locator != nil {
		for i := range l.out {
			cfg.Locator.Locate(&l.out[i])
		}
	}
	evaluate.SortFindings(l.out)
	return l.out
}

// HasErrors reports whether any finding has Severity error: the CI gate.
func HasErrors(findings []evaluate.Finding) bool {
	for _, f := range findings {
		if f.Severity == evaluate.SeverityError {
			return true
		}
	}
	return false
}

type linter struct {
	cfg  *evaluate.Config
	now  time.Time
	opts LintOptions
	out  []evaluate.Finding
}

func (l *linter) add(sev evaluate.Severity, f evaluate.Finding, format string, args ...any) {
	f.Severity = sev
	f.Msg = fmt.Sprintf(format, args...)
	l.out = append(l.out, f)
}

func lintValidType(t string) bool {
	switch t {
	case AttrString, AttrNumber, AttrBool, AttrSemver, AttrDate, AttrList:
		return true
	}
	return false
}

func (l *linter) schema() {
	for _, k := range slices.Sorted(maps.Keys(l.cfg.Attributes)) {
		if t := l.cfg.Attributes[k]; !lintValidType(t) {
			l.add(evaluate.SeverityError, evaluate.Finding{Code: "invalid-schema", Field: "attributes." + k}, "attribute %q has type %q: use string, number, bool, semver, date or list", k, t)
		}
	}
}

// attribute checks one attribute path used at where against the schema;
// kind is the type the use implies ("" when it implies none).
func (l *linter) attribute(where evaluate.Finding, attr, kind string) {
	schema := l.cfg.Attributes
	if len(schema) == 0 || attr == "" {
		return
	}
	declared, ok := schema[attr]
	if !ok {
		l.add(evaluate.SeverityError, withField(where, where.Field, "unknown-attribute"), "attribute %q is not in the declared schema%s", attr, lintSuggestAttr(attr, schema))
		return
	}
	if kind == "" || !lintValidType(declared) || lintCompatible(declared, kind) {
		return
	}
	l.add(evaluate.SeverityError, withField(where, where.Field, "attribute-type"), "attribute %q is declared %s but used as %s", attr, declared, kind)
}

// lintCompatible reports whether an attribute declared as declared may be
// used as kind. Strings, semvers and dates are all strings on the wire, and
// the semver() and date() functions parse strings, so they mix.
func lintCompatible(declared, kind string) bool {
	if declared == kind {
		return true
	}
	stringy := func(t string) bool { return t == AttrString || t == AttrSemver || t == AttrDate }
	return stringy(declared) && stringy(kind)
}

func lintSuggestAttr(attr string, schema map[string]string) string {
	best, bestD := "", 1<<30
	for k := range schema {
		d := suggest.Distance(strings.ToLower(attr), strings.ToLower(k))
		if d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	if best != "" && suggest.Close(attr, bestD) {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return ""
}

// condition checks the attributes a condition uses. It returns the parsed
// condition, or nil when it does not parse (Compile reports that).
func (l *linter) condition(where evaluate.Finding, src string) *evaluate.Condition {
	if src == "" {
		return nil
	}
	cond, err := evaluate.ParseCondition(src)
	if err != nil {
		return nil
	}
	for _, ref := range cond.AttributeRefs() {
		w := where
		w.Field = "when"
		w.Pos = evaluate.Position{Line: ref.Line, Col: ref.Col}
		l.attribute(w, ref.Path, lintRefKind(ref))
	}
	return cond
}

// lintRefKind is the schema type an attribute reference implies.
func lintRefKind(ref evaluate.AttributeRef) string {
	if lintValidType(ref.Kind) {
		return ref.Kind
	}
	return ""
}

func (l *linter) segment(s *evaluate.Segment) {
	where := evaluate.Finding{Segment: s.Key}
	l.condition(where, s.When)
	if s.By != "" {
		l.attribute(withField(where, "by", ""), s.By, "")
	}
	limit := l.opts.MaxStaticSegmentIDs
	if limit == 0 {
		limit = DefaultMaxStaticSegmentIDs
	}
	if n := len(s.Included) + len(s.Excluded); limit > 0 && n > limit {
		l.add(evaluate.SeverityWarning, withField(where, "included", "large-segment"), "static segment of %d ids exceeds %d: keep segments small, shard them, or use a rule-based segment", n, limit)
	}
}

func (l *linter) flag(f *evaluate.Flag) {
	where := evaluate.Finding{Flag: f.Key}
	if f.Bucketing.By != "" {
		l.attribute(withField(where, "bucketing.by", ""), f.Bucketing.By, "")
	}
	l.rules(f, where)
	l.pii(f, where)
	l.ttl(f, where)
	if len(f.Owners) == 0 {
		l.add(evaluate.SeverityWarning, withField(where, "owners", "missing-owners"), "flag has no owners")
	}
	if f.Metadata.KillSwitch {
		if t := lintFlagType(f); t != evaluate.TypeBoolean {
			l.add(evaluate.SeverityWarning, withField(where, "metadata.killSwitch", "kill-switch-type"), "a kill switch should be a boolean flag, not %s", t)
		}
	}
}

// lintFlagType is the flag's type as Compile infers it.
func lintFlagType(f *evaluate.Flag) evaluate.FlagType {
	if f.Type != "" {
		return f.Type
	}
	if len(f.Variants) == 0 {
		return evaluate.TypeBoolean
	}
	switch f.Variants[0].Value.(type) {
	case bool:
		return evaluate.TypeBoolean
	case nil, string:
		return evaluate.TypeString
	case float64, float32, int, int64, int32, uint, uint64, uint32, json.Number:
		return evaluate.TypeNumber
	}
	return evaluate.TypeJSON
}

// withField returns f with Field and Code set.
func withField(f evaluate.Finding, field, code string) evaluate.Finding {
	f.Field = field
	f.Code = code
	return f
}

// lintAlwaysServes reports whether a serve serves every subject that
// reaches it (fixed variants and rollouts; a percentage only at 100).
func lintAlwaysServes(s *evaluate.Serve) bool {
	switch {
	case s.Progressive != nil:
		return false
	case len(s.Rollout) > 0:
		return true
	case s.Percentage != nil:
		return *s.Percentage >= 100
	}
	return s.Variant != nil
}

func (l *linter) rules(f *evaluate.Flag, where evaluate.Finding) {
	catchAll := ""
	always := make(map[string]string) // condition key → rule that always serves it
	for i := range f.Rules {
		r := &f.Rules[i]
		rw := where
		rw.Rule = r.ID
		if r.ID == "" {
			rw.Rule = "#" + strconv.Itoa(i+1)
		}
		cond := l.condition(rw, r.When)
		key := r.When
		if cond != nil {
			key = cond.String()
		}
		key = strings.Join(strings.Fields(key), " ") + "\x00" + r.Segment
		switch {
		case catchAll != "":
			l.add(evaluate.SeverityWarning, withField(rw, "id", "unreachable-rule"), "rule is unreachable: rule %q before it always serves", catchAll)
		case always[key] != "":
			l.add(evaluate.SeverityWarning, withField(rw, "id", "unreachable-rule"), "rule is unreachable: rule %q has the same condition and always serves when it holds", always[key])
		}
		if lintAlwaysServes(&r.Serve) {
			if r.When == "" && r.Segment == "" && catchAll == "" {
				catchAll = rw.Rule
			}
			if _, seen := always[key]; !seen {
				always[key] = rw.Rule
			}
		}
	}
}

func (l *linter) ttl(f *evaluate.Flag, where evaluate.Finding) {
	w := withField(where, "metadata.ttl", "")
	if f.Metadata.TTL == "" {
		if !f.Metadata.KillSwitch {
			l.add(evaluate.SeverityWarning, withField(w, "metadata", "missing-ttl"), "flag has no metadata.ttl (sunset date)")
		}
		return
	}
	expiry, ok := lintParseTTL(f.Metadata.TTL)
	if !ok {
		l.add(evaluate.SeverityError, withField(w, w.Field, "invalid-ttl"), "ttl %q is not a date (YYYY-MM-DD) or an RFC 3339 time", f.Metadata.TTL)
		return
	}
	if l.now.Before(expiry) {
		return
	}
	if f.State == evaluate.StateOff {
		l.add(evaluate.SeverityWarning, withField(w, w.Field, "expired-flag"), "flag expired on %s and is off: remove it", f.Metadata.TTL)
		return
	}
	l.add(evaluate.SeverityError, withField(w, w.Field, "expired-flag"), "flag expired on %s but is still on: clean it up or extend the ttl", f.Metadata.TTL)
}

// lintParseTTL returns the instant a ttl passes: the end of a YYYY-MM-DD
// day (UTC), or an RFC 3339 time.
func lintParseTTL(s string) (time.Time, bool) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.AddDate(0, 0, 1), true
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// ---------------------------------------------------------------------
// PII.

var (
	lintEmailRE = regexp.MustCompile(`(?i)[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}`)
	lintCardRE  = regexp.MustCompile(`\d(?:[ \-]?\d){12,18}`)
	lintPhoneRE = regexp.MustCompile(`\+?\(?\d[\d ()\-.]{6,20}\d`)
	lintDateRE  = regexp.MustCompile(`\d{4}-\d{2}-\d{2}|\d{1,2}:\d{2}`)
)

// lintSensitiveKeys are payload keys that hold PII or secrets (compared
// lowercased, without '_', '-' and spaces); lintSensitiveSuffixes also
// match as suffixes ("userEmail", "adminPassword").
var (
	lintSensitiveKeys     = []string{"email", "emailaddress", "mail", "phone", "phonenumber", "mobile", "mobilenumber", "ssn", "socialsecuritynumber", "password", "passwd", "pwd", "creditcard", "creditcardnumber", "cardnumber", "ccnumber", "cvv", "iban", "dateofbirth", "dob"}
	lintSensitiveSuffixes = []string{"email", "emailaddress", "phonenumber", "password", "cardnumber"}
)

func lintSensitiveKey(k string) bool {
	n := strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(k))
	for _, s := range lintSensitiveKeys {
		if n == s {
			return true
		}
	}
	for _, s := range lintSensitiveSuffixes {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

// lintPII says what kind of PII a string looks like, or "".
func lintPII(s string) string {
	if lintEmailRE.MatchString(s) {
		return "an email address"
	}
	for _, m := range lintCardRE.FindAllStringIndex(s, -1) {
		if (m[0] == 0 || s[m[0]-1] != '+') && lintLuhn(s[m[0]:m[1]]) {
			return "a payment card number" // "+49…" is a phone number
		}
	}
	for _, m := range lintPhoneRE.FindAllString(s, -1) {
		if lintPhone(m) {
			return "a phone number"
		}
	}
	return ""
}

// lintLuhn reports whether the digits of s (13 to 19 of them, not all the
// same) pass the Luhn check.
func lintLuhn(s string) bool {
	var digits []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits = append(digits, s[i]-'0')
		}
	}
	if len(digits) < 13 || len(digits) > 19 {
		return false
	}
	same := true
	sum := 0
	for i := range digits {
		d := int(digits[len(digits)-1-i])
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		same = same && digits[i] == digits[0]
	}
	return sum%10 == 0 && !same
}

// lintPhone accepts a phone-shaped candidate: E.164 ("+49 30 1234567") or
// a grouped national number ("(555) 123-4567", "555.123.4567") of 10 to 15
// digits — not a date, a time, a version or an IP address.
func lintPhone(m string) bool {
	if lintDateRE.MatchString(m) {
		return false
	}
	digits, seps, dots := 0, 0, 0
	for i := 0; i < len(m); i++ {
		switch c := m[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
			seps++
		case c == ' ' || c == '-' || c == '(' || c == ')':
			seps++
		}
	}
	if strings.HasPrefix(m, "+") {
		return digits >= 8 && digits <= 15
	}
	if dots > 0 && dots != 2 {
		return false // versions, IP addresses, decimals
	}
	return seps > 0 && digits >= 10 && digits <= 15
}

func (l *linter) pii(f *evaluate.Flag, where evaluate.Finding) {
	for i, v := range f.Variants {
		p := fieldpath.Index("variants", i)
		if kind := lintPII(v.Name); kind != "" {
			l.add(evaluate.SeverityError, withField(where, p+".name", "pii"), "variant name looks like %s: keep personal data out of flag configs", kind)
		}
		l.piiValue(where, p+".value", v.Value, 0)
		l.piiValue(where, p+".payload", v.Payload, 0)
	}
}

func (l *linter) piiValue(where evaluate.Finding, p string, v any, depth int) {
	if depth > evaluate.MaxNestingDepth {
		return
	}
	switch x := v.(type) {
	case string:
		if kind := lintPII(x); kind != "" {
			l.add(evaluate.SeverityError, withField(where, p, "pii"), "value looks like %s: keep personal data out of payloads", kind)
		}
	case float64:
		if x >= 1e12 && x < 1e19 && x == float64(int64(x)) && lintLuhn(strconv.FormatInt(int64(x), 10)) {
			l.add(evaluate.SeverityError, withField(where, p, "pii"), "number looks like a payment card number: keep personal data out of payloads")
		}
	case int64:
		if x >= 1e12 && lintLuhn(strconv.FormatInt(x, 10)) {
			l.add(evaluate.SeverityError, withField(where, p, "pii"), "number looks like a payment card number: keep personal data out of payloads")
		}
	case int:
		l.piiValue(where, p, int64(x), depth)
	case []any:
		for i, e := range x {
			l.piiValue(where, fieldpath.Index(p, i), e, depth+1)
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			kp := fieldpath.Join(p, k)
			if lintSensitiveKey(k) {
				if e := x[k]; e != nil && e != "" && e != false {
					l.add(evaluate.SeverityError, withField(where, kp, "pii"), "payload key %q suggests personal data or a secret", k)
					continue
				}
			}
			l.piiValue(where, kp, x[k], depth+1)
		}
	}
}
