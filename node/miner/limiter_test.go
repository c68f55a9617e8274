package miner

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/node/internal/testutil"
)

func TestLimiterRunsWithinMax(t *testing.T) {
	const max, n = 3, 200
	l := NewLimiter(max, nil)
	var running, peak, ran atomic.Int32
	release := make(chan struct{})
	for i := range n {
		l.Go(context.Background(), func() {
			r := running.Add(1)
			for p := peak.Load(); r > p && !peak.CompareAndSwap(p, r); p = peak.Load() {
			}
			if i < max {
				<-release // the first max hold their slots until every other op is queued
			}
			ran.Add(1)
			running.Add(-1)
		}, nil)
	}
	testutil.Eventually(t, "max slots taken", func() bool { return l.InFlight() == max })
	if q := l.Queued(); q != n-max {
		t.Fatalf("queued = %d, want %d", q, n-max)
	}
	close(release)
	l.Wait()
	if p := peak.Load(); p > max {
		t.Fatalf("%d ops ran at once, max %d", p, max)
	}
	if ran.Load() != n || l.InFlight() != 0 || l.Queued() != 0 {
		t.Fatalf("after Wait: ran %d of %d, in flight %d, queued %d", ran.Load(), n, l.InFlight(), l.Queued())
	}
}

func TestLimiterIsFIFO(t *testing.T) {
	l := NewLimiter(1, nil)
	block := make(chan struct{})
	l.Go(context.Background(), func() { <-block }, nil)
	var order []int // one slot: ops run one after the other
	for i := range 100 {
		l.Go(context.Background(), func() { order = append(order, i) }, nil)
	}
	close(block)
	l.Wait()
	for i, got := range order {
		if got != i {
			t.Fatalf("op %d ran in position %d: %v", got, i, order)
		}
	}
	if len(order) != 100 {
		t.Fatalf("%d ops ran, want 100", len(order))
	}
}

func TestLimiterAbandonsQueuedOpsWhoseContextEnded(t *testing.T) {
	l := NewLimiter(1, nil)
	block := make(chan struct{})
	l.Go(context.Background(), func() { <-block }, nil)
	testutil.Eventually(t, "the slot taken", func() bool { return l.InFlight() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	var ran, abandoned, other atomic.Int32
	for range 5 {
		l.Go(ctx, func() { ran.Add(1) }, func() { abandoned.Add(1) })
	}
	l.Go(context.Background(), func() { other.Add(1) }, func() { t.Error("a live op was abandoned") })
	l.Go(ctx, func() { ran.Add(1) }, nil) // nil abandoned is allowed
	cancel()
	close(block)
	l.Wait()
	if ran.Load() != 0 || abandoned.Load() != 5 || other.Load() != 1 {
		t.Fatalf("ran %d, abandoned %d, other %d; want 0, 5, 1", ran.Load(), abandoned.Load(), other.Load())
	}
}

func TestLimiterWaitEndsWorkersAndStaysUsable(t *testing.T) {
	base := runtime.NumGoroutine()
	l := NewLimiter(8, nil)
	var n atomic.Int32
	for range 100 {
		l.Go(context.Background(), func() { n.Add(1); time.Sleep(100 * time.Microsecond) }, nil)
	}
	l.Wait()
	if n.Load() != 100 {
		t.Fatalf("%d ops ran, want 100", n.Load())
	}
	testutil.Eventually(t, "workers gone after Wait", func() bool { return runtime.NumGoroutine() <= base })
	l.Go(context.Background(), func() { n.Add(1) }, nil)
	l.Wait()
	if n.Load() != 101 {
		t.Fatalf("the op after Wait did not run")
	}
	l.Wait() // idle: returns at once
	testutil.VerifyNone(t)
}

func TestLimiterStopAbandonsQueuedAndLaterOps(t *testing.T) {
	l := NewLimiter(2, nil)
	block := make(chan struct{})
	var finished, abandoned atomic.Int32
	for range 2 {
		l.Go(context.Background(), func() { <-block; finished.Add(1) }, nil)
	}
	testutil.Eventually(t, "both slots taken", func() bool { return l.InFlight() == 2 })
	for range 10 {
		l.Go(context.Background(), func() { t.Error("a queued op ran after Stop") }, func() { abandoned.Add(1) })
	}
	stopped := make(chan struct{})
	go func() { l.Stop(); close(stopped) }()
	testutil.Eventually(t, "queued ops abandoned", func() bool { return abandoned.Load() == 10 })
	select {
	case <-stopped:
		t.Fatal("Stop returned while ops were running")
	case <-time.After(20 * time.Millisecond):
	}
	close(block)
	<-stopped
	if finished.Load() != 2 {
		t.Fatalf("running ops finished: %d, want 2", finished.Load())
	}
	l.Go(context.Background(), func() { t.Error("an op ran after Stop") }, func() { abandoned.Add(1) })
	if abandoned.Load() != 11 {
		t.Fatalf("Go after Stop did not abandon at once")
	}
	testutil.VerifyNone(t)
}

func TestLimiterConcurrentSubmitters(t *testing.T) {
	l := NewLimiter(4, nil)
	var n atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				l.Go(context.Background(), func() { n.Add(1) }, nil)
			}
		})
	}
	wg.Wait()
	l.Wait()
	if n.Load() != 4000 {
		t.Fatalf("%d ops ran, want 4000", n.Load())
	}
	testutil.VerifyNone(t)
}

// BenchmarkLimiter is one short op through the limiter from one submitter, with 256 slots.
func BenchmarkLimiter(b *testing.B) {
	l := NewLimiter(256, nil)
	var wg sync.WaitGroup
	b.ReportAllocs()
	for b.Loop() {
		wg.Add(1)
		l.Go(context.Background(), wg.Done, nil)
	}
	wg.Wait()
	l.Wait()
}
