package fieldpath

import "testing"

func TestPaths(t *testing.T) {
	if got := Join(Index(Join("", "flags"), 2), "key"); got != "flags[2].key" {
		t.Errorf("got %q", got)
	}
}
