package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/flagwire/flagwire"
)

// ---- the load ----

// subject is one evaluation context of the warm set.
type subject struct {
	ctx   context.Context
	attrs flagwire.Attributes
}

// warmSubjects are the contexts the callers keep coming back to (so the
// cache has something to serve stale), covering every rule and target.
func warmSubjects() []subject {
	regions := []string{"US", "EU"}
	countries := []string{"DE", "US", "FR"}
	versions := []string{"2.3.1", "1.9.0", "2.0.0"}
	out := make([]subject, warmCount)
	for i := range out {
		attrs := flagwire.Attributes{
			"userId": warmUserID(i), "plan": plans[i%3], "region": regions[i/3%2],
			"country": countries[i%len(countries)], "appVersion": versions[i/2%3],
		}
		out[i] = subject{ctx: flagwire.WithAttributes(context.Background(), attrs), attrs: attrs}
	}
	return out
}

// expect says which answers a drill allows.
type expect struct {
	mode flagwire.Mode
	// bootstrap: a trusted bootstrap holding every flag is loaded, so a
	// remote-mode failure never comes down to the caller's default.
	bootstrap bool
	// ready: local mode had its first config before the load began, so
	// every answer is LOCAL.
	ready bool
	// monotonic: local mode never goes back to an older churn generation.
	monotonic bool
}

// caller is one load goroutine's state.
type caller struct {
	id    int
	rng   *rand.Rand
	fresh map[[2]int]time.Time // (flag index, warm subject) → when last answered fresh by this caller
	churn int64                // highest churn generation seen (local mode)
	cold  int
}

// What a call asks for.
const (
	callRight   = iota // a flag of the config, with its type
	callWrong          // a flag of the config, with another type
	callUnknown        // a flag that does not exist
)

// wrongCalls are the wrong-typed calls mixed into the load: each asks a
// flag of one type with a method of another. README: "value of another
// type → the default, DEFAULT + TYPE_MISMATCH" — and it must not change
// what later calls of the right type get.
var wrongCalls = []struct{ key, as string }{
	{flagKill, "string"}, {flagBeta, "number"}, {flagChurn, "bool"}, {flagTier, "string"}, {flagBench, "string"}, {flagTier, "bool"},
}

// callInfo is one call and its answer.
type callInfo struct {
	kind       int
	key, as    string
	fi, si     int // flag index (right-typed calls), warm subject or -1
	attrs      flagwire.Attributes
	got, def   any
	d          flagwire.Detail
	start, end time.Time
	lat, limit time.Duration
}

// evalAs calls the typed method for as ("bool", "string", "number").
func evalAs(c *flagwire.Client, ctx context.Context, key, as string) (got, def any, d flagwire.Detail) {
	switch as {
	case "bool":
		got, d = c.BoolDetail(ctx, key, false)
		def = false
	case "string":
		got, d = c.StringDetail(ctx, key, defString)
		def = defString
	default:
		got, d = c.FloatDetail(ctx, key, defNumber)
		def = defNumber
	}
	return got, def, d
}

// call makes one evaluation and checks it.
func (w *world) call(cl *caller) {
	c := callInfo{fi: -1, si: -1}
	switch r := cl.rng.IntN(32); {
	case r == 0:
		c.kind, c.key, c.as = callUnknown, flagUnknown, "bool"
	case r <= 3:
		wc := wrongCalls[cl.rng.IntN(len(wrongCalls))]
		c.kind, c.key, c.as = callWrong, wc.key, wc.as
	default:
		c.fi = cl.rng.IntN(len(flagKeys))
		c.kind, c.key = callRight, flagKeys[c.fi]
		c.as = flagType[c.key]
	}
	var ctx context.Context
	if c.kind != callWrong && cl.rng.IntN(16) == 0 { // a cold context: a guaranteed miss in remote mode
		cl.cold++
		c.attrs = flagwire.Attributes{"userId": fmt.Sprintf("cold-%d-%d", cl.id, cl.cold), "plan": plans[cl.cold%3], "region": "EU", "country": "DE", "appVersion": "2.3.1"}
		ctx = flagwire.WithAttributes(context.Background(), c.attrs)
	} else { // wrong-typed calls always go to warm subjects, whose decisions right-typed calls reuse
		c.si = cl.rng.IntN(len(w.subjects))
		ctx, c.attrs = w.subjects[c.si].ctx, w.subjects[c.si].attrs
	}
	c.limit = callTimeout
	c.start = time.Now() // before the deadline starts: a preemption between the two must not hide a timeout
	if cl.rng.IntN(4) == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, callerDL)
		defer cancel()
		c.limit = callerDL
	}
	c.got, c.def, c.d = evalAs(w.client, ctx, c.key, c.as)
	c.end = time.Now()
	c.lat = c.end.Sub(c.start)
	w.rec.observe(c.d, c.lat)
	w.rec.overLimit(c.lat-c.limit, fmt.Sprintf("%s took %v (limit %v, source %v, code %s)", c.key, c.lat, c.limit, c.d.Source, c.d.ErrorCode))
	w.checkAnswer(cl, &c)
}

// networkCode reports whether code is one a failed call to the API gives.
func networkCode(code flagwire.ErrorCode) bool {
	switch code {
	case flagwire.CodeTimeout, flagwire.CodeUnavailable, flagwire.CodeBadResponse, flagwire.CodeRateLimited, flagwire.CodeCircuitOpen, flagwire.CodeUnauthorized:
		return true
	}
	return false
}

// justified reports whether a fallback with code is explained, exactly
// when one of these holds:
//
//   - the call timed out on its own: code TIMEOUT after at least its limit
//     (the client's timeout or the caller's deadline);
//   - an injected fault that can cause code was active at some time
//     between recoveryGrace+slack before the call and its end;
//   - the client's transport saw an evaluate request fail in a way that
//     causes code (see countingTransport.justifies), ending at most
//     evidenceGrace+slack before the call began.
func (w *world) justified(code flagwire.ErrorCode, c *callInfo) bool {
	if code == flagwire.CodeTimeout && c.lat >= c.limit-2*time.Millisecond {
		return true
	}
	slack := w.slack()
	if fw, ok := w.faultCovering(c.start, c.end, slack); ok && fw.codes[code] {
		return true
	}
	return w.ct.justifies(string(code), c.start, c.end, slack)
}

// checkAnswer applies the drill's expectations and the model to one answer.
func (w *world) checkAnswer(cl *caller, c *callInfo) {
	r, e, d := w.rec, w.expect, c.d
	code := d.ErrorCode
	if code == flagwire.CodeClosed {
		if cs := w.closeStart(); cs.IsZero() || cs.After(c.end) {
			r.problem("CLIENT_CLOSED before Close", "%s: %+v", c.key, d)
		}
		switch {
		case d.Source == flagwire.SourceCallerDefault && c.got == c.def:
		case c.kind == callRight && (d.Source == flagwire.SourceStale || d.Source == flagwire.SourceBootstrap) && (w.closeEnd().IsZero() || c.start.Before(w.closeEnd())):
			// A call racing with Close whose request was refused by the
			// closing client falls back like any failed request.
			if gen, msg := checkValue(c.key, c.attrs, c.got, d); msg != "" || (d.Source == flagwire.SourceBootstrap && c.key != flagBench && gen != bootstrapGen) {
				r.problem("wrong answer", "%s while closing, from %v: %s (generation %d)", c.key, d.Source, msg, gen)
			}
		default:
			r.problem("closed client served something else than the default", "%s: %v %+v", c.key, c.got, d)
		}
		return
	}
	if ce := w.closeEnd(); !ce.IsZero() && c.start.After(ce) {
		r.problem("answered after Close returned", "%s: %v %+v", c.key, c.got, d)
	}
	switch c.kind {
	case callUnknown:
		switch {
		case d.Source != flagwire.SourceCallerDefault || c.got != c.def:
			r.problem("unknown flag served a value", "%s: %v %+v", c.key, c.got, d)
		case code == flagwire.CodeFlagNotFound:
		case e.mode == flagwire.ModeRemote && networkCode(code) && w.justified(code, c):
			// the API could not be asked: the bootstrap does not know the flag either
		default:
			r.problem("unknown flag: want DEFAULT + FLAG_NOT_FOUND", "%s: %+v", c.key, d)
		}
		return
	case callWrong:
		if d.Source != flagwire.SourceCallerDefault || c.got != c.def || code != flagwire.CodeTypeMismatch {
			if !(e.mode == flagwire.ModeRemote && !e.bootstrap && d.Source == flagwire.SourceCallerDefault && c.got == c.def && networkCode(code) && w.justified(code, c)) {
				r.problem("wrong-typed call: want the default + TYPE_MISMATCH", "%s as %s: %v %+v", c.key, c.as, c.got, d)
			}
		}
		return
	}
	if d.Source == flagwire.SourceCallerDefault {
		switch {
		case c.got != c.def:
			r.problem("default source with a non-default value", "%s: %v (default %v)", c.key, c.got, c.def)
		case code == "":
			r.problem("default served without an error code", "%s: %+v", c.key, d)
		case code == flagwire.CodeTypeMismatch || code == flagwire.CodeFlagNotFound:
			r.problem("right-typed call of an existing flag answered "+string(code)+" (a wrong-typed call poisoned the cache?)", "%s as %s for %v: %+v", c.key, c.as, c.attrs["userId"], d)
		case e.mode == flagwire.ModeOffline:
			r.problem("offline mode served something else than its bootstrap", "%s: %+v", c.key, d)
		case e.mode == flagwire.ModeLocal:
			if e.ready {
				r.problem("local mode fell back after its first config", "%s: %+v", c.key, d)
			}
			if e.bootstrap {
				r.problem("fallback order: default served though the bootstrap holds the flag", "%s: %+v", c.key, d)
			}
		default:
			if e.bootstrap {
				r.problem("fallback order: default served though the bootstrap holds the flag", "%s: %+v", c.key, d)
			} else if !networkCode(code) || !w.justified(code, c) {
				r.problem("fallback without a fault or a failure to justify it", "%s: %+v after %v", c.key, d, c.lat)
			}
		}
		w.checkSkipped(cl, c)
		return
	}

	// A value: right for its generation, and young enough for its source.
	gen, msg := checkValue(c.key, c.attrs, c.got, d)
	if msg != "" {
		r.problem("wrong answer", "%s for %v from %v: %s", c.key, c.attrs["userId"], d.Source, msg)
		return
	}
	slack := w.slack()
	var age time.Duration
	switch d.Source {
	case flagwire.SourceRemote:
		age = ageRemote
	case flagwire.SourceCache:
		age = ageCache
	case flagwire.SourceStale:
		age = ageStale
	case flagwire.SourceLocal:
		age = ageLocal
	case flagwire.SourceBootstrap:
		if c.key != flagBench && gen != bootstrapGen {
			r.problem("wrong answer", "%s from the bootstrap: generation %d, the bootstrap holds %d", c.key, gen, bootstrapGen)
		}
	}
	if d.Source != flagwire.SourceBootstrap {
		from := c.start.Add(-age - slack)
		if fw, ok := w.faultCovering(c.start, c.end, slack); ok && d.Source == flagwire.SourceLocal {
			// A fault may freeze local mode's config at what it held when the fault began.
			if f := fw.start.Add(-age - slack); f.Before(from) {
				from = f
			}
		}
		if ok, why := w.hist.liveBetween(c.key, gen, from, c.end); !ok {
			r.problem("answer too old for its source", "%s for %v from %v (allowed age %v + slack %v): %s", c.key, c.attrs["userId"], d.Source, age, slack, why)
		}
	}

	switch e.mode {
	case flagwire.ModeRemote:
		switch d.Source {
		case flagwire.SourceRemote, flagwire.SourceCache:
			if code != "" {
				r.problem("fresh answer with an error code", "%s: %+v", c.key, d)
			}
			if c.si >= 0 {
				cl.fresh[[2]int{c.fi, c.si}] = c.end
			}
		case flagwire.SourceStale, flagwire.SourceBootstrap:
			if !networkCode(code) {
				r.problem("fallback without a network error code", "%s: %+v", c.key, d)
			} else if !w.justified(code, c) {
				r.problem("fallback without a fault or a failure to justify it", "%s: %+v after %v", c.key, d, c.lat)
			}
			if d.Source == flagwire.SourceBootstrap {
				w.checkSkipped(cl, c)
			}
		default:
			r.problem("source not possible in remote mode", "%s: %v", c.key, d.Source)
		}
	case flagwire.ModeOffline:
		if d.Source != flagwire.SourceBootstrap || code != "" {
			r.problem("offline mode served something else than its bootstrap", "%s: %+v", c.key, d)
		}
	default: // local
		switch d.Source {
		case flagwire.SourceLocal:
			if code != "" {
				r.problem("local answer with an error code", "%s: %+v", c.key, d)
			}
		case flagwire.SourceBootstrap:
			if e.ready {
				r.problem("local mode fell back after its first config", "%s: %+v", c.key, d)
			}
		default:
			r.problem("source not possible in local mode", "%s: %v", c.key, d.Source)
		}
		if e.monotonic && c.key == flagChurn && d.Source == flagwire.SourceLocal {
			if gen < cl.churn {
				r.problem("local config went back to an older version", "churn v%d after v%d", gen, cl.churn)
			} else {
				cl.churn = gen
			}
		}
	}
}

// checkSkipped: in remote mode, a cached decision this caller saw fresh at
// time o stays servable as STALE until at least o + maxStale − slack (it was
// fetched at most a TTL before o and is kept TTL + maxStale), unless a
// change of its flag dropped it; a bootstrap or default answer before then
// skipped it.
func (w *world) checkSkipped(cl *caller, c *callInfo) {
	if w.expect.mode != flagwire.ModeRemote || c.si < 0 || c.fi < 0 || !networkCode(c.d.ErrorCode) {
		return // other codes are reported by checkAnswer
	}
	o, ok := cl.fresh[[2]int{c.fi, c.si}]
	if ok && w.hist.mayHaveDropped(c.key, o, c.end, 2*time.Second+w.slack()) {
		return // a change dropped it for good: falling back past it is the right order
	}
	if ok && c.end.Before(o.Add(maxStale-w.slack())) {
		w.rec.problem("fallback order: a cached decision was skipped", "%s for %v: %v %s %v after a fresh answer", c.key, c.attrs["userId"], c.d.Source, c.d.ErrorCode, c.end.Sub(o).Round(time.Millisecond))
	}
}

// runLoad runs the workers until stop is closed.
func (w *world) runLoad(stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	for i := 0; i < w.s.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					w.rec.problem("panic", "%v", p)
				}
			}()
			cl := &caller{id: i, rng: rand.New(rand.NewPCG(uint64(i), 42)), fresh: map[[2]int]time.Time{}}
			// Each caller works in bursts of burstWork and rests
			// (workers-1)×burstWork between them, so the callers together
			// use about one of the two cores and the server and the
			// client's own goroutines get the other.
			rest := time.NewTimer(0)
			defer rest.Stop()
			<-rest.C
			for {
				burst := time.Now()
				for time.Since(burst) < burstWork {
					select {
					case <-stop:
						return
					default:
					}
					w.call(cl)
				}
				rest.Reset(time.Duration(w.s.workers-1) * burstWork)
				select {
				case <-stop:
					return
				case <-rest.C:
				}
			}
		}()
	}
	return wg.Wait
}

// churner writes the next generation of one changing flag every interval,
// round robin, until stop is closed.
func (w *world) churner(stop <-chan struct{}, interval time.Duration) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				w.change(mutableFlags[i%len(mutableFlags)])
			}
		}
	}()
	return func() { <-done }
}

// change writes the next generation of key (model first, then server).
func (w *world) change(key string) int64 {
	gen, err := w.hist.write(w.t, key)
	if err != nil {
		w.rec.problem("server write failed", "%v", err)
	}
	w.churns.Add(1)
	return gen
}

// setChurn writes the next churn generation.
func (w *world) setChurn() int64 { return w.change(flagChurn) }

// churnN parses a churn value "vN".
func churnN(v any) (int64, bool) {
	s, ok := v.(string)
	if !ok || len(s) < 2 || s[0] != 'v' {
		return 0, false
	}
	n, err := strconv.ParseInt(s[1:], 10, 64)
	return n, err == nil
}

// ---- fault windows ----

// faultWindow is the time an injected fault was active; codes are the
// fallback error codes it can cause.
type faultWindow struct {
	name       string
	start, end time.Time // end zero: still active
	codes      map[flagwire.ErrorCode]bool
}

// beginFault records a fault from now until the returned func is called.
func (w *world) beginFault(name string, codes ...flagwire.ErrorCode) (end func()) {
	fw := &faultWindow{name: name, start: time.Now(), codes: map[flagwire.ErrorCode]bool{}}
	for _, c := range codes {
		fw.codes[c] = true
	}
	w.fmu.Lock()
	w.faults = append(w.faults, fw)
	w.fmu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.fmu.Lock()
			fw.end = time.Now()
			w.fmu.Unlock()
		})
	}
}

// faultCovering returns a fault active at some time in
// [from − recoveryGrace − slack, to].
func (w *world) faultCovering(from, to time.Time, slack time.Duration) (faultWindow, bool) {
	w.fmu.Lock()
	defer w.fmu.Unlock()
	for _, fw := range w.faults {
		if fw.start.After(to) {
			continue
		}
		if fw.end.IsZero() || !fw.end.Add(recoveryGrace+slack).Before(from) {
			return *fw, true
		}
	}
	return faultWindow{}, false
}

// slack is the scheduling allowance on every age and justification
// window: 300 ms plus twice the worst scheduler lag measured so far.
func (w *world) slack() time.Duration {
	lag := time.Duration(0)
	if w.maxLag != nil {
		lag = w.maxLag()
	}
	return 300*time.Millisecond + 2*lag
}
