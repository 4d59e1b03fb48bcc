// Package chaos is Flagwire's chaos suite: tests only. It drives the public
// client API under concurrent load against a flagtest server while
// injecting the failures of the seed's catalogue — server down, slow
// answers (2× the timeout), 5xx storms, 429 with Retry-After, connections
// reset mid-body, truncated and malformed JSON, stalled and dropped SSE
// streams, a config that does not compile, an older config version,
// server clock jumps, tampered, expired and rolled-back bootstraps, and a
// million distinct evaluation contexts — in remote, local and offline
// modes, and checks after every call and every drill that
//
//   - nothing panics and every call returns within its timeout (the
//     client's, or the caller's earlier deadline);
//   - fallbacks come in the documented order: fresh > stale cached >
//     bootstrap / last-known config > the caller's default, and the
//     Detail says why;
//   - no answer is wrong: every value that is not the caller's default is
//     what the server would decide (the same config, compiled and evaluated
//     by the test), and local mode never goes back to an older config;
//   - server calls stay bounded by the circuit breaker, Retry-After and
//     request coalescing, and stream reconnects by their backoff;
//   - memory stays bounded (the decision cache's LRU bound holds) and the
//     goroutines go back to their baseline after Close.
//
// It prints a summary (calls, faults injected, answers by source, errors by
// code, server calls against their bound, the slowest call) in verbose
// mode:
//
//	go test -race -v ./chaos/                           # short: 0.7 s per drill (2 s for SSE), ~40 s in all
//	FLAGWIRE_CHAOS=long go test -v -timeout 30m ./chaos/  # 8 callers × 10 s per drill, 10⁶ contexts; ~5 min
//	go test -v ./chaos/ -chaos.duration=3s -chaos.workers=16 -chaos.contexts=1000000
//
// The callers work in 1 ms bursts and rest between them, so together they
// use about one of the two cores and leave the other to the server and the
// client's own goroutines. Every call's latency is checked against its
// limit (the client's 100 ms timeout, or the caller's 30 ms deadline on a
// quarter of the calls) plus 50 ms plus the worst scheduler lag a ticker
// goroutine measured meanwhile, so a starved CPU is not mistaken for a
// blocking call; at most 3 calls per drill may exceed that, none by 1 s.
//
// A bound this suite found broken in code under repair is listed in
// knownIssues: it is logged and marked in the summary instead of failing,
// unless FLAGWIRE_CHAOS_STRICT=1.
package chaos
