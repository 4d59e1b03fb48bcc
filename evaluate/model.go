package evaluate

import "time"

// FlagType is the type of a flag's values.
type FlagType string

// The flag types. A flag with no type and no declared variants is a boolean.
const (
	TypeBoolean FlagType = "boolean"
	TypeString  FlagType = "string"
	TypeNumber  FlagType = "number"
	TypeJSON    FlagType = "json"
)

// The flag states. A flag that is off serves its off variant.
const (
	StateOn  = "on"
	StateOff = "off"
)

// DefaultBucketBy is the attribute used for bucketing when Bucketing.By is empty.
const DefaultBucketBy = "userId"

// Config is the whole flag configuration of one environment: what
// GET /v1/flags?environment=ENV serves and what a directory of flags-as-code
// files becomes. The zero Config is empty and valid.
type Config struct {
	// Environment names the environment, such as "prod".
	Environment string `json:"environment" yaml:"environment"`
	// Version increases with every change to the environment's config.
	// Clients refuse a config older than the one they hold.
	Version int64 `json:"version" yaml:"version,omitempty"`
	// Salt is the per-environment bucketing salt (see Bucket). It is part of
	// every bucketing hash, so the same user lands in independent buckets in
	// different environments.
	Salt string `json:"salt" yaml:"salt,omitempty"`
	// RequireChangeReason makes the server refuse writes without a changeReason.
	RequireChangeReason bool `json:"requireChangeReason,omitempty" yaml:"requireChangeReason,omitempty"`
	// RequireApproval makes the environment protected: the server turns a
	// write to it into a change request that another principal must
	// approve before it is applied (the two-person rule).
	RequireApproval bool `json:"requireApproval,omitempty" yaml:"requireApproval,omitempty"`
	// Attributes is the declared attribute schema used by flagfile.Lint: attribute
	// path → "string", "number", "bool", "semver", "date" or "list". Empty
	// means no schema (no unknown-attribute findings).
	Attributes map[string]string `json:"attributes,omitempty" yaml:"attributes,omitempty"`
	// Flags are the environment's flags, in any order; keys are unique.
	Flags []Flag `json:"flags" yaml:"flags"`
	// Segments are the environment's segments; keys are unique.
	Segments []Segment `json:"segments,omitempty" yaml:"segments,omitempty"`

	// Locator, when not nil, gives the findings of Compile (and of
	// flags-as-code lint) their source positions. The flags-as-code loader
	// sets it on the Configs it builds from files; it is never encoded, and
	// nil means findings keep the positions Compile gives them.
	Locator Locator `json:"-" yaml:"-"`
}

// Flag is one feature flag in one environment.
type Flag struct {
	// Key names the flag, in kebab, snake or dotted case ("checkout-new-flow").
	// In flags-as-code YAML it is written flagKey.
	Key string `json:"key" yaml:"flagKey"`
	// Environment is set by flags-as-code files; the server ignores it.
	Environment string `json:"environment,omitempty" yaml:"environment,omitempty"`
	// Type is the type of the flag's values. Empty means boolean when no
	// variants are declared, otherwise it is inferred from the variants.
	Type FlagType `json:"type,omitempty" yaml:"type,omitempty"`
	// State is "on" or "off". Empty means "on". An off flag serves OffVariant.
	State string `json:"state,omitempty" yaml:"state,omitempty"`
	// Variants are the values the flag can serve. A boolean flag may omit
	// them: it then has the variants "true" and "false".
	Variants []Variant `json:"variants,omitempty" yaml:"variants,omitempty"`
	// OffVariant is served while the flag is off and when a rollout misses.
	// A variant is referenced by its name, or, for booleans, by true/false.
	// Empty means "false" for booleans and the first variant otherwise.
	OffVariant any `json:"offVariant,omitempty" yaml:"offVariant,omitempty"`
	// Targets serve a variant to listed bucketing ids before any rule.
	Targets []Target `json:"targets,omitempty" yaml:"targets,omitempty"`
	// Rules are evaluated in order; the first that matches decides.
	Rules []Rule `json:"rules,omitempty" yaml:"rules,omitempty"`
	// Default is the fallthrough, served when no rule matches. Nil serves
	// OffVariant.
	Default *Serve `json:"default,omitempty" yaml:"default,omitempty"`
	// Bucketing configures the hash used by rollouts.
	Bucketing Bucketing `json:"bucketing,omitzero" yaml:"bucketing,omitempty"`
	// Prerequisites must all hold before the flag's targets and rules apply;
	// otherwise the off variant is served with reason PREREQUISITE_FAILED.
	Prerequisites []Prerequisite `json:"prerequisites,omitempty" yaml:"prerequisites,omitempty"`
	// Owners are the people or teams accountable for the flag.
	Owners []string `json:"owners,omitempty" yaml:"owners,omitempty"`
	// Metadata is governance information; Metadata.TTL is the sunset date.
	// It stays on the server: evaluations do not carry it (see
	// FlagMetadata).
	Metadata Metadata `json:"metadata,omitzero" yaml:"metadata,omitempty"`
	// FlagMetadata is user-defined data returned with every evaluation of
	// the flag, as OpenFeature's and flagd's flag metadata: key → string,
	// bool or number (a finite float64 or an integer type; numbers are
	// served as float64). Nil or empty means none. Compile rejects other
	// value types, an empty key, a key Flagwire uses in its own OFREP and
	// OpenFeature metadata (see IsReservedFlagMetadataKey), more than
	// MaxFlagMetadataEntries entries and strings longer than
	// MaxFlagMetadataValueLen bytes.
	FlagMetadata map[string]any `json:"flagMetadata,omitempty" yaml:"flagMetadata,omitempty"`
	// Version increases with every change to the flag (set by the server).
	Version int64 `json:"version,omitempty" yaml:"version,omitempty"`
}

// Variant is one value a flag can serve.
type Variant struct {
	// Name identifies the variant in rules and results ("B", "control").
	Name string `json:"name" yaml:"name"`
	// Value is the flag value: a bool, string, number or any JSON value,
	// matching the flag's type. Empty for a string flag means Name.
	Value any `json:"value,omitempty" yaml:"value,omitempty"`
	// Payload is optional JSON returned with the variant, such as
	// {"price": 23.00, "currency": "EUR"}.
	Payload any `json:"payload,omitempty" yaml:"payload,omitempty"`
}

// Target serves Variant to the listed bucketing ids (the flag's Bucketing.By
// attribute), before any rule. The reason is TARGET_MATCH.
type Target struct {
	Variant any      `json:"variant" yaml:"variant"`
	Values  []string `json:"values" yaml:"values"`
}

// Serve says what a rule or the fallthrough serves. Exactly one of Variant,
// Rollout and Progressive is set; Percentage may accompany Variant.
type Serve struct {
	// Variant is a fixed variant, by name (or true/false for booleans).
	Variant any `json:"variant,omitempty" yaml:"variant,omitempty"`
	// Percentage, when set, serves Variant only to that share of users
	// (0–100, up to three decimals). For a rule, users outside it fall
	// through to the next rule; for the default they get the off variant.
	// Variant defaults to true for boolean flags.
	Percentage *float64 `json:"percentage,omitempty" yaml:"percentage,omitempty"`
	// Rollout splits users between variants by weight. Weights are
	// percentages summing to 100.
	Rollout []WeightedVariant `json:"rollout,omitempty" yaml:"rollout,omitempty"`
	// Progressive ramps Variant up over time (see Progressive).
	Progressive *Progressive `json:"progressive,omitempty" yaml:"progressive,omitempty"`
	// Seed overrides the flag's bucketing seed for this rule.
	Seed string `json:"seed,omitempty" yaml:"seed,omitempty"`
}

// WeightedVariant is one slice of a rollout.
type WeightedVariant struct {
	Variant any     `json:"variant" yaml:"variant"`
	Weight  float64 `json:"weight" yaml:"weight"`
}

// Progressive is a ramp: the share of users served Variant grows step by
// step at the given times (1 → 5 → 10 → 25 → 50 → 100 %). Before the first
// step nobody is served. Users outside the share fall through like a
// Percentage miss. A paused ramp is evaluated as of PausedAt.
type Progressive struct {
	Variant  any        `json:"variant,omitempty" yaml:"variant,omitempty"`
	Steps    []RampStep `json:"steps" yaml:"steps"`
	Paused   bool       `json:"paused,omitempty" yaml:"paused,omitempty"`
	PausedAt time.Time  `json:"pausedAt,omitzero" yaml:"pausedAt,omitempty"`
}

// RampStep is one step of a progressive rollout.
type RampStep struct {
	At         time.Time `json:"at" yaml:"at"`
	Percentage float64   `json:"percentage" yaml:"percentage"`
}

// Rule is one ordered targeting rule. It matches when its When condition
// (if any) holds, the subject is in its Segment (if any), and, for a
// Percentage or Progressive serve, the subject's bucket is inside the share.
type Rule struct {
	// ID names the rule in results ("rule-2"); unique within the flag.
	ID string `json:"id" yaml:"id"`
	// When is a condition in the rule language (see ParseCondition).
	When string `json:"when,omitempty" yaml:"when,omitempty"`
	// Segment is a segment key the subject must belong to.
	Segment string `json:"segment,omitempty" yaml:"segment,omitempty"`
	// Serve says what the rule serves.
	Serve `yaml:",inline"`
}

// Bucketing configures rollout hashing: the bucket of a subject is
// Bucket(environment salt, Seed, value of attribute By).
type Bucketing struct {
	// Seed defaults to the flag key.
	Seed string `json:"seed,omitempty" yaml:"seed,omitempty"`
	// By is the attribute path hashed; it defaults to "userId".
	By string `json:"by,omitempty" yaml:"by,omitempty"`
}

// Prerequisite requires flag FlagKey to serve one of Variants.
type Prerequisite struct {
	FlagKey  string `json:"flagKey" yaml:"flagKey"`
	Variants []any  `json:"variants" yaml:"variants"`
}

// Metadata is governance information about a flag.
type Metadata struct {
	Team        string   `json:"team,omitempty" yaml:"team,omitempty"`
	TTL         string   `json:"ttl,omitempty" yaml:"ttl,omitempty"` // sunset date, YYYY-MM-DD or RFC 3339
	Jira        string   `json:"jira,omitempty" yaml:"jira,omitempty"`
	RiskLevel   string   `json:"riskLevel,omitempty" yaml:"riskLevel,omitempty"`
	KillSwitch  bool     `json:"killSwitch,omitempty" yaml:"killSwitch,omitempty"`
	Dashboards  []string `json:"dashboards,omitempty" yaml:"dashboards,omitempty"`
	Description string   `json:"description,omitempty" yaml:"description,omitempty"`
}

// Segment is a saved predicate: rule-based (When), static (Included ids of
// attribute By), or both — a subject is in the segment when it is not
// Excluded and it is Included or matches When.
type Segment struct {
	Key         string   `json:"key" yaml:"key"`
	Description string   `json:"description,omitempty" yaml:"description,omitempty"`
	When        string   `json:"when,omitempty" yaml:"when,omitempty"`
	By          string   `json:"by,omitempty" yaml:"by,omitempty"`
	Included    []string `json:"included,omitempty" yaml:"included,omitempty"`
	Excluded    []string `json:"excluded,omitempty" yaml:"excluded,omitempty"`
	Version     int64    `json:"version,omitempty" yaml:"version,omitempty"`
}
