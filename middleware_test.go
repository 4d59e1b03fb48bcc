package flagwire_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
)

func middlewareServer(t *testing.T) *flagtest.Server {
	return flagtest.NewServer(t, flagtest.WithFlags("test",
		evaluate.Flag{Key: "new-ui", Rules: []evaluate.Rule{{ID: "pro", When: "plan == 'pro'", Serve: evaluate.Serve{Variant: true}}}},
		evaluate.Flag{Key: "banner", Type: evaluate.TypeString, Variants: []evaluate.Variant{{Name: "blue"}, {Name: "gold"}},
			Targets: []evaluate.Target{{Variant: "gold", Values: []string{"vip"}}}, Default: &evaluate.Serve{Variant: "blue"}},
	))
}

func middlewareClient(t *testing.T, srv *flagtest.Server, opts ...flagwire.Option) *flagwire.Client {
	t.Helper()
	c, err := flagwire.New(context.Background(), append([]flagwire.Option{
		flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()), flagwire.WithEnvironment("test"),
		flagwire.WithStreaming(false), flagwire.WithLogger(slog.New(slog.DiscardHandler)),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// fromHeaders is an extractor: the user id and plan from request headers.
func fromHeaders(r *http.Request) flagwire.Attributes {
	attrs := flagwire.Attributes{}
	if id := r.Header.Get("X-User"); id != "" {
		attrs["userId"] = id
	}
	if plan := r.Header.Get("X-Plan"); plan != "" {
		attrs["plan"] = plan
	}
	return attrs
}

// get sends GET url with headers ("Name", "value", …) and returns the body.
func get(t *testing.T, url string, headers ...string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", res.Status, b)
	}
	return string(b)
}

// TestMiddleware: handlers behind Middleware evaluate with the request's
// attributes through r.Context(), on a standard ServeMux with path
// patterns, over a real HTTP server (httptest).
func TestMiddleware(t *testing.T) {
	srv := middlewareServer(t)
	client := middlewareClient(t, srv)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s new-ui=%v banner=%s", r.PathValue("id"),
			client.Bool(r.Context(), "new-ui", false), client.String(r.Context(), "banner", "none"))
	})
	// An outer middleware (say, authentication) attaches the user id; the
	// flagwire one adds the plan from a header.
	outer := client.Middleware(func(r *http.Request) flagwire.Attributes {
		if id := r.Header.Get("X-User"); id != "" {
			return flagwire.Attributes{"userId": id}
		}
		return nil
	})
	inner := client.Middleware(func(r *http.Request) flagwire.Attributes {
		if plan := r.Header.Get("X-Plan"); plan != "" {
			return flagwire.Attributes{"plan": plan}
		}
		return nil
	})
	hs := httptest.NewServer(outer(inner(mux)))
	defer hs.Close()

	cases := []struct {
		name    string
		headers []string
		want    string
	}{
		{"pro user", []string{"X-User", "u1", "X-Plan", "pro"}, "7 new-ui=true banner=blue"},
		{"free user", []string{"X-User", "u1", "X-Plan", "free"}, "7 new-ui=false banner=blue"},
		{"targeted user, merged attributes", []string{"X-User", "vip", "X-Plan", "pro"}, "7 new-ui=true banner=gold"},
		{"only the outer middleware's attributes", []string{"X-User", "vip"}, "7 new-ui=false banner=gold"},
		{"no attributes", nil, "7 new-ui=false banner=blue"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := get(t, hs.URL+"/items/7", tc.headers...); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestMiddlewareAttributes checks what the handler's context carries.
func TestMiddlewareAttributes(t *testing.T) {
	cases := []struct {
		name    string
		extract func(*http.Request) flagwire.Attributes
		prior   flagwire.Attributes
		want    flagwire.Attributes
	}{
		{"extracted", fromHeaders, nil, flagwire.Attributes{"userId": "u1", "plan": "pro"}},
		{"nil extractor", nil, nil, nil},
		{"nil extractor keeps prior", nil, flagwire.Attributes{"region": "EU"}, flagwire.Attributes{"region": "EU"}},
		{"empty result keeps prior", func(*http.Request) flagwire.Attributes { return nil }, flagwire.Attributes{"region": "EU"}, flagwire.Attributes{"region": "EU"}},
		{"merged, extracted wins", fromHeaders, flagwire.Attributes{"region": "EU", "plan": "free"},
			flagwire.Attributes{"userId": "u1", "plan": "pro", "region": "EU"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got flagwire.Attributes
			h := (*flagwire.Client)(nil).Middleware(tc.extract)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = flagwire.AttributesFrom(r.Context())
			}))
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("X-User", "u1")
			req.Header.Set("X-Plan", "pro")
			prior := maps.Clone(tc.prior)
			if tc.prior != nil {
				req = req.WithContext(flagwire.WithAttributes(req.Context(), tc.prior))
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("attributes %v, want %v", got, tc.want)
			}
			if !reflect.DeepEqual(tc.prior, prior) {
				t.Errorf("the prior attributes were modified: %v", tc.prior)
			}
		})
	}
}

// TestMiddlewarePrefetch: with prefetch flags, one batch request fills the
// cache before the handler runs, and the handler's evaluations are cache
// hits.
func TestMiddlewarePrefetch(t *testing.T) {
	srv := middlewareServer(t)
	client := middlewareClient(t, srv)
	var sources []flagwire.Source
	h := client.Middleware(fromHeaders, "new-ui", "banner")(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, d1 := client.BoolDetail(r.Context(), "new-ui", false)
			_, d2 := client.StringDetail(r.Context(), "banner", "none")
			sources = append(sources, d1.Source, d2.Source)
		}))
	hs := httptest.NewServer(h)
	defer hs.Close()
	get(t, hs.URL, "X-User", "u1", "X-Plan", "pro")
	if n := srv.Requests("POST", "/v1/evaluate"); n != 1 {
		t.Errorf("%d evaluate requests, want 1 batch", n)
	}
	for i, s := range sources {
		if s != flagwire.SourceCache {
			t.Errorf("evaluation %d from %s, want CACHE", i, s)
		}
	}

	t.Run("local mode does not prefetch", func(t *testing.T) {
		local := middlewareClient(t, srv, flagwire.WithMode(flagwire.ModeLocal))
		srv.ResetCounts()
		h := local.Middleware(fromHeaders, "new-ui")(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		if n := srv.Requests("POST", "/v1/evaluate"); n != 0 {
			t.Errorf("%d evaluate requests in local mode", n)
		}
	})
}

// Attach each request's evaluation context once, in middleware; handlers
// pass r.Context() to the client.
func ExampleClient_Middleware() {
	srv, _ := flagtest.Start(flagtest.WithFlags("test", evaluate.Flag{
		Key: "checkout-new-flow", Rules: []evaluate.Rule{{ID: "rule-2", When: "plan == 'pro'", Serve: evaluate.Serve{Variant: true}}},
	}))
	defer srv.Close()
	client, _ := flagwire.New(context.Background(),
		flagwire.WithEndpoint(srv.URL), flagwire.WithToken(srv.Token()), flagwire.WithEnvironment("test"))
	defer client.Close(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkout", func(w http.ResponseWriter, r *http.Request) {
		if client.Bool(r.Context(), "checkout-new-flow", false) {
			fmt.Fprintln(w, "new checkout")
			return
		}
		fmt.Fprintln(w, "old checkout")
	})
	handler := client.Middleware(func(r *http.Request) flagwire.Attributes {
		return flagwire.Attributes{"userId": r.Header.Get("X-User"), "plan": r.Header.Get("X-Plan")}
	}, "checkout-new-flow")(mux)

	for _, plan := range []string{"pro", "free"} {
		req := httptest.NewRequest("GET", "/checkout", nil)
		req.Header.Set("X-User", "8a7f4c91")
		req.Header.Set("X-Plan", plan)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Print(plan, ": ", rec.Body.String())
	}
	// Output:
	// pro: new checkout
	// free: old checkout
}
