package flagserver

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// OFREP answers are written by hand rather than through encoding/json: a
// bulk answer holds one object per flag, each with a metadata map whose
// keys encoding/json would sort by reflection, which made encoding most of
// the bulk endpoint's CPU time. The bytes are those encoding/json writes
// for a wire.OFREPEvaluation (field order, omitempty, sorted metadata
// keys, HTML-safe string escapes): TestOFREPEncodingMatchesEncodingJSON
// checks them against it.

// metaEntry is one metadata key of an OFREP success and its value: a
// string (str), an integer (num), or anything else (val, encoded by
// encoding/json).
type metaEntry struct {
	key  string
	kind byte // 's' string, 'i' integer, 'v' any
	str  string
	num  int64
	val  any
}

// appendOFREPSuccess appends the OFREP success answer for decision d (a
// decision without Error), as encoding/json would write it, with
// "cacheable": true when cacheable. Its metadata is the flag's own
// flagMetadata, plus Flagwire's detail when extended (see ofrep.go).
func appendOFREPSuccess(b []byte, d *wire.Decision, cacheable, extended bool) []byte {
	off := d.Reason != nil && evaluate.ReasonKind(d.Reason.Kind) == evaluate.ReasonOff
	b = append(b, '{')
	first := true
	field := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if d.FlagKey != "" {
		field("key")
		b = appendJSONString(b, d.FlagKey)
	}
	if !off && len(d.Variant) > 0 {
		// Variant is json.Marshal output (compact, HTML-safe), which is
		// how encoding/json writes a json.RawMessage.
		field("value")
		b = append(b, d.Variant...)
	}
	reason := "DEFAULT"
	if d.Reason != nil {
		reason = wire.OFREPReason(d.Reason.Kind)
	}
	if reason != "" {
		field("reason")
		b = appendJSONString(b, reason)
	}
	if !off && d.VariantKey != "" {
		field("variant")
		b = appendJSONString(b, d.VariantKey)
	}

	var arr [12]metaEntry
	md := arr[:0]
	put := func(e metaEntry) {
		for i := range md {
			if md[i].key == e.key { // Flagwire's keys replace the flag's own
				md[i] = e
				return
			}
		}
		md = append(md, e)
	}
	for k, v := range d.FlagMetadata {
		if s, ok := v.(string); ok {
			md = append(md, metaEntry{key: k, kind: 's', str: s})
		} else {
			md = append(md, metaEntry{key: k, kind: 'v', val: v})
		}
	}
	if extended {
		// Flagwire's detail (ofrep.go), after the flag's own entries:
		// put replaces an entry of the same name.
		if r := d.Reason; r != nil {
			if wire.ReasonKindOfOFREP(reason) != r.Kind {
				// Only a kind the OpenFeature reason does not name: the
				// targeting kinds (TARGETING_MATCH is read as RULE_MATCH).
				put(metaEntry{key: "reasonKind", kind: 's', str: r.Kind})
			}
			if r.RuleID != "" {
				put(metaEntry{key: "ruleId", kind: 's', str: r.RuleID})
			}
			if r.Segment != "" {
				put(metaEntry{key: "segment", kind: 's', str: r.Segment})
			}
			if r.Prerequisite != "" {
				put(metaEntry{key: "prerequisite", kind: 's', str: r.Prerequisite})
			}
			if r.Bucket != nil {
				put(metaEntry{key: "bucket", kind: 'i', num: int64(*r.Bucket)})
			}
			if r.ErrorCode != "" {
				put(metaEntry{key: "errorCode", kind: 's', str: r.ErrorCode})
			}
		}
		if d.Bucketing != nil {
			put(metaEntry{key: "bucket", kind: 'i', num: int64(d.Bucketing.Bucket)})
		}
		if d.FlagVersion != 0 {
			put(metaEntry{key: "flagVersion", kind: 'i', num: d.FlagVersion})
		}
		if d.Type == string(evaluate.TypeJSON) {
			// Only a JSON flag needs it: its value is served even when it is
			// a scalar with a payload (Client.JSON).
			put(metaEntry{key: "flagType", kind: 's', str: d.Type})
		}
		if len(d.Payload) > 0 && string(d.Payload) != "null" {
			put(metaEntry{key: "payload", kind: 's', str: string(d.Payload)})
		}
	}
	if len(md) > 0 {
		slices.SortFunc(md, func(a, b metaEntry) int { return strings.Compare(a.key, b.key) })
		field("metadata")
		b = append(b, '{')
		for i, e := range md {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, e.key)
			b = append(b, ':')
			switch e.kind {
			case 's':
				b = appendJSONString(b, e.str)
			case 'i':
				b = strconv.AppendInt(b, e.num, 10)
			default:
				v, err := json.Marshal(e.val)
				if err != nil {
					v = jsonNull // flagMetadata is validated by Compile: scalars only
				}
				b = append(b, v...)
			}
		}
		b = append(b, '}')
	}
	if cacheable {
		field("cacheable")
		b = append(b, "true"...)
	}
	return append(b, '}')
}

// appendJSONString appends s as encoding/json writes a string: quoted,
// with <, > and & escaped for HTML, and invalid UTF-8 replaced. Plain
// printable ASCII (keys, ids, reason kinds) is copied as is; anything else
// goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
