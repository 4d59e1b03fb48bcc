// Package fieldpath builds the field paths that config errors name, such
// as "flags[2].rules[0].when", for evaluate's JSON decoder and flagfile's
// YAML walker alike.
package fieldpath

import "strconv"

// Join appends field key to path p ("flags[2]" + "key" → "flags[2].key").
func Join(p, key string) string {
	if p == "" {
		return key
	}
	return p + "." + key
}

// Index appends list index i to path p ("flags" + 2 → "flags[2]").
func Index(p string, i int) string {
	return p + "[" + strconv.Itoa(i) + "]"
}
