package flagwire

import (
	"context"
	"testing"

	"github.com/flagwire/flagwire/flagtest"
)

// TestBatchRunsHooksForEveryItem: Evaluate and the prefetch run Before, then
// After or Error, then Finally for every item, exactly as single
// evaluations do: cached, fetched and failed items alike, in remote and
// local mode.
func TestBatchRunsHooksForEveryItem(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(typesConfig()))
	for _, mode := range []Mode{ModeRemote, ModeLocal} {
		t.Run(string(mode), func(t *testing.T) {
			var hc hookCounter
			c := modeClient(t, srv, mode, false, WithHooks(hc.hook()))
			ctx := WithAttributes(context.Background(), Attributes{"userId": "u1"})
			c.Bool(ctx, "kill-switch", false) // cached (remote) before the batch
			hc.reset()
			res := c.Evaluate(ctx, []Request{
				{FlagKey: "kill-switch", Default: false}, // success (cache in remote mode)
				{FlagKey: "plan-banner", Default: "x"},   // success
				{FlagKey: "no-such-flag", Default: 1.0},  // FLAG_NOT_FOUND
			})
			if res[0].Value != true || res[1].Value != "A" || res[2].Value != 1.0 || res[2].Detail.ErrorCode != CodeFlagNotFound {
				t.Fatalf("results %+v", res)
			}
			want := map[string][4]int{"kill-switch": {1, 1, 0, 1}, "plan-banner": {1, 1, 0, 1}, "no-such-flag": {1, 0, 1, 1}}
			for key, w := range want {
				if got := hc.counts(key); got != w {
					t.Errorf("Evaluate %s: before/after/error/finally = %v, want %v", key, got, w)
				}
			}
			hc.reset()
			if failed := c.prefetch(ctx, "max-items", "theme"); failed != 0 {
				t.Fatalf("prefetch failed %d", failed)
			}
			for _, key := range []string{"max-items", "theme"} {
				if got := hc.counts(key); got != [4]int{1, 1, 0, 1} {
					t.Errorf("prefetch %s: before/after/error/finally = %v, want [1 1 0 1]", key, got)
				}
			}
			// A closed client: every item still goes through the hooks.
			c.Close(context.Background())
			hc.reset()
			c.Evaluate(ctx, []Request{{FlagKey: "kill-switch"}})
			if got := hc.counts("kill-switch"); got != [4]int{1, 0, 1, 1} {
				t.Errorf("closed: before/after/error/finally = %v, want [1 0 1 1]", got)
			}
		})
	}
}
