// Package flagfile is Flagwire's flags as code: the YAML files that describe
// flags and segments in a repository, loaded, merged per environment,
// marshalled back, and linted (compile errors, schema types, personal data
// in variants, expired flags still on, missing owners, unreachable rules).
//
// It sits beside package evaluate, which stays a pure leaf with no file I/O
// and no YAML parser: the SDK links evaluate only, so a service binary never
// carries a YAML parser. The CLI (flagwire lint, apply, import-env, serve
// --flags) and package flagtest use flagfile.
//
// # Pipeline
//
//	*.yaml ──LoadYAML──▶ *File ──MergeFiles──▶ map[env]*evaluate.Config
//	dir    ──LoadDir (LoadYAML + MergeFiles)──▶ map[env]*evaluate.Config
//	*evaluate.Config ──Lint──▶ []evaluate.Finding  ──HasErrors──▶ CI gate
//	evaluate.Flag / *evaluate.Config ──MarshalYAML / MarshalConfigYAML──▶ YAML
//
// The file format is described below and at [File]; field names are the
// yaml tags of the evaluate model types, and an unknown field is an error
// naming the closest known one. Every load error is a *evaluate.LoadError whose
// findings carry file:line:col. The Configs that LoadDir and MergeFiles
// build carry an evaluate.Locator (Config.Locator), so the findings of
// evaluate.Compile and of Lint point at the file, line and column of what
// they are about — inside a rule condition, at the very token.
//
// The JSON wire form of a Config is decoded by evaluate.DecodeConfigJSON,
// not here: the SDK needs it without YAML.
//
// # File format
//
// A directory of flags as code holds YAML files (*.yaml, *.yml), one flag
// per file or many. Each file holds one or more YAML documents (separated
// by "---"), and each document is one of two kinds:
//
//   - a flag document: a mapping with a flagKey, describing one flag;
//   - a config document: a mapping with any of environment, salt, version,
//     requireChangeReason, attributes, segments and flags, describing an
//     environment's settings and any number of its segments and flags.
//
// A flag document:
//
//	flagKey: checkout-new-flow
//	environment: prod
//	state: on
//	owners: ["payments-team"]
//	rules:
//	  - id: rule-1
//	    when: plan == 'pro' and region == 'US'
//	    variant: true
//	  - id: rule-2
//	    segment: beta_testers
//	    variant: true
//	default: {percentage: 10}
//	bucketing:
//	  seed: checkout-new-flow
//	metadata:
//	  team: payments
//	  jira: PAY-1234
//	  ttl: 2027-06-30
//
// A config document, here for the same environment (every file that names
// an environment contributes to it):
//
//	environment: prod
//	salt: prod-salt-2026
//	requireChangeReason: true
//	requireApproval: true
//	attributes: {userId: string, plan: string, region: string, country: string, appVersion: semver}
//	segments:
//	  - key: beta_testers
//	    description: Users who opted into beta features
//	    included: ["3f9b2e10", "c0ffee42"]
//	flags:
//	  - flagKey: new-search
//	    default: {percentage: 10}
//
// Config document fields (all optional):
//
//   - environment: the environment's name ("prod"). It applies to the
//     file's flags that name none and to all its segments; the other
//     file-level fields configure that environment and so require one.
//   - salt: the environment's bucketing salt, part of every bucketing hash,
//     so that one user lands in independent buckets in different
//     environments.
//   - version: the config's version (the server keeps its own; clients
//     refuse a config older than the one they hold).
//   - requireChangeReason: true makes the server refuse writes to the
//     environment without a changeReason.
//   - requireApproval: true protects the environment (as `flagwire serve
//     --protect ENV` does): the server answers a write to it (create,
//     change or delete of a flag or segment) with 202 Accepted and a
//     pending change request, applied only when a different principal
//     holding the flags:approve scope approves it. Turning off a flag whose
//     metadata sets killSwitch: true is applied at once, audited as an
//     emergency change.
//   - attributes: the attribute schema that Lint checks rules against:
//     attribute path → string, number, bool, semver, date or list. Empty
//     means no schema.
//   - segments: a list of segment mappings (below).
//   - flags: a list of flag mappings, each as a flag document.
//
// Flag fields (only flagKey is required):
//
//   - flagKey: the flag's key, in kebab, snake or dotted case.
//   - environment: the flag's environment, when the file names none (or
//     another one).
//   - type: boolean, string, number or json. Empty means boolean when no
//     variants are declared, else the type the variants' values have.
//   - state: on or off (empty means on). An off flag serves its off
//     variant.
//   - variants: the values the flag can serve, each {name, value, payload}:
//     name identifies it in rules and answers; value is the flag value (a
//     string flag's empty value means its name); payload is any JSON value
//     served with it. A boolean flag may omit them: it has true and false.
//   - offVariant: served while the flag is off, when a rollout misses and
//     when a prerequisite fails; a variant name, or true/false for a
//     boolean. Empty means false for booleans and the first variant
//     otherwise.
//   - targets: a list of {variant, values}: the listed bucketing ids (the
//     values of the bucketing attribute, as strings) get variant before any
//     rule.
//   - rules: an ordered list; the first that matches decides. A rule has an
//     id (unique in the flag), an optional when (a condition in the rule
//     language: see [evaluate.ParseCondition]), an optional segment (a
//     segment key the subject must belong to) and what it serves (below).
//   - default: what is served when no rule matches (below); absent serves
//     the off variant.
//   - bucketing: {seed, by}: seed is the rollout hash's seed (default: the
//     flag key), by the attribute path hashed (default: userId).
//   - prerequisites: a list of {flagKey, variants}: each named flag must
//     serve one of the listed variants before this flag's targets and rules
//     apply; otherwise the off variant is served (PREREQUISITE_FAILED).
//   - owners: the people or teams accountable for the flag.
//   - metadata: governance data that stays on the server: team, ttl (the
//     sunset date, YYYY-MM-DD or RFC 3339), jira, riskLevel, killSwitch
//     (true or false), dashboards (a list) and description.
//   - flagMetadata: data returned with every evaluation of the flag: key →
//     string, boolean or number, at most 64 entries (see
//     [evaluate.Flag].FlagMetadata for the limits and reserved keys).
//   - version: the flag's version, set by the server.
//
// What a rule or the default serves is exactly one of:
//
//   - variant: a variant name (true/false for booleans), optionally with
//     percentage: the share of users (0–100, up to three decimals) served
//     the variant; the rest fall through to the next rule (from the
//     default: the off variant). With percentage alone a boolean flag
//     serves true.
//   - rollout: a list of {variant, weight}, weights in percent summing to
//     100: users are split between the variants by their bucket.
//   - progressive: a ramp {variant, steps, paused, pausedAt}: steps is a
//     list of {at, percentage} (at an RFC 3339 time), the share served
//     variant growing step by step; before the first step nobody is served;
//     a paused ramp is evaluated as of pausedAt.
//
// and may carry seed, overriding the flag's bucketing seed for that rule:
//
//	rules:
//	  - id: eu-price-test
//	    when: country in ['DE','FR','ES']
//	    rollout: [{variant: control, weight: 34}, {variant: A, weight: 33}, {variant: B, weight: 33}]
//	  - id: ramp
//	    progressive:
//	      variant: A
//	      steps: [{at: 2026-07-01T09:00:00Z, percentage: 5}, {at: 2026-07-08T09:00:00Z, percentage: 50}]
//
// Segment fields: key (required); description; when (a condition: subjects
// that match it are in the segment); by (the attribute the id lists hold,
// default userId); included and excluded (lists of ids). A subject is in
// the segment when it is not excluded and it is included or matches when.
//
// Scalars: where the model wants a string, a scalar keeps its source text
// ("ttl: 2026-12-31" is the string "2026-12-31", "jira: 1234" the string
// "1234"). Booleans are only true and false, so "state: off" is the string
// "off"; a boolean where a string is expected is an error, so that "name:
// true" never silently becomes "true". Free-form values (variant values and
// references, payloads, flagMetadata values) keep their YAML types: in
// "flagMetadata: {release: 1.0.2, build: 2}" release is a string and build
// a number ("2" quoted would be a string). Anchors, aliases and merge keys
// ("<<") work, within MaxYAMLAliasNodes.
//
// Across files (see [MergeFiles]): a flag with no environment of its own in
// a file without one is an error; within an environment, flag and segment
// keys are unique across files, and files agree on salt, version and
// attribute types.
package flagfile
