// Package servicetest is an example service and its tests: how to test your
// own code that uses Flagwire against flagtest, including failures.
package servicetest

import (
	"context"

	"github.com/flagwire/flagwire"
)

// Checkout is a service whose behaviour depends on a flag.
type Checkout struct {
	Flags *flagwire.Client
}

// Flow returns which checkout flow a user gets. The default (the old flow)
// is what users see when the flag service cannot answer.
func (c *Checkout) Flow(ctx context.Context, userID, plan string) string {
	ctx = flagwire.WithAttributes(ctx, flagwire.Attributes{"userId": userID, "plan": plan})
	if c.Flags.Bool(ctx, "checkout-new-flow", false) {
		return "new"
	}
	return "old"
}
