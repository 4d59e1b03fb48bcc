package flagwire

import (
	"context"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
)

func TestContextHashCanonical(t *testing.T) {
	key := func(a Attributes) [2]uint64 {
		hi, lo, _ := newEvalContext(a).key()
		return [2]uint64{hi, lo}
	}
	same := [][2]Attributes{
		{{"userId": "u", "n": 1, "nested": map[string]any{"x": []any{"a", 2.0}}}, {"nested": map[string]any{"x": []any{"a", int64(2)}}, "n": 1.0, "userId": "u"}},
		{{"id": json.Number("9007199254740993")}, {"id": int64(9007199254740993)}},
		{{"n": uint64(7)}, {"n": 7}},
	}
	for i, p := range same {
		if key(p[0]) != key(p[1]) {
			t.Errorf("pair %d: equal contexts hash differently", i)
		}
	}
	differ := [][2]Attributes{
		{{"userId": "u"}, {"userId": "v"}},
		{{"a": "b"}, {"ab": ""}},
		{{"id": int64(9007199254740993)}, {"id": int64(9007199254740992)}}, // beyond float64 precision
		{{"x": 1.5}, {"x": 1}},
		{{"x": "1"}, {"x": 1}},
		{nil, {"x": nil}},
	}
	for i, p := range differ {
		if key(p[0]) == key(p[1]) {
			t.Errorf("pair %d: different contexts hash equal", i)
		}
	}
	ec := newEvalContext(Attributes{"userId": "u"})
	if n := testing.AllocsPerRun(100, func() { ec.key() }); n != 0 {
		t.Errorf("key() allocates %v after the first call", n)
	}
}

// TestContextHashOrderIndependent: the hash does not depend on the
// order a map was built or iterated in, and still tells apart maps whose
// values are swapped between keys, moved into a nested map, or of
// another kind.
func TestContextHashOrderIndependent(t *testing.T) {
	key := func(a Attributes) [2]uint64 {
		hi, lo, _ := newEvalContext(a).key()
		return [2]uint64{hi, lo}
	}
	differ := [][2]Attributes{
		{{"a": "x", "b": "y"}, {"a": "y", "b": "x"}},
		{{"a": "x"}, {"a": "x", "b": "x"}},
		{{"m": map[string]any{"a": 1}}, {"m": map[string]any{"a": 2}}},
		{{"m": map[string]any{"a": 1}}, {"a": 1}},
		{{"m": map[string]any{}}, {"m": []any{}}},
		{{"m": map[string]any{"a": "b"}}, {"m": map[string]any{"a": "b", "c": "d"}}},
		{{"l": []any{"a", "b"}}, {"l": []any{"b", "a"}}}, // lists are ordered
		{{"a": true}, {"a": false}},
	}
	for i, p := range differ {
		if key(p[0]) == key(p[1]) {
			t.Errorf("pair %d: %v and %v hash equal", i, p[0], p[1])
		}
	}
	// The same content built in two insertion orders (Go also randomises
	// map iteration) hashes the same.
	a, b := Attributes{}, Attributes{}
	keys := []string{"userId", "plan", "region", "appVersion", "accountId", "country", "tier", "beta"}
	for i, k := range keys {
		a[k] = k + "-value"
		b[keys[len(keys)-1-i]] = keys[len(keys)-1-i] + "-value"
	}
	a["nested"] = map[string]any{"x": 1, "y": []any{1.0, "z"}}
	b["nested"] = map[string]any{"y": []any{int64(1), "z"}, "x": 1.0}
	if key(a) != key(b) {
		t.Error("equal maps built in different orders hash differently")
	}
}

// TestSubjectHashMatchesMap: a subject and the equal Attributes map have
// the same decision cache key, so they share cached decisions.
func TestSubjectHashMatchesMap(t *testing.T) {
	mapKey := func(a Attributes) [2]uint64 {
		hi, lo, _ := newEvalContext(a).key()
		return [2]uint64{hi, lo}
	}
	cases := []struct {
		subject []Attr
		attrs   Attributes
	}{
		{nil, Attributes{}},
		{[]Attr{StringAttr("userId", "u"), StringAttr("plan", "pro")}, Attributes{"plan": "pro", "userId": "u"}},
		{[]Attr{IntAttr("n", 2), FloatAttr("f", 2.5), BoolAttr("b", true), IntAttr("big", 9007199254740993)},
			Attributes{"n": 2.0, "f": 2.5, "b": true, "big": json.Number("9007199254740993")}},
		{[]Attr{AnyAttr("l", []string{"a", "b"}), AnyAttr("m", map[string]any{"x": 1}), AnyAttr("nil", nil)},
			Attributes{"l": []any{"a", "b"}, "m": map[string]any{"x": int64(1)}, "nil": nil}},
		// The last of a repeated key counts.
		{[]Attr{StringAttr("plan", "free"), StringAttr("userId", "u"), StringAttr("plan", "pro")}, Attributes{"userId": "u", "plan": "pro"}},
	}
	for i, tc := range cases {
		if got, want := subjectKey(tc.subject...), mapKey(tc.attrs); got != want {
			t.Errorf("case %d: subject %v and map %v hash differently", i, tc.subject, tc.attrs)
		}
	}
	if subjectKey(StringAttr("n", "2")) == subjectKey(IntAttr("n", 2)) {
		t.Error(`StringAttr("n", "2") and IntAttr("n", 2) hash equal`)
	}
	// More than 8 attributes take the other storage path.
	var many []Attr
	m := Attributes{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		many = append(many, StringAttr(k, k+k))
		m[k] = k + k
	}
	if subjectKey(many...) != mapKey(m) {
		t.Error("a subject of 10 attributes and the equal map hash differently")
	}
	// More than 16 keys sort off the stack.
	for i := 0; i < 20; i++ {
		k := "k" + strconv.Itoa(i)
		many = append(many, IntAttr(k, int64(i)))
		m[k] = float64(i)
	}
	if subjectKey(many...) != mapKey(m) {
		t.Error("a subject of 30 attributes and the equal map hash differently")
	}
	m2 := maps.Clone(m)
	m2["k19"] = 18
	if mapKey(m2) == mapKey(m) {
		t.Error("maps of 30 keys that differ in one value hash equal")
	}
}

// TestSubjectHashMatchesMapRandom: random subjects — keys of equal
// lengths, in every order, repeated — hash as the map they state does
// (the last of a repeated key counting), through the map encoder's own
// sort, a different code path.
func TestSubjectHashMatchesMapRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []string{"a", "b", "ab", "ba", "aa", "userId", "region", "plan", "appVersion", "", "é", "zz"}
	for n := range 3000 {
		var subject []Attr
		m := Attributes{}
		for range rng.IntN(12) {
			k := keys[rng.IntN(len(keys))]
			var a Attr
			switch rng.IntN(4) {
			case 0:
				a = StringAttr(k, keys[rng.IntN(len(keys))])
			case 1:
				a = IntAttr(k, int64(rng.IntN(5)))
			case 2:
				a = BoolAttr(k, rng.IntN(2) == 0)
			default:
				a = FloatAttr(k, float64(rng.IntN(4))/2)
			}
			subject = append(subject, a)
			m[k] = a.Value.Any()
		}
		hi, lo, _ := newEvalContext(m).key()
		if got := subjectKey(subject...); got != [2]uint64{hi, lo} {
			t.Fatalf("case %d: subject %v and map %v hash differently", n, subject, m)
		}
	}
}

// subjectKey is the canonical hash of a WithSubject context.
func subjectKey(attrs ...Attr) [2]uint64 {
	hi, lo, _ := contextOf(WithSubject(context.Background(), attrs...)).key()
	return [2]uint64{hi, lo}
}

// TestBigIntegerIDsDoNotShareACachedDecision: two account ids beyond
// int64 (equal as float64s) are two subjects: the second is not served
// the first one's cached TARGET_MATCH. A float64 beyond 2^53 is decided
// as the integer it equals, as in local evaluation.
func TestBigIntegerIDsDoNotShareACachedDecision(t *testing.T) {
	cfg := vipConfig("s")
	srv := flagtest.NewServer(t, flagtest.WithConfig(cfg))
	c := remoteAt(t, srv)
	askInTurn(t, c, cfg, "vip", unchanged,
		Attributes{"accountId": json.Number("12345678901234567890")},
		Attributes{"accountId": json.Number("12345678901234567891")},
		Attributes{"accountId": uint64(12345678901234567890)},
		Attributes{"accountId": int64(4611686018427387904)},
	)
	// float64(2^62) is sent as the integer it equals (encoding/json alone
	// would write 4611686018427388000), so the server decides what local
	// evaluation decides: the engine's answer for the float itself.
	_, d := c.BoolDetail(WithAttributes(context.Background(), Attributes{"accountId": float64(1 << 62)}), "vip", false)
	sameAnswer(t, "float64(2^62)", d, engineAnswer(t, cfg, "vip", Attributes{"accountId": float64(1 << 62)}))
	if d.Source != SourceRemote {
		t.Errorf("float64(2^62) was served from %s, want a request of its own", d.Source)
	}
}

// TestHashedIDsKeyTheirHashedForm: with WithHashedAttributes, the decision
// cache key is the hashed form the server receives, ids hash in their
// canonical id form (float64(1e6) as "1000000", like int64(1000000)), and
// an empty id stays missing (MISSING_BUCKETING_ATTRIBUTE), as unhashed.
func TestHashedIDsKeyTheirHashedForm(t *testing.T) {
	const salt = "prod-salt"
	cfg := vipConfig(salt)
	srv := flagtest.NewServer(t, flagtest.WithConfig(cfg))
	c := remoteAt(t, srv, WithHashedAttributes(salt, "userId"))
	hashed := func(a Attributes) Attributes {
		out := Attributes{}
		for k, v := range a {
			if id, ok := evaluate.CanonicalID(v); ok && k == "userId" {
				v = HashIdentifier(salt, id)
			}
			out[k] = v
		}
		return out
	}
	askInTurn(t, c, cfg, "hashed-vip", hashed,
		Attributes{"userId": float64(1e6)},
		Attributes{"userId": int64(1000000)},
		Attributes{"userId": "1000001"},
		Attributes{"userId": 1000001.5},
	)
	for _, id := range []any{"", nil} {
		_, d := c.BoolDetail(WithAttributes(context.Background(), Attributes{"userId": id}), "hashed-vip", false)
		if d.ErrorCode != CodeMissingBucketingAttribute {
			t.Errorf("userId %#v hashed: %+v, want MISSING_BUCKETING_ATTRIBUTE as unhashed", id, d)
		}
	}
	if got := c.evalAttributes(newEvalContext(Attributes{"userId": ""}))["userId"]; got != "" {
		t.Errorf("an empty userId is sent as %v, want it empty", got)
	}
}

// TestDeepContextsDoNotShareAKey: contexts that differ 40 levels down are
// two cache entries (the server decides them differently); one nested
// beyond 1,000 levels, or cyclic, is refused with INVALID_CONTEXT without
// a request, instead of being keyed inexactly.
func TestDeepContextsDoNotShareAKey(t *testing.T) {
	cfg := vipConfig("s")
	srv := flagtest.NewServer(t, flagtest.WithConfig(cfg))
	c := remoteAt(t, srv)
	askInTurn(t, c, cfg, "deep", unchanged,
		Attributes{"d": nest(39, "x")},
		Attributes{"d": nest(39, "y")},
	)
	before := srv.Requests("POST", "/v1/evaluate")
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	for name, a := range map[string]Attributes{
		"1,001 levels": {"d": nest(1001, "x")},
		"cyclic":       {"c": cyclic},
		"a channel":    {"ch": make(chan int)},
	} {
		_, d := c.BoolDetail(WithAttributes(context.Background(), a), "deep", false)
		if d.ErrorCode != CodeInvalidContext || d.Source != SourceCallerDefault {
			t.Errorf("%s: %+v, want INVALID_CONTEXT and the default", name, d)
		}
	}
	if n := srv.Requests("POST", "/v1/evaluate") - before; n != 0 {
		t.Errorf("%d requests for contexts that cannot be sent", n)
	}
}

// vipConfig targets one account id beyond int64 and one hashed user id,
// and has a rule on a value nested 40 levels deep.
func vipConfig(salt string) *evaluate.Config {
	deep := strings.Repeat("d.", 39) + "v"
	return &evaluate.Config{
		Environment: "prod",
		Salt:        salt,
		Flags: []evaluate.Flag{
			{
				Key:       "vip",
				Bucketing: evaluate.Bucketing{By: "accountId"},
				Targets:   []evaluate.Target{{Variant: true, Values: []string{"12345678901234567890", "4611686018427387904"}}},
			},
			{
				Key:     "hashed-vip",
				Targets: []evaluate.Target{{Variant: true, Values: []string{HashIdentifier(salt, "1000000")}}},
				Default: &evaluate.Serve{Percentage: ptr(50.0)},
			},
			{
				Key:   "deep",
				Rules: []evaluate.Rule{{ID: "deep-x", When: deep + " == 'x'", Serve: evaluate.Serve{Variant: true}}},
			},
		},
	}
}

// askInTurn evaluates flag for each context in turn on one client and
// compares every answer with the engine's for the attributes the server
// receives (send maps a context's attributes to those).
func askInTurn(t *testing.T, c *Client, cfg *evaluate.Config, flag string, send func(Attributes) Attributes, ctxs ...Attributes) {
	t.Helper()
	for i, a := range ctxs {
		_, d := c.BoolDetail(WithAttributes(context.Background(), a), flag, false)
		if d.ErrorCode.isFallback() {
			t.Fatalf("context %d: %+v", i, d)
		}
		sameAnswer(t, flag+" context "+string(rune('0'+i)), d, engineAnswer(t, cfg, flag, send(a)))
	}
}

func unchanged(a Attributes) Attributes { return a }
