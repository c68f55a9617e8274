package curtail

import (
	"testing"
	"time"
)

// BenchmarkReconcile20000 is one tick of a 20,000-miner site holding an event (every track verified): about
// 25 ms on a 2-core Xeon, against a 5 s tick.
func BenchmarkReconcile20000(b *testing.B) {
	f := randomFleet(1, 20000)
	cfg := testConfig()
	cfg.StepKW = 10000 // a fast ramp: the set-up is not what is measured
	l := newLoop(b, f, cfg, t0)
	l.begin(Event{ID: "ev", Target: LimitKW(40000)})
	l.run(2*time.Hour, func() bool { return l.st.Achieved && l.st.Status().MinersPending == 0 })
	obs := Observations{Miners: f.snapshots(l.now)}
	b.ResetTimer()
	for range b.N {
		_, _ = Reconcile(l.st, obs, l.now)
	}
}
