//go:build unix

package console

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the test process has used (user and system),
// for benchmarks to report beside wall time on a busy machine.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
