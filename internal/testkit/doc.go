// Package testkit holds the helpers that more than one package's tests of
// this module need: waiting on a condition, an injected clock, a bootstrap
// signer, an SSE reader, a request recorder, latency quantiles, the
// design's benchmark flag and a report printed after the tests.
//
// It is for _test.go files only: no package of the module's non-test
// builds imports it (TestNoNonTestImporter checks), so none of it reaches
// a user's binary. It imports neither the root package, flagserver nor
// flagtest, so that the tests inside those packages can use it without an
// import cycle; it does import evaluate and internal/wire, so evaluate's
// and wire's own in-package tests cannot.
package testkit
