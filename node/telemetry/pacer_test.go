package telemetry

import (
	"testing"
	"time"
)

func TestPacer(t *testing.T) {
	t0 := time.Unix(0, 0)
	p := newPacer(1000)
	if w := p.reserve(600, t0); w != 0 {
		t.Fatalf("first 600 of a 1000 burst waited %s", w)
	}
	if w := p.reserve(600, t0); w != 200*time.Millisecond {
		t.Fatalf("second 600 waits %s, want 200ms (400 tokens left)", w)
	}
	if w := p.reserve(600, t0.Add(200*time.Millisecond)); w != 0 {
		t.Fatalf("after the wait: %s", w)
	}
	// A batch above the burst goes once the bucket is full and leaves a debt the next batch waits out.
	if w := p.reserve(5000, t0.Add(1200*time.Millisecond)); w != 0 {
		t.Fatalf("oversized batch on a full bucket waited %s", w)
	}
	if w := p.reserve(1, t0.Add(1200*time.Millisecond)); w < 4001*time.Millisecond || w > 4001*time.Millisecond+time.Microsecond {
		t.Fatalf("after a 5000 batch at 1000/s the next waits %s, want 4.001s", w)
	}
	// A long pause refills the bucket to one second's worth, no more.
	q := newPacer(10)
	q.reserve(10, t0)
	if w := q.reserve(10, t0.Add(10*time.Second)); w != 0 {
		t.Fatalf("after a pause a full burst waited %s", w)
	}
	if w := q.reserve(5, t0.Add(10*time.Second)); w != 500*time.Millisecond {
		t.Fatalf("after the refilled burst the next 5 wait %s, want 500ms (the bucket holds one second's worth)", w)
	}
	// Over a long run the rate holds: 100 batches of 500 at 1000/s take 49-50 s of clock.
	p, now := newPacer(1000), t0
	for range 100 {
		for {
			w := p.reserve(500, now)
			if w == 0 {
				break
			}
			now = now.Add(w)
		}
	}
	if d := now.Sub(t0); d < 49*time.Second || d > 50*time.Second {
		t.Fatalf("50,000 items at 1000/s took %s", d)
	}
	var unbounded pacer
	if w := unbounded.reserve(1e9, t0); w != 0 {
		t.Fatal("a zero rate must not pace")
	}
}
