package flagwire

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/flagwire/flagwire/evaluate"
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
// remote mode when the server's invalidation arrives. fn runs on the
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
	now := c.cfg.clock.Now()
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
			Reason: Reason{Kind: string(r.Reason.Kind), RuleID: r.Reason.RuleID, Segment: r.Reason.Segment, Bucket: -1}}}
		c.safeHook(func() { l.value(ch) })
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// changedKeys lists flags that differ between two snapshots. A changed
// segment counts as a change of every flag.
func changedKeys(prev, next *evaluate.Snapshot) []string {
	segsChanged := !jsonEqual(prev.Config().Segments, next.Config().Segments)
	var out []string
	for _, k := range next.Keys() {
		nf, _ := next.Flag(k)
		pf, ok := prev.Flag(k)
		if !ok || segsChanged || !jsonEqual(pf, nf) {
			out = append(out, k)
		}
	}
	for _, k := range prev.Keys() {
		if _, ok := next.Flag(k); !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
