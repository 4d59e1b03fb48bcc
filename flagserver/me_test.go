package flagserver

import (
	"net/http"
	"slices"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// GET /v1/me tells each token what it is and may do: the scopes it was
// given (of the documented scope names), the environments it is limited
// to (none: every one) and the served environments it may use.
func TestMe(t *testing.T) {
	ts := newTestServer(t, Options{
		Configs: []*evaluate.Config{seedConfig(), {Environment: "staging"}, {Environment: "dev"}},
		Tokens: []Token{
			{Secret: "reader", Subject: "ci-reader", Scopes: []string{wire.ScopeRead}},
			{Secret: "stager", Subject: "ann", Scopes: []string{wire.ScopeRead, wire.ScopeWrite}, Environments: []string{"staging", "dev"}},
			{Secret: "odd", Subject: "bob", Scopes: []string{}},
		},
	})
	type me struct {
		Subject            string   `json:"subject"`
		Scopes             []string `json:"scopes"`
		Environments       []string `json:"environments"`
		ServedEnvironments []string `json:"servedEnvironments"`
	}
	for _, tc := range []struct {
		token string
		want  me
	}{
		{"reader", me{"ci-reader", []string{"flags:read"}, []string{}, []string{"dev", "prod", "staging"}}},
		{"stager", me{"ann", []string{"flags:read", "flags:write"}, []string{"dev", "staging"}, []string{"dev", "staging"}}},
		{"odd", me{"bob", []string{}, []string{}, []string{"dev", "prod", "staging"}}},
	} {
		t.Run(tc.token, func(t *testing.T) {
			res := ts.do("GET", "/v1/me", "", "Authorization: Bearer "+tc.token)
			res.wantStatus(t, http.StatusOK)
			var got me
			res.json(t, &got)
			if got.Subject != tc.want.Subject || !slices.Equal(got.Scopes, tc.want.Scopes) ||
				!slices.Equal(got.Environments, tc.want.Environments) || !slices.Equal(got.ServedEnvironments, tc.want.ServedEnvironments) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if cc := res.header.Get("Cache-Control"); cc != "no-store" {
				t.Fatalf("Cache-Control %q, want no-store", cc)
			}
		})
	}
	ts.do("GET", "/v1/me", "").wantError(t, http.StatusUnauthorized, wire.CodeUnauthorized)
	ts.do("GET", "/v1/me", "", "Authorization: Bearer wrong").wantError(t, http.StatusUnauthorized, wire.CodeUnauthorized)
}

// On an open server (no tokens) the caller is "anonymous" with every scope.
func TestMeOpen(t *testing.T) {
	ts := newTestServer(t, Options{})
	res := ts.do("GET", "/v1/me", "")
	res.wantStatus(t, http.StatusOK)
	var got struct {
		Subject string   `json:"subject"`
		Scopes  []string `json:"scopes"`
	}
	res.json(t, &got)
	want := []string{"flags:read", "flags:write", "flags:approve", "audit:read", "tokens:mint"}
	if got.Subject != "anonymous" || !slices.Equal(got.Scopes, want) {
		t.Fatalf("got %+v, want anonymous with %v", got, want)
	}
}
