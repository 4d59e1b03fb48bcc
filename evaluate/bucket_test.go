package evaluate

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
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

type vectorFile struct {
	Description string         `json:"description"`
	Vectors     []bucketVector `json:"vectors"`
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
		b, _ := json.MarshalIndent(makeVectors(), "", "  ")
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
