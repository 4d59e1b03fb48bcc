package flagwire

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

func TestStaleServedWhenServerFails(t *testing.T) {
	h := newHarness(t, WithRetry(RetrySettings{MaxAttempts: -1}), WithCache(CacheSettings{MaxStale: time.Hour}))
	ctx := user("8a7f4c91", "pro", "US")
	if !h.c.Bool(ctx, "checkout-new-flow", false) {
		t.Fatal("warm-up")
	}
	h.clock.Advance(61 * time.Second) // past the 60s TTL
	h.srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: 500})
	v, d := h.c.BoolDetail(ctx, "checkout-new-flow", false)
	if !v || d.Source != SourceStale || d.ErrorCode != CodeUnavailable {
		t.Fatalf("%v %+v", v, d)
	}
	h.clock.Advance(2 * time.Hour) // past max staleness
	v, d = h.c.BoolDetail(ctx, "checkout-new-flow", false)
	if v || d.Source != SourceCallerDefault {
		t.Fatalf("beyond max staleness: %v %+v", v, d)
	}
}

// TestStreamReconnectExpiresButKeepsStale: a stream reconnect that cannot
// resume (no event id yet), or a reset event, makes every cached decision
// computed before the version it announces be asked again, but unlike an
// invalidation it drops nothing: if the API then fails, the cached
// decision is served as STALE rather than the bootstrap or default.
func TestStreamReconnectExpiresButKeepsStale(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(typesConfig()))
	c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithEnvironment("prod"),
		WithLogger(quietLogger()), WithTimeout(5*time.Second), WithRetry(RetrySettings{MaxAttempts: -1}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	connected(t, c, func() {}, 1)
	ctx := WithAttributes(context.Background(), Attributes{"userId": "u1"})
	if v, d := c.BoolDetail(ctx, "kill-switch", false); !v || d.Source != SourceRemote {
		t.Fatalf("first: %v %+v", v, d)
	}
	// Another flag changes while the stream is down: the reconnect
	// announces a version after the cached decision's.
	theme := typesConfig().Flags[3]
	changeTheme := func() int64 {
		theme.Owners = append(theme.Owners, "o")
		v, err := srv.SetFlag("prod", theme)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	release := dropAndHold(t, srv, c)
	changeTheme()
	connected(t, c, release, 2)
	if v, d := c.BoolDetail(ctx, "kill-switch", false); !v || d.Source != SourceRemote {
		t.Fatalf("after a reconnect: %v %+v; want the flag asked again", v, d)
	}
	// A reset event (the server cannot replay) is the same: asked again.
	// (Delivered by hand while the stream is held, so no event of the
	// change gets there first.)
	release = dropAndHold(t, srv, c)
	c.onRemoteInvalidation(wire.StreamEvent{Type: wire.EventReset, Version: changeTheme()})
	if v, d := c.BoolDetail(ctx, "kill-switch", false); !v || d.Source != SourceRemote {
		t.Fatalf("after a reset: %v %+v; want the flag asked again", v, d)
	}
	changeTheme()
	srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: http.StatusServiceUnavailable})
	connected(t, c, release, 3)
	if v, d := c.BoolDetail(ctx, "kill-switch", false); !v || d.Source != SourceStale || d.ErrorCode != CodeUnavailable || d.Variant != "true" {
		t.Fatalf("after a reconnect with the API failing: %v %+v; want the cached true as STALE", v, d)
	}
}

func TestRemoteFallsBackToBootstrap(t *testing.T) {
	s := testkit.NewSigner()
	cfg := exampleConfig()
	cfg.Version = 1
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	srv.InjectFault(flagtest.Fault{Path: "/v1/evaluate", Status: 503})
	c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithBootstrap(s.Envelope(t, cfg, time.Now(), time.Hour)),
		WithTrustedKeys(s.Pub), WithLogger(quietLogger()), WithRetry(RetrySettings{MaxAttempts: -1}), WithTimeout(patience))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	v, d := c.BoolDetail(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false)
	if !v || d.Source != SourceBootstrap || d.ErrorCode != CodeUnavailable || d.Reason.RuleID != "rule-1" {
		t.Fatalf("%v %+v", v, d)
	}
}
