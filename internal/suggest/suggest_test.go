package suggest

import "testing"

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "abc", 0}, {"abc", "abd", 1}, {"abc", "ab", 1},
		{"abc", "acb", 1}, // a transposition is one edit
		{"kitten", "sitting", 3},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestField(t *testing.T) {
	known := []string{"flagKey", "state", "rules"}
	if got := Field("stat", known); got != `; did you mean "state"?` {
		t.Errorf("stat: %s", got)
	}
	if got := Field("FLAGKEY", known); got != `; did you mean "flagKey"?` {
		t.Errorf("FLAGKEY: %s", got)
	}
	if got := Field("zzzzzzzz", known); got != "; known fields: flagKey, state, rules" {
		t.Errorf("zzzzzzzz: %s", got)
	}
}
