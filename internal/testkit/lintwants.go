package testkit

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var lintWantRE = regexp.MustCompile(`# want: (\d+ .*)$`)

// LintWants reads the "# want: COL SEVERITY CODE[; …]" comments of a
// flags-as-code file named name as the findings the linter must report,
// each "name:line:col severity code" (the line is the comment's); a
// malformed comment fails t.
func LintWants(t testing.TB, name string, data []byte) []string {
	t.Helper()
	var want []string
	for i, line := range strings.Split(string(data), "\n") {
		m := lintWantRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, w := range strings.Split(m[1], ";") {
			f := strings.Fields(w)
			if len(f) != 3 {
				t.Fatalf("%s:%d: bad want %q", name, i+1, w)
			}
			want = append(want, name+":"+strconv.Itoa(i+1)+":"+f[0]+" "+f[1]+" "+f[2])
		}
	}
	return want
}
