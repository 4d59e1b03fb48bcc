package flagwire

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

// nestedValue returns n nested arrays around "x".
func nestedValue(n int) any {
	var v any = "x"
	for range n {
		v = []any{v}
	}
	return v
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

// TestSyncedConfigOfANewerServer: local mode reads GET /v1/flags with the
// one config decoder, skipping the fields a newer server adds (forward
// compatibility, as with unknown stream events), while a repeated name,
// which two readers could take two ways, is refused and the config held
// keeps serving.
func TestSyncedConfigOfANewerServer(t *testing.T) {
	docs := make(chan string, 2)
	docs <- `{"environment": "prod", "version": 1, "salt": "s", "futureTop": {"x": [1, 2]},
		"flags": [{"key": "f", "futureFlag": true, "rules": [{"id": "pro", "when": "plan == 'pro'", "variant": true, "futureRule": "x"}]}],
		"segments": [{"key": "s", "included": ["a"], "futureSegment": 1}]}`
	docs <- `{"environment": "prod", "version": 2, "salt": "s", "flags": [{"key": "f", "state": "on", "state": "off"}]}`
	var mu sync.Mutex
	last := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/flags" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		select {
		case last = <-docs:
		default:
		}
		doc := last
		mu.Unlock()
		w.Header().Set("Content-Type", wire.ContentTypeJSON)
		w.Write([]byte(doc))
	}))
	defer srv.Close()
	c := newLocalAt(t, srv.URL, "t", WithStreaming(false))
	check := func() {
		t.Helper()
		if v, d := c.BoolDetail(user("u1", "pro", "EU"), "f", false); !v || d.Variant != "true" || d.Reason.Kind != evaluate.ReasonRuleMatch || d.Reason.RuleID != "pro" || d.ErrorCode != "" {
			t.Errorf("pro: %v %+v", v, d)
		}
		if v, d := c.BoolDetail(user("u2", "free", "EU"), "f", true); v || d.Variant != "false" || d.Reason.Kind != evaluate.ReasonDefault || d.ErrorCode != "" {
			t.Errorf("free: %v %+v", v, d)
		}
	}
	check()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	err := c.syncOnce(ctx)
	if err == nil || !strings.Contains(err.Error(), `duplicate key "state"`) {
		t.Errorf("config with a repeated name: %v", err)
	}
	if st := c.Status(); st.ConfigVersion != 1 {
		t.Errorf("config version %d, want 1 kept", st.ConfigVersion)
	}
	check()
}
