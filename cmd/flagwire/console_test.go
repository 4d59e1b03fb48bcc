package main

import (
	"net/http"
	"strings"
	"testing"
)

// `flagwire serve` serves the web console at /ui/ beside the API, and
// --ui=false leaves /ui/ to the API (404).
func TestServeConsole(t *testing.T) {
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r := startServe(t, "--env", "prod", "--dev-token", "dev")
	res, err := noRedirect.Get(r.url + "/ui/flags")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/ui/signin") {
		t.Fatalf("GET /ui/flags without a session: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	page := call(t, "GET", r.url+"/ui/signin", "")
	if page.status != http.StatusOK || !strings.Contains(string(page.body), `name="token"`) ||
		!strings.Contains(page.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("GET /ui/signin: %d %v", page.status, page.header)
	}
	if got := call(t, "GET", r.url+"/v1/flags?environment=prod", "", "Authorization: Bearer dev"); got.status != http.StatusOK {
		t.Fatalf("the API beside the console: %d %s", got.status, got.body)
	}

	off := startServe(t, "--env", "prod", "--dev-token", "dev", "--ui=false")
	if got := call(t, "GET", off.url+"/ui/signin", ""); got.status != http.StatusNotFound || !strings.Contains(string(got.body), `"not_found"`) {
		t.Fatalf("--ui=false: GET /ui/signin: %d %s", got.status, got.body)
	}
}
