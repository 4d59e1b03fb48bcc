package console

import (
	"net/http"
	"net/url"
	"testing"
)

// The evaluate page shows the server's decision with its reason, rule and
// segment. Expected answers are the seed guide's: checkout-new-flow
// serves true to the beta_testers segment (plan pro) through rule-2, and
// false to free EU accounts through rule-1.
func TestEvaluatePage(t *testing.T) {
	h := newHarness(t, Options{})
	b := h.browser(t)
	csrf := b.signIn(readerToken.Secret)
	b.get("/ui/evaluate?environment=prod&flag=checkout-new-flow").wantStatus(t, http.StatusOK).
		wantContains(t, `<option value="checkout-new-flow" selected>`, `<label for="context">`)
	eval := func(ctx string) *page {
		return b.post("/ui/evaluate", url.Values{"csrf": {csrf}, "environment": {"prod"}, "flag": {"checkout-new-flow"}, "context": {ctx}})
	}
	eval(`{"userId": "u-1", "plan": "pro", "region": "US"}`).wantStatus(t, http.StatusOK).
		wantContains(t, "<dt>Value</dt><dd><code>true</code></dd>", "<dt>Rule</dt><dd>rule-2</dd>", "<dt>Segment</dt><dd>beta_testers</dd>", "How it was decided")
	eval(`{"userId": "u-2", "plan": "free", "region": "EU"}`).wantStatus(t, http.StatusOK).
		wantContains(t, "<dt>Value</dt><dd><code>false</code></dd>", "<dt>Rule</dt><dd>rule-1</dd>")
	eval(`{"userId": `).wantStatus(t, http.StatusBadRequest).wantContains(t, "one JSON object")
	eval(`[1, 2]`).wantStatus(t, http.StatusBadRequest)
	b.post("/ui/evaluate", url.Values{"csrf": {csrf}, "environment": {"prod"}, "context": {"{}"}}).wantStatus(t, http.StatusBadRequest).wantContains(t, "Choose a flag")
}
