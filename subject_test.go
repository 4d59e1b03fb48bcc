package flagwire

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// TestAttributesContextParentValues checks that the context WithAttributes
// and WithSubject return passes every other key, Done, Err and Deadline to
// its parent, as context.WithValue does.
func TestAttributesContextParentValues(t *testing.T) {
	type other struct{}
	deadline := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	parent, cancel := context.WithDeadline(context.WithValue(context.Background(), other{}, "v"), deadline)
	for name, ctx := range map[string]context.Context{
		"WithAttributes": WithAttributes(parent, Attributes{"userId": "u"}),
		"WithSubject":    WithSubject(parent, StringAttr("userId", "u")),
	} {
		if got := ctx.Value(other{}); got != "v" {
			t.Errorf("%s: parent's value = %v, want v", name, got)
		}
		if d, ok := ctx.Deadline(); !ok || !d.Equal(deadline) {
			t.Errorf("%s: Deadline = %v %v, want %v", name, d, ok, deadline)
		}
		if got := AttributesFrom(ctx)["userId"]; got != "u" {
			t.Errorf("%s: AttributesFrom[userId] = %v, want u", name, got)
		}
	}
	ctx := WithAttributes(parent, nil)
	cancel()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the parent's cancellation did not reach the child")
	}
	if ctx.Err() != context.Canceled {
		t.Errorf("Err = %v, want context.Canceled", ctx.Err())
	}
}

// TestAttributesContextCancelNoGoroutine: context.WithCancel on a child of
// WithAttributes finds the parent's cancelCtx through Value, as it does
// through context.WithValue, and so starts no goroutine to propagate
// cancellation. 200 children would leave 200 goroutines blocked until
// the parent is cancelled.
func TestAttributesContextCancelNoGoroutine(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := runtime.NumGoroutine()
	var children []context.CancelFunc
	for i := 0; i < 200; i++ {
		_, c := context.WithCancel(WithSubject(WithAttributes(parent, Attributes{"userId": "u"}), StringAttr("plan", "pro")))
		children = append(children, c)
	}
	if after := runtime.NumGoroutine(); after-before >= 100 {
		t.Errorf("goroutines: %d before, %d after 200 WithCancel children: cancellation is propagated by goroutines", before, after)
	}
	for _, c := range children {
		c()
	}
}

// TestAttributesContextString: a context's String names the parent and
// the attribute count, never an attribute value (it may identify a
// person).
func TestAttributesContextString(t *testing.T) {
	s := WithAttributes(context.Background(), Attributes{"userId": "8a7f4c91", "plan": "pro"}).(interface{ String() string }).String()
	if want := "context.Background.WithAttributes(2 attributes)"; s != want {
		t.Errorf("String = %q, want %q", s, want)
	}
	s = WithSubject(context.TODO(), StringAttr("userId", "8a7f4c91")).(interface{ String() string }).String()
	if want := "context.TODO.WithSubject(1 attributes)"; s != want {
		t.Errorf("String = %q, want %q", s, want)
	}
	if strings.Contains(s, "8a7f4c91") {
		t.Errorf("String %q shows an attribute value", s)
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

// subjectKey is the canonical hash of a WithSubject context.
func subjectKey(attrs ...Attr) [2]uint64 {
	hi, lo, _ := contextOf(WithSubject(context.Background(), attrs...)).key()
	return [2]uint64{hi, lo}
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

// TestSubjectAttributesFrom: the map a subject is read as (local
// evaluation, API requests, AttributesFrom) holds the values as an
// Attributes map would, the last of a repeated key winning.
func TestSubjectAttributesFrom(t *testing.T) {
	ctx := WithSubject(nil, StringAttr("userId", "u"), BoolAttr("beta", true), IntAttr("n", 3), FloatAttr("f", 0.5),
		AnyAttr("l", []string{"x"}), AnyAttr("none", nil), StringAttr("userId", "v"))
	got := AttributesFrom(ctx)
	want := Attributes{"userId": "v", "beta": true, "n": int64(3), "f": 0.5, "l": []string{"x"}, "none": nil}
	if len(got) != len(want) {
		t.Fatalf("AttributesFrom = %v, want %v", got, want)
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || !sameJSON(t, g, w) {
			t.Errorf("%s = %#v, want %#v", k, g, w)
		}
	}
	if n := testing.AllocsPerRun(100, func() { AttributesFrom(ctx) }); n != 0 {
		t.Errorf("AttributesFrom allocates %v after the first call: the map must be built once", n)
	}
}

func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatalf("marshal: %v %v", err1, err2)
	}
	return string(ja) == string(jb)
}

// TestSubjectAllocations: a subject of up to 8 attributes costs one
// allocation, and its hash none.
func TestSubjectAllocations(t *testing.T) {
	id, plan := "user-1", "pro"
	bg := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		ctx := WithSubject(bg, StringAttr("userId", id), StringAttr("plan", plan), StringAttr("region", "US"), IntAttr("n", 7))
		contextOf(ctx).key()
	}); n > 1 {
		t.Errorf("WithSubject with 4 attributes + hash: %v allocations, want at most 1", n)
	}
	attrs := Attributes{"userId": id, "plan": plan, "nested": map[string]any{"a": []any{1, "b"}}}
	if n := testing.AllocsPerRun(100, func() {
		contextOf(WithAttributes(bg, attrs)).key()
	}); n > 1 {
		t.Errorf("WithAttributes + hash: %v allocations, want at most 1", n)
	}
}

// TestSubjectEvaluatesLikeAttributes: in remote and local mode a subject
// gets the answers the equal Attributes map gets (value, variant, reason,
// error code), and, in remote mode, the map form's cached decisions: no
// second request.
func TestSubjectEvaluatesLikeAttributes(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	type subject struct {
		attrs   []Attr
		asMap   Attributes
		wantVal bool // from exampleConfig: rule-1 is plan pro in US; beta_testers are beta-1, beta-2
		wantWhy evaluate.ReasonKind
	}
	subjects := []subject{
		{[]Attr{StringAttr("userId", "8a7f4c91"), StringAttr("plan", "pro"), StringAttr("region", "US")},
			Attributes{"userId": "8a7f4c91", "plan": "pro", "region": "US"}, true, "RULE_MATCH"},
		{[]Attr{StringAttr("userId", "beta-2"), StringAttr("plan", "free"), StringAttr("region", "EU")},
			Attributes{"userId": "beta-2", "plan": "free", "region": "EU"}, true, "SEGMENT_MATCH"},
		{[]Attr{StringAttr("userId", "someone"), StringAttr("plan", "free"), IntAttr("age", 40), BoolAttr("vip", false)},
			Attributes{"userId": "someone", "plan": "free", "age": 40, "vip": false}, false, "ROLLOUT"},
	}
	for _, mode := range []Mode{ModeRemote, ModeLocal} {
		t.Run(mode.String(), func(t *testing.T) {
			c := modeClient(t, srv, mode, false)
			for _, s := range subjects {
				before := srv.Requests("POST", "/v1/evaluate")
				mv, md := c.BoolDetail(WithAttributes(context.Background(), s.asMap), "checkout-new-flow", true)
				sv, sd := c.BoolDetail(WithSubject(context.Background(), s.attrs...), "checkout-new-flow", true)
				if mv != s.wantVal || md.Reason.Kind != s.wantWhy || md.ErrorCode != "" {
					t.Fatalf("map form %v: %v %+v, want %v %s", s.asMap, mv, md, s.wantVal, s.wantWhy)
				}
				if sv != mv || sd.Variant != md.Variant || sd.Reason != md.Reason || sd.ErrorCode != md.ErrorCode {
					t.Errorf("subject %v: %v %+v; map form: %v %+v", s.attrs, sv, sd, mv, md)
				}
				if mode == ModeRemote {
					if sd.Source != SourceCache {
						t.Errorf("subject %v: source %v, want CACHE (the map form's decision)", s.attrs, sd.Source)
					}
					if n := srv.Requests("POST", "/v1/evaluate") - before; n != 1 {
						t.Errorf("subject %v: %d requests for the map form and the subject, want 1", s.attrs, n)
					}
				} else if sd.Source != SourceLocal {
					t.Errorf("subject %v: source %v, want LOCAL", s.attrs, sd.Source)
				}
			}
		})
	}
}

// TestSubjectPrivacy: a subject's hashed identifiers and private
// attributes are treated as the map form's are.
func TestSubjectPrivacy(t *testing.T) {
	rt := &testkit.RecordingTransport{}
	h := newHarness(t, WithHTTPClient(&http.Client{Transport: rt}), WithPrivateAttributes("email"), WithHashedAttributes("salt", "userId"))
	ctx := WithSubject(context.Background(), StringAttr("userId", "8a7f4c91"), StringAttr("plan", "pro"), StringAttr("region", "US"), StringAttr("email", "jane@example.com"))
	if v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false); !v || d.Reason.RuleID != "rule-1" {
		t.Fatalf("evaluation: %v %+v, want true by rule-1", v, d)
	}
	bodies := rt.Bodies()
	if len(bodies) != 1 {
		t.Fatalf("%d requests, want 1", len(bodies))
	}
	body := bodies[0]
	if bytes.Contains(body, []byte("jane@example.com")) || bytes.Contains(body, []byte("8a7f4c91")) {
		t.Fatalf("private attribute or raw identifier sent: %s", body)
	}
	// The hashed form, computed here from its documented definition.
	sum := sha256.Sum256([]byte("salt:8a7f4c91"))
	if !bytes.Contains(body, []byte(hex.EncodeToString(sum[:]))) {
		t.Fatalf("hashed userId not sent: %s", body)
	}
}
