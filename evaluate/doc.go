// Package evaluate is Flagwire's rules engine: the flag model, the rule
// language, segments, SHA-256 bucketing, compilation into immutable snapshots,
// flags-as-code encodings and lint.
//
// It is shared by the SDK's local and offline modes and by the reference
// server, so a decision made remotely and one made in-process can never
// disagree. The package is a pure leaf: no I/O, no goroutines and no clock
// reads — the evaluation time is always an input.
package evaluate
