package flagwire

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

func TestOfflineModeBootstrap(t *testing.T) {
	s := testkit.NewSigner()
	cfg := exampleConfig()
	cfg.Version = 7
	env := s.Envelope(t, cfg, time.Now(), time.Hour)
	c, err := New(context.Background(), WithMode(ModeOffline), WithBootstrap(env), WithTrustedKeys(s.Pub),
		WithHTTPClient(&http.Client{Transport: failingTransport{t}}), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := c.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, d := c.BoolDetail(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false)
	if !v || d.Source != SourceBootstrap {
		t.Fatalf("%v %+v", v, d)
	}
	if st := c.Status(); st.State != StateOffline || st.ConfigVersion != 7 {
		t.Fatalf("status %+v", st)
	}
}

func TestBootstrapRefused(t *testing.T) {
	s, other := testkit.NewSigner(), testkit.NewSigner()
	cfg := exampleConfig()
	cfg.Version = 5
	good := s.Envelope(t, cfg, time.Now(), time.Hour)
	tamper := func(f func(e *wire.BootstrapEnvelope)) []byte {
		var e wire.BootstrapEnvelope
		json.Unmarshal(good, &e)
		f(&e)
		b, _ := json.Marshal(e)
		return b
	}
	cases := map[string]struct {
		data []byte
		want error
	}{
		"tampered payload": {tamper(func(e *wire.BootstrapEnvelope) {
			e.Payload = []byte(strings.Replace(string(e.Payload), `"rule-1"`, `"rule-X"`, 1))
		}), wire.ErrBootstrapSignature},
		"tampered version": {tamper(func(e *wire.BootstrapEnvelope) { e.Version = 6 }), wire.ErrBootstrapSignature},
		"expired":          {s.Envelope(t, cfg, time.Now().Add(-2*time.Hour), time.Hour), wire.ErrBootstrapExpired},
		"unknown key":      {other.Envelope(t, cfg, time.Now(), time.Hour), wire.ErrBootstrapUnknownKey},
		"truncated":        {good[:len(good)/2], wire.ErrBootstrapFormat},
		// A second, case-variant member must not let another parser see
		// other "payload" bytes than the ones signed.
		"case-variant member": {[]byte(strings.Replace(string(good), `{`, `{"Payload":{"version":5,"flags":[]},`, 1)), wire.ErrBootstrapFormat},
		"trailing data":       {append(append([]byte{}, good...), []byte(` {}`)...), wire.ErrBootstrapFormat},
		"not json":            {[]byte("hello"), wire.ErrBootstrapFormat},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := New(context.Background(), WithMode(ModeOffline), WithBootstrap(tc.data), WithTrustedKeys(s.Pub), WithLogger(quietLogger()))
			if !errors.Is(err, tc.want) {
				t.Fatalf("New = %v; want %v", err, tc.want)
			}
			// In remote mode it is refused, not fatal, and never used.
			c, err := New(context.Background(), WithEndpoint("http://127.0.0.1:1"), WithBootstrap(tc.data), WithTrustedKeys(s.Pub),
				WithLogger(quietLogger()), WithStreaming(false), WithTimeout(20*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			if _, d := c.BoolDetail(user("8a7f4c91", "pro", "US"), "checkout-new-flow", false); d.Source != SourceCallerDefault {
				t.Fatalf("refused bootstrap was used: %+v", d)
			}
			if c.Status().LastError == "" {
				t.Fatal("refusal not surfaced in Status")
			}
		})
	}
}

func TestBootstrapRollbackRefused(t *testing.T) {
	s := testkit.NewSigner()
	dir := t.TempDir()
	newer := exampleConfig()
	newer.Version = 10
	older := exampleConfig()
	older.Version = 3
	older.Flags[0].State = evaluate.StateOff
	last := filepath.Join(dir, "last-known.json")
	os.WriteFile(last, s.Envelope(t, newer, time.Now(), time.Hour), 0o600)
	c, err := New(context.Background(), WithEndpoint("http://127.0.0.1:1"), WithStreaming(false), WithLastKnownFile(last),
		WithBootstrap(s.Envelope(t, older, time.Now(), time.Hour)), WithTrustedKeys(s.Pub), WithLogger(quietLogger()), WithTimeout(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if st := c.Status(); st.ConfigVersion != 10 {
		t.Fatalf("held version %d; the older bootstrap must not win", st.ConfigVersion)
	}
}

// TestBootstrapNestingLimit: a bootstrap's config may nest
// evaluate.MaxNestingDepth levels deep, counted from its root, as the CLI
// that signs it and the server that serves it allow; one level more is
// refused (it was accepted up to the JSON parser's own 10,000).
func TestBootstrapNestingLimit(t *testing.T) {
	s := testkit.NewSigner()
	// {"flags": [{"variants": [{"value": …: the value starts at depth 6.
	for _, tc := range []struct {
		arrays int
		ok     bool
	}{{evaluate.MaxNestingDepth - 5, true}, {evaluate.MaxNestingDepth - 4, false}} {
		cfg := &evaluate.Config{Environment: "prod", Version: 1, Flags: []evaluate.Flag{{Key: "deep", Type: evaluate.TypeJSON,
			Variants: []evaluate.Variant{{Name: "a", Value: nestedValue(tc.arrays)}}}}}
		c, err := New(context.Background(), WithMode(ModeOffline), WithBootstrap(s.Envelope(t, cfg, time.Now(), time.Hour)),
			WithTrustedKeys(s.Pub), WithLogger(quietLogger()))
		if !tc.ok {
			if !errors.Is(err, wire.ErrBootstrapFormat) || !strings.Contains(err.Error(), "nesting deeper than 100 levels") {
				t.Errorf("%d arrays: New = %v, want the nesting limit", tc.arrays, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d arrays: %v", tc.arrays, err)
		}
		var v any
		d := c.JSON(context.Background(), "deep", &v)
		c.Close(context.Background())
		if d.Source != SourceBootstrap || d.Variant != "a" || !jsonEqual(v, nestedValue(tc.arrays)) {
			t.Errorf("%d arrays: %v %+v", tc.arrays, v, d)
		}
	}
}

// nestedValue returns n nested arrays around "x".
func nestedValue(n int) any {
	var v any = "x"
	for range n {
		v = []any{v}
	}
	return v
}
