package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strconv"
	"testing"
	"time"

	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-server-sdk/v7/testhelpers/ldtestdata"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/bootstrap"
)

// A request as a service sees it: the subject's fields arrive with the
// request (here from a rotating set of requestIDs users, so no two
// consecutive requests share a subject), the service builds the subject,
// then evaluates one or five flags. Both SDKs do the same work per
// request: build a fresh subject, evaluate.
const requestIDs = 1024

// request is one incoming request's subject fields.
type request struct{ userID, plan, region, appVersion string }

func requests() []request {
	plans := []string{"free", "pro", "enterprise"}
	regions := []string{"US", "EU", "APAC"}
	rs := make([]request, requestIDs)
	for i := range rs {
		rs[i] = request{"user-" + strconv.Itoa(i), plans[i%3], regions[i%3], "2.3." + strconv.Itoa(i%7)}
	}
	return rs
}

// requestKeys are the flags a request evaluates: the benchmark flag and
// four copies of it under other keys (FlagwireConfig(4) / LaunchDarklyFlag).
func requestKeys(n int) []string {
	keys := []string{FlagKey}
	for i := 0; len(keys) < n; i++ {
		keys = append(keys, FlagKey+"-"+strconv.Itoa(i))
	}
	return keys
}

// requestFunc serves request r; it returns how many flags were true so the
// compiler keeps the evaluations.
type requestFunc func(r *request) int

// BenchmarkRequest measures the per-request path of a service:
// BenchmarkRequest/evals=N/ENGINE builds a new subject from the request,
// then makes N evaluations. flagwire-remote-hit answers from the decision
// cache (every subject was seen before), flagwire-local and
// flagwire-offline evaluate in process; they state the subject as a map
// (flagwire.WithAttributes), and their …-subject forms as Attrs
// (flagwire.WithSubject). launchdarkly-v7 builds an ldcontext.Context and
// calls BoolVariation N times.
func BenchmarkRequest(b *testing.B) {
	type engine struct {
		name  string
		build func(tb testing.TB, keys []string) requestFunc
	}
	var engines []engine
	for _, form := range []struct {
		suffix  string
		subject subjectFunc
	}{{"", mapSubject}, {"-subject", attrSubject}} {
		engines = append(engines,
			engine{"flagwire-remote-hit" + form.suffix, func(tb testing.TB, keys []string) requestFunc {
				return fwRequest(tb, fwClient(tb, FlagwireConfig(4), flagwire.ModeRemote), keys, flagwire.SourceCache, form.subject)
			}},
			engine{"flagwire-local" + form.suffix, func(tb testing.TB, keys []string) requestFunc {
				return fwRequest(tb, fwClient(tb, FlagwireConfig(4), flagwire.ModeLocal), keys, flagwire.SourceLocal, form.subject)
			}},
			engine{"flagwire-offline" + form.suffix, func(tb testing.TB, keys []string) requestFunc {
				return fwRequest(tb, fwOfflineClient(tb), keys, flagwire.SourceBootstrap, form.subject)
			}},
		)
	}
	engines = append(engines, engine{"launchdarkly-v7", ldRequest})
	for _, n := range []int{1, 5} {
		b.Run("evals="+strconv.Itoa(n), func(b *testing.B) {
			for _, e := range engines {
				b.Run(e.name, func(b *testing.B) {
					serve := e.build(b, requestKeys(n))
					rs := requests()
					for i := range rs { // warm: every subject seen once
						serve(&rs[i])
					}
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						serve(&rs[i%requestIDs])
						i++
					}
				})
			}
		})
	}
}

// subjectFunc builds a request's subject, the way a service would.
type subjectFunc func(r *request) context.Context

func mapSubject(r *request) context.Context {
	return flagwire.WithAttributes(context.Background(), flagwire.Attributes{
		"userId": r.userID, "plan": r.plan, "region": r.region, "appVersion": r.appVersion,
	})
}

func attrSubject(r *request) context.Context {
	return flagwire.WithSubject(context.Background(),
		flagwire.StringAttr("userId", r.userID), flagwire.StringAttr("plan", r.plan),
		flagwire.StringAttr("region", r.region), flagwire.StringAttr("appVersion", r.appVersion))
}

func fwRequest(tb testing.TB, c *flagwire.Client, keys []string, want flagwire.Source, subject subjectFunc) requestFunc {
	tb.Helper()
	serve := func(r *request) int {
		ctx := subject(r)
		n := 0
		for _, k := range keys {
			if c.Bool(ctx, k, false) {
				n++
			}
		}
		return n
	}
	r := requests()[0]
	serve(&r)
	ctx := subject(&r)
	for _, k := range keys {
		if _, d := c.BoolDetail(ctx, k, false); d.Source != want || d.ErrorCode != "" {
			tb.Fatalf("%s: %+v, want source %v", k, d, want)
		}
	}
	return serve
}

func fwOfflineClient(tb testing.TB) *flagwire.Client {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	data, err := bootstrap.Sign(FlagwireConfig(4), priv, time.Now(), time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := flagwire.New(context.Background(), flagwire.WithMode(flagwire.ModeOffline),
		flagwire.WithBootstrap(data), flagwire.WithTrustedKeys(pub), flagwire.WithLogger(quiet))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func ldRequest(tb testing.TB, keys []string) requestFunc {
	tb.Helper()
	td := ldtestdata.DataSource()
	td.UsePreconfiguredSegment(LaunchDarklySegment())
	for _, k := range keys {
		td.UsePreconfiguredFlag(LaunchDarklyFlag(k))
	}
	c := ldClient(tb, td)
	return func(r *request) int {
		lctx := ldcontext.NewBuilder(r.userID).
			SetString("plan", r.plan).SetString("region", r.region).SetString("appVersion", r.appVersion).
			Build()
		n := 0
		for _, k := range keys {
			if v, _ := c.BoolVariation(k, lctx, false); v {
				n++
			}
		}
		return n
	}
}

// TestRequestEnginesAgree checks that the request benchmark's subjects get
// the same rule outcomes from both SDKs where a rule (not a rollout, whose
// hashes differ by design) decides, so the benchmark compares equal work.
func TestRequestEnginesAgree(t *testing.T) {
	keys := requestKeys(5)
	fw := fwRequest(t, fwOfflineClient(t), keys, flagwire.SourceBootstrap, mapSubject)
	fwSubject := fwRequest(t, fwOfflineClient(t), keys, flagwire.SourceBootstrap, attrSubject)
	ldr := ldRequest(t, keys)
	rs := requests()
	var fwTrue, ldTrue int
	for i := range rs {
		n := fw(&rs[i])
		if m := fwSubject(&rs[i]); m != n {
			t.Fatalf("request %d: %d true decisions with WithAttributes, %d with WithSubject", i, n, m)
		}
		fwTrue += n
		ldTrue += ldr(&rs[i])
	}
	t.Logf("true decisions over %d requests × %d flags: flagwire %d, launchdarkly %d", len(rs), len(keys), fwTrue, ldTrue)
	if fwTrue == 0 || ldTrue == 0 {
		t.Fatalf("a benchmark that serves no true decisions measures nothing: flagwire %d, launchdarkly %d", fwTrue, ldTrue)
	}
}
