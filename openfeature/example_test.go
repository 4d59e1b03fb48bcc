package flagwireof_test

import (
	"context"
	"fmt"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	flagwireof "github.com/flagwire/flagwire/openfeature"
)

// Register the Flagwire provider with OpenFeature and evaluate a flag
// through an OpenFeature client.
func Example() {
	// A Flagwire server for the example; in production, your flag service.
	srv, err := flagtest.Start(flagtest.WithFlags("test", evaluate.Flag{
		Key:   "checkout-new-flow",
		Rules: []evaluate.Rule{{ID: "rule-2", When: "plan == 'pro'", Serve: evaluate.Serve{Variant: true}}},
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	ctx := context.Background()
	client, err := flagwire.New(ctx,
		flagwire.WithEndpoint(srv.URL),
		flagwire.WithToken(srv.Token()),
		flagwire.WithEnvironment("test"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	// The provider owns the client: OpenFeature's Shutdown closes it.
	if err := openfeature.SetProviderWithContextAndWait(ctx, flagwireof.NewProvider(client)); err != nil {
		fmt.Println(err)
		return
	}
	defer openfeature.ShutdownWithContext(ctx)

	of := openfeature.NewDefaultClient()
	user := openfeature.NewEvaluationContext("8a7f4c91", map[string]any{"plan": "pro"})
	d, err := of.BooleanValueDetails(ctx, "checkout-new-flow", false, user)
	fmt.Println(d.Value, d.Variant, d.Reason, d.FlagMetadata["ruleId"], err)

	// The second evaluation is a decision-cache hit.
	d, _ = of.BooleanValueDetails(ctx, "checkout-new-flow", false, user)
	fmt.Println(d.Value, d.Reason)

	_, err = of.BooleanValue(ctx, "no-such-flag", false, user)
	fmt.Println(err)
	// Output:
	// true true TARGETING_MATCH rule-2 <nil>
	// true CACHED
	// error code: FLAG_NOT_FOUND: flag not found
}
