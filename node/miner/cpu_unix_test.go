//go:build unix

package miner

import (
	"syscall"
	"time"
)

// processCPU is this process's CPU time (user + system): benchmarks report it per op as cpu-ns/op, which other
// load on a shared machine disturbs far less than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
