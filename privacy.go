package flagwire

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// HashIdentifier returns hex(SHA-256(salt ":" id)): the form in which
// WithHashedAttributes sends identifiers. Use the environment's salt so the
// hashed ids of one environment cannot be joined with another's.
func HashIdentifier(salt, id string) string {
	sum := sha256.Sum256([]byte(salt + ":" + id))
	return hex.EncodeToString(sum[:])
}

// WithHashedAttributes replaces the named top-level attributes (stable
// identifiers such as userId or accountId) by HashIdentifier(salt, value)
// before any evaluation: the raw identifier never leaves the process, and
// because remote (server-side) and local evaluation both see the hashed
// value, they bucket the same hashed value and agree. Non-string values are
// hashed in their fmt %v form.
func WithHashedAttributes(salt string, names ...string) Option {
	return func(c *config) {
		if salt == "" {
			c.errorf("hashed attributes need a salt")
			return
		}
		if c.hashed == nil {
			c.hashed = make(map[string]bool)
		}
		for _, n := range names {
			c.hashed[n] = true
		}
		c.hashSalt = salt
	}
}

// preparedAttrs caches, per evaluation context, its attributes as one
// client prepares them (hashed identifiers).
type preparedAttrs struct {
	base  Attributes // what evalContext.attributes returns
	cfg   *config    // nil until a client prepared attrs
	attrs Attributes
}

// evalAttributes returns the attributes evaluation sees: hashed
// identifiers replaced. Private attributes stay (they never leave the
// process, but local rules may use them). Computed once per context.
func (c *Client) evalAttributes(ec *evalContext) Attributes {
	attrs := ec.attributes()
	if len(c.cfg.hashed) == 0 || attrs == nil {
		return attrs
	}
	if p := ec.prepared.Load(); p != nil && p.cfg == c.cfg {
		return p.attrs
	}
	out := make(Attributes, len(attrs))
	for k, v := range attrs {
		if c.cfg.hashed[k] && v != nil {
			s, ok := v.(string)
			if !ok {
				s = fmt.Sprint(v)
			}
			v = HashIdentifier(c.cfg.hashSalt, s)
		}
		out[k] = v
	}
	ec.prepared.Store(&preparedAttrs{base: attrs, cfg: c.cfg, attrs: out})
	return out
}

// outgoingAttributes is what leaves the process: hashed identifiers, and
// no private attributes.
func (c *Client) outgoingAttributes(ec *evalContext) map[string]any {
	attrs := c.evalAttributes(ec)
	if len(c.cfg.private) == 0 || attrs == nil {
		return attrs
	}
	out := make(map[string]any, len(attrs))
	for k, v := range attrs {
		if !c.cfg.private[k] {
			out[k] = v
		}
	}
	return out
}
