package flagwire

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// TestNoCrossOriginRedirect: the endpoint answers every call with a
// redirect to another loopback listener. The SDK must not follow it —
// evaluations, syncs, the stream and OFREP calls alike, with its own
// http.Client or the caller's — so the other listener never sees a
// connection (no token, attribute or signature reaches it); the call is a
// BAD_RESPONSE and Status().LastError names the origin refused.
func TestNoCrossOriginRedirect(t *testing.T) {
	var conns atomic.Int64
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the other origin received %s %s (Authorization: %v, signature: %v)", r.Method, r.URL.Path,
			r.Header.Get("Authorization") != "", r.Header.Get("X-Flagwire-Signature") != "")
	}))
	other.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	other.Start()
	defer other.Close()
	otherHost := strings.TrimPrefix(other.URL, "http://")

	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		var endpointCalls atomic.Int64
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			endpointCalls.Add(1)
			http.Redirect(w, r, other.URL+r.URL.RequestURI(), status)
		}))
		defer front.Close()
		common := []Option{WithEndpoint(front.URL), WithToken("tok-never-leaves"), WithRequestSigning("k1", []byte("signing-secret")),
			WithLogger(quietLogger()), WithRetry(RetrySettings{MaxAttempts: -1}), WithTimeout(patience)}
		ctx := WithAttributes(context.Background(), Attributes{"userId": "8a7f4c91", "email": "private@example.com"})

		wantRefused := func(t *testing.T, c *Client, what string) {
			t.Helper()
			msg := c.Status().LastError
			if !strings.Contains(msg, "another origin") || !strings.Contains(msg, otherHost) || !strings.Contains(msg, string(CodeBadResponse)) {
				t.Errorf("%s: Status().LastError = %q; want BAD_RESPONSE naming the refused origin %s", what, msg, otherHost)
			}
		}
		t.Run(http.StatusText(status)+"/remote", func(t *testing.T) {
			c, err := New(context.Background(), common...) // streaming on: the stream is redirected too
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			v, d := c.BoolDetail(ctx, "checkout-new-flow", false)
			if v || d.ErrorCode != CodeBadResponse || d.Source != SourceCallerDefault {
				t.Fatalf("%v %+v; want the default with BAD_RESPONSE", v, d)
			}
			wantRefused(t, c, "evaluation")
			testkit.WaitFor(t, patience, "the stream's redirected connect", func() bool { return endpointCalls.Load() >= 2 })
		})
		t.Run(http.StatusText(status)+"/remote, caller's http.Client", func(t *testing.T) {
			hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
			defer hc.CloseIdleConnections()
			c, err := New(context.Background(), append(common, WithHTTPClient(hc), WithStreaming(false))...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			if hc.CheckRedirect != nil {
				t.Fatal("New modified the caller's http.Client")
			}
			if _, d := c.BoolDetail(ctx, "checkout-new-flow", false); d.ErrorCode != CodeBadResponse {
				t.Fatalf("%+v; want BAD_RESPONSE", d)
			}
			wantRefused(t, c, "evaluation")
		})
		t.Run(http.StatusText(status)+"/OFREP", func(t *testing.T) {
			c, err := New(context.Background(), append(common, WithOFREP(true), WithStreaming(false))...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			if _, d := c.BoolDetail(ctx, "checkout-new-flow", false); d.ErrorCode != CodeBadResponse {
				t.Fatalf("%+v; want BAD_RESPONSE", d)
			}
			wantRefused(t, c, "OFREP evaluation")
		})
		t.Run(http.StatusText(status)+"/local sync", func(t *testing.T) {
			c, err := New(context.Background(), append(common, WithMode(ModeLocal), WithStreaming(false))...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			testkit.WaitFor(t, patience, "the sync's failure", func() bool { return c.Status().LastError != "" })
			wantRefused(t, c, "sync")
			if st := c.Status(); st.State != StateError {
				t.Errorf("state %s; want %s", st.State, StateError)
			}
		})
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the other origin accepted %d connections; want none", n)
	}
}

// TestSameOriginRedirectFollowed: a redirect within the endpoint's origin
// (a proxy moving the API under a prefix) is followed, with the token.
func TestSameOriginRedirectFollowed(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	front := frontServer(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if p, ok := strings.CutPrefix(r.URL.Path, "/moved"); ok {
			r.URL.Path = p
			return false // proxied to the real server
		}
		http.Redirect(w, r, "/moved"+r.URL.RequestURI(), http.StatusTemporaryRedirect)
		return true
	})
	ctx := user("8a7f4c91", "pro", "US")
	c, err := New(context.Background(), WithEndpoint(front.URL), WithToken(srv.Token()), WithLogger(quietLogger()),
		WithStreaming(false), WithTimeout(patience))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	// The seed's flag: plan pro in the US matches rule-1, serving true.
	if v, d := c.BoolDetail(ctx, "checkout-new-flow", false); !v || d.Source != SourceRemote || d.Reason.Kind != "RULE_MATCH" || d.Reason.RuleID != "rule-1" || d.ErrorCode != "" {
		t.Fatalf("remote through a same-origin redirect: %v %+v", v, d)
	}
	l := newLocal(t, srv, WithEndpoint(front.URL), WithStreaming(false))
	if v, d := l.BoolDetail(ctx, "checkout-new-flow", false); !v || d.Source != SourceLocal || d.Reason.RuleID != "rule-1" || d.ErrorCode != "" {
		t.Fatalf("local through a same-origin redirect: %v %+v", v, d)
	}
	if n := srv.Requests("POST", "/v1/evaluate"); n != 1 {
		t.Fatalf("the server answered %d evaluations; want 1 (through the redirect)", n)
	}
}
