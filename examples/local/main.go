// Command local shows local evaluation: the client syncs the environment's
// whole config (GET /v1/flags with ETag), evaluates in-process with no
// network per call, and picks up a change over SSE.
//
//	go run ./examples/local
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

func run() error {
	srv, err := flagtest.Start(flagtest.WithFlags("prod", evaluate.Flag{
		Key:   "search-v2",
		Rules: []evaluate.Rule{{ID: "internal", When: "email endsWith '@example.com'", Serve: evaluate.Serve{Variant: true}}},
	}))
	if err != nil {
		return err
	}
	defer srv.Close()

	ctx := context.Background()
	client, err := flagwire.New(ctx,
		flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()), flagwire.WithEnvironment("prod"),
		flagwire.WithMode(flagwire.ModeLocal),
		flagwire.WithPrivateAttributes("email"), // never sent anywhere; local rules still see it
		flagwire.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return err
	}
	defer client.Close(context.Background())
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.WaitReady(wctx); err != nil {
		return err
	}
	st := client.Status()
	fmt.Printf("synced config version %d (ETag %s), state %s\n", st.ConfigVersion, st.ETag, st.State)

	staff := flagwire.WithAttributes(ctx, flagwire.Attributes{"userId": "u1", "email": "ada@example.com"})
	guest := flagwire.WithAttributes(ctx, flagwire.Attributes{"userId": "u2", "email": "bob@elsewhere.org"})
	const n = 1_000_000
	start := time.Now()
	on := 0
	for i := 0; i < n; i++ {
		if client.Bool(staff, "search-v2", false) {
			on++
		}
	}
	per := time.Since(start) / n
	_, d := client.BoolDetail(guest, "search-v2", false)
	fmt.Printf("staff: %d/%d on, %v per evaluation, %d evaluate API calls\n", on, n, per, srv.Requests("POST", "/v1/evaluate"))
	fmt.Printf("guest: %s (%s)\n", d.Reason.Kind, d.Source)

	changed := make(chan struct{}, 1)
	client.OnValueChange(guest, "search-v2", func(ch flagwire.ValueChange) {
		fmt.Printf("value change for guest: %v → %v\n", ch.Old, ch.New)
		changed <- struct{}{}
	})
	if _, err := srv.SetFlag("prod", evaluate.Flag{Key: "search-v2", Default: &evaluate.Serve{Variant: true}}); err != nil {
		return err
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("change did not arrive")
	}
	fmt.Println("guest now:", client.Bool(guest, "search-v2", false))
	return nil
}
