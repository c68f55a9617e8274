package miner

import (
	"context"
	"runtime"
	"testing"
)

// BenchmarkLimiterBacklog measures what an operation waiting for a slot costs in memory: one slot held, 40,000
// operations queued behind it (a site polling far more than its MaxInFlight connections can serve), heap and
// stack in use per queued operation.
func BenchmarkLimiterBacklog(b *testing.B) {
	const n = 40_000
	ctx := context.Background()
	var perOp float64
	for b.Loop() {
		l := NewLimiter(1, nil)
		release := make(chan struct{})
		l.Go(ctx, func() { <-release }, nil)
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		for range n {
			l.Go(ctx, func() {}, nil)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		perOp = float64(int64(m1.HeapInuse+m1.StackInuse)-int64(m0.HeapInuse+m0.StackInuse)) / n
		close(release)
		l.Wait()
	}
	b.ReportMetric(perOp, "B/queued-op")
}
