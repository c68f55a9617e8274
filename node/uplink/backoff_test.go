package uplink_test

import (
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/node/uplink"
)

func TestBackoffDelay(t *testing.T) {
	b := uplink.DefaultBackoff() // 1s → 30s, jitter 0.2
	tests := []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{0, 0.5, time.Second},
		{1, 0.5, 2 * time.Second},
		{2, 0.5, 4 * time.Second},
		{3, 0.5, 8 * time.Second},
		{4, 0.5, 16 * time.Second},
		{5, 0.5, 30 * time.Second},
		{50, 0.5, 30 * time.Second},
		{0, 0, 800 * time.Millisecond},
		{0, 0.999999, 1199999600 * time.Nanosecond},
		{3, 0, 6400 * time.Millisecond},
		{4, 0.999999, 19199993600 * time.Nanosecond},
		{5, 0, 24 * time.Second},        // the cap is jittered down...
		{5, 0.999999, 30 * time.Second}, // ...but never above it
	}
	for _, tc := range tests {
		if got := b.Delay(tc.attempt, tc.r); got != tc.want {
			t.Errorf("Delay(%d, %v) = %s, want %s", tc.attempt, tc.r, got, tc.want)
		}
	}
}

func TestBackoffNextResetsAfterStablePeriod(t *testing.T) {
	b := uplink.DefaultBackoff()
	tests := []struct {
		name      string
		attempts  int
		upFor     time.Duration
		wantDelay time.Duration
		wantNext  int
	}{
		{"first failed attempt", 0, 0, time.Second, 1},
		{"third failed attempt", 2, 0, 4 * time.Second, 3},
		{"link flapped after 10s: keeps backing off", 3, 10 * time.Second, 8 * time.Second, 4},
		{"link was stable: starts over", 6, time.Minute, time.Second, 1},
		{"link was stable for long", 9, time.Hour, time.Second, 1},
	}
	for _, tc := range tests {
		d, n := b.Next(tc.attempts, tc.upFor, 0.5)
		if d != tc.wantDelay || n != tc.wantNext {
			t.Errorf("%s: Next = %s, %d; want %s, %d", tc.name, d, n, tc.wantDelay, tc.wantNext)
		}
	}
}

func TestBackoffGoawayDelayAndValidate(t *testing.T) {
	b := uplink.DefaultBackoff()
	if d := b.GoawayDelay(3*time.Second, 0); d != 3*time.Second {
		t.Fatalf("goaway delay %s", d)
	}
	if d := b.GoawayDelay(3*time.Second, 0.999); d > 3400*time.Millisecond || d < 3399*time.Millisecond {
		t.Fatalf("goaway delay with jitter %s", d)
	}
	if d := b.GoawayDelay(-time.Second, 0); d != 0 {
		t.Fatalf("negative reconnect_after: %s", d)
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := b
	bad.Max = time.Millisecond
	if bad.Validate() == nil {
		t.Fatal("max below initial accepted")
	}
	bad = b
	bad.Jitter = 1
	if bad.Validate() == nil {
		t.Fatal("jitter 1 accepted")
	}
}
