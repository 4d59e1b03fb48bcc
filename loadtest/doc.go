// Package loadtest measures the reference server (flagserver) over
// loopback, bounded in count and time: POST /v1/evaluate throughput and
// latency percentiles (one decision per request, the SDK's miss path, and
// batches of 100), and SSE fan-out — how long one change takes to reach
// 1,000 subscribers — with the server's memory per subscriber; and OFREP
// single-flag and bulk answers per second (TestLoadOFREP), in process or
// against a `flagwire serve` process or any other OFREP server, with the
// server's CPU time per answer and RSS.
//
// Tests only; the figures are logged (go test -v) and printed as a
// Markdown table:
//
//	go test -v ./loadtest/                           # short: ≤ 2 s and ≤ 20,000 requests per workload
//	FLAGWIRE_LOAD=long go test -v ./loadtest/        # long: ≤ 20 s and ≤ 500,000 requests, 5,000 subscribers
//	go test -v ./loadtest/ -load.duration=5s -load.requests=50000 -load.subscribers=2000
//	go test -v -run TestLoadOFREP ./loadtest/ -load.serve=build       # builds and runs cmd/flagwire
//	go test -v -run TestLoadOFREP ./loadtest/ -load.target=http://127.0.0.1:8016 -load.pid=PID
//
// Traffic goes to 127.0.0.1 only. The client and the server share the
// machine's cores, so throughput is that of both together.
package loadtest
