// Command middleware serves HTTP with Flagwire's middleware: attributes come
// from the request, the flags a page needs are prefetched in one batch
// request, and handlers just call client.Bool(r.Context(), …).
//
//	go run ./examples/middleware
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "middleware:", err)
		os.Exit(1)
	}
}

func run() error {
	flags, err := flagtest.Start(flagtest.WithFlags("prod",
		evaluate.Flag{Key: "new-header", Rules: []evaluate.Rule{{ID: "pro", When: "plan == 'pro'", Serve: evaluate.Serve{Variant: true}}}},
		evaluate.Flag{Key: "banner", Type: evaluate.TypeString, Variants: []evaluate.Variant{{Name: "none"}, {Name: "black-friday"}},
			Rules: []evaluate.Rule{{ID: "eu", When: "country in ['DE', 'FR']", Serve: evaluate.Serve{Variant: "black-friday"}}}, Default: &evaluate.Serve{Variant: "none"}},
	))
	if err != nil {
		return err
	}
	defer flags.Close()
	client, err := flagwire.New(context.Background(), flagwire.WithEndpoint(flags.URL), flagwire.WithToken(flags.Token()),
		flagwire.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return err
	}
	defer client.Close(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		header := "classic header"
		if client.Bool(r.Context(), "new-header", false) {
			header = "NEW header"
		}
		fmt.Fprintf(w, "%s, banner=%s", header, client.String(r.Context(), "banner", "none"))
	})
	extract := func(r *http.Request) flagwire.Attributes {
		return flagwire.Attributes{"userId": r.Header.Get("X-User"), "plan": r.Header.Get("X-Plan"), "country": r.Header.Get("X-Country")}
	}
	site := httptest.NewServer(client.Middleware(extract, "new-header", "banner")(mux))
	defer site.Close()

	for _, u := range []struct{ id, plan, country string }{{"u1", "pro", "DE"}, {"u2", "free", "US"}, {"u1", "pro", "DE"}} {
		req, _ := http.NewRequest(http.MethodGet, site.URL, nil)
		req.Header.Set("X-User", u.id)
		req.Header.Set("X-Plan", u.plan)
		req.Header.Set("X-Country", u.country)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s (%s, %s): %s\n", u.id, u.plan, u.country, body)
	}
	st := client.Stats()
	fmt.Printf("3 page views, %d flag evaluations, %d evaluate API calls (one batch per new visitor), %d cache hits\n",
		st.Evaluations, flags.Requests("POST", "/v1/evaluate"), st.CacheHits)
	return nil
}
