package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// ReadFiles returns the contents of the files matching pattern (as
// filepath.Glob, e.g. "testdata/bootstrap/*.json"), in lexical order: the
// seeds of a fuzz target. It fails t if no file matches or one cannot be
// read.
func ReadFiles(t testing.TB, pattern string) [][]byte {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no file matches %s", pattern)
	}
	out := make([][]byte, 0, len(files))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}
