package console

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
)

// fieldChange is one line of a readable diff: a field (a JSON path such as
// rules[1].percentage) added, removed or changed.
type fieldChange struct {
	Path, Before, After string
	Kind                string // "added", "removed", "changed"
}

// maxDiffLines bounds a rendered diff; the rest is summarised.
const maxDiffLines = 200

// diffJSON compares two JSON documents (either may be empty: a create or a
// delete) field by field: objects by member, arrays by index, scalars by
// value. Changes are sorted by path. The version the server sets at every
// change is left out.
func diffJSON(before, after []byte) []fieldChange {
	b, a := map[string]string{}, map[string]string{}
	flatten("", decodeAny(before), b)
	flatten("", decodeAny(after), a)
	for _, m := range []map[string]string{b, a} { // set by the server at every change
		delete(m, "version")
		delete(m, "etag")
	}
	var out []fieldChange
	for p, bv := range b {
		av, ok := a[p]
		switch {
		case !ok:
			out = append(out, fieldChange{Path: p, Before: bv, Kind: "removed"})
		case av != bv:
			out = append(out, fieldChange{Path: p, Before: bv, After: av, Kind: "changed"})
		}
	}
	for p, av := range a {
		if _, ok := b[p]; !ok {
			out = append(out, fieldChange{Path: p, After: av, Kind: "added"})
		}
	}
	slices.SortFunc(out, func(x, y fieldChange) int {
		switch {
		case x.Path < y.Path:
			return -1
		case x.Path > y.Path:
			return 1
		}
		return 0
	})
	if len(out) > maxDiffLines {
		n := len(out) - maxDiffLines
		out = append(out[:maxDiffLines], fieldChange{Path: "…", After: strconv.Itoa(n) + " more changed fields", Kind: "changed"})
	}
	return out
}

func decodeAny(raw []byte) any {
	if len(raw) == 0 {
		return nil
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return string(raw)
	}
	return v
}

// flatten records every scalar (and every empty object or array) of v
// under its path.
func flatten(path string, v any, out map[string]string) {
	switch x := v.(type) {
	case nil:
		if path != "" {
			out[path] = "null"
		}
	case map[string]any:
		if len(x) == 0 && path != "" {
			out[path] = "{}"
		}
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			flatten(p, e, out)
		}
	case []any:
		if len(x) == 0 && path != "" {
			out[path] = "[]"
		}
		for i, e := range x {
			flatten(path+"["+strconv.Itoa(i)+"]", e, out)
		}
	case string:
		out[path] = strconv.Quote(x)
	case json.Number:
		out[path] = x.String()
	case bool:
		out[path] = strconv.FormatBool(x)
	default:
		b, _ := json.Marshal(x)
		out[path] = string(b)
	}
}
