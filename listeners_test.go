package flagwire

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
	"github.com/flagwire/flagwire/internal/wire"
)

func TestChangeListeners(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	c := newLocal(t, srv, WithStreaming(false), WithPollInterval(time.Hour))
	var mu sync.Mutex
	var all, one []FlagChange
	var values []ValueChange
	c.OnFlagChange("", func(ch FlagChange) { mu.Lock(); all = append(all, ch); mu.Unlock() })
	c.OnFlagChange("checkout-new-flow", func(ch FlagChange) { mu.Lock(); one = append(one, ch); mu.Unlock() })
	c.OnFlagChange("", func(FlagChange) { panic("listener bug") }) // recovered
	c.OnValueChange(user("8a7f4c91", "pro", "US"), "checkout-new-flow", func(ch ValueChange) { mu.Lock(); values = append(values, ch); mu.Unlock() })

	srv.SetFlag("prod", evaluate.Flag{Key: "unrelated", Default: &evaluate.Serve{Variant: true}})
	c.syncOnce(context.Background())
	f := exampleConfig().Flags[0]
	f.Rules[0].When = "plan == 'enterprise'" // 8a7f4c91 (pro/US) no longer matches rule-1
	srv.SetFlag("prod", f)
	c.syncOnce(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if len(all) != 2 || !slices.Equal(all[0].Keys, []string{"unrelated"}) || !slices.Equal(all[1].Keys, []string{"checkout-new-flow"}) {
		t.Fatalf("all-flags listener: %+v", all)
	}
	if len(one) != 1 {
		t.Fatalf("one-flag listener: %+v", one)
	}
	if len(values) != 1 || values[0].Old != true {
		t.Fatalf("value listener: %+v", values)
	}
}

func TestRemoteSegmentChangeNotifiesAll(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(exampleConfig()))
	c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithLogger(quietLogger()), WithTimeout(patience))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	testkit.WaitFor(t, patience, "stream connected", func() bool { return c.Status().StreamConnected })
	got := make(chan FlagChange, 4)
	c.OnFlagChange("", func(ch FlagChange) { got <- ch })
	ctx := user("new-beta", "free", "EU")
	if c.Bool(ctx, "checkout-new-flow", false) {
		t.Fatal("not a beta tester yet")
	}
	if _, err := srv.SetSegment("prod", evaluate.Segment{Key: "beta_testers", Included: []string{"beta-1", "new-beta"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case ch := <-got:
		if !ch.All {
			t.Fatalf("segment change: %+v", ch)
		}
	case <-time.After(patience):
		t.Fatal("no change notification for a segment change")
	}
	if v, d := c.BoolDetail(ctx, "checkout-new-flow", false); !v || d.Source != SourceRemote {
		t.Fatalf("after the segment change: %v %+v", v, d)
	}
}

// TestFlagChangeReachesDependentsLocal: in local mode a change of base is
// a change of child and grandchild (prerequisites, transitively), and a
// segment change is a change of exactly the flags using that segment.
func TestFlagChangeReachesDependentsLocal(t *testing.T) {
	srv := flagtest.NewServer(t, flagtest.WithConfig(prereqConfig(true)))
	c := newLocal(t, srv, WithStreaming(false), WithPollInterval(time.Hour))
	rec := newChangeRecorder(c, "", "child", "grandchild", "unrelated")
	var mu sync.Mutex
	var values []ValueChange
	ctx := WithAttributes(context.Background(), Attributes{"userId": "u1"})
	c.OnValueChange(ctx, "grandchild", func(vc ValueChange) { mu.Lock(); values = append(values, vc); mu.Unlock() })
	if !c.Bool(ctx, "grandchild", false) {
		t.Fatal("grandchild should start true")
	}

	if _, err := srv.SetFlag("prod", prereqConfig(false).Flags[0]); err != nil { // base → false
		t.Fatal(err)
	}
	if err := c.syncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := rec.changes("")
	if len(all) != 1 || !slices.Equal(all[0].Keys, []string{"base", "child", "grandchild"}) {
		t.Fatalf("every-flag listener after base changed: %+v; want keys [base child grandchild]", all)
	}
	if len(rec.changes("child")) != 1 || len(rec.changes("grandchild")) != 1 || len(rec.changes("unrelated")) != 0 {
		t.Fatalf("per-flag listeners: child %v, grandchild %v, unrelated %v", rec.changes("child"), rec.changes("grandchild"), rec.changes("unrelated"))
	}
	mu.Lock()
	if len(values) != 1 || values[0].Old != true || values[0].New != false || values[0].Detail.Reason.Kind != "PREREQUISITE_FAILED" {
		t.Errorf("grandchild value listener: %+v; want true → false (PREREQUISITE_FAILED)", values)
	}
	mu.Unlock()
	if v, d := c.BoolDetail(ctx, "grandchild", true); v || d.Reason.Kind != "PREREQUISITE_FAILED" {
		t.Errorf("grandchild now: %v %+v", v, d)
	}

	if _, err := srv.SetSegment("prod", evaluate.Segment{Key: "beta", Included: []string{"u-beta", "u1"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.syncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	all = rec.changes("")
	if len(all) != 2 || !slices.Equal(all[1].Keys, []string{"cond-flag", "seg-flag"}) {
		t.Fatalf("every-flag listener after segment beta changed: %+v; want keys [cond-flag seg-flag]", all)
	}
}

// TestFlagChangeReachesDependentsRemote: in remote mode an invalidation of
// base drops the cached decisions of child and grandchild too and tells
// their listeners.
func TestFlagChangeReachesDependentsRemote(t *testing.T) {
	remote := func(t *testing.T, srv *flagtest.Server) *Client {
		c, err := New(context.Background(), WithEndpoint(srv.URL), WithToken(srv.Token()), WithEnvironment("prod"),
			WithLogger(quietLogger()), WithTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		testkit.WaitFor(t, 5*time.Second, "stream connected", func() bool { return c.Status().StreamConnected })
		return c
	}
	ctx := WithAttributes(context.Background(), Attributes{"userId": "u1"})
	waitChange := func(t *testing.T, rec *changeRecorder, key string) {
		t.Helper()
		testkit.WaitFor(t, 5*time.Second, "change notification for "+key, func() bool { return len(rec.changes(key)) > 0 })
	}

	// base serves false: child and grandchild fail their prerequisites,
	// and the decisions say which; the SDK learns the dependencies from
	// them, whether or not the server lists dependents.
	t.Run("learned from decisions", func(t *testing.T) {
		srv := flagtest.NewServer(t, flagtest.WithConfig(prereqConfig(false)))
		c := remote(t, srv)
		rec := newChangeRecorder(c, "child", "grandchild", "unrelated")
		for _, k := range []string{"child", "grandchild"} {
			if v, d := c.BoolDetail(ctx, k, true); v || d.Reason.Kind != "PREREQUISITE_FAILED" {
				t.Fatalf("%s before: %v %+v", k, v, d)
			}
		}
		c.Bool(ctx, "unrelated", false)
		if _, err := srv.SetFlag("prod", prereqConfig(true).Flags[0]); err != nil { // base → true
			t.Fatal(err)
		}
		waitChange(t, rec, "child")
		waitChange(t, rec, "grandchild")
		for _, k := range []string{"child", "grandchild"} {
			if v, d := c.BoolDetail(ctx, k, false); !v || d.Source != SourceRemote || d.Reason.Kind != "DEFAULT" { // prerequisites: not STATIC
				t.Errorf("%s after base changed: %v %+v; want true, fetched again", k, v, d)
			}
		}
		if _, d := c.BoolDetail(ctx, "unrelated", false); d.Source != SourceCache || len(rec.changes("unrelated")) != 0 {
			t.Errorf("unrelated was invalidated: %+v %v", d, rec.changes("unrelated"))
		}
	})

	// The event's Dependents are honoured as sent.
	t.Run("event dependents", func(t *testing.T) {
		srv := flagtest.NewServer(t, flagtest.WithConfig(prereqConfig(true)))
		c := remote(t, srv)
		rec := newChangeRecorder(c, "", "child")
		if v, d := c.BoolDetail(ctx, "child", false); !v || d.Source != SourceRemote {
			t.Fatalf("child before: %v %+v", v, d)
		}
		c.onRemoteInvalidation(wire.StreamEvent{Type: wire.EventInvalidate, FlagKey: "base", Version: 9, Dependents: []string{"child", "grandchild"}})
		if all := rec.changes(""); len(all) != 1 || !slices.Equal(all[0].Keys, []string{"base", "child", "grandchild"}) || all[0].Version != 9 {
			t.Fatalf("every-flag listener: %+v", all)
		}
		if len(rec.changes("child")) != 1 {
			t.Fatalf("child listener: %+v", rec.changes("child"))
		}
		if _, d := c.BoolDetail(ctx, "child", false); d.Source != SourceRemote {
			t.Fatalf("child after the invalidation: %+v; want a new fetch", d)
		}
	})

	// End to end: base passes, so no decision names it; only the server's
	// Dependents can reach child.
	t.Run("server dependents", func(t *testing.T) {
		srv := flagtest.NewServer(t, flagtest.WithConfig(prereqConfig(true)))
		c := remote(t, srv)
		rec := newChangeRecorder(c, "child")
		if v, d := c.BoolDetail(ctx, "child", false); !v || d.Reason.Kind != "DEFAULT" {
			t.Fatalf("child before: %v %+v", v, d)
		}
		if !streamHasDependents(t, srv, func() { srv.SetFlag("prod", prereqConfig(false).Flags[0]) }) {
			t.Fatal("the server did not list child in the invalidation's Dependents")
		}
		waitChange(t, rec, "child")
		if v, d := c.BoolDetail(ctx, "child", true); v || d.Reason.Kind != "PREREQUISITE_FAILED" || d.Source != SourceRemote {
			t.Errorf("child after base changed: %v %+v", v, d)
		}
	})
}

// prereqConfig: child requires base to serve true; grandchild requires
// child to serve true (so it depends on base through child). seg-flag and
// cond-flag use segment beta (by a rule's segment and by a condition);
// unrelated uses nothing. Every flag serves true by default.
func prereqConfig(baseOn bool) *evaluate.Config {
	return &evaluate.Config{
		Environment: "prod",
		Salt:        "prereq-salt",
		Segments:    []evaluate.Segment{{Key: "beta", Included: []string{"u-beta"}}, {Key: "gamma", Included: []string{"u-gamma"}}},
		Flags: []evaluate.Flag{
			{Key: "base", Default: &evaluate.Serve{Variant: baseOn}},
			{Key: "child", Prerequisites: []evaluate.Prerequisite{{FlagKey: "base", Variants: []any{true}}}, Default: &evaluate.Serve{Variant: true}},
			{Key: "grandchild", Prerequisites: []evaluate.Prerequisite{{FlagKey: "child", Variants: []any{true}}}, Default: &evaluate.Serve{Variant: true}},
			{Key: "seg-flag", Rules: []evaluate.Rule{{ID: "r1", Segment: "beta", Serve: evaluate.Serve{Variant: true}}}, Default: &evaluate.Serve{Variant: false}},
			{Key: "cond-flag", Rules: []evaluate.Rule{{ID: "r1", When: "plan == 'pro' or segment('beta')", Serve: evaluate.Serve{Variant: true}}}, Default: &evaluate.Serve{Variant: false}},
			{Key: "gamma-flag", Rules: []evaluate.Rule{{ID: "r1", Segment: "gamma", Serve: evaluate.Serve{Variant: true}}}, Default: &evaluate.Serve{Variant: false}},
			{Key: "unrelated", Default: &evaluate.Serve{Variant: true}},
		},
	}
}

// changeRecorder collects FlagChange notifications per listener key.
type changeRecorder struct {
	mu  sync.Mutex
	got map[string][]FlagChange
	ch  chan string
}

func newChangeRecorder(c *Client, keys ...string) *changeRecorder {
	r := &changeRecorder{got: map[string][]FlagChange{}, ch: make(chan string, 64)}
	for _, k := range keys {
		c.OnFlagChange(k, func(fc FlagChange) {
			r.mu.Lock()
			r.got[k] = append(r.got[k], fc)
			r.mu.Unlock()
			select {
			case r.ch <- k:
			default:
			}
		})
	}
	return r
}

func (r *changeRecorder) changes(key string) []FlagChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got[key])
}

// streamHasDependents reports whether srv fills StreamEvent.Dependents:
// it watches the raw stream while changing base.
func streamHasDependents(t *testing.T, srv *flagtest.Server, change func()) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/stream?environment=prod", nil)
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	st := testkit.OpenStream(t, nil, req)
	defer st.Close()
	testkit.WaitFor(t, 5*time.Second, "raw stream subscribed", func() bool { return srv.Streams() >= 2 })
	change()
	for {
		// Next fails the test if no invalidate event for base comes.
		if ev := st.Next(t); strings.Contains(ev.Data, `"flagKey":"base"`) {
			return strings.Contains(ev.Data, `"dependents"`)
		}
	}
}
