package flagwire

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
)

// mustKey returns the decision cache key c uses for key in ctx.
func mustKey(t testing.TB, c *Client, ctx context.Context, key string) cacheKey {
	t.Helper()
	k, ok := c.keyOf(contextOf(ctx), key)
	if !ok {
		t.Fatalf("context of %q cannot be keyed", key)
	}
	return k
}

// remoteAt returns a remote-mode client of srv's environment "prod",
// without streaming (so nothing but the calls themselves changes its
// cache) unless opts say otherwise.
func remoteAt(t testing.TB, srv *flagtest.Server, opts ...Option) *Client {
	t.Helper()
	return remoteAtURL(t, srv.URL, srv.Token(), opts...)
}

// remoteAtURL is remoteAt for a server at url (a proxy in front of one).
func remoteAtURL(t testing.TB, url, token string, opts ...Option) *Client {
	t.Helper()
	base := []Option{
		WithEndpoint(url), WithToken(token), WithEnvironment("prod"),
		WithStreaming(false), WithTimeout(5 * time.Second),
		WithLogger(slog.New(slog.DiscardHandler)),
	}
	c, err := New(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// engineAnswer is the oracle of a decision: the rules engine's answer for
// cfg (compiled here, from the same document the server holds) and attrs.
func engineAnswer(t testing.TB, cfg *evaluate.Config, key string, attrs Attributes) evaluate.Result {
	t.Helper()
	snap, err := evaluate.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return snap.Evaluate(key, attrs, time.Now())
}

// sameAnswer fails unless d reports what r decided: variant, reason kind,
// rule and error code.
func sameAnswer(t testing.TB, what string, d Detail, r evaluate.Result) {
	t.Helper()
	if d.Variant != r.Variant || d.Reason.Kind != r.Reason.Kind || d.Reason.RuleID != r.Reason.RuleID ||
		(d.ErrorCode == CodeMissingBucketingAttribute) != (r.Reason.ErrorCode == evaluate.ErrorMissingBucketAttr) {
		t.Errorf("%s: got variant %q reason %s/%s code %q; the engine says variant %q reason %s/%s code %q",
			what, d.Variant, d.Reason.Kind, d.Reason.RuleID, d.ErrorCode, r.Variant, r.Reason.Kind, r.Reason.RuleID, r.Reason.ErrorCode)
	}
}
