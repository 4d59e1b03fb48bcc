// Command openfeature uses Flagwire through the OpenFeature Go SDK: the
// provider maps contexts, reasons and errors, and a change on the server
// arrives as a CONFIGURATION_CHANGED event.
//
//	cd openfeature && go run ./examples/provider
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	flagwireof "github.com/flagwire/flagwire/openfeature"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "openfeature:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	srv, err := flagtest.Start(flagtest.WithFlags("prod", evaluate.Flag{
		Key:   "checkout-new-flow",
		Rules: []evaluate.Rule{{ID: "rule-1", When: "plan == 'pro' and region == 'US'", Serve: evaluate.Serve{Variant: true}}},
	}))
	if err != nil {
		return err
	}
	defer srv.Close()
	client, err := flagwire.New(ctx, flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()),
		flagwire.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return err
	}
	if err := openfeature.SetProviderWithContextAndWait(ctx, flagwireof.NewProvider(client)); err != nil {
		return err
	}
	defer openfeature.ShutdownWithContext(ctx) // closes the Flagwire client too

	changed := make(chan []string, 1)
	onChange := func(d openfeature.EventDetails) {
		select {
		case changed <- d.FlagChanges:
		default:
		}
	}
	openfeature.AddHandler(openfeature.ProviderConfigChange, &onChange)

	of := openfeature.NewDefaultClient()
	ec := openfeature.NewEvaluationContext("8a7f4c91", map[string]any{"plan": "pro", "region": "US"})
	d, err := of.BooleanValueDetails(ctx, "checkout-new-flow", false, ec)
	fmt.Printf("checkout-new-flow = %v, reason %s, variant %s, metadata %v (err %v)\n", d.Value, d.Reason, d.Variant, d.FlagMetadata, err)
	d, _ = of.BooleanValueDetails(ctx, "checkout-new-flow", false, ec)
	fmt.Printf("again: reason %s\n", d.Reason)
	s, err := of.StringValueDetails(ctx, "no-such-flag", "fallback", ec)
	fmt.Printf("no-such-flag = %q, error code %s\n", s.Value, s.ErrorCode)
	_ = err

	// Changes reach the provider over the SDK's event stream: let it
	// connect before making one (a change made earlier is picked up by the
	// next evaluation, but announces no event).
	for deadline := time.Now().Add(5 * time.Second); !client.Status().StreamConnected; {
		if time.Now().After(deadline) {
			return fmt.Errorf("the event stream did not connect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := srv.SetFlag("prod", evaluate.Flag{Key: "checkout-new-flow", State: evaluate.StateOff}); err != nil {
		return err
	}
	select {
	case keys := <-changed:
		fmt.Printf("CONFIGURATION_CHANGED: %v\n", keys)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("no CONFIGURATION_CHANGED event")
	}
	// Off: OpenFeature gives your default back (true here) with reason
	// DISABLED; the native client.Bool serves the flag's off variant.
	d, _ = of.BooleanValueDetails(ctx, "checkout-new-flow", true, ec)
	fmt.Printf("after the change: %v (%s, your default)\n", d.Value, d.Reason)
	return nil
}
