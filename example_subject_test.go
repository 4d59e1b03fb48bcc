package flagwire_test

import (
	"context"
	"fmt"

	"github.com/flagwire/flagwire"
)

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
