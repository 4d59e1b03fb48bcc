// Package clockhook carries an evaluation wall clock through a
// context.Context into flagwire.New, so that the module's own tests (the
// conformance suite) can decide time-dependent flags — progressive
// rollouts, date rules, now() — in local and offline modes at a time of
// their choosing. It is internal to the module: a user's program cannot
// set the SDK's clock.
//
// flagwire.New reads the clock from the context it is given (and does not
// retain the context); every local and offline evaluation of that client
// then takes its time from the clock instead of the system's wall clock.
// Timeouts, TTLs, backoff and bootstrap validity keep using the real
// clock.
package clockhook

import (
	"context"
	"time"
)

type key struct{}

// With returns a copy of ctx carrying now as the evaluation wall clock.
// now must be safe for concurrent use: a client calls it on every
// evaluation, from any goroutine. A nil now leaves ctx as it is.
func With(ctx context.Context, now func() time.Time) context.Context {
	if now == nil {
		return ctx
	}
	return context.WithValue(ctx, key{}, now)
}

// From returns the evaluation wall clock ctx carries, if any.
func From(ctx context.Context) (func() time.Time, bool) {
	if ctx == nil {
		return nil, false
	}
	now, ok := ctx.Value(key{}).(func() time.Time)
	return now, ok
}
