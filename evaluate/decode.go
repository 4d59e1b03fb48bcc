package evaluate

// The strict decoder of the JSON wire form of a Config (DecodeConfigJSON).
// Every error carries a line:col position and the field path.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flagwire/flagwire/internal/fieldpath"
	"github.com/flagwire/flagwire/internal/suggest"
)

// Limits applied to JSON configs (and, with the flags-as-code loader's own
// limits, to flags-as-code files). Input beyond them is rejected with a
// *LoadError, never with unbounded memory or time.
const (
	// MaxNestingDepth is the deepest nesting of mappings and sequences
	// (YAML) or objects and arrays (JSON) accepted, payloads included.
	MaxNestingDepth = 100
	// MaxConfigJSONSize is the largest JSON config DecodeConfigJSON
	// accepts: 64 MiB.
	MaxConfigJSONSize = 64 << 20
	// MaxLoadFindings is the most findings one *LoadError lists; loading
	// stops after that many.
	MaxLoadFindings = 100
)

// LoadError lists every problem found while decoding a JSON config
// (DecodeConfigJSON) or loading flags as code (package flagfile): malformed input, unknown fields, wrong types,
// limits exceeded, and conflicts between files. Each Finding has Severity
// error, a Code ("yaml-syntax", "json-syntax", "unknown-field", "type",
// "duplicate-key", "missing-field", "limit", "missing-environment",
// "invalid-environment", "conflict", "duplicate-flag",
// "duplicate-segment"), the flag or segment concerned when known, the field
// path (such as "rules[0].percentage") and a Pos.
// YAML syntax errors carry a line but no column (the YAML parser reports
// none). Findings are sorted by position.
type LoadError struct {
	Findings []Finding
}

// Error joins the findings, one per line.
func (e *LoadError) Error() string {
	if len(e.Findings) == 1 {
		return e.Findings[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d errors:", len(e.Findings))
	for _, f := range e.Findings {
		b.WriteString("\n\t")
		b.WriteString(f.String())
	}
	return b.String()
}

// File is one parsed flags-as-code file: a YAML stream of one or more
// documents ("---" separates them), each either a flag document — a mapping

// DecodeConfigJSON strictly decodes the JSON wire form of a Config: the
// body of GET /v1/flags, of a signed bootstrap's config and of a persisted
// last-known config. It rejects input larger than MaxConfigJSONSize or
// nested deeper than MaxNestingDepth, anything but one JSON object
// (trailing data included), unknown fields (naming the closest known one)
// and values of the wrong type. Errors are a *LoadError whose findings have
// the field path ("flags[2].rules[0].percentage") and a 1-based line:col
// (the column counts characters). Field names match exactly and may not
// repeat, as in the SDK's decoder of synced configs and bootstraps, so a
// file this accepts loads the same there. The Config is not compiled: call
// Compile.
//
// The wire form, every field optional unless marked required:
//
//	{
//	  "environment": "prod",              // environment name
//	  "version": 42,                      // config version, increasing
//	  "salt": "prod-salt-2026",           // bucketing salt (see Bucket)
//	  "requireChangeReason": true,        // server refuses writes without one
//	  "attributes": {                     // schema for Lint: path → type,
//	    "plan": "string",                 // one of string, number, bool,
//	    "appVersion": "semver"            // semver, date, list
//	  },
//	  "segments": [{
//	    "key": "beta_testers",            // required, unique
//	    "description": "opted-in users",
//	    "when": "country == 'DE'",        // rule-language condition
//	    "by": "userId",                   // id attribute; default userId
//	    "included": ["8a7f4c91"],         // static ids: always in
//	    "excluded": ["0000"],             // static ids: never in
//	    "version": 3
//	  }],
//	  "flags": [{
//	    "key": "pricing-experiment",      // required, unique
//	    "environment": "prod",            // informative
//	    "type": "string",                 // boolean|string|number|json;
//	                                      // default inferred
//	    "state": "on",                    // on|off; default on
//	    "variants": [{                    // boolean flags may omit them
//	      "name": "A",                    // required, unique
//	      "value": "A",                   // typed value; string: name
//	      "payload": {"price": 23.00, "currency": "EUR"}
//	    }],
//	    "offVariant": "control",          // served when off or missed;
//	                                      // default false / first variant
//	    "targets": [{"variant": "B", "values": ["user-1"]}],
//	    "prerequisites": [{"flagKey": "checkout-new-flow", "variants": [true]}],
//	    "rules": [{                       // first match wins
//	      "id": "rule-1",                 // required, unique in the flag
//	      "when": "country in ['DE','FR']",
//	      "segment": "beta_testers",      // must be a member
//	      "variant": "A",                 // a serve, exactly one of:
//	      "percentage": 25,               //   variant (+ percentage),
//	      "rollout": [{"variant": "A", "weight": 50},
//	                  {"variant": "B", "weight": 50}],  // weights sum to 100
//	      "progressive": {                //   or a timed ramp
//	        "variant": "A",
//	        "steps": [{"at": "2026-06-25T10:00:00Z", "percentage": 5}],
//	        "paused": false,
//	        "pausedAt": "2026-06-26T10:00:00Z"
//	      },
//	      "seed": "pricing-2026"          // bucketing seed override
//	    }],
//	    "default": {"variant": "control"},  // a serve, as in rules
//	    "bucketing": {"seed": "pricing-experiment", "by": "accountId"},
//	    "owners": ["growth-team"],
//	    "metadata": {
//	      "team": "growth", "ttl": "2027-03-31", "jira": "GRO-77",
//	      "riskLevel": "low", "killSwitch": false,
//	      "dashboards": ["https://grafana.example.com/d/pricing"],
//	      "description": "price test"
//	    },
//	    "flagMetadata": {                 // returned with every evaluation:
//	      "release": "1.0.2", "build": 2, // string, boolean or number
//	      "beta": true                    // values (see Flag.FlagMetadata)
//	    },
//	    "version": 7                      // set by the server
//	  }]
//	}
//
// The same fields, with the flag key written flagKey, make up the YAML
// flags-as-code form (see File).
func DecodeConfigJSON(data []byte) (*Config, error) {
	if len(data) > MaxConfigJSONSize {
		return nil, &LoadError{Findings: []Finding{{Severity: SeverityError, Code: "limit", Msg: fmt.Sprintf("config of %d bytes exceeds the limit of %d", len(data), MaxConfigJSONSize)}}}
	}
	if off, ok := jsonDepthOK(data); !ok {
		return nil, &LoadError{Findings: []Finding{{Severity: SeverityError, Code: "limit", Pos: jsonPos(data, off), Msg: fmt.Sprintf("nesting deeper than %d levels", MaxNestingDepth)}}}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &LoadError{Findings: []Finding{{Severity: SeverityError, Code: "json-syntax", Pos: jsonPos(data, int64(len(data)-len(trimmed))), Msg: "a config must be a JSON object"}}}
	}
	// The walk finds what encoding/json lets through but the SDK's decoder
	// does not (a name in other case, a repeated name), with positions.
	if err := jsonWalk(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, jsonLoadError(data, err)
	}
	off := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		for off < int64(len(data)) && strings.IndexByte(" \t\r\n", data[off]) >= 0 {
			off++
		}
		return nil, &LoadError{Findings: []Finding{{Severity: SeverityError, Code: "json-syntax", Pos: jsonPos(data, off), Msg: "unexpected data after the config object"}}}
	}
	return &cfg, nil
}

// jsonDepthOK checks the nesting depth of JSON text without decoding it.
func jsonDepthOK(data []byte) (int64, bool) {
	depth, inStr, esc := 0, false, false
	for i, c := range data {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			if depth++; depth > MaxNestingDepth {
				return int64(i), false
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return 0, true
}

// jsonPos converts a byte offset in data to a 1-based line and character
// column.
func jsonPos(data []byte, off int64) Position {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte{'\n'}) + 1
	ls := bytes.LastIndexByte(before, '\n') + 1
	return Position{Line: line, Col: utf8.RuneCount(before[ls:]) + 1}
}

// jsonLoadError explains a failed decode precisely: it walks the input
// against the Config type to find every unknown field and wrong type with
// its position, and falls back to the decoder's own error.
func jsonLoadError(data []byte, err error) error {
	if werr := jsonWalk(data); werr != nil {
		return werr
	}
	f := Finding{Severity: SeverityError, Code: "json-syntax", Msg: err.Error()}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		f.Pos = jsonPos(data, se.Offset)
		f.Msg = "invalid JSON: " + se.Error()
	case errors.As(err, &te):
		f.Code = "type"
		f.Field = te.Field
		f.Pos = jsonPos(data, te.Offset)
		f.Msg = fmt.Sprintf("cannot decode JSON %s into %s", te.Value, te.Type)
	}
	return &LoadError{Findings: []Finding{f}}
}

// jsonWalk walks data against the Config type and returns every unknown
// or repeated field and wrong type with its position, or nil.
func jsonWalk(data []byte) error {
	w := &jsonWalker{data: data, dec: json.NewDecoder(bytes.NewReader(data)), structs: make(map[reflect.Type]*jsonStruct)}
	w.dec.UseNumber()
	w.check(reflect.TypeOf(Config{}), "")
	if len(w.errs) > 0 {
		SortFindings(w.errs)
		return &LoadError{Findings: w.errs}
	}
	return nil
}

type jsonStruct struct {
	names  []string
	fields map[string]reflect.Type
}

// jsonWalker checks JSON tokens against a Go type.
type jsonWalker struct {
	data    []byte
	dec     *json.Decoder
	errs    []Finding
	structs map[reflect.Type]*jsonStruct
}

var jsonTimeType = reflect.TypeOf(time.Time{})

// structOf lists the JSON fields of a struct type, embedded ones promoted.
func (w *jsonWalker) structOf(t reflect.Type) *jsonStruct {
	if s, ok := w.structs[t]; ok {
		return s
	}
	s := &jsonStruct{fields: make(map[string]reflect.Type)}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			if name == "-" {
				continue
			}
			if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
				add(sf.Type)
				continue
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			if _, dup := s.fields[name]; !dup {
				s.names = append(s.names, name)
				s.fields[name] = sf.Type
			}
		}
	}
	add(t)
	w.structs[t] = s
	return s
}

func (w *jsonWalker) fail(off int64, code, field, format string, args ...any) {
	if len(w.errs) < MaxLoadFindings {
		w.errs = append(w.errs, Finding{Severity: SeverityError, Code: code, Field: field, Pos: jsonPos(w.data, off), Msg: fmt.Sprintf(format, args...)})
	}
}

// start returns the offset where the next token begins.
func (w *jsonWalker) start() int64 {
	off := w.dec.InputOffset()
	for off < int64(len(w.data)) {
		switch w.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

// next reads a token; a syntax error is recorded and ends the walk.
func (w *jsonWalker) next() (json.Token, int64, bool) {
	off := w.start()
	tok, err := w.dec.Token()
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off = se.Offset
		}
		msg := err.Error()
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			msg = "unexpected end of JSON input"
		}
		w.fail(off, "json-syntax", "", "invalid JSON: %s", msg)
		return nil, off, false
	}
	return tok, off, true
}

func jsonDescribe(tok json.Token) string {
	switch x := tok.(type) {
	case json.Delim:
		if x == '{' {
			return "an object"
		}
		return "an array"
	case string:
		if len(x) > 40 {
			x = x[:37] + "..."
		}
		return "the string " + strconv.Quote(x)
	case json.Number:
		return "the number " + x.String()
	case bool:
		return "the boolean " + strconv.FormatBool(x)
	}
	return "null"
}

// check reads one value and checks it against t. It returns false when
// the walk cannot go on (a syntax error). Depth is bounded beforehand by
// jsonDepthOK.
func (w *jsonWalker) check(t reflect.Type, p string) bool {
	tok, off, ok := w.next()
	if !ok {
		return false
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if tok == nil {
		return true
	}
	typeErr := func(want string) bool {
		w.fail(off, "type", p, "expected %s, got %s", want, jsonDescribe(tok))
		return w.skip(tok, off, p)
	}
	if t == jsonTimeType {
		s, isStr := tok.(string)
		if _, err := time.Parse(time.RFC3339, s); !isStr || err != nil {
			return typeErr("a time (RFC 3339, such as \"2026-06-25T10:00:00Z\")")
		}
		return true
	}
	switch t.Kind() {
	case reflect.Interface:
		return w.skip(tok, off, p)
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return typeErr("a string")
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return typeErr("true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n, ok := tok.(json.Number); !ok {
			return typeErr("an integer")
		} else if _, err := n.Int64(); err != nil {
			return typeErr("an integer")
		}
	case reflect.Float32, reflect.Float64:
		if n, ok := tok.(json.Number); !ok {
			return typeErr("a number")
		} else if _, err := strconv.ParseFloat(n.String(), 64); err != nil {
			return typeErr("a finite number")
		}
	case reflect.Slice, reflect.Array:
		if tok != json.Delim('[') {
			return typeErr("an array")
		}
		for i := 0; w.dec.More(); i++ {
			if !w.check(t.Elem(), fieldpath.Index(p, i)) {
				return false
			}
		}
		_, _, ok := w.next()
		return ok
	case reflect.Map, reflect.Struct:
		if tok != json.Delim('{') {
			return typeErr("an object")
		}
		var st *jsonStruct
		if t.Kind() == reflect.Struct {
			st = w.structOf(t)
		}
		seen := map[string]bool{}
		for w.dec.More() {
			ktok, koff, ok := w.next()
			if !ok {
				return false
			}
			key, _ := ktok.(string)
			if seen[key] {
				// The SDK's decoder refuses a repeated name too: a file
				// that verifies here must load the same there.
				w.fail(koff, "duplicate-key", p, "duplicate key %q", key)
			}
			seen[key] = true
			et := reflect.TypeOf((*any)(nil)).Elem()
			kp := fieldpath.Join(p, key)
			if st == nil {
				et = t.Elem()
			} else if ft, ok := st.fields[key]; ok {
				et = ft
			} else {
				// Names match exactly, as in the SDK's decoder ("Flags"
				// is not "flags": the SDK would load no flags from it).
				w.fail(koff, "unknown-field", p, "unknown field %q%s", key, suggest.Field(key, st.names))
			}
			if !w.check(et, kp) {
				return false
			}
		}
		_, _, ok := w.next()
		return ok
	}
	return true
}

// skip consumes the rest of a free-form value whose first token, at off,
// was tok, checking that its numbers fit a float64 (as encoding/json
// requires for an any).
func (w *jsonWalker) skip(tok json.Token, off int64, p string) bool {
	checkNum := func(t json.Token, off int64) {
		if n, ok := t.(json.Number); ok {
			if _, err := strconv.ParseFloat(n.String(), 64); err != nil {
				w.fail(off, "type", p, "number %s does not fit a float64", n)
			}
		}
	}
	checkNum(tok, off)
	if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
		for level := 1; level > 0; {
			t, off, ok := w.next()
			if !ok {
				return false
			}
			checkNum(t, off)
			switch t {
			case json.Delim('{'), json.Delim('['):
				level++
			case json.Delim('}'), json.Delim(']'):
				level--
			}
		}
	}
	return true
}

// SortFindings orders findings by file, line, column, then by what they
// are about (flag, segment, rule, code, message), so output is
// deterministic.
func SortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := &fs[i], &fs[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		if a.Flag != b.Flag {
			return a.Flag < b.Flag
		}
		if a.Segment != b.Segment {
			return a.Segment < b.Segment
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Msg < b.Msg
	})
}
