// Package chaos is Flagwire's chaos suite: tests only. It drives the public
// client API under concurrent load against a flagtest server while
// injecting the failures of README's failure table and the seed's
// catalogue — server down, slow answers (2× the timeout), 5xx storms, 429
// with Retry-After, 401 and 403, connections reset mid-body, truncated,
// malformed and oversized (> 4 MiB) answers and decisions for another flag,
// stalled, dropped and refused SSE streams, a config that does not
// compile, an older config version, server clock jumps, tampered, expired
// and rolled-back bootstraps, a client closed under load, and a million
// distinct evaluation contexts — in remote, local and offline modes. The
// load mixes in calls of unknown flags and wrong-typed calls (String on a
// bool flag, …). It checks after every call and every drill that
//
//   - nothing panics and every call returns within its timeout (the
//     client's, or the caller's earlier deadline);
//   - every answer is right, by a model written in the test (model_test.go),
//     never by the evaluate engine the server and SDK share: flags whose
//     answers are trivially computable (on/off, a userId target list, a rule
//     on an attribute equality, a fixed variant per generation, and the
//     design's benchmark flag with README's bucketing re-implemented), each
//     variant carrying its generation in its payload, and a record of when
//     each generation was live. Value, variant, reason kind, rule id,
//     segment and bucket must be the answer's generation's, and that
//     generation must have been live within its source's documented age
//     bound (REMOTE: the timeout; CACHE: the TTL; STALE: TTL +
//     CacheSettings.MaxStale; LOCAL: stream idle timeout + a poll, or since a
//     fault began; BOOTSTRAP: the bootstrap's) plus a scheduling slack of
//     300 ms + twice the worst measured scheduler lag;
//   - a fallback (STALE, BOOTSTRAP, or the caller's default with an error
//     code) comes only when justified: an injected fault that causes that
//     code was active (or ended less than its recovery grace before), or
//     the client's transport saw a request fail that way just before, or
//     the call timed out on its own after its full budget; fallbacks come
//     in the documented order (fresh > stale cached > bootstrap > default);
//     unknown flags answer FLAG_NOT_FOUND, wrong-typed calls TYPE_MISMATCH,
//     and neither changes what later right-typed calls get; after Close,
//     CLIENT_CLOSED; local mode never goes back to an older config;
//   - server calls stay bounded by the circuit breaker, Retry-After and
//     stream backoff (and 401/403 stop the stream and are not retried);
//     per (flag, context) over every drill, requests overlap only across
//     an invalidation (a request is never shared across one), and a key
//     is fetched again only after a failure, its refresh-ahead point, or
//     an invalidation;
//   - memory stays bounded (the decision cache's LRU bound holds) and the
//     goroutines go back to their baseline after Close.
//
// It prints a summary (calls, faults injected, answers by source, errors by
// code, server calls against their bound, the slowest call) in verbose
// mode:
//
//	go test -race -v ./chaos/                           # short: 0.6 s per drill (1.5 s for SSE), ~40 s in all
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
