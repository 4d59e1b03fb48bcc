package testkit

import (
	"runtime"
	"time"
)

// Quantile returns the q-quantile (0 < q ≤ 1) of sorted (ascending): the
// value of rank q·n rounded to the nearest whole, at least 1 (so the
// median of 1, 2, 3, 4 is 2, and the 0.99-quantile of 100 values is the
// 99th). It returns 0 for no values.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// GCMemStats runs a full collection and returns the memory statistics
// after it: HeapInuse is then the live heap (and its fragmentation),
// StackInuse the goroutine stacks.
func GCMemStats() runtime.MemStats {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}
