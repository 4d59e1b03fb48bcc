// Package flagfile is Flagwire's flags as code: the YAML files that describe
// flags and segments in a repository, loaded, merged per environment,
// marshalled back, and linted by the seed's pipeline checks.
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
// The file format is documented at File; field names are the yaml tags of
// the evaluate model types, and an unknown field is an error naming the
// closest known one. Every load error is a *evaluate.LoadError whose
// findings carry file:line:col. The Configs that LoadDir and MergeFiles
// build carry an evaluate.Locator (Config.Locator), so the findings of
// evaluate.Compile and of Lint point at the file, line and column of what
// they are about — inside a rule condition, at the very token.
//
// The JSON wire form of a Config is decoded by evaluate.DecodeConfigJSON,
// not here: the SDK needs it without YAML.
package flagfile
