// Command offline runs a client with no network at all, from a signed
// bootstrap file generated on the fly — and shows a tampered copy refused.
//
//	go run ./examples/offline
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/bootstrap"
	"github.com/flagwire/flagwire/evaluate"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "offline:", err)
		os.Exit(1)
	}
}

func run() error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	cfg := &evaluate.Config{Environment: "prod", Version: 12, Salt: "prod-salt-2026", Flags: []evaluate.Flag{
		{Key: "checkout-new-flow", Rules: []evaluate.Rule{{ID: "rule-1", When: "plan == 'pro' and region == 'US'", Serve: evaluate.Serve{Variant: true}}}},
		{Key: "payments-kill-switch", State: evaluate.StateOff, Metadata: evaluate.Metadata{KillSwitch: true}},
	}}
	data, err := bootstrap.Sign(cfg, priv, time.Now(), 7*24*time.Hour)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "flagwire-offline-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "bootstrap.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	fmt.Printf("signed bootstrap: %d bytes, key %s\n", len(data), bootstrap.KeyID(pub))

	client, err := flagwire.New(context.Background(),
		flagwire.WithMode(flagwire.ModeOffline),
		flagwire.WithBootstrapFile(path),
		flagwire.WithTrustedKeys(pub))
	if err != nil {
		return err
	}
	defer client.Close(context.Background())
	ctx := flagwire.WithAttributes(context.Background(), flagwire.Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US"})
	v, d := client.BoolDetail(ctx, "checkout-new-flow", false)
	fmt.Printf("checkout-new-flow = %v (%s %s, from %s)\n", v, d.Reason.Kind, d.Reason.RuleID, d.Source)
	fmt.Printf("payments-kill-switch = %v\n", client.Bool(ctx, "payments-kill-switch", true))
	fmt.Printf("status: %s, config version %d\n", client.Status().State, client.Status().ConfigVersion)

	// Flip one byte of the payload: the signature no longer verifies.
	tampered := bytes.Replace(data, []byte("rule-1"), []byte("rule-X"), 1)
	_, err = flagwire.New(context.Background(), flagwire.WithMode(flagwire.ModeOffline),
		flagwire.WithBootstrap(tampered), flagwire.WithTrustedKeys(pub))
	fmt.Printf("tampered copy refused: %v\n", err)
	if err == nil {
		return fmt.Errorf("a tampered bootstrap was accepted")
	}
	return nil
}
