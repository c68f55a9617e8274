package miner

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Limiter bounds the driver operations in flight across a whole site (one slot is one open connection). It
// runs them on long-lived workers fed by two FIFO queues: a worker keeps its grown stack from one operation
// to the next, and an operation waiting for a slot is a queue entry, not a parked goroutine. Workers start on
// demand and end in Wait or Stop.
//
// Commands (GoCommand) go before polls (Go): a queued command takes the next free slot, and up to maxCmd
// slots in all, while polls start only when no command is waiting and fewer than maxPoll slots are taken. A
// bulk command to every miner of a site is a short burst; its wave is not queued behind, nor slowed by, the
// site's polls, which resume as the wave drains. The MinerActor withdraws a poll that has not started when a
// command arrives for its miner (operation.withdraw), so no command waits behind a poll that waits behind
// the wave.
//
//	Go (poll) ───────▶ polls    ┐  a free worker takes: the next command while busy < maxCmd,
//	GoCommand ───────▶ commands ┘  else the next poll while no command waits and busy < maxPoll
type Limiter struct {
	maxPoll, maxCmd int
	inflight        prometheus.Gauge

	mu       sync.Mutex
	work     sync.Cond // workers wait here for a task, or to retire
	settled  sync.Cond // Wait and Stop wait here for pending and workers to reach 0
	polls    taskQueue
	commands taskQueue
	pending  int  // queued + running
	busy     int  // running: slots taken
	workers  int  // worker goroutines alive
	idle     int  // workers parked in work.Wait and not yet signalled
	retire   int  // calls of Wait or Stop ending the workers
	stopped  bool // Stop was called: Go abandons at once
}

type task struct {
	ctx       context.Context
	op        func()
	abandoned func()
}

// NewLimiter returns a limiter of max slots for polls and commands alike (max < 1 is taken as 1); commands
// still go first. inflight may be nil.
func NewLimiter(max int, inflight prometheus.Gauge) *Limiter {
	return NewLimiterFor(max, max, inflight)
}

// NewLimiterFor returns a limiter of at most maxPoll slots for polls and maxCmd for commands (each < 1 is
// taken as 1); at most max(maxPoll, maxCmd) operations run at once. inflight may be nil.
func NewLimiterFor(maxPoll, maxCmd int, inflight prometheus.Gauge) *Limiter {
	l := &Limiter{maxPoll: max(maxPoll, 1), maxCmd: max(maxCmd, 1), inflight: inflight}
	l.work.L, l.settled.L = &l.mu, &l.mu
	return l
}

// Go queues a poll, op, to run on a worker once a slot is free and no command waits, in the order Go was
// called. If ctx has ended by the time op's turn comes (or the limiter was stopped), op is not run and
// abandoned (may be nil) is called instead, on a worker (in the caller after Stop).
func (l *Limiter) Go(ctx context.Context, op func(), abandoned func()) {
	l.submit(&l.polls, ctx, op, abandoned)
}

// GoCommand queues a command's operation as Go does, ahead of every queued poll, with up to maxCmd slots.
func (l *Limiter) GoCommand(ctx context.Context, op func(), abandoned func()) {
	l.submit(&l.commands, ctx, op, abandoned)
}

func (l *Limiter) submit(q *taskQueue, ctx context.Context, op func(), abandoned func()) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		if abandoned != nil {
			abandoned()
		}
		return
	}
	q.push(task{ctx: ctx, op: op, abandoned: abandoned})
	l.pending++
	l.wake()
	l.mu.Unlock()
}

// wake gets a worker for a queued task that may start now: a parked one, else a new one below the cap. A
// task that may not start yet is taken by the worker whose operation ends first. l.mu is held.
func (l *Limiter) wake() {
	if nextTask(l.commands.len(), l.polls.len(), l.busy, l.maxCmd, l.maxPoll) == takeNothing {
		return
	}
	switch {
	case l.idle > 0:
		l.idle--
		l.work.Signal()
	case l.workers < max(l.maxPoll, l.maxCmd):
		l.workers++
		go l.worker()
	}
}

// next pops the task a free worker should run now, if any (nextTask is the pure rule); l.mu is held.
func (l *Limiter) next() (task, bool) {
	switch nextTask(l.commands.len(), l.polls.len(), l.busy, l.maxCmd, l.maxPoll) {
	case takeCommand:
		return l.commands.pop(), true
	case takePoll:
		return l.polls.pop(), true
	}
	return task{}, false
}

type take int

const (
	takeNothing take = iota
	takeCommand
	takePoll
)

// nextTask is the Limiter's rule: a queued command while fewer than maxCmd slots are taken; else, when no
// command waits, a queued poll while fewer than maxPoll are taken.
func nextTask(commands, polls, busy, maxCmd, maxPoll int) take {
	switch {
	case commands > 0 && busy < maxCmd:
		return takeCommand
	case commands == 0 && polls > 0 && busy < maxPoll:
		return takePoll
	}
	return takeNothing
}

func (l *Limiter) worker() {
	l.mu.Lock()
	for {
		t, ok := l.next()
		if !ok {
			if l.retire > 0 { // Wait or Stop: nothing may start now, and whatever waits for a slot is taken by a busy worker
				l.workers--
				if l.workers == 0 {
					l.settled.Broadcast()
				}
				l.mu.Unlock()
				return
			}
			l.idle++ // wake (or Wait's broadcast) takes it back when it wakes this worker
			l.work.Wait()
			continue
		}
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
		l.wake() // another may start too: the last queued command just left, or commands hold slots above maxPoll
		l.mu.Unlock()
		if l.inflight != nil {
			l.inflight.Inc()
		}
		l.run(t.op)
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

// queued is the number of tasks waiting; l.mu is held.
func (l *Limiter) queued() int { return l.polls.len() + l.commands.len() }

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
	return l.queued()
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
	for l.commands.len() > 0 {
		dropped = append(dropped, l.commands.pop())
	}
	for l.polls.len() > 0 {
		dropped = append(dropped, l.polls.pop())
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
