package evaluate

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var updateVectors = flag.Bool("update-vectors", false, "rewrite testdata/bucketing_vectors.json")

// bucketVector is one published bucketing test vector.
type bucketVector struct {
	Salt    string    `json:"salt"`
	Seed    string    `json:"seed"`
	ID      string    `json:"id"`
	Hash    string    `json:"hash"`
	Bucket  uint32    `json:"bucket"`
	Weights []float64 `json:"weights"`
	Variant int       `json:"variant"` // index into weights
}

// numericVector is one published vector for a numeric id. ID is the JSON
// number exactly as written; Canonical, Hash and Bucket come from a second
// implementation (exact decimal arithmetic in Python), not from this
// package. Missing ids have no canonical form and no hash. Float64Exact says
// whether decoding ID into a float64 first gives the same answer.
type numericVector struct {
	Salt         string      `json:"salt"`
	Seed         string      `json:"seed"`
	ID           json.Number `json:"id"`
	Canonical    string      `json:"canonical,omitempty"`
	Hash         string      `json:"hash,omitempty"`
	Bucket       uint32      `json:"bucket"`
	Missing      bool        `json:"missing,omitempty"`
	Float64Exact bool        `json:"float64Exact"`
}

type vectorFile struct {
	Description        string          `json:"description"`
	Vectors            []bucketVector  `json:"vectors"`
	NumericDescription string          `json:"numericDescription,omitempty"`
	NumericVectors     []numericVector `json:"numericVectors,omitempty"`
}

func variantFor(bucket uint32, weights []float64) int {
	var sum float64
	for i, w := range weights {
		sum += w
		if bucket < percentToBuckets(sum) {
			return i
		}
	}
	return len(weights) - 1
}

func makeVectors() vectorFile {
	salts := []string{"prod-salt-2026", "staging", ""}
	seeds := []string{"checkout-new-flow", "pricing-experiment", "ünïcode-seed"}
	ids := []string{"8a7f4c91", "acme-co-1337", "user-1", "user-2", "", "0", "🙂", "a:b", "a-very-long-identifier-" + string(make([]byte, 0))}
	weights := [][]float64{{25, 75}, {50, 50}, {33, 33, 34}, {1, 99}, {10, 20, 30, 40}}
	var out vectorFile
	out.Description = "Flagwire bucketing: hash = SHA-256(salt ':' seed ':' id); bucket = big-endian uint64(hash[0:8]) mod 100000; variant i owns buckets [1000*sum(w[0:i]), 1000*sum(w[0:i+1]))."
	n := 0
	for _, salt := range salts {
		for _, seed := range seeds {
			for _, id := range ids {
				h, b := Bucket(salt, seed, id)
				w := weights[n%len(weights)]
				out.Vectors = append(out.Vectors, bucketVector{Salt: salt, Seed: seed, ID: id, Hash: hex.EncodeToString(h[:]), Bucket: b, Weights: w, Variant: variantFor(b, w)})
				n++
			}
		}
	}
	return out
}

func TestBucketingVectors(t *testing.T) {
	path := filepath.Join("testdata", "bucketing_vectors.json")
	if *updateVectors {
		// The numeric vectors are not generated here: keep them.
		var old vectorFile
		if data, err := os.ReadFile(path); err == nil {
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.UseNumber()
			if err := dec.Decode(&old); err != nil {
				t.Fatal(err)
			}
		}
		vf := makeVectors()
		vf.NumericDescription, vf.NumericVectors = old.NumericDescription, old.NumericVectors
		b, _ := json.MarshalIndent(vf, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read vectors (regenerate with -update-vectors): %v", err)
	}
	var vf vectorFile
	if err := json.Unmarshal(data, &vf); err != nil {
		t.Fatal(err)
	}
	if len(vf.Vectors) < 50 {
		t.Fatalf("only %d vectors; the spec promises at least 50", len(vf.Vectors))
	}
	for i, v := range vf.Vectors {
		h, b := Bucket(v.Salt, v.Seed, v.ID)
		if got := hex.EncodeToString(h[:]); got != v.Hash {
			t.Errorf("vector %d (%q,%q,%q): hash %s, want %s", i, v.Salt, v.Seed, v.ID, got, v.Hash)
		}
		if b != v.Bucket {
			t.Errorf("vector %d: bucket %d, want %d", i, b, v.Bucket)
		}
		if got := variantFor(b, v.Weights); got != v.Variant {
			t.Errorf("vector %d: variant %d, want %d", i, got, v.Variant)
		}
		// The engine must agree with the published function.
		if v.ID == "" {
			continue
		}
		rollout := make([]WeightedVariant, len(v.Weights))
		variants := make([]Variant, len(v.Weights))
		for j, w := range v.Weights {
			name := "v" + strconv.Itoa(j)
			variants[j] = Variant{Name: name}
			rollout[j] = WeightedVariant{Variant: name, Weight: w}
		}
		snap := mustCompile(t, &Config{Salt: v.Salt, Flags: []Flag{{Key: "f", Type: TypeString, Variants: variants, Bucketing: Bucketing{Seed: v.Seed}, Default: &Serve{Rollout: rollout}}}})
		r := snap.Evaluate("f", Attributes{"userId": v.ID}, time.Time{})
		if want := "v" + strconv.Itoa(v.Variant); r.Variant != want || r.Bucketing.Bucket != v.Bucket || r.Bucketing.HashHex() != v.Hash {
			t.Errorf("vector %d: engine served %s bucket %d, want %s bucket %d", i, r.Variant, r.Bucketing.Bucket, want, v.Bucket)
		}
	}
}

func mustCompile(tb testing.TB, cfg *Config) *Snapshot {
	tb.Helper()
	s, err := Compile(cfg)
	if err != nil {
		tb.Fatalf("compile: %v", err)
	}
	return s
}

func pct(p float64) *float64 { return &p }

func TestRolloutDistribution(t *testing.T) {
	const n = 100000
	t.Run("25%", func(t *testing.T) {
		snap := mustCompile(t, &Config{Salt: "dist", Flags: []Flag{{Key: "f", Default: &Serve{Percentage: pct(25)}}}})
		on := 0
		for i := 0; i < n; i++ {
			if snap.Evaluate("f", Attributes{"userId": "user-" + strconv.Itoa(i)}, time.Time{}).Value == true {
				on++
			}
		}
		if share := float64(on) / n * 100; math.Abs(share-25) > 0.5 {
			t.Fatalf("25%% rollout served %.3f%%", share)
		}
	})
	t.Run("33/33/34", func(t *testing.T) {
		snap := mustCompile(t, &Config{Salt: "dist", Flags: []Flag{{Key: "f", Variants: []Variant{{Name: "a"}, {Name: "b"}, {Name: "c"}},
			Default: &Serve{Rollout: []WeightedVariant{{"a", 33}, {"b", 33}, {"c", 34}}}}}})
		counts := map[string]int{}
		for i := 0; i < n; i++ {
			counts[snap.Evaluate("f", Attributes{"userId": "user-" + strconv.Itoa(i)}, time.Time{}).Variant]++
		}
		for name, want := range map[string]float64{"a": 33, "b": 33, "c": 34} {
			if share := float64(counts[name]) / n * 100; math.Abs(share-want) > 0.5 {
				t.Errorf("variant %s: %.3f%%, want %v%% ± 0.5", name, share, want)
			}
		}
	})
}

func TestRolloutStickiness(t *testing.T) {
	const n = 20000
	ids := make([]Attributes, n)
	for i := range ids {
		ids[i] = Attributes{"userId": fmt.Sprintf("sticky-%d", i)}
	}
	t.Run("ramp never moves a user out", func(t *testing.T) {
		inBefore := make([]bool, n)
		for _, step := range []float64{1, 5, 10, 25, 50, 100} {
			snap := mustCompile(t, &Config{Salt: "s", Flags: []Flag{{Key: "f", Default: &Serve{Percentage: pct(step)}}}})
			for i, a := range ids {
				in := snap.Evaluate("f", a, time.Time{}).Value == true
				if inBefore[i] && !in {
					t.Fatalf("ramp to %v%%: %v left the treatment", step, a["userId"])
				}
				inBefore[i] = in
			}
		}
		for i := range inBefore {
			if !inBefore[i] {
				t.Fatalf("100%%: %v not in treatment", ids[i]["userId"])
			}
		}
	})
	t.Run("50/50 to 60/40 moves only the changed slice", func(t *testing.T) {
		mk := func(a float64) *Snapshot {
			return mustCompile(t, &Config{Salt: "s", Flags: []Flag{{Key: "f", Variants: []Variant{{Name: "A"}, {Name: "B"}},
				Default: &Serve{Rollout: []WeightedVariant{{"A", a}, {"B", 100 - a}}}}}})
		}
		before, after := mk(50), mk(60)
		moved := 0
		for _, a := range ids {
			rb, ra := before.Evaluate("f", a, time.Time{}), after.Evaluate("f", a, time.Time{})
			if rb.Variant != ra.Variant {
				moved++
				if rb.Variant != "B" || ra.Variant != "A" || rb.Bucketing.Bucket < 50000 || rb.Bucketing.Bucket >= 60000 {
					t.Fatalf("%v moved %s→%s from bucket %d, outside the changed slice", a["userId"], rb.Variant, ra.Variant, rb.Bucketing.Bucket)
				}
			}
		}
		if share := float64(moved) / n * 100; math.Abs(share-10) > 1 {
			t.Fatalf("%.2f%% moved, want about 10%%", share)
		}
	})
}

func TestMissingBucketingAttribute(t *testing.T) {
	snap := mustCompile(t, &Config{Flags: []Flag{{Key: "f", Default: &Serve{Percentage: pct(50)}}}})
	for _, attrs := range []Attributes{nil, {}, {"userId": ""}, {"userId": []int{1}}} {
		r := snap.Evaluate("f", attrs, time.Time{})
		if r.Value != false || r.Reason.Kind != ReasonDefault || r.Reason.ErrorCode != ErrorMissingBucketAttr {
			t.Fatalf("attrs %v: got %v %s %s; want off variant, DEFAULT, MISSING_BUCKETING_ATTRIBUTE", attrs, r.Value, r.Reason.Kind, r.Reason.ErrorCode)
		}
	}
}

func BenchmarkBucket(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Bucket("prod-salt-2026", "checkout-new-flow", "8a7f4c91")
	}
}

// TestNumericIDsCanonicalForm: a numeric id buckets by its value, not by
// its spelling (1 = 1.0 = 1e0, 1000 = 1e3, 12.5 = 12.50, -0 = 0), exactly
// for integers beyond 2^53, whether it arrives as a json.Number literal, a
// float64 or a Go integer. Expected hashes come from the published vectors,
// computed by an independent implementation.
func TestNumericIDsCanonicalForm(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "bucketing_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var vf vectorFile
	if err := dec.Decode(&vf); err != nil {
		t.Fatal(err)
	}
	if len(vf.NumericVectors) < 40 {
		t.Fatalf("only %d numeric vectors", len(vf.NumericVectors))
	}
	// Each id is checked through a 50/50 rollout, a target and a static
	// segment, as every form it can arrive in.
	for i, v := range vf.NumericVectors {
		forms := map[string]any{"json.Number": v.ID}
		if v.Float64Exact {
			// What encoding/json decodes a number into without UseNumber.
			f, _ := strconv.ParseFloat(string(v.ID), 64)
			forms["float64"] = f
		}
		if n, err := strconv.ParseInt(v.Canonical, 10, 64); err == nil {
			forms["int64"] = n
			forms["int"] = int(n)
		}
		if n, err := strconv.ParseUint(v.Canonical, 10, 64); err == nil {
			forms["uint64"] = n
		}
		if n, err := strconv.ParseInt(v.Canonical, 10, 32); err == nil {
			forms["int32"] = int32(n)
			forms["named int32"] = namedInt32(n)
		}
		target := v.Canonical
		if v.Missing {
			target = "unused"
		}
		snap := mustCompile(t, &Config{Salt: v.Salt,
			Segments: []Segment{{Key: "s", Included: []string{target}}},
			Flags: []Flag{
				{Key: "rollout", Type: TypeString, Variants: []Variant{{Name: "a"}, {Name: "b"}}, Bucketing: Bucketing{Seed: v.Seed},
					Default: &Serve{Rollout: []WeightedVariant{{"a", 50}, {"b", 50}}}},
				{Key: "target", Targets: []Target{{Variant: true, Values: []string{target}}}, Default: &Serve{Variant: false}},
				{Key: "segment", Rules: []Rule{{ID: "in", Segment: "s", Serve: Serve{Variant: true}}}, Default: &Serve{Variant: false}},
			}})
		for form, id := range forms {
			name := fmt.Sprintf("vector %d id %s as %s", i, v.ID, form)
			attrs := Attributes{"userId": id}
			got, ok := CanonicalID(id)
			r := snap.Evaluate("rollout", attrs, time.Time{})
			if v.Missing {
				if ok || r.Reason.ErrorCode != ErrorMissingBucketAttr || r.Variant != "a" || r.HasBucketing {
					t.Errorf("%s: canonical %q %v, rollout %s %s %s; want missing: off variant a, MISSING_BUCKETING_ATTRIBUTE", name, got, ok, r.Variant, r.Reason.Kind, r.Reason.ErrorCode)
				}
				continue
			}
			if !ok || got != v.Canonical {
				t.Errorf("%s: canonical form %q (ok %v), want %q", name, got, ok, v.Canonical)
			}
			want := "a"
			if v.Bucket >= 50000 {
				want = "b"
			}
			if r.Variant != want || r.Reason.Kind != ReasonRollout || r.Reason.ErrorCode != ErrorNone || r.Bucketing.Bucket != v.Bucket || r.Bucketing.HashHex() != v.Hash {
				t.Errorf("%s: rollout served %s (%s %s) bucket %d hash %s; want %s ROLLOUT bucket %d hash %s",
					name, r.Variant, r.Reason.Kind, r.Reason.ErrorCode, r.Bucketing.Bucket, r.Bucketing.HashHex(), want, v.Bucket, v.Hash)
			}
			if r := snap.Evaluate("target", attrs, time.Time{}); r.Value != true || r.Reason.Kind != ReasonTargetMatch {
				t.Errorf("%s: target %q: served %v (%s), want true TARGET_MATCH", name, v.Canonical, r.Value, r.Reason.Kind)
			}
			if r := snap.Evaluate("segment", attrs, time.Time{}); r.Value != true || r.Reason.Kind != ReasonSegmentMatch {
				t.Errorf("%s: segment including %q: served %v (%s), want true SEGMENT_MATCH", name, v.Canonical, r.Value, r.Reason.Kind)
			}
		}
	}
}

type namedInt32 int32

// TestNumericIDsCanonicalFormInvalid: non-numbers and malformed json.Number
// literals are missing, not hashed as text.
func TestNumericIDsCanonicalFormInvalid(t *testing.T) {
	for _, v := range []any{json.Number(""), json.Number("abc"), json.Number("01"), json.Number("1."), json.Number(".5"), json.Number("+1"),
		json.Number("1e"), json.Number("0x10"), json.Number("Infinity"), math.NaN(), math.Inf(1), math.Inf(-1), float32(math.Inf(1)),
		nil, "", []any{1}, map[string]any{"a": 1}} {
		if got, ok := CanonicalID(v); ok {
			t.Errorf("CanonicalID(%#v) = %q, want missing", v, got)
		}
	}
	// float32 is converted exactly to binary64.
	if got, _ := CanonicalID(float32(0.1)); got != "0.10000000149011612" {
		t.Errorf("float32(0.1): %q", got)
	}
}

func BenchmarkBucketCanonicalID(b *testing.B) {
	for _, id := range []any{"8a7f4c91", 12345678, 1234.5, json.Number("12345678"), json.Number("1.2345678e7")} {
		b.Run(fmt.Sprintf("%T", id), func(b *testing.B) {
			sv := compiledServe{prefix: "prod-salt-2026:checkout-new-flow:"}
			b.ReportAllocs()
			var hash [32]byte
			for b.Loop() {
				var buf [64]byte
				if canon, ok := appendID(buf[:0], id); ok {
					sv.bucketTo(&hash, canon)
				}
			}
		})
	}
}

var jsonNumberSyntax = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// refCanonicalNumber is a second implementation of the canonical number
// form for a JSON number literal, on exact rational arithmetic (math/big).
func refCanonicalNumber(s string) (string, bool) {
	if !jsonNumberSyntax.MatchString(s) {
		return "", false
	}
	f, _ := strconv.ParseFloat(s, 64)
	if math.IsInf(f, 0) {
		return "", false
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return "", false
	}
	if r.IsInt() {
		return r.Num().String(), true
	}
	if f == 0 {
		return "0", true
	}
	if f == math.Trunc(f) {
		i, _ := new(big.Float).SetFloat64(f).Int(nil)
		return i.String(), true
	}
	return strconv.FormatFloat(f, 'f', -1, 64), true
}

// FuzzNumericIDsCanonicalForm checks the json.Number canonical form against
// the math/big reference, and float64 ids against their json.Number twin.
func FuzzNumericIDsCanonicalForm(f *testing.F) {
	for _, s := range []string{"0", "-0", "1.0", "1e3", "12.50", "-0.000001", "12345678901234567890", "4611686018427387904.5",
		"1e308", "1e309", "1e-400", "5e-324", "179769313486231580793728971405301e276", "0.0001e4", "1.", "+1", "01", "abc", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if i := strings.IndexAny(s, "eE"); i >= 0 && len(strings.TrimLeft(s[i+1:], "+-")) > 4 {
			return // keep math/big's work small: exponents up to 9999
		}
		got, ok := CanonicalID(json.Number(s))
		want, wantOK := refCanonicalNumber(s)
		if ok != wantOK || got != want {
			t.Fatalf("json.Number(%q): got %q %v, want %q %v", s, got, ok, want, wantOK)
		}
		if x, err := strconv.ParseFloat(s, 64); err == nil && jsonNumberSyntax.MatchString(s) {
			got, ok := CanonicalID(x)
			want, wantOK := "", false
			if !math.IsInf(x, 0) {
				want, wantOK = strconv.FormatFloat(x, 'f', -1, 64), true
				if r := new(big.Rat).SetFloat64(x); r.IsInt() { // exact value of x
					want = r.Num().String()
				}
			}
			if ok != wantOK || got != want {
				t.Fatalf("float64 %v: got %q %v, want %q %v", x, got, ok, want, wantOK)
			}
		}
	})
}

// TestNumericIDsCanonicalFormNoAlloc: canonicalizing a numeric id costs no
// allocation in a rollout, a target or a static segment.
func TestNumericIDsCanonicalFormNoAlloc(t *testing.T) {
	snap := mustCompile(t, &Config{Salt: "s",
		Segments: []Segment{{Key: "seg", Included: []string{"7"}}},
		Flags: []Flag{{Key: "f", Targets: []Target{{Variant: true, Values: []string{"9"}}},
			Rules:   []Rule{{ID: "r", Segment: "seg", Serve: Serve{Variant: true}}},
			Default: &Serve{Percentage: pct(50)}}}})
	for _, id := range []any{json.Number("1.000e3"), json.Number("12345678901234567890"), json.Number("-0.000001"), 12.5, 1e21, math.Ldexp(1, 70), int64(-42), uint64(math.MaxUint64), float32(0.5), true} {
		attrs := Attributes{"userId": id}
		if n := testing.AllocsPerRun(100, func() { snap.Evaluate("f", attrs, time.Time{}) }); n != 0 {
			t.Errorf("id %#v: %v allocations per evaluation", id, n)
		}
	}
}
