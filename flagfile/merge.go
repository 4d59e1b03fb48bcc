package flagfile

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/flagwire/flagwire/evaluate"
)

// MergeFiles builds one [evaluate.Config] per environment from parsed files. A flag
// belongs to its own environment, or else to its file's; a flag with
// neither is an error (there is no implicit "every environment"), and so
// are segments and file-level settings in a file without an environment.
// Within an environment, flag keys and segment keys must be unique across
// files, and files must agree on salt, version and attribute types;
// requireChangeReason holds if any file sets it.
//
// Flags and segments are sorted by key, so the result does not depend on
// how they are spread over files. Each Config remembers where its flags
// came from (Config.Locator), so that [evaluate.Compile] and Lint report
// file:line:col positions. The Configs are not compiled; problems are
// reported in a *[evaluate.LoadError].
func MergeFiles(files ...*File) (map[string]*evaluate.Config, error) {
	type envState struct {
		cfg      *evaluate.Config
		loc      *locator
		flagAt   map[string]evaluate.Position
		segAt    map[string]evaluate.Position
		saltAt   evaluate.Position
		verAt    evaluate.Position
		attrFrom map[string]evaluate.Position
	}
	envs := make(map[string]*envState)
	var errs []evaluate.Finding
	fail := func(f evaluate.Finding) {
		f.Severity = evaluate.SeverityError
		errs = append(errs, f)
	}
	get := func(name string, at evaluate.Position) *envState {
		if es, ok := envs[name]; ok {
			return es
		}
		if !validKey(name) {
			fail(evaluate.Finding{Code: "invalid-environment", Field: "environment", Pos: at, Msg: fmt.Sprintf("invalid environment name %q: use letters, digits, '-', '_' and '.'", name)})
		}
		es := &envState{
			cfg:      &evaluate.Config{Environment: name},
			loc:      &locator{flags: make(map[string]*objPos), segments: make(map[string]*objPos)},
			flagAt:   make(map[string]evaluate.Position),
			segAt:    make(map[string]evaluate.Position),
			attrFrom: make(map[string]evaluate.Position),
		}
		es.cfg.Locator = es.loc
		envs[name] = es
		return es
	}
	for _, f := range files {
		if f == nil {
			continue
		}
		fp := f.pos
		if fp == nil {
			fp = &filePos{}
		}
		if fp.config == nil {
			fp.config = newObjPos(evaluate.Position{File: f.Name})
		}
		cpos := func(field string) evaluate.Position {
			if p, ok := fp.config.fields[field]; ok {
				return p
			}
			return evaluate.Position{File: f.Name}
		}
		posAt := func(list []*objPos, i int) *objPos {
			if i < len(list) && list[i] != nil {
				return list[i]
			}
			return newObjPos(evaluate.Position{File: f.Name})
		}
		var es *envState
		if f.Environment != "" {
			es = get(f.Environment, cpos("environment"))
			es.loc.config = append(es.loc.config, fp.config)
		} else {
			for _, field := range []string{"salt", "version", "requireChangeReason", "requireApproval", "attributes"} {
				if _, set := fp.config.fields[field]; set {
					fail(evaluate.Finding{Code: "missing-environment", Field: field, Pos: cpos(field), Msg: field + " needs a file-level environment"})
				}
			}
		}
		if es != nil {
			cfg := es.cfg
			if f.Salt != "" {
				if cfg.Salt != "" && cfg.Salt != f.Salt {
					fail(evaluate.Finding{Code: "conflict", Field: "salt", Pos: cpos("salt"), Msg: fmt.Sprintf("environment %q: salt differs from the one set at %s", f.Environment, es.saltAt)})
				} else if cfg.Salt == "" {
					cfg.Salt, es.saltAt = f.Salt, cpos("salt")
				}
			}
			if f.Version != 0 {
				if cfg.Version != 0 && cfg.Version != f.Version {
					fail(evaluate.Finding{Code: "conflict", Field: "version", Pos: cpos("version"), Msg: fmt.Sprintf("environment %q: version %d differs from %d set at %s", f.Environment, f.Version, cfg.Version, es.verAt)})
				} else if cfg.Version == 0 {
					cfg.Version, es.verAt = f.Version, cpos("version")
				}
			}
			cfg.RequireChangeReason = cfg.RequireChangeReason || f.RequireChangeReason
			cfg.RequireApproval = cfg.RequireApproval || f.RequireApproval
			for _, k := range slices.Sorted(maps.Keys(f.Attributes)) {
				t := f.Attributes[k]
				if prev, dup := cfg.Attributes[k]; dup {
					if prev != t {
						fail(evaluate.Finding{Code: "conflict", Field: "attributes." + k, Pos: cpos("attributes." + k), Msg: fmt.Sprintf("attribute %q declared as %q here and as %q at %s", k, t, prev, es.attrFrom[k])})
					}
					continue
				}
				if cfg.Attributes == nil {
					cfg.Attributes = make(map[string]string)
				}
				cfg.Attributes[k] = t
				es.attrFrom[k] = cpos("attributes." + k)
			}
		}
		for i, s := range f.Segments {
			op := posAt(fp.segments, i)
			if es == nil {
				fail(evaluate.Finding{Code: "missing-environment", Segment: s.Key, Pos: op.at, Msg: "segment has no environment: set environment: at the top of the file"})
				continue
			}
			if first, dup := es.segAt[s.Key]; dup {
				fail(evaluate.Finding{Code: "duplicate-segment", Segment: s.Key, Field: "key", Pos: op.lookup("key"), Msg: fmt.Sprintf("segment defined twice in environment %q (first at %s)", f.Environment, first)})
				continue
			}
			es.segAt[s.Key] = op.lookup("key")
			es.cfg.Segments = append(es.cfg.Segments, s)
			es.loc.segments[s.Key] = op
		}
		for i, fl := range f.Flags {
			op := posAt(fp.flags, i)
			env := fl.Environment
			at := op.lookup("environment")
			if env == "" {
				env, at = f.Environment, cpos("environment")
			}
			if env == "" {
				fail(evaluate.Finding{Code: "missing-environment", Flag: fl.Key, Pos: op.lookup("flagKey"), Msg: "flag has no environment: set environment: on the flag or at the top of the file"})
				continue
			}
			fes := get(env, at)
			if first, dup := fes.flagAt[fl.Key]; dup {
				fail(evaluate.Finding{Code: "duplicate-flag", Flag: fl.Key, Field: "flagKey", Pos: op.lookup("flagKey"), Msg: fmt.Sprintf("flag defined twice in environment %q (first at %s)", env, first)})
				continue
			}
			fes.flagAt[fl.Key] = op.lookup("flagKey")
			fes.cfg.Flags = append(fes.cfg.Flags, fl)
			if op.rules == nil {
				op.rules = make([]string, len(fl.Rules))
				for j, r := range fl.Rules {
					op.rules[j] = r.ID
				}
			}
			fes.loc.flags[fl.Key] = op
		}
	}
	if len(errs) > 0 {
		evaluate.SortFindings(errs)
		if len(errs) > evaluate.MaxLoadFindings {
			errs = errs[:evaluate.MaxLoadFindings]
		}
		return nil, &evaluate.LoadError{Findings: errs}
	}
	out := make(map[string]*evaluate.Config, len(envs))
	for name, es := range envs {
		sort.SliceStable(es.cfg.Flags, func(i, j int) bool { return es.cfg.Flags[i].Key < es.cfg.Flags[j].Key })
		sort.SliceStable(es.cfg.Segments, func(i, j int) bool { return es.cfg.Segments[i].Key < es.cfg.Segments[j].Key })
		out[name] = es.cfg
	}
	return out, nil
}

// validKey reports whether k is a valid environment name: the key syntax
// evaluate.Compile enforces for flags and segments (letters, digits, '-',
// '_' and '.', not starting with a punctuation mark, at most
// evaluate.MaxKeyLength bytes).
func validKey(k string) bool {
	if k == "" || len(k) > evaluate.MaxKeyLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '-' && c != '_' && c != '.') {
			return false
		}
	}
	return true
}
