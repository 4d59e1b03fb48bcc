package flagtest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/wire"
)

func evaluateOnce(srv *flagtest.Server, key string) string {
	body := `{"environment":"prod","requests":[{"flagKey":"` + key + `","defaultValue":false,"context":{"userId":"8a7f4c91","plan":"pro"}}],"options":{"includeReasons":true}}`
	req, _ := http.NewRequest("POST", srv.URL+"/v1/evaluate", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return res.Status
	}
	var out wire.EvaluateResponse
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return "error: " + err.Error()
	}
	d := out.Decisions[0]
	return fmt.Sprintf("%s = %s (%s %s)", d.FlagKey, d.Variant, d.Reason.Kind, d.Reason.RuleID)
}

// Start a server with one flag, evaluate it over HTTP, change it, and make
// the next request fail.
func ExampleStart() {
	srv, err := flagtest.Start(flagtest.WithFlags(flagtest.DefaultEnvironment, evaluate.Flag{
		Key:   "checkout-new-flow",
		Rules: []evaluate.Rule{{ID: "rule-2", When: "plan == 'pro'", Serve: evaluate.Serve{Variant: true}}},
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	fmt.Println(evaluateOnce(srv, "checkout-new-flow"))

	// A kill switch: turn the flag off (SSE subscribers are told at once).
	srv.SetFlag(flagtest.DefaultEnvironment, evaluate.Flag{Key: "checkout-new-flow", State: "off"})
	fmt.Println(evaluateOnce(srv, "checkout-new-flow"))

	// The next evaluation fails with 503.
	srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: http.StatusServiceUnavailable, Count: 1})
	fmt.Println(evaluateOnce(srv, "checkout-new-flow"))
	fmt.Println(srv.Requests("POST", "/v1/evaluate"), "requests")
	// Output:
	// checkout-new-flow = true (RULE_MATCH rule-2)
	// checkout-new-flow = false (OFF )
	// 503 Service Unavailable
	// 3 requests
}
