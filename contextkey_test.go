package flagwire

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
)

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

// nest returns {"d": {"d": … {"v": leaf}}} with n maps above the leaf.
func nest(n int, leaf any) map[string]any {
	m := map[string]any{"v": leaf}
	for range n - 1 {
		m = map[string]any{"d": m}
	}
	return m
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
