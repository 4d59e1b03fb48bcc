package flagwire

import (
	"context"
	"sync"
	"testing"
)

func TestHooks(t *testing.T) {
	var mu sync.Mutex
	var events []string
	rec := func(s string) { mu.Lock(); events = append(events, s); mu.Unlock() }
	h := newHarness(t, WithHooks(Hook{
		Before:  func(ctx context.Context, key string) { rec("before " + key) },
		After:   func(ctx context.Context, key string, d Detail) { rec("after " + d.Variant) },
		Error:   func(ctx context.Context, key string, d Detail) { rec("error " + string(d.ErrorCode)) },
		Finally: func(ctx context.Context, key string, d Detail) { rec("finally") },
	}, Hook{Before: func(context.Context, string) { panic("boom") }}))
	h.c.Bool(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false)
	h.c.Bool(user("8a7f4c91", "pro", "US"), "missing", false)
	want := []string{"before checkout-new-flow", "after true", "finally", "before missing", "error FLAG_NOT_FOUND", "finally"}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != len(want) {
		t.Fatalf("events %q, want %q", events, want)
	}
	for i := range want {
		if events[i] != want[i] {
			t.Fatalf("events %q, want %q", events, want)
		}
	}
}
