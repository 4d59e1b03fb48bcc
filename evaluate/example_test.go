package evaluate_test

import (
	"fmt"
	"time"

	"github.com/flagwire/flagwire/evaluate"
)

func ExampleCompile() {
	// The seed's checkout-new-flow flag, on, with a 10% default rollout.
	// (Package flagfile loads the same from YAML.)
	ten := 10.0
	cfg := &evaluate.Config{Environment: "prod", Flags: []evaluate.Flag{{
		Key:       "checkout-new-flow",
		Owners:    []string{"payments-team"},
		Rules:     []evaluate.Rule{{ID: "rule-1", When: "plan == 'pro' and region == 'US'", Serve: evaluate.Serve{Variant: true}}},
		Default:   &evaluate.Serve{Percentage: &ten},
		Bucketing: evaluate.Bucketing{Seed: "checkout-new-flow"},
		Metadata:  evaluate.Metadata{Jira: "PAY-1234", TTL: "2027-12-31"},
	}}}
	snap, err := evaluate.Compile(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	r := snap.Evaluate("checkout-new-flow", evaluate.Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US"}, time.Now())
	fmt.Println(r.Value, r.Reason.Kind, r.Reason.RuleID)
	r = snap.Evaluate("checkout-new-flow", evaluate.Attributes{"userId": "1c2d3e4f", "plan": "free"}, time.Now())
	fmt.Println(r.Value, r.Reason.Kind, r.Bucketing.Bucket)
	// Output:
	// true RULE_MATCH rule-1
	// false ROLLOUT 76165
}

func ExampleSnapshot_EvaluateAttrs() {
	snap, err := evaluate.Compile(&evaluate.Config{Flags: []evaluate.Flag{{
		Key:   "new-search",
		Rules: []evaluate.Rule{{ID: "pro-eu", When: "plan == 'pro' and seats >= 10", Serve: evaluate.Serve{Variant: true}}},
	}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The subject as a list, as a service states it per request: no map,
	// no boxing, no allocation.
	attrs := []evaluate.Attr{
		{Key: "userId", Value: evaluate.StringValue("8a7f4c91")},
		{Key: "plan", Value: evaluate.StringValue("pro")},
		{Key: "seats", Value: evaluate.Int64Value(12)},
	}
	r := snap.EvaluateAttrs("new-search", attrs, time.Now())
	fmt.Println(r.Value, r.Reason.Kind, r.Reason.RuleID)
	// Output:
	// true RULE_MATCH pro-eu
}

func ExampleParseCondition() {
	_, err := evaluate.ParseCondition("plan == 'pro' and and region == 'US'")
	fmt.Println(err)
	cond, _ := evaluate.ParseCondition("semver(appVersion) < '2.0.0' or segment('beta_testers')")
	fmt.Println(cond.Match(evaluate.Attributes{"appVersion": "1.9.3"}, nil, time.Time{}))
	// Output:
	// line 1:19: unexpected token "and": expected a condition
	// true
}

func ExampleBucket() {
	_, bucket := evaluate.Bucket("prod-salt-2026", "checkout-new-flow", "8a7f4c91")
	fmt.Println(bucket, bucket < 25000)
	// Output: 74328 false
}
