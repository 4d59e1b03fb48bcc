//go:build !purego

package shortsha

import (
	"crypto/sha256"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// kernelSeesSHANI reports whether the kernel lists the extensions the
// SHA-NI code needs (sha_ni, ssse3, sse4_1) among the CPU's flags in
// /proc/cpuinfo: a detection independent of the package's own CPUID
// reading. known is false where there is no /proc/cpuinfo.
func kernelSeesSHANI(t *testing.T) (has, known bool) {
	t.Helper()
	if runtime.GOOS != "linux" {
		return false, false
	}
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatalf("reading /proc/cpuinfo on Linux: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != "flags" {
			continue
		}
		flags := strings.Fields(value)
		return slices.Contains(flags, "sha_ni") && slices.Contains(flags, "ssse3") && slices.Contains(flags, "sse4_1"), true
	}
	t.Fatal("/proc/cpuinfo has no flags line")
	return false, false
}

// TestSHANIPathRuns: on a CPU with the SHA extensions, the package detects
// them (as the kernel does), and Sum and SumTo hash every message of up to
// MaxFast bytes with the SHA-NI code — one block up to 55 bytes, two up to
// 119, none beyond — giving crypto/sha256's digests. On a CPU without
// them, the package must not think it has them.
func TestSHANIPathRuns(t *testing.T) {
	has, known := kernelSeesSHANI(t)
	if known && fast != has {
		t.Fatalf("the package's CPUID detection says SHA-NI = %v, the kernel's CPU flags say %v", fast, has)
	}
	if !fast {
		t.Skip("this CPU has no SHA extensions: the crypto/sha256 path is TestFallbackWithoutSHANI's")
	}
	var calls, blocks int
	saved := fastHook
	fastHook = func(n int) { calls++; blocks += n }
	defer func() { fastHook = saved }()
	for n := 0; n <= MaxFast+10; n++ {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(i*13 + n)
		}
		want := sha256.Sum256(msg)
		wantBlocks := 0
		switch {
		case n <= 55:
			wantBlocks = 1
		case n <= MaxFast:
			wantBlocks = 2
		}
		calls, blocks = 0, 0
		if got := Sum(msg); got != want {
			t.Fatalf("len %d: Sum = %x, want %x", n, got, want)
		}
		var got [32]byte
		if SumTo(&got, string(msg[:n/3]), msg[n/3:]); got != want {
			t.Fatalf("len %d: SumTo = %x, want %x", n, got, want)
		}
		wantCalls := 0
		if wantBlocks > 0 {
			wantCalls = 2
		}
		if calls != wantCalls || blocks != 2*wantBlocks {
			t.Fatalf("len %d: the SHA-NI code ran %d times over %d blocks for Sum and SumTo; want %d times over %d blocks",
				n, calls, blocks, wantCalls, 2*wantBlocks)
		}
	}
}
