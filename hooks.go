package flagwire

import (
	"context"
	"fmt"
)

// Hook observes evaluations, OpenFeature-style. Any field may be nil.
// Hooks run synchronously on the evaluating goroutine; a panicking hook is
// recovered and logged. With no hooks registered, evaluation pays nothing.
type Hook struct {
	// Before runs before the evaluation.
	Before func(ctx context.Context, key string)
	// After runs after a successful evaluation: no error code, or
	// MISSING_BUCKETING_ATTRIBUTE, which comes with the flag's answer.
	After func(ctx context.Context, key string, d Detail)
	// Error runs when the evaluation fell back with an error code.
	Error func(ctx context.Context, key string, d Detail)
	// Finally runs after every evaluation.
	Finally func(ctx context.Context, key string, d Detail)
}

func (c *Client) runBeforeHooks(ctx context.Context, key string) {
	for i := range c.cfg.hooks {
		if h := c.cfg.hooks[i].Before; h != nil {
			c.safeHook(func() { h(ctx, key) })
		}
	}
}

// runAfterHooks runs After (the flag's own answer, including one that
// carries MISSING_BUCKETING_ATTRIBUTE) or Error (a fallback), then Finally.
// Every evaluation runs it exactly once, single or batched.
func (c *Client) runAfterHooks(ctx context.Context, key string, d Detail) {
	failed := d.ErrorCode.isFallback()
	for i := range c.cfg.hooks {
		h := &c.cfg.hooks[i]
		if !failed && h.After != nil {
			c.safeHook(func() { h.After(ctx, key, d) })
		}
		if failed && h.Error != nil {
			c.safeHook(func() { h.Error(ctx, key, d) })
		}
		if h.Finally != nil {
			c.safeHook(func() { h.Finally(ctx, key, d) })
		}
	}
}

// safeHook runs a user callback, recovering a panic: the one sanctioned
// recover in the SDK.
func (c *Client) safeHook(f func()) {
	defer func() {
		if r := recover(); r != nil {
			c.logs.warn("hook-panic", "flagwire: a hook panicked; recovered", "panic", fmt.Sprint(r))
		}
	}()
	f()
}
