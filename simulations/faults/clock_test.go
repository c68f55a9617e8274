package faults

import (
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

func TestSkewedClockOffsetAndDrift(t *testing.T) {
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	base := clock.NewFake(start)
	c := NewSkewedClock(base)
	if !c.Now().Equal(start) {
		t.Fatalf("unskewed Now = %s", c.Now())
	}

	c.SetOffset(3 * time.Second)
	if got := c.Now().Sub(base.Now()); got != 3*time.Second {
		t.Fatalf("offset: %s ahead, want 3s", got)
	}
	before := c.Now()
	c.SetOffset(-2 * time.Second) // a step back is visible to Since
	if got := c.Since(before); got != -5*time.Second {
		t.Fatalf("Since across a step = %s", got)
	}

	c.SetOffset(0)
	c.SetDriftPPM(1000) // 1 ms per second fast
	base.Advance(10 * time.Second)
	if ahead, ppm := c.Skew(); ahead != 10*time.Millisecond || ppm != 1000 {
		t.Fatalf("after 10s at +1000ppm: %s ahead at %v ppm", ahead, ppm)
	}
	c.SetDriftPPM(-500) // the accumulated 10ms stay
	base.Advance(10 * time.Second)
	if ahead, _ := c.Skew(); ahead != 5*time.Millisecond {
		t.Fatalf("after 10s more at -500ppm: %s ahead, want 5ms", ahead)
	}
	c.Reset()
	if ahead, ppm := c.Skew(); ahead != 0 || ppm != 0 {
		t.Fatalf("after Reset: %s, %v", ahead, ppm)
	}
}

// TestSkewedClockTimers: a fast clock's timers fire early in base time; that is what makes a node with a
// fast clock fence (or expire) early.
func TestSkewedClockTimers(t *testing.T) {
	base := clock.NewFake(time.Unix(0, 0))
	c := NewSkewedClock(base)
	c.SetDriftPPM(1e5) // 10% fast: 1.1 s of its time per base second

	tm := c.NewTimer(1100 * time.Millisecond)
	fired := false
	c.AfterFunc(1100*time.Millisecond, func() { fired = true })
	tk := c.NewTicker(550 * time.Millisecond)
	base.Advance(999 * time.Millisecond)
	select {
	case <-tm.C():
		t.Fatal("fired before 1s of base time")
	default:
	}
	base.Advance(time.Millisecond)
	select {
	case <-tm.C():
	default:
		t.Fatal("1.1s timer on a 10 percent fast clock did not fire after 1s of base time")
	}
	if !fired {
		t.Fatal("AfterFunc did not fire")
	}
	select {
	case <-tk.C():
	default:
		t.Fatal("ticker did not tick")
	}
	tk.Stop()
	tm.Reset(110 * time.Millisecond) // 100ms of base time at 10% fast
	base.Advance(100 * time.Millisecond)
	select {
	case <-tm.C():
	default:
		t.Fatal("Reset timer not scaled")
	}
	if base.Pending() != 0 {
		t.Errorf("%d timers left armed", base.Pending())
	}
}

func TestSkewedClockRejectsStoppedClock(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("drift of -1e6 ppm accepted")
		}
	}()
	NewSkewedClock(clock.Real()).SetDriftPPM(-1e6)
}
