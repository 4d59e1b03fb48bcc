package evaluate

// CompileReusing is Compile, except that the compiled form of a segment
// whose definition is unchanged from prev's config (same key, When and By,
// and Included and Excluded sharing their storage: a Config is immutable
// once compiled) is taken from prev instead of being built again, so the
// membership set of a large static segment is built once, not on every
// change to the environment. prev nil (or from another environment) is
// Compile.
func CompileReusing(cfg *Config, prev *Snapshot) (*Snapshot, error) {
	return compileWith(cfg, prev)
}

// reusedSegment returns prev's compiled seg when its definition is the
// same, else nil.
func (c *compiler) reusedSegment(seg *Segment) *compiledSegment {
	p := c.prev
	if p == nil || p.config == nil || p.env != c.cfg.Environment {
		return nil
	}
	cs, ok := p.segments[seg.Key]
	if !ok {
		return nil
	}
	for i := range p.config.Segments {
		old := &p.config.Segments[i]
		if old.Key != seg.Key {
			continue
		}
		if old.When == seg.When && old.By == seg.By && sameStrings(old.Included, seg.Included) && sameStrings(old.Excluded, seg.Excluded) {
			return cs
		}
		return nil
	}
	return nil
}

// sameStrings reports whether a and b are the same slice (storage and
// length), not merely equal: cheap, and safe for immutable configs.
func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0]
}
