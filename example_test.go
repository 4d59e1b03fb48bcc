package flagwire_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/bootstrap"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
)

// exampleServer starts the reference server with docsConfig.
func exampleServer() *flagtest.Server {
	srv, err := flagtest.Start(flagtest.WithConfig(docsConfig()))
	if err != nil {
		panic(err)
	}
	return srv
}

// docsConfig holds the flags the package examples evaluate (their Output
// depends on it): the checkout flag of the Flag API guide and a string
// experiment.
func docsConfig() *evaluate.Config {
	pct := 10.0
	return &evaluate.Config{
		Environment: "prod",
		Salt:        "prod-salt-2026",
		Segments:    []evaluate.Segment{{Key: "beta_testers", Included: []string{"3f9b2e10"}}},
		Flags: []evaluate.Flag{{
			Key: "checkout-new-flow",
			Rules: []evaluate.Rule{
				{ID: "rule-1", When: "plan == 'pro' and region == 'US'", Serve: evaluate.Serve{Variant: true}},
				{ID: "rule-2", Segment: "beta_testers", Serve: evaluate.Serve{Variant: true}},
			},
			Default: &evaluate.Serve{Percentage: &pct},
		}, {
			Key:  "pricing-experiment",
			Type: evaluate.TypeString,
			Variants: []evaluate.Variant{
				{Name: "control", Payload: map[string]any{"price": 25.0, "currency": "EUR"}},
				{Name: "B", Payload: map[string]any{"price": 23.0, "currency": "EUR"}},
			},
			Rules:   []evaluate.Rule{{ID: "de", When: "country == 'DE'", Serve: evaluate.Serve{Variant: "B"}}},
			Default: &evaluate.Serve{Variant: "control"},
		}},
	}
}

func quiet() flagwire.Option { return flagwire.WithLogger(slog.New(slog.DiscardHandler)) }

func Example() {
	srv := exampleServer()
	defer srv.Close()

	ctx := context.Background()
	client, err := flagwire.New(ctx,
		flagwire.WithEndpoint(srv.URL),
		flagwire.WithToken(srv.Token()),
		flagwire.WithEnvironment("prod"),
		quiet(),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close(context.Background())

	ctx = flagwire.WithAttributes(ctx, flagwire.Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US"})
	if client.Bool(ctx, "checkout-new-flow", false) {
		fmt.Println("new checkout flow")
	}
	// Output: new checkout flow
}

func ExampleClient_BoolDetail() {
	srv := exampleServer()
	defer srv.Close()
	client, _ := flagwire.New(context.Background(), flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()), quiet())
	defer client.Close(context.Background())

	ctx := flagwire.WithAttributes(context.Background(), flagwire.Attributes{"userId": "3f9b2e10", "plan": "free"})
	v, d := client.BoolDetail(ctx, "checkout-new-flow", false)
	fmt.Println(v, d.Reason.Kind, d.Reason.RuleID, d.Reason.Segment, d.Source)
	v, d = client.BoolDetail(ctx, "checkout-new-flow", false)
	fmt.Println(v, d.Source)
	_, d = client.BoolDetail(ctx, "no-such-flag", false)
	fmt.Println(d.Source, d.ErrorCode)
	// Output:
	// true SEGMENT_MATCH rule-2 beta_testers REMOTE
	// true CACHE
	// CALLER_DEFAULT FLAG_NOT_FOUND
}

func ExampleClient_StringDetail() {
	srv := exampleServer()
	defer srv.Close()
	client, _ := flagwire.New(context.Background(), flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()), quiet())
	defer client.Close(context.Background())

	ctx := flagwire.WithAttributes(context.Background(), flagwire.Attributes{"accountId": "acme-co-1337", "country": "DE"})
	variant, d := client.StringDetail(ctx, "pricing-experiment", "control")
	var price struct {
		Price    float64 `json:"price"`
		Currency string  `json:"currency"`
	}
	json.Unmarshal(d.Payload, &price)
	fmt.Printf("%s %.2f %s\n", variant, price.Price, price.Currency)
	// Output: B 23.00 EUR
}

func ExampleClient_Evaluate() {
	srv := exampleServer()
	defer srv.Close()
	client, _ := flagwire.New(context.Background(), flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()), quiet())
	defer client.Close(context.Background())

	// One POST /v1/evaluate for both flags; failures would be per item.
	ctx := flagwire.WithAttributes(context.Background(), flagwire.Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US", "country": "DE"})
	results := client.Evaluate(ctx, []flagwire.Request{
		{FlagKey: "checkout-new-flow", Default: false},
		{FlagKey: "pricing-experiment", Default: "control"},
		{FlagKey: "missing", Default: 42},
	})
	for _, r := range results {
		if r.Detail.ErrorCode != "" {
			fmt.Println(r.Detail.FlagKey, r.Value, r.Detail.Source, r.Detail.ErrorCode)
			continue
		}
		fmt.Println(r.Detail.FlagKey, r.Value, r.Detail.Source)
	}
	fmt.Println("requests:", srv.Requests("POST", "/v1/evaluate"))
	// Output:
	// checkout-new-flow true REMOTE
	// pricing-experiment B REMOTE
	// missing 42 CALLER_DEFAULT FLAG_NOT_FOUND
	// requests: 1
}

func ExampleWithMode_local() {
	srv := exampleServer()
	defer srv.Close()
	client, _ := flagwire.New(context.Background(),
		flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()),
		flagwire.WithMode(flagwire.ModeLocal), quiet())
	defer client.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.WaitReady(ctx); err != nil { // the first config sync
		fmt.Println(err)
		return
	}
	user := flagwire.WithAttributes(context.Background(), flagwire.Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US"})
	v, d := client.BoolDetail(user, "checkout-new-flow", false)
	fmt.Println(v, d.Source, d.Reason.RuleID, "evaluate calls:", srv.Requests("POST", "/v1/evaluate"))
	// Output: true LOCAL rule-1 evaluate calls: 0
}

func ExampleWithMode_offline() {
	// A signed bootstrap, as `flagwire sign` or GET /v1/bootstrap make it.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	bootstrap, err := bootstrap.Sign(&evaluate.Config{Environment: "prod", Version: 3, Flags: []evaluate.Flag{
		{Key: "kill-switch", State: evaluate.StateOff},
	}}, priv, time.Now(), 24*time.Hour)
	if err != nil {
		fmt.Println(err)
		return
	}

	client, err := flagwire.New(context.Background(),
		flagwire.WithMode(flagwire.ModeOffline),
		flagwire.WithBootstrap(bootstrap),
		flagwire.WithTrustedKeys(pub),
		quiet())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close(context.Background())
	v, d := client.BoolDetail(context.Background(), "kill-switch", true)
	fmt.Println(v, d.Reason.Kind, d.Source, client.Status().State)
	// Output: false OFF BOOTSTRAP offline
}

// A service states each request's subject with WithSubject: no map is
// built, and a decision cache hit costs no allocation beyond the
// context itself.
func ExampleWithSubject() {
	srv := exampleServer()
	defer srv.Close()
	client, err := flagwire.New(context.Background(),
		flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()), flagwire.WithEnvironment("prod"), quiet())
	if err != nil {
		panic(err)
	}
	defer client.Close(context.Background())

	ctx := flagwire.WithSubject(context.Background(),
		flagwire.StringAttr("userId", "8a7f4c91"),
		flagwire.StringAttr("plan", "pro"),
		flagwire.StringAttr("region", "US"),
	)
	on, d := client.BoolDetail(ctx, "checkout-new-flow", false)
	fmt.Println(on, d.Reason.Kind, d.Reason.RuleID, d.Source)
	on, d = client.BoolDetail(ctx, "checkout-new-flow", false)
	fmt.Println(on, d.Source)
	// Output:
	// true RULE_MATCH rule-1 REMOTE
	// true CACHE
}
