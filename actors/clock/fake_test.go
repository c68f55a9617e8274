package clock

import (
	"testing"
	"time"
)

func TestFakeFiresInDeadlineOrder(t *testing.T) {
	start := time.Unix(1000, 0)
	f := NewFake(start)
	var got []int
	var at []time.Time
	f.AfterFunc(3*time.Second, func() { got = append(got, 3); at = append(at, f.Now()) })
	f.AfterFunc(1*time.Second, func() { got = append(got, 1); at = append(at, f.Now()) })
	stopped := f.AfterFunc(2*time.Second, func() { got = append(got, 2) })
	if !stopped.Stop() {
		t.Fatal("Stop on an armed timer returned false")
	}
	f.Advance(2 * time.Second)
	if len(got) != 1 || got[0] != 1 {
		t.Fatalf("after 2s fired %v, want [1]", got)
	}
	f.Advance(time.Second)
	if len(got) != 2 || got[1] != 3 {
		t.Fatalf("after 3s fired %v, want [1 3]", got)
	}
	if !at[0].Equal(start.Add(time.Second)) || !at[1].Equal(start.Add(3*time.Second)) {
		t.Fatalf("callbacks saw Now %v, want deadlines", at)
	}
}

func TestFakeTickerAndTimerChannels(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	tk := f.NewTicker(time.Second)
	defer tk.Stop()
	tm := f.NewTimer(1500 * time.Millisecond)
	f.Advance(time.Second)
	select {
	case <-tk.C():
	default:
		t.Fatal("ticker did not tick at 1s")
	}
	select {
	case <-tm.C():
		t.Fatal("timer fired early")
	default:
	}
	f.Advance(time.Second)
	select {
	case <-tm.C():
	default:
		t.Fatal("timer did not fire at 1.5s")
	}
	if f.Pending() != 1 {
		t.Fatalf("pending = %d, want 1 (the ticker)", f.Pending())
	}
	tm.Reset(time.Second)
	if f.Pending() != 2 {
		t.Fatalf("pending after Reset = %d, want 2", f.Pending())
	}
}

func TestFakeCallbackMayArmTimers(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	n := 0
	var tick func()
	tick = func() {
		n++
		f.AfterFunc(time.Second, tick)
	}
	f.AfterFunc(time.Second, tick)
	f.Advance(10 * time.Second)
	if n != 10 {
		t.Fatalf("self-rescheduling callback ran %d times in 10s, want 10", n)
	}
}
