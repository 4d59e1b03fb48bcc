package flagfile_test

import (
	"fmt"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagfile"
)

// The seed's flags-as-code example, loaded, linted and compiled.
func Example() {
	src := []byte(`flagKey: checkout-new-flow
environment: prod
state: on
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
	f, err := flagfile.LoadYAML("checkout-new-flow.yaml", src)
	if err != nil {
		fmt.Println(err)
		return
	}
	cfgs, err := flagfile.MergeFiles(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 6, 25, 12, 0, 0, 0, time.UTC)
	for _, finding := range flagfile.Lint(cfgs["prod"], now, flagfile.LintOptions{}) {
		fmt.Println(finding)
	}
	snap, err := evaluate.Compile(cfgs["prod"])
	if err != nil {
		fmt.Println(err)
		return
	}
	r := snap.Evaluate("checkout-new-flow", evaluate.Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US"}, now)
	fmt.Println(r.Value, r.Reason.Kind, r.Reason.RuleID)

	// A typo is reported where it is, with the closest known field.
	_, err = flagfile.LoadYAML("typo.yaml", []byte("flagKey: a\nenvironment: prod\nstat: off\n"))
	fmt.Println(err)
	// Output:
	// checkout-new-flow.yaml:1:1: warning: flag "checkout-new-flow" owners: flag has no owners
	// true RULE_MATCH rule-1
	// typo.yaml:3:1: error: flag "a": unknown field "stat"; did you mean "state"?
}
