package flagfile

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"go.yaml.in/yaml/v3"
)

// MarshalYAML encodes one flag as a flags-as-code document in the style of
// the package documentation's examples: two-space indentation, fields in the order flagKey,
// environment, type, state, owners, variants, offVariant, prerequisites,
// targets, rules, default, bucketing, metadata, flagMetadata, version, empty fields
// omitted, owners as a flow list, rollouts and small payloads in flow
// style. LoadYAML reads the output back to an equal flag (numbers as
// numbers, strings as strings: a string that would read as a boolean or
// null is quoted). It fails only for values YAML cannot represent.
func MarshalYAML(flag evaluate.Flag) ([]byte, error) {
	n, err := flagNode(&flag)
	if err != nil {
		return nil, err
	}
	return encode(n)
}

// MarshalConfigYAML encodes a whole environment as one flags-as-code file:
// a config document with environment, salt, version, requireChangeReason,
// requireApproval, attributes, segments and flags. LoadYAML and MergeFiles read it back to
// an equal Config. Used by "flagwire import-env".
func MarshalConfigYAML(cfg *evaluate.Config) ([]byte, error) {
	if cfg == nil {
		cfg = &evaluate.Config{}
	}
	m := mappingNode()
	putStr(m, "environment", cfg.Environment)
	putStr(m, "salt", cfg.Salt)
	if cfg.Version != 0 {
		put(m, "version", intNode(cfg.Version))
	}
	if cfg.RequireChangeReason {
		put(m, "requireChangeReason", boolNode(true))
	}
	if cfg.RequireApproval {
		put(m, "requireApproval", boolNode(true))
	}
	if len(cfg.Attributes) > 0 {
		am := mappingNode()
		for _, k := range slices.Sorted(maps.Keys(cfg.Attributes)) {
			put(am, k, strNode(cfg.Attributes[k]))
		}
		put(m, "attributes", am)
	}
	if len(cfg.Segments) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range cfg.Segments {
			seq.Content = append(seq.Content, segmentNode(&cfg.Segments[i]))
		}
		put(m, "segments", seq)
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	for i := range cfg.Flags {
		fn, err := flagNode(&cfg.Flags[i])
		if err != nil {
			return nil, err
		}
		seq.Content = append(seq.Content, fn)
	}
	put(m, "flags", seq)
	return encode(m)
}

func encode(n *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func mappingNode() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

func put(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, strNode(key), v)
}

// putStr puts the string field key unless s is empty (omitempty).
func putStr(m *yaml.Node, key, s string) {
	if s != "" {
		put(m, key, strNode(s))
	}
}

// strNode encodes a string field. LoadYAML reads numbers and timestamps back
// as their text, so those stay plain ("ttl: 2026-12-31"); strings that
// would read as a boolean or null are quoted.
func strNode(s string) *yaml.Node {
	probe := yaml.Node{Kind: yaml.ScalarNode, Value: s}
	switch probe.ShortTag() {
	case "!!str", "!!int", "!!float", "!!timestamp":
		n := &yaml.Node{Kind: yaml.ScalarNode, Value: s}
		if strings.Contains(s, "\n") {
			n.Style = yaml.LiteralStyle
		}
		return n
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func intNode(i int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(i, 10)}
}

func boolNode(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

func floatNode(f float64) *yaml.Node {
	var n yaml.Node
	_ = n.Encode(f) // a float64 always encodes
	return &n
}

// valueNode encodes a free-form value (variant values, payloads).
func valueNode(v any) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	return &n, nil
}

// flowIfSmall switches a mapping or list of scalars to flow style.
func flowIfSmall(n *yaml.Node) {
	if (n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode) || len(n.Content) == 0 || len(n.Content) > 8 {
		return
	}
	size := 0
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode || strings.Contains(c.Value, "\n") {
			return
		}
		size += len(c.Value) + 2
	}
	if size <= 60 {
		n.Style = yaml.FlowStyle
	}
}

func strListNode(list []string, flow bool) *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	if flow {
		seq.Style = yaml.FlowStyle
	}
	for _, s := range list {
		seq.Content = append(seq.Content, strNode(s))
	}
	return seq
}

func flagNode(f *evaluate.Flag) (*yaml.Node, error) {
	m := mappingNode()
	val := func(key string, v any) error {
		if v == nil {
			return nil
		}
		n, err := valueNode(v)
		if err != nil {
			return fmt.Errorf("flag %q %s: %w", f.Key, key, err)
		}
		flowIfSmall(n)
		put(m, key, n)
		return nil
	}
	put(m, "flagKey", strNode(f.Key))
	putStr(m, "environment", f.Environment)
	putStr(m, "type", string(f.Type))
	putStr(m, "state", f.State)
	if len(f.Owners) > 0 {
		owners := strListNode(f.Owners, true)
		for _, o := range owners.Content {
			o.Style = yaml.DoubleQuotedStyle
		}
		put(m, "owners", owners)
	}
	if len(f.Variants) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, v := range f.Variants {
			vm := mappingNode()
			put(vm, "name", strNode(v.Name))
			for _, kv := range []struct {
				key string
				v   any
			}{{"value", v.Value}, {"payload", v.Payload}} {
				if kv.v == nil {
					continue
				}
				n, err := valueNode(kv.v)
				if err != nil {
					return nil, fmt.Errorf("flag %q variant %q %s: %w", f.Key, v.Name, kv.key, err)
				}
				flowIfSmall(n)
				put(vm, kv.key, n)
			}
			seq.Content = append(seq.Content, vm)
		}
		put(m, "variants", seq)
	}
	if err := val("offVariant", f.OffVariant); err != nil {
		return nil, err
	}
	if len(f.Prerequisites) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, p := range f.Prerequisites {
			pm := mappingNode()
			put(pm, "flagKey", strNode(p.FlagKey))
			vs, err := valueNode(p.Variants)
			if err != nil {
				return nil, fmt.Errorf("flag %q prerequisite %q: %w", f.Key, p.FlagKey, err)
			}
			vs.Style = yaml.FlowStyle
			put(pm, "variants", vs)
			seq.Content = append(seq.Content, pm)
		}
		put(m, "prerequisites", seq)
	}
	if len(f.Targets) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, t := range f.Targets {
			tm := mappingNode()
			vn, err := valueNode(t.Variant)
			if err != nil {
				return nil, fmt.Errorf("flag %q target: %w", f.Key, err)
			}
			put(tm, "variant", vn)
			put(tm, "values", strListNode(t.Values, true))
			seq.Content = append(seq.Content, tm)
		}
		put(m, "targets", seq)
	}
	if len(f.Rules) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range f.Rules {
			r := &f.Rules[i]
			rm := mappingNode()
			put(rm, "id", strNode(r.ID))
			putStr(rm, "when", r.When)
			putStr(rm, "segment", r.Segment)
			if err := serveInto(rm, &r.Serve); err != nil {
				return nil, fmt.Errorf("flag %q rule %q: %w", f.Key, r.ID, err)
			}
			seq.Content = append(seq.Content, rm)
		}
		put(m, "rules", seq)
	}
	if f.Default != nil {
		dm := mappingNode()
		if err := serveInto(dm, f.Default); err != nil {
			return nil, fmt.Errorf("flag %q default: %w", f.Key, err)
		}
		if len(dm.Content) == 2 && dm.Content[1].Kind == yaml.ScalarNode {
			dm.Style = yaml.FlowStyle
		}
		put(m, "default", dm)
	}
	if f.Bucketing != (evaluate.Bucketing{}) {
		bm := mappingNode()
		putStr(bm, "seed", f.Bucketing.Seed)
		putStr(bm, "by", f.Bucketing.By)
		put(m, "bucketing", bm)
	}
	if md := metadataNode(&f.Metadata); md != nil {
		put(m, "metadata", md)
	}
	if len(f.FlagMetadata) > 0 {
		fm := mappingNode()
		for _, k := range slices.Sorted(maps.Keys(f.FlagMetadata)) {
			n, err := valueNode(f.FlagMetadata[k])
			if err != nil {
				return nil, fmt.Errorf("flag %q flagMetadata %q: %w", f.Key, k, err)
			}
			put(fm, k, n)
		}
		put(m, "flagMetadata", fm)
	}
	if f.Version != 0 {
		put(m, "version", intNode(f.Version))
	}
	return m, nil
}

func serveInto(m *yaml.Node, s *evaluate.Serve) error {
	if s.Variant != nil {
		n, err := valueNode(s.Variant)
		if err != nil {
			return err
		}
		put(m, "variant", n)
	}
	if s.Percentage != nil {
		put(m, "percentage", floatNode(*s.Percentage))
	}
	if s.Rollout != nil {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, w := range s.Rollout {
			wm := mappingNode()
			wm.Style = yaml.FlowStyle
			vn, err := valueNode(w.Variant)
			if err != nil {
				return err
			}
			put(wm, "variant", vn)
			put(wm, "weight", floatNode(w.Weight))
			seq.Content = append(seq.Content, wm)
		}
		put(m, "rollout", seq)
	}
	if p := s.Progressive; p != nil {
		pm := mappingNode()
		if p.Variant != nil {
			vn, err := valueNode(p.Variant)
			if err != nil {
				return err
			}
			put(pm, "variant", vn)
		}
		steps := &yaml.Node{Kind: yaml.SequenceNode}
		for _, st := range p.Steps {
			sm := mappingNode()
			sm.Style = yaml.FlowStyle
			put(sm, "at", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!timestamp", Value: st.At.Format(time.RFC3339Nano)})
			put(sm, "percentage", floatNode(st.Percentage))
			steps.Content = append(steps.Content, sm)
		}
		put(pm, "steps", steps)
		if p.Paused {
			put(pm, "paused", boolNode(true))
		}
		if !p.PausedAt.IsZero() {
			put(pm, "pausedAt", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!timestamp", Value: p.PausedAt.Format(time.RFC3339Nano)})
		}
		put(m, "progressive", pm)
	}
	putStr(m, "seed", s.Seed)
	return nil
}

func metadataNode(md *evaluate.Metadata) *yaml.Node {
	m := mappingNode()
	putStr(m, "team", md.Team)
	putStr(m, "description", md.Description)
	putStr(m, "jira", md.Jira)
	putStr(m, "ttl", md.TTL)
	putStr(m, "riskLevel", md.RiskLevel)
	if md.KillSwitch {
		put(m, "killSwitch", boolNode(true))
	}
	if len(md.Dashboards) > 0 {
		put(m, "dashboards", strListNode(md.Dashboards, false))
	}
	if len(m.Content) == 0 {
		return nil
	}
	return m
}

func segmentNode(s *evaluate.Segment) *yaml.Node {
	m := mappingNode()
	put(m, "key", strNode(s.Key))
	putStr(m, "description", s.Description)
	putStr(m, "when", s.When)
	putStr(m, "by", s.By)
	if s.Included != nil {
		put(m, "included", strListNode(s.Included, true))
	}
	if s.Excluded != nil {
		put(m, "excluded", strListNode(s.Excluded, true))
	}
	if s.Version != 0 {
		put(m, "version", intNode(s.Version))
	}
	return m
}
