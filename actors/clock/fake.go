package clock

import (
	"sort"
	"sync"
	"time"
)

// Fake is a manual clock for tests and simulations. Time moves only when Advance or Set is called; timers
// whose deadline is reached fire in deadline order (AfterFunc callbacks run synchronously inside Advance,
// channel timers get a non-blocking send).
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	seq     uint64
	waiters []*fakeWaiter
}

// NewFake returns a fake clock set to start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

type fakeWaiter struct {
	clock    *Fake
	id       uint64
	deadline time.Time
	period   time.Duration // > 0 for tickers
	fn       func()
	ch       chan time.Time
	active   bool
}

func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *Fake) Since(t time.Time) time.Duration { return f.Now().Sub(t) }

func (f *Fake) NewTimer(d time.Duration) Timer {
	return f.add(d, 0, nil, make(chan time.Time, 1))
}

func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive ticker interval")
	}
	return &fakeTicker{w: f.add(d, d, nil, make(chan time.Time, 1))}
}

func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	return f.add(d, 0, fn, nil)
}

func (f *Fake) add(d, period time.Duration, fn func(), ch chan time.Time) *fakeWaiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	w := &fakeWaiter{clock: f, id: f.seq, deadline: f.now.Add(d), period: period, fn: fn, ch: ch, active: true}
	f.waiters = append(f.waiters, w)
	return w
}

// Pending reports how many timers and tickers are armed.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, w := range f.waiters {
		if w.active {
			n++
		}
	}
	return n
}

// Advance moves time forward by d, firing every timer due on the way, in deadline order, with Now set to
// each timer's deadline while it fires.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	end := f.now.Add(d)
	f.mu.Unlock()
	f.advanceTo(end)
}

// Set moves time to t (never backwards) firing what is due.
func (f *Fake) Set(t time.Time) { f.advanceTo(t) }

func (f *Fake) advanceTo(end time.Time) {
	for {
		f.mu.Lock()
		w := f.nextDueLocked(end)
		if w == nil {
			if end.After(f.now) {
				f.now = end
			}
			f.mu.Unlock()
			return
		}
		if w.deadline.After(f.now) {
			f.now = w.deadline
		}
		now := f.now
		fn, ch := w.fn, w.ch
		if w.period > 0 {
			w.deadline = w.deadline.Add(w.period)
		} else {
			w.active = false
			f.removeLocked(w)
		}
		f.mu.Unlock()
		if fn != nil {
			fn()
		} else {
			select {
			case ch <- now:
			default:
			}
		}
	}
}

func (f *Fake) nextDueLocked(end time.Time) *fakeWaiter {
	var best *fakeWaiter
	for _, w := range f.waiters {
		if !w.active || w.deadline.After(end) {
			continue
		}
		if best == nil || w.deadline.Before(best.deadline) || (w.deadline.Equal(best.deadline) && w.id < best.id) {
			best = w
		}
	}
	return best
}

func (f *Fake) removeLocked(w *fakeWaiter) {
	for i, x := range f.waiters {
		if x == w {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			return
		}
	}
}

// NextDeadline returns the earliest armed deadline, or false when nothing is armed.
func (f *Fake) NextDeadline() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ws := make([]*fakeWaiter, 0, len(f.waiters))
	for _, w := range f.waiters {
		if w.active {
			ws = append(ws, w)
		}
	}
	if len(ws) == 0 {
		return time.Time{}, false
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].deadline.Before(ws[j].deadline) })
	return ws[0].deadline, true
}

func (w *fakeWaiter) C() <-chan time.Time { return w.ch }

func (w *fakeWaiter) Stop() bool {
	f := w.clock
	f.mu.Lock()
	defer f.mu.Unlock()
	was := w.active
	w.active = false
	f.removeLocked(w)
	return was
}

func (w *fakeWaiter) Reset(d time.Duration) bool {
	f := w.clock
	f.mu.Lock()
	defer f.mu.Unlock()
	was := w.active
	w.deadline = f.now.Add(d)
	if w.period > 0 {
		w.period = d
	}
	if !was {
		w.active = true
		f.waiters = append(f.waiters, w)
	}
	return was
}

type fakeTicker struct{ w *fakeWaiter }

func (t *fakeTicker) C() <-chan time.Time   { return t.w.ch }
func (t *fakeTicker) Stop()                 { t.w.Stop() }
func (t *fakeTicker) Reset(d time.Duration) { t.w.Reset(d) }
