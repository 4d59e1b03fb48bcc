package flagwire

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

const diffSalt = "diff-salt"

// diffDeepPath is a rule path 35 maps deep.
var diffDeepPath = strings.Repeat("d.", 34) + "v"

// diffFlags returns the test's flags with their round-0 definitions.
func diffFlags() []evaluate.Flag {
	return []evaluate.Flag{
		{
			Key:       "targeted",
			Bucketing: evaluate.Bucketing{By: "accountId"},
			Targets: []evaluate.Target{{Variant: true, Values: []string{
				"12345678901234567890", "4611686018427387904", "1000000", "ü-ñ",
				HashIdentifier(diffSalt, "12345678901234567890"), HashIdentifier(diffSalt, "1000000"),
			}}},
			Default: &evaluate.Serve{Percentage: ptr(50.0)},
		},
		{Key: "deep", Rules: []evaluate.Rule{{ID: "deep-x", When: diffDeepPath + " == 'x'", Serve: evaluate.Serve{Variant: true}}}},
		{
			Key: "rollout", Type: evaluate.TypeString,
			Variants: []evaluate.Variant{{Name: "a"}, {Name: "b"}, {Name: "c"}},
			Default: &evaluate.Serve{Rollout: []evaluate.WeightedVariant{
				{Variant: "a", Weight: 34}, {Variant: "b", Weight: 33}, {Variant: "c", Weight: 33}}},
		},
		{Key: "score", Rules: []evaluate.Rule{{ID: "high", When: "account.score > 5", Serve: evaluate.Serve{Variant: true}}}},
	}
}

// mutate changes f in one of a few ways, as an operator would.
func mutate(f evaluate.Flag, r *rand.Rand) evaluate.Flag {
	switch f.Key {
	case "targeted":
		if r.IntN(3) == 0 {
			f.State = map[bool]string{true: "off", false: "on"}[f.State != "off"]
		} else {
			vals := append([]string(nil), f.Targets[0].Values...)
			i := r.IntN(len(vals))
			vals = append(vals[:i], vals[i+1:]...)
			if r.IntN(2) == 0 {
				vals = append(vals, diffFlags()[0].Targets[0].Values...)
			}
			f.Targets = []evaluate.Target{{Variant: true, Values: vals}}
		}
	case "deep":
		want := []string{"x", "y", "z"}[r.IntN(3)]
		f.Rules = []evaluate.Rule{{ID: "deep-" + want, When: diffDeepPath + " == '" + want + "'", Serve: evaluate.Serve{Variant: true}}}
	case "rollout":
		a := float64(r.IntN(101))
		b := float64(r.IntN(101 - int(a)))
		f.Default = &evaluate.Serve{Rollout: []evaluate.WeightedVariant{
			{Variant: "a", Weight: a}, {Variant: "b", Weight: b}, {Variant: "c", Weight: 100 - a - b}}}
	case "score":
		f.Rules = []evaluate.Rule{{ID: "high", When: fmt.Sprintf("account.score > %d", 3+r.IntN(5)), Serve: evaluate.Serve{Variant: true}}}
	}
	return f
}

// diffSubjects returns subjects that a careless context encoding mixes
// up: integers beyond int64 and beyond 2^53, floats and integers that
// print alike, JSON number literals, empty and unicode ids, non-finite
// numbers, and values that differ only 35 levels down.
func diffSubjects(r *rand.Rand) []Attributes {
	accounts := []any{
		json.Number("12345678901234567890"), json.Number("12345678901234567891"), uint64(12345678901234567890),
		int64(4611686018427387904), int64(4611686018427387905), float64(1 << 62),
		int64(1000000), float64(1e6), json.Number("1000000"), json.Number("1e6"), json.Number("1000000.0"), "1000000",
		float32(1000000), 1000000.5, "", nil, "ü-ñ", "u-ñ", math.NaN(), math.Inf(1),
	}
	users := []any{"u-0", "u-1", "u-2", "u-3", "", "ユーザー", int64(7), float64(7), math.NaN()}
	deeps := []any{nest(35, "x"), nest(35, "y"), nest(35, "z"), nest(36, "x"), nest(34, "x")}
	scores := []any{4, 6, 6.5, int64(8), json.Number("5"), math.NaN(), math.Inf(1), math.Inf(-1), nil}
	// Subjects that differ in one attribute only: a context encoding
	// that confuses two values of it gives one of them the other's
	// cached decision.
	base := func() Attributes {
		return Attributes{
			"accountId": accounts[r.IntN(len(accounts))],
			"userId":    users[r.IntN(len(users))],
			"d":         deeps[r.IntN(len(deeps))],
			"account":   map[string]any{"score": scores[r.IntN(len(scores))]},
		}
	}
	var out []Attributes
	vary := func(n int, set func(Attributes, any), values []any) {
		for range n {
			b := base()
			for _, v := range values {
				s := maps.Clone(b)
				set(s, v)
				out = append(out, s)
			}
		}
	}
	vary(4, func(s Attributes, v any) { s["accountId"] = v }, accounts)
	vary(2, func(s Attributes, v any) { s["userId"] = v }, users)
	vary(2, func(s Attributes, v any) { s["d"] = v }, deeps)
	vary(2, func(s Attributes, v any) { s["account"] = map[string]any{"score": v} }, scores)
	return out
}

// documentedView is the subject as the documented semantics say the
// engine sees it, computed here without the SDK's code: identifiers
// hashed in their canonical id form (missing ids stay as they are), and
// numbers that are not finite as null.
func documentedView(a Attributes, hashed bool) Attributes {
	var clean func(v any) any
	clean = func(v any) any {
		switch x := v.(type) {
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil
			}
		case map[string]any:
			m := make(map[string]any, len(x))
			for k, e := range x {
				m[k] = clean(e)
			}
			return m
		}
		return v
	}
	out := make(Attributes, len(a))
	for k, v := range a {
		v = clean(v)
		if hashed && (k == "userId" || k == "accountId") {
			if id, ok := evaluate.CanonicalID(v); ok {
				v = HashIdentifier(diffSalt, id)
			}
		}
		out[k] = v
	}
	return out
}

// flagHistory keeps every definition the test wrote, by version, and the
// oracle's compiled snapshots.
type flagHistory struct {
	mu      sync.Mutex
	defs    map[string]map[int64]evaluate.Flag
	current map[string]int64
	snaps   map[string]*evaluate.Snapshot
}

func (h *flagHistory) add(f evaluate.Flag, v int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.defs == nil {
		h.defs, h.current, h.snaps = map[string]map[int64]evaluate.Flag{}, map[string]int64{}, map[string]*evaluate.Snapshot{}
	}
	if h.defs[f.Key] == nil {
		h.defs[f.Key] = map[int64]evaluate.Flag{}
	}
	h.defs[f.Key][v] = f
	h.current[f.Key] = v
}

// oracle evaluates the definition of flag at version v for attrs.
func (h *flagHistory) oracle(t *testing.T, flag string, v int64, attrs Attributes) (evaluate.Result, bool) {
	h.mu.Lock()
	id := fmt.Sprintf("%s@%d", flag, v)
	snap := h.snaps[id]
	def, ok := h.defs[flag][v]
	h.mu.Unlock()
	if !ok {
		return evaluate.Result{}, false
	}
	if snap == nil {
		var err error
		snap, err = evaluate.Compile(&evaluate.Config{Environment: "prod", Salt: diffSalt, Flags: []evaluate.Flag{def}})
		if err != nil {
			t.Errorf("the oracle cannot compile %s: %v", id, err)
			return evaluate.Result{}, false
		}
		h.mu.Lock()
		h.snaps[id] = snap
		h.mu.Unlock()
	}
	return snap.Evaluate(flag, attrs, time.Now()), true
}

func (h *flagHistory) currentVersion(flag string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.current[flag]
}

// subjectCtx states a as a WithAttributes map or as WithSubject Attrs.
func subjectCtx(a Attributes, asSubject bool) context.Context {
	if !asSubject {
		return WithAttributes(context.Background(), a)
	}
	attrs := make([]Attr, 0, len(a))
	for k, v := range a {
		attrs = append(attrs, AnyAttr(k, v))
	}
	return WithSubject(context.Background(), attrs...)
}

// cloneDecision copies d as a refresh would bring it back.
func cloneDecision(d *decision) *decision {
	return &decision{value: d.value, raw: d.raw, variant: d.variant, reason: d.reason, payload: d.payload,
		flagVersion: d.flagVersion, typ: d.typ, meta: d.meta, errCode: d.errCode, answerCode: d.answerCode,
		codeDefault: d.codeDefault, configVersion: d.configVersion, versioned: d.versioned,
		fetchedAt: d.fetchedAt, refreshAt: d.refreshAt, expiresAt: d.expiresAt, staleUntil: d.staleUntil,
		fs: d.fs, gen: d.gen, global: d.global}
}

// forceRefreshes makes c's decision cache replace, now and then (seeded),
// the decision a get or an add is about to put in the front index by a
// refreshed copy, between the LRU step and the index step.
func forceRefreshes(c *Client, seed uint64, forced *atomic.Int64) {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, 3))
	var inHook atomic.Bool
	c.cache.between = func(step string, k cacheKey) {
		mu.Lock()
		fire := r.IntN(8) == 0
		mu.Unlock()
		if !fire || !inHook.CompareAndSwap(false, true) {
			return
		}
		defer inHook.Store(false)
		if d, ok := c.cache.lru.Peek(k); ok {
			c.cache.add(k, cloneDecision(d))
			forced.Add(1)
		}
	}
}

// checkFrontIndex fails unless every decision in c's front index is the
// one the LRU holds for its key.
func checkFrontIndex(t *testing.T, name string, c *Client) {
	t.Helper()
	for i := range c.cache.front {
		d := c.cache.front[i].Load()
		if d == nil {
			continue
		}
		if cur, ok := c.cache.lru.Peek(d.key); !ok || cur != d {
			t.Errorf("%s: front slot %d holds a decision of %s the LRU does not hold (evicted: %v)", name, i, d.key.flag, !ok)
		}
	}
}

func TestLongLivedClientsAgreeWithAFreshEvaluation(t *testing.T) {
	const rounds, callers, perCaller = 10, 4, 400
	r := rand.New(rand.NewPCG(2026, 12))
	srv := flagtest.NewServer(t, flagtest.WithConfig(&evaluate.Config{Environment: "prod", Salt: diffSalt}))
	var hist flagHistory
	for _, f := range diffFlags() {
		v, err := srv.SetFlag("prod", f)
		if err != nil {
			t.Fatal(err)
		}
		hist.add(f, v)
	}
	type mode struct {
		name   string
		c      *Client
		hashed bool
	}
	modes := []mode{
		{"remote", remoteAt(t, srv, WithStreaming(true)), false},
		{"remote-small-cache", remoteAt(t, srv, WithCache(CacheSettings{Size: 16}), WithStreaming(true)), false},
		{"remote-hashed", remoteAt(t, srv, WithCache(CacheSettings{Size: 64}), WithStreaming(true), WithHashedAttributes(diffSalt, "userId", "accountId")), true},
		{"local", newLocalAt(t, srv.URL, srv.Token()), false},
		{"local-hashed", newLocalAt(t, srv.URL, srv.Token(), WithHashedAttributes(diffSalt, "userId", "accountId")), true},
	}
	var forced atomic.Int64
	for i, m := range modes {
		if m.c.cfg.mode == ModeRemote {
			forceRefreshes(m.c, uint64(i), &forced)
			testkit.WaitFor(t, patience, m.name+" stream", func() bool { return m.c.Status().StreamConnected })
		}
	}
	subjects := diffSubjects(r)
	flags := diffFlags()
	// A probe subject per mode and flag, cached before each change: its
	// answer moves to the new version only once the change reached the
	// client (remote: the stream's invalidation; local: the sync).
	probe := Attributes{"accountId": "probe", "userId": "probe", "account": map[string]any{"score": 1}}
	ask := func(c *Client, ctx context.Context, flag string) (any, Detail) {
		if flag == "rollout" {
			return c.StringDetail(ctx, flag, "default")
		}
		return c.BoolDetail(ctx, flag, false)
	}

	var compared, failures atomic.Int64
	perMode := make([]atomic.Int64, len(modes))
	for round := range rounds {
		var wg sync.WaitGroup
		for g := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				gr := rand.New(rand.NewPCG(uint64(round), uint64(g)))
				for range perCaller {
					mi := gr.IntN(len(modes))
					m := modes[mi]
					a := subjects[gr.IntN(len(subjects))]
					flag := flags[gr.IntN(len(flags))].Key
					switch gr.IntN(60) {
					case 0:
						m.c.Invalidate(flag)
					case 1:
						m.c.Invalidate("")
					}
					v, d := ask(m.c, subjectCtx(a, gr.IntN(2) == 0), flag)
					compared.Add(1)
					perMode[mi].Add(1)
					want, ok := hist.oracle(t, flag, d.FlagVersion, documentedView(a, m.hashed))
					cur := hist.currentVersion(flag)
					switch {
					case d.ErrorCode.isFallback():
						t.Errorf("%s round %d %s %v: a fallback: %+v", m.name, round, flag, a, d)
					case !ok || d.FlagVersion != cur:
						t.Errorf("%s round %d %s: answered at version %d, the flag is at %d", m.name, round, flag, d.FlagVersion, cur)
					case d.Variant != want.Variant || d.Reason.Kind != want.Reason.Kind || d.Reason.RuleID != want.Reason.RuleID ||
						(d.ErrorCode == CodeMissingBucketingAttribute) != (want.Reason.ErrorCode == evaluate.ErrorMissingBucketAttr) ||
						fmt.Sprint(v) != fmt.Sprint(want.Value) && want.Value != nil:
						t.Errorf("%s round %d %s subject %v: got %v variant %q %s/%s %q; fresh evaluation: %v variant %q %s/%s %q",
							m.name, round, flag, a, v, d.Variant, d.Reason.Kind, d.Reason.RuleID, d.ErrorCode,
							want.Value, want.Variant, want.Reason.Kind, want.Reason.RuleID, want.Reason.ErrorCode)
					default:
						continue
					}
					if failures.Add(1) > 20 {
						return // enough said; the round's end stops the test
					}
				}
			}()
		}
		wg.Wait()
		for _, m := range modes {
			if m.c.cfg.mode == ModeRemote {
				checkFrontIndex(t, m.name, m.c)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		// One change, then wait until every client serves it.
		i := r.IntN(len(flags))
		for _, m := range modes {
			ask(m.c, WithAttributes(context.Background(), probe), flags[i].Key) // cached at the current version
		}
		flags[i] = mutate(flags[i], r)
		v, err := srv.SetFlag("prod", flags[i])
		if err != nil {
			t.Fatal(err)
		}
		hist.add(flags[i], v)
		for _, m := range modes {
			testkit.WaitFor(t, patience, m.name+" to serve "+flags[i].Key+" at its new version", func() bool {
				_, d := ask(m.c, WithAttributes(context.Background(), probe), flags[i].Key)
				return d.FlagVersion == v
			})
		}
	}
	counts := make([]string, len(modes))
	for i, m := range modes {
		counts[i] = fmt.Sprintf("%s %d", m.name, perMode[i].Load())
	}
	t.Logf("%d subjects, %d answers compared (%s), %d rounds with a change, %d refreshes forced between front-index steps",
		len(subjects), compared.Load(), strings.Join(counts, ", "), rounds, forced.Load())
}
