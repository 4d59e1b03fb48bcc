package flagwire

import (
	"maps"
	"net/http"
)

// MiddlewareOption configures Middleware.
type MiddlewareOption func(*middlewareConfig)

type middlewareConfig struct {
	client   *Client
	prefetch []string
}

// MiddlewarePrefetch makes Middleware fill c's decision cache with keys for each
// request's evaluation context before calling the handler, in one batch
// round trip (see Client.Prefetch), so that the handler's evaluations are
// cache hits. The wait is bounded by c's timeout; a failed prefetch only
// means the handler's evaluations ask again, with the usual fallbacks. It
// does nothing in local and offline modes, which never wait for the
// network, or when c is nil or keys is empty.
func MiddlewarePrefetch(c *Client, keys ...string) MiddlewareOption {
	return func(m *middlewareConfig) {
		m.client = c
		m.prefetch = append(m.prefetch, keys...)
	}
}

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
// It works with any router built on http.Handler:
//
//	mux := http.NewServeMux()
//	mux.HandleFunc("GET /checkout", checkout)
//	http.ListenAndServe(addr, flagwire.Middleware(func(r *http.Request) flagwire.Attributes {
//		return flagwire.Attributes{"userId": userID(r), "region": r.Header.Get("X-Region")}
//	}, flagwire.MiddlewarePrefetch(client, "checkout-new-flow"))(mux))
func Middleware(extract func(r *http.Request) Attributes, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	var cfg middlewareConfig
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	prefetch := cfg.client != nil && len(cfg.prefetch) > 0 && cfg.client.cfg.mode == ModeRemote
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
			if prefetch {
				cfg.client.Prefetch(ctx, cfg.prefetch...)
			}
			next.ServeHTTP(w, r)
		})
	}
}
