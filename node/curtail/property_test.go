package curtail

import (
	"fmt"
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestRampNeverExceedsStepLimit drives random sites through random events (limits, sheds, full; scopes;
// modes; replacements; stops) with stragglers, failures, unsupported miners and reboots, and checks the ramp
// limit over every command Reconcile issued: steps at least StepInterval apart, each changing at most StepKW
// (unless it is one miner alone) and commanding at most StepMiners. It also checks that no miner outside the
// event's scope is ever curtailed and that, once stopped, every reachable miner is released.
func TestRampNeverExceedsStepLimit(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 60).Draw(rt, "miners")
		f := newFleet()
		f.SleepDelay = time.Duration(rapid.IntRange(0, 30).Draw(rt, "sleepDelay")) * time.Second
		f.LimitDelay = time.Duration(rapid.IntRange(0, 40).Draw(rt, "limitDelay")) * time.Second
		f.WakeDelay = time.Duration(rapid.IntRange(0, 40).Draw(rt, "wakeDelay")) * time.Second
		for i := range n {
			nom := float64(rapid.IntRange(500, 5000).Draw(rt, "nominal"))
			m := &simMiner{id: fmt.Sprintf("m-%02d", i), nominalW: nom, jth: rapid.Float64Range(12, 45).Draw(rt, "jth")}
			m.caps.CanSleep = rapid.IntRange(0, 9).Draw(rt, "sleep") > 1
			if rapid.Bool().Draw(rt, "limit") {
				m.caps = Capabilities{CanSleep: m.caps.CanSleep, CanSetPowerTarget: true, MinPowerW: math.Round(nom * 0.4), MaxPowerW: nom}
			}
			m.ignore = rapid.IntRange(0, 2).Draw(rt, "ignore")
			m.fail = rapid.IntRange(0, 1).Draw(rt, "fail")
			m.unsupported = rapid.IntRange(0, 19).Draw(rt, "unsupported") == 0
			f.add(m)
		}
		cfg := DefaultConfig()
		cfg.StepInterval = time.Duration(rapid.SampledFrom([]int{10, 30, 60}).Draw(rt, "stepInterval")) * time.Second
		cfg.TickInterval = 5 * time.Second
		cfg.SettleTime = time.Duration(rapid.IntRange(20, 90).Draw(rt, "settle")) * time.Second
		cfg.RetryBackoff, cfg.MaxRetryBackoff = 15*time.Second, 2*time.Minute
		cfg.MaxRetries = 4
		if rapid.Bool().Draw(rt, "kwBound") {
			cfg.StepKW = rapid.Float64Range(0.5, 25).Draw(rt, "stepKW")
		}
		if cfg.StepKW == 0 || rapid.Bool().Draw(rt, "minerBound") {
			cfg.StepMiners = rapid.IntRange(1, 10).Draw(rt, "stepMiners")
		}
		if err := cfg.Validate(); err != nil {
			rt.Fatal(err)
		}
		l := newLoop(rt, f, cfg, t0)
		l.onTick = func(now time.Time) {
			if rapid.IntRange(0, 39).Draw(rt, "reboot?") == 0 {
				id := fmt.Sprintf("m-%02d", rapid.IntRange(0, n-1).Draw(rt, "victim"))
				if f.miner(id).rebootUntil.IsZero() {
					f.reboot(id, now, time.Duration(rapid.IntRange(10, 180).Draw(rt, "rebootFor"))*time.Second)
				}
			}
		}
		total := f.totalW(t0)
		event := func(id string) Event {
			ev := Event{ID: id, Mode: Mode(rapid.IntRange(0, 2).Draw(rt, "mode")), Order: Order(rapid.IntRange(0, 2).Draw(rt, "order"))}
			switch rapid.IntRange(0, 2).Draw(rt, "target") {
			case 0:
				ev.Target = Full()
			case 1:
				ev.Target = LimitKW(rapid.Float64Range(0, total/1000).Draw(rt, "limitKW"))
			default:
				ev.Target = ShedKW(rapid.Float64Range(0.1, total/1000+1).Draw(rt, "shedKW"))
			}
			if rapid.Bool().Draw(rt, "scoped") {
				for i := range n {
					if rapid.Bool().Draw(rt, "inScope") {
						ev.Scope.MinerIDs = append(ev.Scope.MinerIDs, fmt.Sprintf("m-%02d", i))
					}
				}
			}
			return ev
		}
		ev := event("a")
		l.begin(ev)
		l.run(time.Duration(rapid.IntRange(1, 20).Draw(rt, "runFor"))*time.Minute, nil)
		if rapid.Bool().Draw(rt, "replace") {
			ev = event("b")
			l.begin(ev)
			l.run(time.Duration(rapid.IntRange(1, 20).Draw(rt, "runFor2"))*time.Minute, nil)
		}
		scope := ev.Scope.set()
		for id := range f.curtailedSet() {
			if tr, ok := l.st.Tracks[id]; !inScope(scope, id) && (!ok || !tr.Phase.releasing()) {
				rt.Fatalf("%s curtailed outside the scope of %s and not being released", id, ev.ID)
			}
		}
		l.end(ev.ID)
		l.run(3*time.Hour, func() bool { return l.st.Phase == PhaseIdle })
		if l.st.Phase != PhaseIdle {
			rt.Fatalf("release did not finish: %+v", l.st.Status())
		}
		notReleased := map[string]bool{}
		for _, id := range l.st.Last.NotReleased {
			notReleased[id] = true
		}
		for id := range f.curtailedSet() {
			if !notReleased[id] {
				rt.Fatalf("%s still curtailed after the release, not reported", id)
			}
		}
		checkRamp(rt, cfg, l.steps)
	})
}
