package flagwire

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// FlagChange tells a listener which flags changed.
type FlagChange struct {
	// Keys are the changed flags (added, modified or removed), sorted. In
	// remote mode, a segment change or a stream reset may affect any flag:
	// Keys is then nil and All is true.
	Keys []string
	All  bool
	// Version is the new config version (0 in remote mode).
	Version int64
}

// ValueChange tells a listener that a flag's value changed for the
// evaluation context it registered with.
type ValueChange struct {
	FlagKey  string
	Old, New any
	// Detail is the new evaluation's detail.
	Detail Detail
}

type listener struct {
	key    string // "" = every flag
	flag   func(FlagChange)
	value  func(ValueChange)
	ec     *evalContext
	status func(Status)
}

func (c *Client) addListener(l *listener) (cancel func()) {
	if c == nil {
		return func() {}
	}
	c.local.lmu.Lock()
	id := c.local.nextID
	c.local.nextID++
	c.local.listeners[id] = l
	c.local.lmu.Unlock()
	return func() {
		c.local.lmu.Lock()
		delete(c.local.listeners, id)
		c.local.lmu.Unlock()
	}
}

// OnFlagChange calls fn after a change to flag key (or to any flag when key
// is "") is live: in local mode after the new config is swapped in, in
// remote mode when the server's invalidation arrives. A flag counts as
// changed when its definition changed, a segment it uses changed, or one
// of its prerequisites (transitively) changed. fn runs on the
// client's sync goroutine, outside any lock; a panic in it is recovered.
// The returned func unregisters it.
func (c *Client) OnFlagChange(key string, fn func(FlagChange)) (cancel func()) {
	return c.addListener(&listener{key: key, flag: fn})
}

// OnValueChange calls fn when the value of flag key for the evaluation
// context in ctx changes (local and offline modes): only when the value
// differs, after the new config is live, outside any lock.
func (c *Client) OnValueChange(ctx context.Context, key string, fn func(ValueChange)) (cancel func()) {
	return c.addListener(&listener{key: key, value: fn, ec: contextOf(ctx)})
}

// OnStatusChange calls fn when Status().State changes (for example to
// StateStale when the config age passes its SLO, or StateError).
func (c *Client) OnStatusChange(fn func(Status)) (cancel func()) {
	return c.addListener(&listener{status: fn})
}

func (c *Client) listenersSnapshot() []*listener {
	c.local.lmu.Lock()
	defer c.local.lmu.Unlock()
	out := make([]*listener, 0, len(c.local.listeners))
	for _, l := range c.local.listeners {
		out = append(out, l)
	}
	return out
}

// notifyAllFlags tells every flag listener that any flag may have changed
// (remote mode: a segment change or a stream reset).
func (c *Client) notifyAllFlags(version int64) {
	for _, l := range c.listenersSnapshot() {
		if l.flag == nil {
			continue
		}
		ch := FlagChange{All: true, Version: version}
		if l.key != "" {
			ch.Keys = []string{l.key}
		}
		c.safeHook(func() { l.flag(ch) })
	}
}

// notifyFlagKeys tells flag listeners about changed keys.
func (c *Client) notifyFlagKeys(keys []string, version int64) {
	if len(keys) == 0 {
		return
	}
	for _, l := range c.listenersSnapshot() {
		if l.flag == nil {
			continue
		}
		if l.key == "" {
			ch := FlagChange{Keys: keys, Version: version}
			c.safeHook(func() { l.flag(ch) })
		} else if slices.Contains(keys, l.key) {
			ch := FlagChange{Keys: []string{l.key}, Version: version}
			c.safeHook(func() { l.flag(ch) })
		}
	}
}

// notifyChanges runs after a new snapshot is live.
func (c *Client) notifyChanges(prev, next *evaluate.Snapshot) {
	if prev == nil {
		return // the first config is readiness (WaitReady), not a change
	}
	keys := changedKeys(prev, next)
	if len(keys) == 0 {
		return
	}
	c.notifyFlagKeys(keys, next.Version())
	now := c.hotWall() // the evaluation clock, as Bool's
	for _, l := range c.listenersSnapshot() {
		if l.value == nil || !slices.Contains(keys, l.key) {
			continue
		}
		var old any
		if prev != nil {
			old = prev.Evaluate(l.key, c.evalAttributes(l.ec), now).Value
		}
		r := next.Evaluate(l.key, c.evalAttributes(l.ec), now)
		if jsonEqual(old, r.Value) {
			continue
		}
		ch := ValueChange{FlagKey: l.key, Old: old, New: r.Value, Detail: Detail{FlagKey: l.key, Variant: r.Variant, Source: SourceLocal,
			Reason: Reason{Kind: r.Reason.Kind, RuleID: r.Reason.RuleID, Segment: r.Reason.Segment, Bucket: -1}}}
		c.safeHook(func() { l.value(ch) })
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// changedKeys lists the flags whose answers a new snapshot may change: a
// flag added, removed or edited; a flag using a segment (in a rule's
// segment or a segment(...) condition, directly or through another
// segment) that was added, removed or edited; and a flag with a changed
// flag among its prerequisites, transitively.
func changedKeys(prev, next *evaluate.Snapshot) []string {
	changed := map[string]bool{}
	for _, k := range next.Keys() {
		nf, _ := next.Flag(k)
		if pf, ok := prev.Flag(k); !ok || !jsonEqual(pf, nf) {
			changed[k] = true
		}
	}
	for _, k := range prev.Keys() {
		if _, ok := next.Flag(k); !ok {
			changed[k] = true
		}
	}
	segs := changedSegments(prev.Config().Segments, next.Config().Segments)
	if len(segs) > 0 {
		for _, k := range next.Keys() {
			f, _ := next.Flag(k)
			if slices.ContainsFunc(flagSegments(f), func(s string) bool { return segs[s] }) {
				changed[k] = true
			}
		}
	}
	// Prerequisites, to a fixed point: the chain is at most as long as
	// the number of flags.
	for grew := true; grew; {
		grew = false
		for _, k := range next.Keys() {
			if changed[k] {
				continue
			}
			f, _ := next.Flag(k)
			for _, p := range f.Prerequisites {
				if changed[p.FlagKey] {
					changed[k], grew = true, true
					break
				}
			}
		}
	}
	out := make([]string, 0, len(changed))
	for k := range changed {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// changedSegments returns the keys of segments added, removed or edited
// between two configs, and of segments whose conditions use one of those.
func changedSegments(prev, next []evaluate.Segment) map[string]bool {
	byKey := func(ss []evaluate.Segment) map[string]*evaluate.Segment {
		m := make(map[string]*evaluate.Segment, len(ss))
		for i := range ss {
			m[ss[i].Key] = &ss[i]
		}
		return m
	}
	pm, nm := byKey(prev), byKey(next)
	out := map[string]bool{}
	for k, ns := range nm {
		if ps, ok := pm[k]; !ok || !jsonEqual(ps, ns) {
			out[k] = true
		}
	}
	for k := range pm {
		if _, ok := nm[k]; !ok {
			out[k] = true
		}
	}
	if len(out) == 0 {
		return nil
	}
	for grew := true; grew; {
		grew = false
		for k, ns := range nm {
			if !out[k] && slices.ContainsFunc(conditionSegments(ns.When), func(s string) bool { return out[s] }) {
				out[k], grew = true, true
			}
		}
	}
	return out
}

// flagSegments lists the segments a flag's rules use.
func flagSegments(f *evaluate.Flag) []string {
	var out []string
	for _, r := range f.Rules {
		if r.Segment != "" {
			out = append(out, r.Segment)
		}
		out = append(out, conditionSegments(r.When)...)
	}
	return out
}

// conditionSegments lists the segments a rule-language condition uses. A
// snapshot's conditions compiled, so they parse; "" uses none.
func conditionSegments(when string) []string {
	if when == "" {
		return nil
	}
	cond, err := evaluate.ParseCondition(when)
	if err != nil {
		return nil
	}
	return cond.Segments()
}

// onRemoteInvalidation handles a stream event in remote mode. A segment
// change may change any flag: every decision is dropped and every flag
// listener told. A reset (the server cannot replay what was missed) says
// the stream goes on from its version: decisions computed at an older
// version, and every decision without a version, are asked again but may
// still be served stale (decisionCache.expireOlderThan), and every flag
// listener is told. A flag change drops the decisions of the flag
// and of every flag that depends on it through prerequisites, and tells
// their listeners: the event's Dependents (filled by the server), plus the
// dependents the SDK knows itself (the bootstrap or last-known config's
// prerequisites, and decisions that failed on a prerequisite), so a server
// that does not fill Dependents still reaches those.
func (c *Client) onRemoteInvalidation(ev wire.StreamEvent) {
	if ev.Type == wire.EventReset {
		c.cache.expireOlderThan(ev.Version, c.cfg.clock.Nanotime(), true)
		c.notifyAllFlags(ev.Version)
		return
	}
	if ev.SegmentKey != "" || ev.FlagKey == "" {
		c.cache.invalidateAll()
		c.notifyAllFlags(ev.Version)
		return
	}
	keys := c.remoteDependents(ev.FlagKey, ev.Dependents)
	for _, k := range keys {
		c.cache.invalidate(k)
	}
	c.notifyFlagKeys(keys, ev.Version)
}

// remoteDependents returns key, the server's dependents and the flags
// the SDK knows to depend on any of them (transitively), sorted.
func (c *Client) remoteDependents(key string, fromServer []string) []string {
	seen := map[string]bool{key: true}
	queue := []string{key}
	for _, d := range fromServer {
		if d != "" && !seen[d] {
			seen[d] = true
			queue = append(queue, d)
		}
	}
	var snap *evaluate.Snapshot
	if st := c.snap.Load(); st != nil {
		snap = st.snap
	}
	for len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		add := func(d string) {
			if !seen[d] {
				seen[d] = true
				queue = append(queue, d)
			}
		}
		c.cache.dependentsOf(k, add)
		if snap != nil {
			for _, fk := range snap.Keys() {
				f, _ := snap.Flag(fk)
				for _, p := range f.Prerequisites {
					if p.FlagKey == k {
						add(fk)
					}
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
