package history

import (
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Queries running alongside Appends always see a consistent history: every miner's bucket is either open
// in memory or stored, never neither nor both, so each minute of the fleet totals counts every miner once.
func TestQueriesDuringAppends(t *testing.T) {
	x := newHarness(t)
	const miners, ticks = 30, 12 * 8
	s := sim{miners: miners, start: t0}
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 8)
	check := func(f func() error) {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := f(); err != nil {
				errs <- err
				return
			}
		}
	}
	wg.Add(3)
	go check(func() error {
		tot, err := x.h.FleetTotals(t0, t0.Add(time.Hour), time.Minute)
		if err != nil {
			return err
		}
		for _, p := range tot.Points {
			if p.Miners != miners {
				t.Errorf("minute %s: %d miners, want %d", time.UnixMilli(p.AtUnixMs).UTC(), p.Miners, miners)
			}
		}
		return nil
	})
	go check(func() error {
		_, err := x.h.Series(minerID(3), t0, t0.Add(time.Hour), 0)
		return err
	})
	go check(func() error {
		_, err := x.h.Live(Fleet)
		return err
	})
	for k := range ticks {
		batch := make([]*pb.Telemetry, miners)
		for i := range miners {
			batch[i] = s.sample(i, k)
		}
		x.appendAt(s.at(k), batch...)
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
