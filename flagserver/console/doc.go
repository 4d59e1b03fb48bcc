// Package console is Flagwire's web console: server-rendered pages for the
// people who run flags (product managers, on-call engineers, reviewers),
// served by `flagwire serve` at /ui/.
//
// The console is a client of the Flag API: every page is built from /v1
// requests made with the signed-in person's own token, through the API's
// http.Handler in the same process, so it sees and may do exactly what
// that token sees and may do (GET /v1/me tells which scopes and
// environments it has, and the console offers nothing more). It never
// reads or writes the store itself.
//
//	srv, _ := flagserver.New(opts)
//	ui, _ := console.New(console.Options{API: srv})
//	http.ListenAndServe(addr, ui.Mount(srv)) // /ui/ is the console, the rest the API
//
// Sign-in takes a bearer token (a static token or an OAuth access token
// pasted in). The token stays on the server: the browser holds only a
// signed session id in an HttpOnly, SameSite=Strict cookie (Secure over
// TLS). Sessions are bounded in number (Options.MaxSessions) and expire
// (Options.SessionTTL, Options.IdleTimeout); sign-out ends one. Every
// state-changing form carries a CSRF token; every response carries a strict
// Content-Security-Policy (no inline script or style), X-Frame-Options:
// DENY, frame-ancestors 'none', Referrer-Policy: no-referrer and
// X-Content-Type-Options: nosniff.
//
// Sessions live in the memory of one process: behind a load balancer with
// several replicas, route a browser to the same replica (sticky sessions),
// or sign in again after a switch. Request signing (HMAC) cannot be used
// with the console: its in-process requests are not signed.
//
// Pages work without JavaScript; a small script (assets/console.js, no
// inline script) filters the flag list while typing.
//
// A Console is safe for concurrent use. It starts no goroutines.
package console
