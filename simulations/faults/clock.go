package faults

import (
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// SkewedClock is a clock.Clock that reads another clock with an offset and a drift: one node's clock in a
// simulation that is wrong by a step (SetOffset) or runs fast or slow (SetDriftPPM).
//
//	Now = base.Now + offset + accumulated drift
//
// A step is visible to everything that measures with this clock, Since included (a node whose business
// clock jumps); drift changes rates: with +1000 ppm a 6 s lease TTL measured on this clock ends after
// 5.994 s of base time, because timers and tickers are armed on the base clock for d/(1+drift). A timer
// keeps the rate it was armed (or Reset) with. Safe for concurrent use.
type SkewedClock struct {
	base clock.Clock

	mu     sync.Mutex
	offset time.Duration
	rate   float64       // drift as a fraction: 1000 ppm is 0.001
	anchor time.Time     // base time the current rate started
	acc    time.Duration // drift accumulated before anchor
}

// NewSkewedClock returns base, not yet skewed.
func NewSkewedClock(base clock.Clock) *SkewedClock {
	return &SkewedClock{base: base, anchor: base.Now()}
}

// SetOffset steps the clock to base + d (plus the drift accumulated so far).
func (c *SkewedClock) SetOffset(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = d
}

// SetDriftPPM makes the clock run ppm parts per million fast (negative: slow) from now on; the drift
// accumulated so far is kept. ppm must be above -1e6.
func (c *SkewedClock) SetDriftPPM(ppm float64) {
	if ppm <= -1e6 {
		panic("faults: drift of -1e6 ppm or below stops or reverses the clock")
	}
	now := c.base.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acc += time.Duration(float64(now.Sub(c.anchor)) * c.rate)
	c.anchor, c.rate = now, ppm/1e6
}

// Reset removes the offset and the drift, and forgets the drift accumulated: the clock reads base again.
func (c *SkewedClock) Reset() {
	now := c.base.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset, c.rate, c.acc, c.anchor = 0, 0, 0, now
}

// Skew returns how far the clock is from base now, and its drift in ppm.
func (c *SkewedClock) Skew() (ahead time.Duration, driftPPM float64) {
	b := c.base.Now()
	return c.at(b).Sub(b), c.driftPPM()
}

func (c *SkewedClock) driftPPM() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rate * 1e6
}

func (c *SkewedClock) at(b time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return b.Add(c.offset + c.acc + time.Duration(float64(b.Sub(c.anchor))*c.rate))
}

// scale converts a duration on this clock to base time.
func (c *SkewedClock) scale(d time.Duration) time.Duration {
	c.mu.Lock()
	r := c.rate
	c.mu.Unlock()
	if r == 0 || d <= 0 {
		return d
	}
	return time.Duration(float64(d) / (1 + r))
}

// Now implements clock.Clock.
func (c *SkewedClock) Now() time.Time { return c.at(c.base.Now()) }

// Since implements clock.Clock.
func (c *SkewedClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// NewTimer implements clock.Clock.
func (c *SkewedClock) NewTimer(d time.Duration) clock.Timer {
	return &skewTimer{c: c, t: c.base.NewTimer(c.scale(d))}
}

// NewTicker implements clock.Clock.
func (c *SkewedClock) NewTicker(d time.Duration) clock.Ticker {
	return &skewTicker{c: c, t: c.base.NewTicker(max(c.scale(d), 1))}
}

// AfterFunc implements clock.Clock.
func (c *SkewedClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	return &skewTimer{c: c, t: c.base.AfterFunc(c.scale(d), f)}
}

type skewTimer struct {
	c *SkewedClock
	t clock.Timer
}

func (s *skewTimer) C() <-chan time.Time        { return s.t.C() }
func (s *skewTimer) Stop() bool                 { return s.t.Stop() }
func (s *skewTimer) Reset(d time.Duration) bool { return s.t.Reset(s.c.scale(d)) }

type skewTicker struct {
	c *SkewedClock
	t clock.Ticker
}

func (s *skewTicker) C() <-chan time.Time   { return s.t.C() }
func (s *skewTicker) Stop()                 { s.t.Stop() }
func (s *skewTicker) Reset(d time.Duration) { s.t.Reset(max(s.c.scale(d), 1)) }

var _ clock.Clock = (*SkewedClock)(nil)
