package bootstrap_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"time"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/bootstrap"
	"github.com/flagwire/flagwire/evaluate"
)

// A signed bootstrap served by a client in offline mode.
func ExampleSign() {
	pub, priv, _ := ed25519.GenerateKey(strings.NewReader(strings.Repeat("seed", 16)))
	cfg := &evaluate.Config{Environment: "prod", Version: 3, Flags: []evaluate.Flag{
		{Key: "payments-enabled", State: "off"},
	}}
	data, err := bootstrap.Sign(cfg, priv, time.Now(), time.Hour)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := flagwire.New(context.Background(), flagwire.WithMode(flagwire.ModeOffline),
		flagwire.WithBootstrap(data), flagwire.WithTrustedKeys(pub))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(context.Background())
	v, d := c.BoolDetail(context.Background(), "payments-enabled", true)
	fmt.Println(v, d.Reason.Kind, d.Source, bootstrap.KeyID(pub) != "")
	// Output: false OFF BOOTSTRAP true
}
