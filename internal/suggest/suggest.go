// Package suggest finds the known name closest to a misspelt one, for the
// "did you mean" hints of the config decoders (evaluate's JSON decoder,
// flagfile's YAML walker and lint).
package suggest

import (
	"fmt"
	"strings"
)

// Field names the known key closest to key ("; did you mean %q?"), or
// lists them all ("; known fields: a, b").
func Field(key string, known []string) string {
	best, bestD := "", 1<<30
	lk := strings.ToLower(key)
	for _, k := range known {
		dist := Distance(lk, strings.ToLower(k))
		if dist < bestD {
			best, bestD = k, dist
		}
	}
	if best != "" && Close(key, bestD) {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return "; known fields: " + strings.Join(known, ", ")
}

// Close reports whether a name at edit distance d from key is close enough
// to suggest: at most 2 edits, or a third of key's length.
func Close(key string, d int) bool {
	return d <= 2 || d*3 <= len(key)
}

// Distance is the edit distance between a and b (bytes), counting an
// insertion, deletion, substitution or transposition of adjacent bytes as
// one edit (optimal string alignment). Strings over 64 bytes are "far".
func Distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20
	}
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d := min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d = min(d, rows[i-2][j-2]+1)
			}
			rows[i][j] = d
		}
	}
	return rows[len(a)][len(b)]
}
