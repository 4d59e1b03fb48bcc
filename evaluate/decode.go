package evaluate

// The one decoder of the JSON wire form of a Config and of its flags and
// segments (DecodeJSON, DecodeConfigJSON), used by the SDK, the server and
// the CLI alike. Every error carries a line:col position and the field path.

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

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

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
	// MaxConfigJSONSize is the largest JSON input DecodeJSON and
	// DecodeConfigJSON accept: 64 MiB. It is the Flag API's one config
	// size limit: the SDK's and the server's wire.MaxConfigBytes is this
	// constant.
	MaxConfigJSONSize = 64 << 20
	// MaxLoadFindings is the most findings one *LoadError lists; loading
	// stops after that many.
	MaxLoadFindings = 100
)

// LoadError lists every problem found while decoding a JSON config
// (DecodeJSON, DecodeConfigJSON) or loading flags as code (package
// flagfile): malformed input, unknown fields, wrong types,
// limits exceeded, and conflicts between files. Each Finding has Severity
// error, a Code ("yaml-syntax", "json-syntax", "unknown-field", "type",
// "duplicate-key", "missing-field", "limit", "missing-environment",
// "invalid-environment", "conflict", "duplicate-flag",
// "duplicate-segment"), the flag or segment concerned when known, the field
// path (such as "rules[0].percentage") and a Pos (file:line:col; for a
// YAML syntax error, where the YAML parser stopped). Findings are sorted by
// position.
type LoadError struct {
	Findings []Finding
}

// Error joins the findings, one per line.
func (e *LoadError) Error() string { return joinFindings("", e.Findings) }

// DecodeConfigJSON strictly decodes the JSON wire form of a Config: the
// body of GET /v1/flags, of a signed bootstrap's config and of a persisted
// last-known config. It is DecodeJSON with the zero JSONOptions: it
// rejects input larger than MaxConfigJSONSize or nested deeper than
// MaxNestingDepth, anything but one JSON object (trailing data included),
// field names that are unknown (naming the closest known one), in another
// case or repeated, and values of the wrong type. Errors are a *LoadError
// whose findings have the field path ("flags[2].rules[0].percentage") and
// a 1-based line:col (the column counts characters). The SDK reads synced
// configs and bootstraps with the same decoder (skipping unknown fields
// only), so a file this accepts loads the same there. The Config is not
// compiled: call Compile.
//
// The wire form, every field optional unless marked required:
//
//	{
//	  "environment": "prod",              // environment name
//	  "version": 42,                      // config version, increasing
//	  "salt": "prod-salt-2026",           // bucketing salt (see Bucket)
//	  "requireChangeReason": true,        // server refuses writes without one
//	  "requireApproval": true,            // writes need a second principal's approval
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
// flags-as-code form (see package flagfile).
func DecodeConfigJSON(data []byte) (*Config, error) {
	var cfg Config
	if err := DecodeJSON(data, &cfg, JSONOptions{}); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// JSONOptions adjusts DecodeJSON. The zero value is the strict decoder of
// DecodeConfigJSON and of the server's writes.
type JSONOptions struct {
	// AllowUnknownFields skips members the model does not know instead of
	// refusing them. It is for readers of a server that may be newer than
	// they are: the SDK (synced configs, bootstraps, last-known files), the
	// server reading its own data dir, and flagwire apply reading the
	// server's state. Known names still match exactly and may not repeat.
	AllowUnknownFields bool
	// ExactNumbers keeps the numbers of free-form values (variant values
	// and payloads, offVariant, target, serve and prerequisite variants,
	// flagMetadata values) as json.Number, as written, instead of float64.
	// It is for the server, which stores and serves back what a writer
	// sent. Either way such a number must fit a float64.
	ExactNumbers bool
}

// DecodeJSON decodes the JSON wire form of a Config, a Flag or a Segment
// (the fields are listed at DecodeConfigJSON) into v: a *Config, *Flag or
// *Segment, or a pointer to a struct that embeds a Flag or a Segment
// beside fields of its own (a write body). It is the one decoder of that
// form: the SDK's synced configs, bootstraps and last-known files, the
// server's writes and data dir, and the CLI's sign, verify and apply use
// it, so no two of them disagree about what a document means.
//
// Member names match exactly, case included, and may not repeat at any
// depth, payloads included. An unknown member is refused, naming the
// closest known one, unless opts.AllowUnknownFields. A value of the wrong
// type is refused naming its field path ("flags[2].rules[0].percentage"),
// as is a number that does not fit a float64. The input must be one JSON
// object of valid UTF-8, at most MaxConfigJSONSize bytes and nested at
// most MaxNestingDepth levels deep, counted from a config's root: a flag
// or segment sits two levels down (in "flags" or "segments"), so one
// accepted alone still fits in its config.
//
// Errors are a *LoadError whose findings have a Code ("json-syntax",
// "unknown-field", "duplicate-key", "type" or "limit"), the field path
// and a 1-based line:col (the column counts characters). An unknown,
// repeated or wrong-typed member does not stop the decoder: it reads on
// without it, so one error lists up to MaxLoadFindings findings (fewer
// for inputs of several MiB, which it rereads a bounded number of times).
// v's previous contents are discarded; after an error v is zero. A v
// that is not a non-nil pointer to a struct is an error.
func DecodeJSON(data []byte, v any, opts JSONOptions) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("evaluate.DecodeJSON: %T is not a non-nil pointer to a struct", v)
	}
	rv = rv.Elem()
	rv.SetZero()
	d := &jsonDecoder{root: rv.Type(), opts: opts, what: jsonEntity(rv.Type())}
	if d.root != reflect.TypeFor[Config]() {
		d.base = 2 // {"flags": [ … ]}
	}
	if len(data) > MaxConfigJSONSize {
		return &LoadError{Findings: []Finding{{Severity: SeverityError, Code: "limit", Msg: fmt.Sprintf("%s of %d bytes exceeds the limit of %d", d.what, len(data), MaxConfigJSONSize)}}}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return &LoadError{Findings: []Finding{{Severity: SeverityError, Code: "json-syntax", Pos: jsonPos(data, int64(len(data)-len(trimmed))), Msg: fmt.Sprintf("a %s must be a JSON object", d.what)}}}
	}
	cfg, _ := v.(*Config)
	if cfg != nil {
		// Size the flag list up front: growing it flag by flag costs a
		// tenth of decoding a large config. Every flag has a "key" member
		// (so do segments and some payloads: a few too many at worst),
		// and the capacity is bounded by the input's size.
		if n := min(bytes.Count(data, []byte(`"key":`)), 2*len(data)/int(reflect.TypeFor[Flag]().Size())); n > 0 {
			cfg.Flags = make([]Flag, 0, n)
		}
	}
	err := d.decode(data, v, rv)
	if cfg != nil && len(cfg.Flags) == 0 && cap(cfg.Flags) > 0 {
		cfg.Flags = nil // no "flags" member: as if never sized
	}
	return err
}

// jsonReread bounds how many bytes DecodeJSON rereads to find more
// findings after the first.
const jsonReread = 8 << 20

// jsonDecoder is one DecodeJSON call.
type jsonDecoder struct {
	root reflect.Type // what v points to
	opts JSONOptions
	what string // "config", "flag", "segment": for messages
	base int    // nesting levels above the input in a config document
}

// decode runs go-json-experiment over data. After an error it blanks out
// the offending member or element (spaces keep every offset in place) and
// reads again, to report what else is wrong.
func (d *jsonDecoder) decode(data []byte, v any, rv reflect.Value) error {
	opts := jsonv2.JoinOptions(
		jsonv2.RejectUnknownMembers(!d.opts.AllowUnknownFields),
		jsonv2.MatchCaseInsensitiveNames(false),
		jsontext.AllowDuplicateNames(false),
		jsontext.AllowInvalidUTF8(false),
		jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(d.unmarshalAny)),
	)
	buf := data
	var errs []Finding
	for reread := len(data); ; reread += len(data) {
		err := jsonv2.Unmarshal(buf, v, opts)
		if err == nil {
			break
		}
		rv.SetZero() // Unmarshal merges into what is there
		f, at, isName := d.finding(buf, err)
		errs = append(errs, f)
		if at < 0 || len(errs) >= MaxLoadFindings || reread+len(data) > jsonReread {
			break
		}
		if len(errs) == 1 {
			buf = bytes.Clone(data)
		}
		if !jsonBlank(buf, int(at), isName) {
			break
		}
	}
	if errs == nil {
		return nil
	}
	rv.SetZero()
	SortFindings(errs)
	return &LoadError{Findings: errs}
}

// jsonAnyError is a free-form value DecodeJSON refuses: a number that
// does not fit a float64, or nesting too deep.
type jsonAnyError struct {
	off  int64
	code string
	msg  string
}

func (e *jsonAnyError) Error() string { return e.msg }

// unmarshalAny decodes a free-form value (variant values, payloads, …):
// objects, arrays, strings, booleans, null, and numbers as float64 or
// json.Number (JSONOptions.ExactNumbers). It bounds the nesting depth.
func (d *jsonDecoder) unmarshalAny(dec *jsontext.Decoder, v *any) error {
	x, err := d.readAny(dec)
	*v = x
	return err
}

func (d *jsonDecoder) readAny(dec *jsontext.Decoder) (any, error) {
	switch dec.PeekKind() {
	case '0':
		raw, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return nil, &jsonAnyError{off: dec.InputOffset() - int64(len(raw)), code: "type", msg: fmt.Sprintf("number %s does not fit a float64", raw)}
		}
		if d.opts.ExactNumbers {
			return json.Number(raw), nil
		}
		return f, nil
	case '{', '[':
	default:
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		switch tok.Kind() {
		case 't', 'f':
			return tok.Bool(), nil
		case '"':
			return tok.String(), nil
		}
		return nil, nil
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	if dec.StackDepth()+d.base > MaxNestingDepth {
		return nil, &jsonAnyError{off: dec.InputOffset() - 1, code: "limit", msg: fmt.Sprintf("nesting deeper than %d levels", MaxNestingDepth)}
	}
	end := jsontext.Kind(']')
	var obj map[string]any
	var arr []any
	if tok.Kind() == '{' {
		end, obj = '}', map[string]any{}
	} else {
		arr = []any{}
	}
	for dec.PeekKind() != end {
		var name string
		if obj != nil {
			nt, err := dec.ReadToken()
			if err != nil {
				return nil, err
			}
			name = nt.String()
		}
		x, err := d.readAny(dec)
		if err != nil {
			return nil, err
		}
		if obj != nil {
			obj[name] = x
		} else {
			arr = append(arr, x)
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	if obj != nil {
		return obj, nil
	}
	return arr, nil
}

// finding explains a decode error of buf. at is the offset of the member
// name (isName) or value to blank out before reading on; -1 stops.
func (d *jsonDecoder) finding(buf []byte, err error) (f Finding, at int64, isName bool) {
	f = Finding{Severity: SeverityError, Code: "json-syntax", Msg: "invalid JSON: " + err.Error()}
	var ae *jsonAnyError
	var se *jsontext.SyntacticError
	var me *jsonv2.SemanticError
	switch {
	case errors.As(err, &se):
		f.Pos = jsonPos(buf, se.ByteOffset)
		switch {
		case errors.Is(se.Err, jsontext.ErrDuplicateName):
			f.Code = "duplicate-key"
			f.Field, _ = d.path(se.JSONPointer.Parent())
			f.Msg = fmt.Sprintf("duplicate key %q", se.JSONPointer.LastToken())
			return f, se.ByteOffset, true
		case se.JSONPointer == "" && strings.Contains(se.Err.Error(), "after top-level value"):
			f.Msg = fmt.Sprintf("unexpected data after the %s object", d.what)
		case errors.Is(se.Err, io.ErrUnexpectedEOF):
			f.Msg = "invalid JSON: unexpected end of JSON input"
		default:
			f.Msg = "invalid JSON: " + se.Err.Error()
		}
		return f, -1, false
	case errors.As(err, &me) && errors.As(err, &ae):
		f.Code, f.Msg, f.Pos = ae.code, ae.msg, jsonPos(buf, ae.off)
		if ae.code != "limit" {
			f.Field, _ = d.path(me.JSONPointer)
		}
		return f, ae.off, false
	case errors.As(err, &me):
		f.Pos = jsonPos(buf, me.ByteOffset)
		if errors.Is(me.Err, jsonv2.ErrUnknownName) {
			name := me.JSONPointer.LastToken()
			var t reflect.Type
			f.Code = "unknown-field"
			f.Field, t = d.path(me.JSONPointer.Parent())
			names, _ := jsonFields(t)
			f.Msg = fmt.Sprintf("unknown field %q%s", name, suggest.Field(name, names))
			return f, me.ByteOffset, true
		}
		f.Code = "type"
		f.Field, _ = d.path(me.JSONPointer)
		f.Msg = fmt.Sprintf("expected %s, got %s", jsonExpected(me.GoType, me.JSONKind), jsonDescribe(buf, int(me.ByteOffset)))
		return f, me.ByteOffset, false
	}
	return f, -1, false
}

// path turns a JSON pointer into a field path ("flags[2].rules[0].when")
// and the Go type there (nil when unknown). It stops at a free-form value:
// a path into a payload names the payload.
func (d *jsonDecoder) path(ptr jsontext.Pointer) (string, reflect.Type) {
	p, t := "", d.root
	for tok := range ptr.Tokens() {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t == nil || t.Kind() == reflect.Interface {
			break
		}
		switch t.Kind() {
		case reflect.Slice, reflect.Array:
			i, _ := strconv.Atoi(tok)
			p, t = fieldpath.Index(p, i), t.Elem()
		case reflect.Map:
			p, t = fieldpath.Join(p, tok), t.Elem()
		case reflect.Struct:
			_, types := jsonFields(t)
			p, t = fieldpath.Join(p, tok), types[tok]
		default:
			p, t = fieldpath.Join(p, tok), nil
		}
	}
	return p, t
}

// jsonFields lists the JSON member names of struct type t (nil: none) and
// their Go types, as go-json-experiment maps them: the json tag's name, or
// the Go name; an embedded struct without a name (or tagged embed) adds its
// members.
func jsonFields(t reflect.Type) ([]string, map[string]reflect.Type) {
	var names []string
	types := map[string]reflect.Type{}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := range t.NumField() {
			sf := t.Field(i)
			name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if name == "-" && opts == "" {
				continue
			}
			ft := sf.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ((sf.Anonymous && name == "") || strings.Contains(","+opts+",", ",embed,")) {
				add(ft)
				continue
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			if _, dup := types[name]; !dup {
				names = append(names, name)
				types[name] = sf.Type
			}
		}
	}
	if t != nil && t.Kind() == reflect.Struct {
		add(t)
	}
	return names, types
}

// jsonEntity names what a struct type decodes: "config", "flag",
// "segment", or "value".
func jsonEntity(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Config]():
		return "config"
	case reflect.TypeFor[Flag]():
		return "flag"
	case reflect.TypeFor[Segment]():
		return "segment"
	}
	for i := range t.NumField() {
		if sf := t.Field(i); sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			if w := jsonEntity(sf.Type); w != "value" {
				return w
			}
		}
	}
	return "value"
}

// jsonExpected says what a Go type takes in JSON.
func jsonExpected(t reflect.Type, got jsontext.Kind) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "another value"
	}
	if t == reflect.TypeFor[time.Time]() {
		return `a time (RFC 3339, such as "2026-06-25T10:00:00Z")`
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		if got == '0' {
			return "a finite number"
		}
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// jsonDescribe says what the JSON value at buf[off] is, for messages.
func jsonDescribe(buf []byte, off int) string {
	v := jsonValueAt(buf, off)
	switch v.Kind() {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "the boolean " + string(v)
	case 'n':
		return "null"
	case '0':
		return "the number " + string(v)
	case '"':
		s, _ := jsontext.AppendUnquote(nil, v)
		if len(s) > 40 {
			s = append(s[:37], "..."...)
		}
		return "the string " + strconv.Quote(string(s))
	}
	return "something else"
}

// jsonValueAt returns the JSON value that starts at buf[off], or nil.
func jsonValueAt(buf []byte, off int) jsontext.Value {
	if off < 0 || off >= len(buf) {
		return nil
	}
	v, err := jsontext.NewDecoder(bytes.NewReader(buf[off:]), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)).ReadValue()
	if err != nil {
		return nil
	}
	return v
}

// jsonBlank replaces with spaces the object member whose name (isName)
// or value starts at buf[off], or the array element there, and one comma
// beside it, so that the JSON stays valid and offsets stay put. It
// reports whether it could.
func jsonBlank(buf []byte, off int, isName bool) bool {
	start, prev := off, jsonSkipBack(buf, off)
	if !isName && prev >= 0 && buf[prev] == ':' {
		// A member's value: back up to the opening quote of its name.
		q := jsonSkipBack(buf, prev)
		for start = q - 1; start >= 0 && (buf[start] != '"' || jsonEscaped(buf, start)); start-- {
		}
		if q < 0 || buf[q] != '"' || start < 0 {
			return false
		}
		isName, prev = true, jsonSkipBack(buf, start)
	}
	end := start
	if isName {
		colon := jsonSkipSpace(buf, start+len(jsonValueAt(buf, start)))
		if colon >= len(buf) || buf[colon] != ':' {
			return false
		}
		end = jsonSkipSpace(buf, colon+1)
	}
	v := jsonValueAt(buf, end)
	if v == nil {
		return false
	}
	end += len(v)
	if next := jsonSkipSpace(buf, end); next < len(buf) && buf[next] == ',' {
		end = next + 1
	} else if prev >= 0 && buf[prev] == ',' {
		start = prev
	}
	for i := start; i < end; i++ {
		buf[i] = ' '
	}
	return true
}

// jsonEscaped reports whether buf[i] follows an odd number of backslashes.
func jsonEscaped(buf []byte, i int) bool {
	n := 0
	for i--; i >= 0 && buf[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// jsonSkipSpace returns the offset of the first non-space byte at or
// after i.
func jsonSkipSpace(buf []byte, i int) int {
	for i < len(buf) && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n') {
		i++
	}
	return i
}

// jsonSkipBack returns the offset of the last non-space byte before i, or
// -1.
func jsonSkipBack(buf []byte, i int) int {
	for i--; i >= 0 && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'); i-- {
	}
	return i
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
