package flagwire

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// TestMisconfigurationNotReportedAsFlagNotFound: an environment the server
// does not have, or an endpoint that is not the API's base URL, is reported
// as what it is (UNKNOWN_ENVIRONMENT, a wrong endpoint) in the Detail and
// in Status().LastError, never as FLAG_NOT_FOUND; an endpoint given with
// the API's /v1 prefix works.
func TestMisconfigurationNotReportedAsFlagNotFound(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(typesConfig())) // environment prod only
	ctx := WithAttributes(context.Background(), Attributes{"userId": "u1"})
	newClient := func(t *testing.T, opts ...Option) *Client {
		t.Helper()
		base := []Option{WithToken(srv.Token()), WithLogger(quietLogger()), WithTimeout(5 * time.Second), WithRetry(RetrySettings{MaxAttempts: -1})}
		c, err := New(context.Background(), append(base, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}

	t.Run("unknown environment, remote", func(t *testing.T) {
		c := newClient(t, WithEndpoint(srv.URL), WithEnvironment("staging"), WithStreaming(false))
		v, d := c.BoolDetail(ctx, "kill-switch", false)
		if v || d.ErrorCode != CodeUnknownEnvironment || d.Source != SourceCallerDefault {
			t.Fatalf("got %v %+v; want the default with UNKNOWN_ENVIRONMENT", v, d)
		}
		st := c.Status()
		if st.State != StateError || !strings.Contains(st.LastError, `"staging"`) || !strings.Contains(st.LastError, "environment") {
			t.Fatalf("status %+v; want an error naming environment \"staging\"", st)
		}
	})

	t.Run("unknown environment, remote with stream", func(t *testing.T) {
		c := newClient(t, WithEndpoint(srv.URL), WithEnvironment("staging"))
		testkit.WaitFor(t, 5*time.Second, "stream refused", func() bool { return c.local.stream.stopped.Load() })
		st := c.Status()
		if st.State != StateError || !strings.Contains(st.LastError, `"staging"`) || strings.Contains(st.LastError, "/v1/stream") {
			t.Fatalf("status %+v; want the unknown environment named, not a missing /v1/stream", st)
		}
	})

	t.Run("unknown environment, local", func(t *testing.T) {
		c := newClient(t, WithEndpoint(srv.URL), WithEnvironment("staging"), WithMode(ModeLocal), WithStreaming(false))
		testkit.WaitFor(t, 5*time.Second, "first sync failed", func() bool { return c.Status().LastError != "" })
		st := c.Status()
		if st.State != StateError || !strings.Contains(st.LastError, string(CodeUnknownEnvironment)) || !strings.Contains(st.LastError, `"staging"`) {
			t.Fatalf("status %+v", st)
		}
	})

	for _, suffix := range []string{"/v1", "/v1/"} {
		t.Run("endpoint with "+suffix, func(t *testing.T) {
			c := newClient(t, WithEndpoint(srv.URL+suffix), WithEnvironment("prod"), WithStreaming(false))
			if v, d := c.BoolDetail(ctx, "kill-switch", false); !v || d.ErrorCode != "" || d.Source != SourceRemote || d.Variant != "true" {
				t.Fatalf("got %v %+v; want the flag's true", v, d)
			}
		})
	}

	t.Run("endpoint not the API", func(t *testing.T) {
		c := newClient(t, WithEndpoint(srv.URL+"/api"), WithEnvironment("prod"), WithStreaming(false))
		v, d := c.BoolDetail(ctx, "kill-switch", false)
		if v || d.ErrorCode == CodeFlagNotFound || d.ErrorCode != CodeGeneral {
			t.Fatalf("got %v %+v; want GENERAL (a wrong endpoint), not FLAG_NOT_FOUND", v, d)
		}
		if st := c.Status(); st.State != StateError || !strings.Contains(st.LastError, "endpoint") {
			t.Fatalf("status %+v; want the endpoint named", st)
		}
	})

	t.Run("unknown flag is still FLAG_NOT_FOUND", func(t *testing.T) {
		c := newClient(t, WithEndpoint(srv.URL), WithEnvironment("prod"), WithStreaming(false))
		if v, d := c.BoolDetail(ctx, "no-such-flag", true); !v || d.ErrorCode != CodeFlagNotFound {
			t.Fatalf("got %v %+v", v, d)
		}
		if st := c.Status(); st.LastError != "" || st.State != StateReady {
			t.Fatalf("status %+v", st)
		}
	})
}

// TestFlagtestDefaultEnvironmentIsTheSDKs: a test written as the README
// shows (a flagtest server with its defaults, a client with only an
// endpoint and a token) sees the server's flags.
func TestFlagtestDefaultEnvironmentIsTheSDKs(t *testing.T) {
	srv := flagtest.NewServer(t)
	if _, err := srv.SetFlag(flagtest.DefaultEnvironment, evaluate.Flag{Key: "new-ui", Default: &evaluate.Serve{Variant: true}}); err != nil {
		t.Fatal(err)
	}
	c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithLogger(quietLogger()), WithStreaming(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if v, d := c.BoolDetail(context.Background(), "new-ui", false); !v || d.ErrorCode != "" || d.Source != SourceRemote {
		t.Fatalf("got %v %+v; want true from the server", v, d)
	}
	// And a config without an environment joins that one too.
	srv2 := flagtest.NewServer(t, flagtest.WithConfig(&evaluate.Config{Flags: []evaluate.Flag{{Key: "f", Default: &evaluate.Serve{Variant: true}}}}))
	c2, err := New(context.Background(), WithEndpoint(srv2.URL), WithToken(srv2.Token()), WithLogger(quietLogger()), WithStreaming(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(context.Background())
	if v, d := c2.BoolDetail(context.Background(), "f", false); !v || d.ErrorCode != "" {
		t.Fatalf("WithConfig without environment: %v %+v", v, d)
	}
}
