// Package evaluate is Flagwire's rules engine: the flag model, the rule
// language, segments, SHA-256 bucketing, compilation into immutable snapshots,
// and the strict decoder of the JSON wire form.
//
// It is shared by the SDK's local and offline modes and by the reference
// server, so a decision made remotely and one made in-process can never
// disagree. The package is a pure leaf: no I/O, no goroutines and no clock
// reads — the evaluation time is always an input. It links no YAML parser:
// flags as code (YAML files, LoadDir, marshalling, lint) live in package
// flagfile, which builds Configs for this package.
//
// # Pipeline
//
//	JSON   ──DecodeConfigJSON──▶ Config ──Compile──▶ *Snapshot ──Evaluate(Attrs)──▶ Result
//	YAML   ──flagfile.LoadDir──▶ Config (with a Locator for file positions)
//
// A Config is one environment: flags, segments, the bucketing salt and an
// optional attribute schema. Compile checks everything (unknown segments,
// duplicate rule ids, weights, variant types, prerequisite cycles, rule
// syntax, regexes, versions) and reports every problem in a *CompileError
// whose findings carry file:line:col when the config came from files
// (Config.Locator); nothing is half-applied. A Snapshot is immutable and safe for concurrent
// use; swap it atomically to change configuration.
//
// # Evaluation order
//
// An off flag serves its off variant (OFF). Otherwise prerequisites must
// hold (else PREREQUISITE_FAILED), then individual targets (TARGET_MATCH),
// then rules in order, the first match winning (RULE_MATCH, or
// SEGMENT_MATCH when the rule names a segment), then the default
// (DEFAULT, or ROLLOUT when it is a rollout, a percentage or a progressive
// ramp). A flag with no targeting at all — no prerequisites, targets or
// rules, and a fixed default or none — reports STATIC instead of DEFAULT. A rule serves a fixed
// variant, a weighted rollout, a percentage of users (the others fall
// through to the next rule) or a progressive ramp evaluated at the given
// time. Evaluate does not allocate.
//
// # Subjects
//
// A subject is stated either as an Attributes map (Evaluate) or as a list
// of Attrs (EvaluateAttrs), the way log/slog states attributes: Values
// hold strings, bools and numbers without boxing them, so a service that
// builds its subject per request evaluates without allocating. Both forms
// decide alike; in a list the last of a repeated key counts.
//
// # Rule language
//
// Conditions (`when`) use a small language with no loops and no user
// functions; its grammar is in the documentation of ParseCondition.
//
// # Bucketing
//
// See Bucket for the specification; testdata/bucketing_vectors.json holds
// test vectors for implementations in other languages.
package evaluate
