package evaluate_test

import (
	"fmt"
	"time"

	"github.com/flagwire/flagwire/evaluate"
)

func ExampleCompile() {
	seedYAML := []byte(`
flagKey: checkout-new-flow
environment: prod
state: on
owners: ["payments-team"]
rules:
  - id: rule-1
    when: plan == 'pro' and region == 'US'
    variant: true
default: {percentage: 10}
bucketing:
  seed: checkout-new-flow
metadata:
  jira: PAY-1234
  ttl: 2027-12-31
`)
	f, err := evaluate.LoadYAML("checkout-new-flow.yaml", seedYAML)
	if err != nil {
		fmt.Println(err)
		return
	}
	cfgs, err := evaluate.MergeFiles(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	snap, err := evaluate.Compile(cfgs["prod"])
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
