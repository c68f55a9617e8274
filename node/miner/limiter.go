package miner

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Limiter bounds the driver operations in flight across a whole site (one slot is one open connection), and
// owns the goroutines that run them: Wait returns when every one has ended.
type Limiter struct {
	slots    chan struct{}
	wg       sync.WaitGroup
	inflight prometheus.Gauge
}

// NewLimiter returns a limiter of max slots (max < 1 is taken as 1). inflight may be nil.
func NewLimiter(max int, inflight prometheus.Gauge) *Limiter {
	if max < 1 {
		max = 1
	}
	return &Limiter{slots: make(chan struct{}, max), inflight: inflight}
}

// Go runs op in a new goroutine once a slot is free. If ctx ends while it waits, op is not run and
// abandoned (may be nil) is called instead, in that goroutine.
func (l *Limiter) Go(ctx context.Context, op func(), abandoned func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		select {
		case l.slots <- struct{}{}:
		case <-ctx.Done():
			if abandoned != nil {
				abandoned()
			}
			return
		}
		if l.inflight != nil {
			l.inflight.Inc()
		}
		defer func() {
			if l.inflight != nil {
				l.inflight.Dec()
			}
			<-l.slots
		}()
		op()
	}()
}

// InFlight is the number of slots taken now.
func (l *Limiter) InFlight() int { return len(l.slots) }

// Wait blocks until every goroutine started by Go has ended.
func (l *Limiter) Wait() { l.wg.Wait() }
