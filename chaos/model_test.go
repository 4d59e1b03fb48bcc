package chaos

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagwire/flagwire"
	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/flagtest"
	"github.com/flagwire/flagwire/internal/testkit"
)

// ---- the independent model: the config history and its answers ----
//
// The chaos environment's flags are chosen so that what they serve is
// trivially computable from README's documented semantics, without the
// evaluate engine the server and the SDK share:
//
//   - bench-flag, static: the design's benchmark flag (rule on plan and
//     region, a 1,000-id static segment, a semver rule, a 25% rollout). The
//     rollout bucket is computed here with README's bucketing formula
//     (SHA-256 of salt:seed:id), a second implementation.
//   - kill-switch (bool): on at odd generations (STATIC true), off at even
//     ones (OFF false).
//   - beta-access (bool): a userId target list that changes with every
//     generation (TARGET_MATCH true), else DEFAULT false.
//   - plan-tier (number): rule "tier-<gen>" serves large (100) to
//     plan == plans[gen%3] (RULE_MATCH), else DEFAULT small (10).
//   - churn (string): one variant "v<gen>", STATIC.
//
// Every variant of a changing flag carries the payload {"gen": N}, so each
// answer says which generation of its flag produced it, and the history
// records when each generation was written: an answer is checked for
// value, variant, reason kind, rule id, segment and bucket against its
// generation, and for age against when that generation was live.

// Flags of the chaos config. Defaults passed by callers are sentinels no
// flag ever serves, so a served default is unambiguous (false is served by
// the bool flags, so bool calls are told apart by Source instead).
const (
	flagBench   = "bench-flag"
	flagKill    = "kill-switch"
	flagBeta    = "beta-access"
	flagTier    = "plan-tier"
	flagChurn   = "churn"
	flagUnknown = "no-such-flag" // never exists: FLAG_NOT_FOUND
	defString   = "<default>"
	defNumber   = -1.0
	chaosSalt   = "chaos-salt"
)

// flagKeys are the flags the load asks for with the right type.
var flagKeys = []string{flagBench, flagKill, flagBeta, flagTier, flagChurn}

// mutableFlags are the flags the churner rewrites, round robin.
var mutableFlags = []string{flagChurn, flagKill, flagBeta, flagTier}

var plans = []string{"pro", "enterprise", "free"}

// flagType is each flag's value type, as the model knows it.
var flagType = map[string]string{flagBench: "bool", flagKill: "bool", flagBeta: "bool", flagTier: "number", flagChurn: "string"}

// genPayload is the payload every variant of generation gen carries.
func genPayload(gen int64) map[string]any { return map[string]any{"gen": gen} }

func boolVariants(gen int64) []evaluate.Variant {
	return []evaluate.Variant{{Name: "true", Value: true, Payload: genPayload(gen)}, {Name: "false", Value: false, Payload: genPayload(gen)}}
}

// warmUserID is the userId of warm subject i (see warmSubjects).
func warmUserID(i int) string {
	if i%5 == 0 {
		return testkit.BetaID(i * 7 % segmentSize)
	}
	return "user-" + strconv.Itoa(i)
}

// betaTargets is beta-access's target list at generation gen: the warm
// subjects i with (i+gen) % 3 == 0.
func betaTargets(gen int64) []string {
	var ids []string
	for i := 0; i < warmCount; i++ {
		if (int64(i)+gen)%3 == 0 {
			ids = append(ids, warmUserID(i))
		}
	}
	return ids
}

// flagAt is flag key at generation gen (gen ≥ 1), as the churner writes it.
func flagAt(key string, gen int64) evaluate.Flag {
	switch key {
	case flagKill:
		f := evaluate.Flag{Key: key, Type: evaluate.TypeBoolean, Variants: boolVariants(gen), OffVariant: "false", Default: &evaluate.Serve{Variant: "true"}}
		if gen%2 == 0 {
			f.State = evaluate.StateOff
		}
		return f
	case flagBeta:
		return evaluate.Flag{Key: key, Type: evaluate.TypeBoolean, Variants: boolVariants(gen), OffVariant: "false",
			Targets: []evaluate.Target{{Variant: "true", Values: betaTargets(gen)}}, Default: &evaluate.Serve{Variant: "false"}}
	case flagTier:
		return evaluate.Flag{Key: key, Type: evaluate.TypeNumber,
			Variants: []evaluate.Variant{{Name: "small", Value: 10, Payload: genPayload(gen)}, {Name: "large", Value: 100, Payload: genPayload(gen)}},
			Rules:    []evaluate.Rule{{ID: fmt.Sprintf("tier-%d", gen), When: fmt.Sprintf("plan == '%s'", plans[gen%3]), Serve: evaluate.Serve{Variant: "large"}}},
			Default:  &evaluate.Serve{Variant: "small"}}
	case flagChurn:
		v := "v" + strconv.FormatInt(gen, 10)
		return evaluate.Flag{Key: key, Type: evaluate.TypeString, Variants: []evaluate.Variant{{Name: v, Payload: genPayload(gen)}}, Default: &evaluate.Serve{Variant: v}}
	}
	panic("chaos: no such mutable flag " + key)
}

// initialConfig is the environment at start (every changing flag at
// generation 1), and what the bootstraps and last-known files hold.
func initialConfig() *evaluate.Config {
	cfg := &evaluate.Config{
		Environment: env,
		Salt:        chaosSalt,
		Version:     1,
		Segments:    []evaluate.Segment{testkit.BetaSegment(segmentSize)},
		Flags:       []evaluate.Flag{testkit.BenchFlag(flagBench)}, // never changes
	}
	for _, k := range mutableFlags {
		cfg.Flags = append(cfg.Flags, flagAt(k, 1))
	}
	return cfg
}

// answer is what the model says a flag serves.
type answer struct {
	value   any // bool, string or float64
	variant string
	kind    string
	ruleID  string
	segment string
	bucket  int // -1 unless a rollout decided
}

// bucketOf is README's bucketing specification, implemented here again:
// bucket = uint64(big-endian SHA-256(salt ":" seed ":" id)[0:8]) mod 100000.
func bucketOf(salt, seed, id string) int {
	h := sha256.Sum256([]byte(salt + ":" + seed + ":" + id))
	return int(binary.BigEndian.Uint64(h[:8]) % 100000)
}

// semverLess compares dotted numeric versions ("1.9.0" < "2.0.0").
func semverLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < 3; i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return false
}

// inBetaSegment: the segment holds beta-0000 … beta-0999.
func inBetaSegment(id string) bool {
	n, err := strconv.Atoi(strings.TrimPrefix(id, "beta-"))
	return strings.HasPrefix(id, "beta-") && len(id) == len("beta-0000") && err == nil && n >= 0 && n < segmentSize
}

func str(v any) string { s, _ := v.(string); return s }

// expected is the answer of flag key at generation gen for attrs.
func expected(key string, gen int64, attrs flagwire.Attributes) answer {
	id := str(attrs["userId"])
	b := func(v bool, kind string) answer {
		return answer{value: v, variant: strconv.FormatBool(v), kind: kind, bucket: -1}
	}
	switch key {
	case flagBench:
		plan := str(attrs["plan"])
		switch {
		case plan == "enterprise" && str(attrs["region"]) == "EU":
			a := b(true, "RULE_MATCH")
			a.ruleID = "enterprise-eu"
			return a
		case inBetaSegment(id):
			a := b(true, "SEGMENT_MATCH")
			a.ruleID, a.segment = "beta", "beta_testers"
			return a
		case semverLess(str(attrs["appVersion"]), "2.0.0"):
			a := b(false, "RULE_MATCH")
			a.ruleID = "old-app"
			return a
		}
		bk := bucketOf(chaosSalt, flagBench, id)
		a := b(bk < 25000, "ROLLOUT")
		a.bucket = bk
		return a
	case flagKill:
		if gen%2 == 1 {
			return b(true, "STATIC")
		}
		return b(false, "OFF")
	case flagBeta:
		for _, t := range betaTargets(gen) {
			if t == id {
				return b(true, "TARGET_MATCH")
			}
		}
		return b(false, "DEFAULT")
	case flagTier:
		if str(attrs["plan"]) == plans[gen%3] {
			return answer{value: 100.0, variant: "large", kind: "RULE_MATCH", ruleID: fmt.Sprintf("tier-%d", gen), bucket: -1}
		}
		return answer{value: 10.0, variant: "small", kind: "DEFAULT", bucket: -1}
	case flagChurn:
		v := "v" + strconv.FormatInt(gen, 10)
		return answer{value: v, variant: v, kind: "STATIC", bucket: -1}
	}
	return answer{}
}

// genOf reads the generation from an answer's payload: 0 for bench-flag
// (static, no payload), -1 when a changing flag's answer carries none.
func genOf(key string, d flagwire.Detail) int64 {
	if key == flagBench {
		return 0
	}
	var p struct {
		Gen *int64 `json:"gen"`
	}
	if json.Unmarshal(d.Payload, &p) != nil || p.Gen == nil || *p.Gen < 1 {
		return -1
	}
	return *p.Gen
}

// checkValue compares an answer that is not the caller's default with the
// model's answer for its generation. It returns the generation and "" or
// what is wrong.
func checkValue(key string, attrs flagwire.Attributes, got any, d flagwire.Detail) (int64, string) {
	gen := genOf(key, d)
	if gen < 0 {
		return gen, fmt.Sprintf("no generation in the payload %q", d.Payload)
	}
	want := expected(key, gen, attrs)
	have := answer{value: got, variant: d.Variant, kind: string(d.Reason.Kind), ruleID: d.Reason.RuleID, segment: d.Reason.Segment, bucket: d.Reason.Bucket}
	if have != want {
		return gen, fmt.Sprintf("served %+v, generation %d serves %+v", have, gen, want)
	}
	return gen, ""
}

// ---- the history: which generation of each flag was live when ----

// write is one generation of a flag: it may be live from start (just
// before the server was asked to write it) until the next generation's
// end (just after the server confirmed the next write).
type write struct {
	gen        int64
	start, end time.Time
}

// history records every write of the changing flags. Writes go through
// it, serialized, so the record and the server agree on the order.
type history struct {
	wmu    sync.Mutex // serializes writes
	mu     sync.RWMutex
	writes map[string][]write // gen i at index i-1
	srv    *flagtest.Server
}

func newHistory() *history {
	h := &history{writes: map[string][]write{}}
	now := time.Now()
	for _, k := range mutableFlags {
		h.writes[k] = []write{{gen: 1, start: now, end: now}}
	}
	return h
}

// write sets the next generation of key on the server and returns it.
func (h *history) write(t testing.TB, key string) (int64, error) {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.mu.Lock()
	gen := int64(len(h.writes[key]) + 1)
	h.writes[key] = append(h.writes[key], write{gen: gen, start: time.Now()})
	h.mu.Unlock()
	_, err := h.srv.SetFlag(env, flagAt(key, gen))
	h.mu.Lock()
	h.writes[key][gen-1].end = time.Now()
	h.mu.Unlock()
	return gen, err
}

// latest returns key's latest generation.
func (h *history) latest(key string) int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return int64(len(h.writes[key]))
}

// count returns how many times key was written (generation 1 is not a
// write; a flag that never changes has none).
func (h *history) count(key string) int64 { return max(0, h.latest(key)-1) }

// liveBetween reports whether generation gen of key may have been live at
// some time in [from, to]; if not, it says when it was live.
func (h *history) liveBetween(key string, gen int64, from, to time.Time) (bool, string) {
	if key == flagBench || !isMutable(key) {
		return true, ""
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	ws := h.writes[key]
	if gen < 1 || gen > int64(len(ws)) {
		return false, fmt.Sprintf("generation %d was never written (latest %d)", gen, len(ws))
	}
	start := ws[gen-1].start
	if start.After(to) {
		return false, fmt.Sprintf("generation %d was written %v after the call ended", gen, start.Sub(to))
	}
	if gen == int64(len(ws)) {
		return true, ""
	}
	until := ws[gen].end
	if until.IsZero() { // the next write is in progress
		return true, ""
	}
	if until.Before(from) {
		return false, fmt.Sprintf("generation %d was replaced %v before the allowed window began (latest %d)", gen, from.Sub(until).Round(time.Millisecond), len(ws))
	}
	return true, ""
}

// mayHaveDropped reports whether a write of key could have dropped, by
// time to, a decision a caller saw fresh at from: a change drops its
// flag's cached decisions for good (never served again, not even stale),
// and the invalidation may arrive up to propagation after the write.
func (h *history) mayHaveDropped(key string, from, to time.Time, propagation time.Duration) bool {
	if !isMutable(key) {
		return false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, w := range h.writes[key][1:] { // generation 1 is not a write
		if w.start.Before(to) && (w.end.IsZero() || w.end.Add(propagation).After(from)) {
			return true
		}
	}
	return false
}

func isMutable(key string) bool {
	for _, k := range mutableFlags {
		if k == key {
			return true
		}
	}
	return false
}

// ---- staleness bounds, from the SDK's documented semantics ----

// The age bounds: an answer from generation g is accepted only if g was
// live at some time in [callStart − bound − slack, callEnd], where slack
// covers scheduling on a loaded 2-core machine (see world.slack).
const (
	// maxStale is the client's CacheSettings.MaxStale in the chaos worlds: a
	// stale decision may be served up to its TTL plus this after it was
	// fetched.
	maxStale = 2 * time.Second
	// ageRemote: a REMOTE answer comes from a request that began at most
	// the client's timeout before the call (a caller may join a request
	// already in flight).
	ageRemote = callTimeout
	// ageCache: a CACHE answer is at most its TTL old (ttlSeconds, clamped
	// to the 1 s minimum); the SSE invalidation usually makes it younger.
	ageCache = decisionTTL + callTimeout
	// ageStale: a STALE answer is at most TTL + CacheSettings.MaxStale old.
	ageStale = decisionTTL + maxStale + callTimeout
	// ageLocal: with a healthy server, local mode picks a change up from
	// its stream at once, or within the stream's idle timeout plus one
	// poll when the stream went silent.
	ageLocal = streamIdle + pollInterval*11/10 + 300*time.Millisecond
	// recoveryGrace is how long after a fault ends its effects may last:
	// the Retry-After (1 s) a 429 set, the breaker's open period, a
	// request in flight, a poll.
	recoveryGrace = time.Second + openTimeout + callTimeout + pollInterval*11/10
	// evidenceGrace is how long after a failed request (seen on the
	// client's transport) fallbacks stay justified: the breaker it may have
	// opened, a half-open probe, a Retry-After.
	evidenceGrace = time.Second + openTimeout + callTimeout
	// bootstrapGen is the generation every bootstrap and last-known file
	// holds.
	bootstrapGen = 1
)
