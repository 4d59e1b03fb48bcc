// Package conformance is Flagwire's language-neutral conformance suite: JSON
// case files (cases/*.json) whose expectations are written from the
// documented semantics, a second implementation of the bucketing function in
// Python (bucketing/bucketing.py), and Go runners (the package's tests) that
// run every case through every evaluation path — the engine, the reference
// server's POST /v1/evaluate and OFREP endpoints, and the SDK in remote,
// local, offline and OFREP modes — and fail on any divergence.
//
// The package has no API; see README.md for the case format.
package conformance
