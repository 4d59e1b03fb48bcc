package flagwire

import (
	"maps"
	"net/http"
)

// Middleware returns net/http middleware that attaches an evaluation
// context to every request's context, so handlers just write
//
//	if client.Bool(r.Context(), "checkout-new-flow", false) { … }
//
// extract builds the context's attributes from the request (a user id from
// the session, the region from a header, …); it runs once per request, on
// the request's goroutine, before the handler. Its attributes are merged
// over attributes already in the request's context (an outer Middleware's,
// or WithAttributes'), its own winning, so several middlewares can each add
// some. A nil extract, or one that returns no attributes, leaves the
// request's context unchanged. Attributes must not be modified after
// extract returns them.
//
// prefetch names flags whose decisions for each request's evaluation
// context are fetched before the handler runs, in one batch round trip
// (see Client.Evaluate), so that the handler's evaluations are cache
// hits. The wait is bounded by the client's timeout; a failed prefetch
// only means the handler's evaluations ask again, with the usual
// fallbacks. Prefetching does nothing in local and offline modes, which
// never wait for the network, or on a nil Client (whose Middleware still
// attaches the attributes).
//
// It works with any router built on http.Handler:
//
//	mux := http.NewServeMux()
//	mux.HandleFunc("GET /checkout", checkout)
//	http.ListenAndServe(addr, client.Middleware(func(r *http.Request) flagwire.Attributes {
//		return flagwire.Attributes{"userId": userID(r), "region": r.Header.Get("X-Region")}
//	}, "checkout-new-flow")(mux))
func (c *Client) Middleware(extract func(r *http.Request) Attributes, prefetch ...string) func(http.Handler) http.Handler {
	prefetch = append([]string(nil), prefetch...)
	doPrefetch := c != nil && len(prefetch) > 0 && c.cfg.mode == ModeRemote
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			if extract != nil {
				if attrs := extract(r); len(attrs) > 0 {
					if prev := AttributesFrom(ctx); len(prev) > 0 {
						merged := maps.Clone(prev)
						maps.Copy(merged, attrs)
						attrs = merged
					}
					ctx = WithAttributes(ctx, attrs)
					r = r.WithContext(ctx)
				}
			}
			if doPrefetch {
				c.prefetch(ctx, prefetch...)
			}
			next.ServeHTTP(w, r)
		})
	}
}
