package miner

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Limiter bounds the driver operations in flight across a whole site (one slot is one open connection). It
// runs them on at most max long-lived workers fed by a FIFO queue: a worker keeps its grown stack from one
// operation to the next, and an operation waiting for a slot is a queue entry, not a parked goroutine.
// Workers start on demand and end in Wait or Stop.
type Limiter struct {
	max      int
	inflight prometheus.Gauge

	mu      sync.Mutex
	work    sync.Cond // workers wait here for a task, or to retire
	settled sync.Cond // Wait and Stop wait here for pending and workers to reach 0
	queue   taskQueue
	pending int  // queued + running
	busy    int  // running: slots taken
	workers int  // worker goroutines alive
	idle    int  // workers parked in work.Wait and not yet signalled
	retire  int  // calls of Wait or Stop ending the workers
	stopped bool // Stop was called: Go abandons at once
}

type task struct {
	ctx       context.Context
	op        func()
	abandoned func()
}

// NewLimiter returns a limiter of max slots (max < 1 is taken as 1). inflight may be nil.
func NewLimiter(max int, inflight prometheus.Gauge) *Limiter {
	if max < 1 {
		max = 1
	}
	l := &Limiter{max: max, inflight: inflight}
	l.work.L, l.settled.L = &l.mu, &l.mu
	return l
}

// Go queues op to run on a worker once a slot is free, in the order Go was called. If ctx has ended by the
// time op's turn comes (or the limiter was stopped), op is not run and abandoned (may be nil) is called
// instead, on a worker (in the caller after Stop).
func (l *Limiter) Go(ctx context.Context, op func(), abandoned func()) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		if abandoned != nil {
			abandoned()
		}
		return
	}
	l.queue.push(task{ctx: ctx, op: op, abandoned: abandoned})
	l.pending++
	switch {
	case l.idle > 0:
		l.idle--
		l.work.Signal()
	case l.workers < l.max:
		l.workers++
		go l.worker()
	}
	l.mu.Unlock()
}

func (l *Limiter) worker() {
	l.mu.Lock()
	for {
		if l.queue.len() > 0 {
			t := l.queue.pop()
			if t.ctx.Err() != nil {
				l.mu.Unlock()
				if t.abandoned != nil {
					t.abandoned()
				}
				l.mu.Lock()
				l.done()
				continue
			}
			l.busy++
			l.mu.Unlock()
			if l.inflight != nil {
				l.inflight.Inc()
			}
			l.run(t.op)
			continue
		}
		if l.retire > 0 {
			l.workers--
			if l.workers == 0 {
				l.settled.Broadcast()
			}
			l.mu.Unlock()
			return
		}
		l.idle++ // Go (or Wait's broadcast) takes it back when it wakes this worker
		l.work.Wait()
	}
}

// run runs op and frees its slot, even when op panics (the panic goes on and ends the process, as it would
// have in a goroutine of its own). It returns with l.mu held.
func (l *Limiter) run(op func()) {
	defer func() {
		if l.inflight != nil {
			l.inflight.Dec()
		}
		l.mu.Lock()
		l.busy--
		l.done()
	}()
	op()
}

// done ends one pending task; l.mu is held.
func (l *Limiter) done() {
	l.pending--
	if l.pending == 0 {
		l.settled.Broadcast()
	}
}

// InFlight is the number of slots taken now.
func (l *Limiter) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.busy
}

// Queued is the number of operations waiting for a slot.
func (l *Limiter) Queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.queue.len()
}

// Wait blocks until every operation passed to Go has run or been abandoned, then ends the workers. The
// limiter stays usable: a later Go starts workers again.
func (l *Limiter) Wait() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.pending > 0 {
		l.settled.Wait()
	}
	l.endWorkers()
}

// Stop abandons every queued operation (calling its abandoned), waits for the running ones and ends the
// workers. Go after Stop abandons at once.
func (l *Limiter) Stop() {
	l.mu.Lock()
	l.stopped = true
	var dropped []task
	for l.queue.len() > 0 {
		dropped = append(dropped, l.queue.pop())
	}
	l.mu.Unlock()
	for _, t := range dropped {
		if t.abandoned != nil {
			t.abandoned()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending -= len(dropped)
	for l.pending > 0 {
		l.settled.Wait()
	}
	l.endWorkers()
}

// endWorkers wakes every parked worker to exit and waits until none is left; l.mu is held.
func (l *Limiter) endWorkers() {
	l.retire++
	l.idle = 0
	l.work.Broadcast()
	for l.workers > 0 {
		l.settled.Wait()
	}
	l.retire--
}

// taskQueue is a FIFO ring that grows as needed and shrinks back once drained, so a burst of queued polls
// does not pin its peak size.
type taskQueue struct {
	buf        []task
	head, size int
}

func (q *taskQueue) len() int { return q.size }

func (q *taskQueue) push(t task) {
	if q.size == len(q.buf) {
		n := max(2*len(q.buf), 16)
		buf := make([]task, n)
		for i := range q.size {
			buf[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = buf, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = t
	q.size++
}

func (q *taskQueue) pop() task {
	t := q.buf[q.head]
	q.buf[q.head] = task{}
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	if q.size == 0 {
		q.head = 0
		if len(q.buf) > 1024 {
			q.buf = nil
		}
	}
	return t
}
