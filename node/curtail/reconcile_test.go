package curtail

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// curtailedSet returns the miners the fleet has asleep or power-limited.
func (f *fleet) curtailedSet() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for id, m := range f.miners {
		if m.mode != "run" {
			out[id] = true
		}
	}
	return out
}

func TestCurtail1000MinersToTargetWithinRampTime(t *testing.T) {
	f := randomFleet(1, 1000)
	cfg := testConfig()
	l := newLoop(t, f, cfg, t0)
	baseline := f.totalW(t0)
	ev := Event{ID: "grid-1", Target: LimitKW(2000)}
	plan := Plan(cfg, ev, f.snapshots(t0), t0)
	deadline := t0.Add(plan.RampTime() + cfg.SettleTime + 2*cfg.TickInterval)
	t.Logf("baseline %.0f kW, %d miners chosen in %d steps, ramp %s", baseline/1000, len(plan.Assignments), len(plan.Steps), plan.RampTime())

	l.begin(ev)
	l.run(30*time.Minute, func() bool { return l.st.Achieved && l.st.Status().MinersPending == 0 })
	s := l.st.Status()
	if !s.Achieved || s.AchievedAt.After(deadline) {
		t.Fatalf("achieved=%v at %s, deadline %s (ramp %s + settle): %+v", s.Achieved, s.AchievedAt, deadline, plan.RampTime(), s)
	}
	got := f.totalW(l.now)
	tol := cfg.siteTolerance(2000e3)
	if got > 2000e3+tol {
		t.Fatalf("site draws %.1f kW, target 2000 ± %.1f", got/1000, tol/1000)
	}
	if got < 2000e3-tol-3600 { // tight: within tolerance and one miner below target
		t.Fatalf("over-curtailed: site draws %.1f kW for a 2000 kW target", got/1000)
	}
	// Least efficient first: every slept miner is at least as inefficient as every miner left running.
	cur := f.curtailedSet()
	minSlept, maxRunning := math.Inf(1), 0.0
	for id, m := range f.miners {
		switch {
		case cur[id] && m.mode == "sleep":
			minSlept = math.Min(minSlept, m.jth)
		case !cur[id]:
			maxRunning = math.Max(maxRunning, m.jth)
		}
	}
	if minSlept < maxRunning {
		t.Fatalf("a miner of %.2f J/TH was slept while one of %.2f J/TH runs", minSlept, maxRunning)
	}
	if s.MinersCurtailed != len(cur) || len(s.Stragglers) != 0 {
		t.Fatalf("status %+v, fleet has %d curtailed", s, len(cur))
	}
	checkRamp(t, cfg, l.steps)
}

func TestRebootedMinerComesBackCurtailed(t *testing.T) {
	f := randomFleet(2, 100)
	cfg := testConfig()
	l := newLoop(t, f, cfg, t0)
	l.begin(Event{ID: "ev", Target: LimitKW(200)})
	l.run(time.Hour, func() bool { return l.st.Achieved && l.st.Status().MinersPending == 0 })
	if !l.st.Achieved {
		t.Fatal("not achieved")
	}
	var victim string
	for id := range f.curtailedSet() {
		if f.miner(id).mode == "sleep" {
			victim = id
			break
		}
	}
	f.reboot(victim, l.now, 2*time.Minute)
	t.Logf("rebooting %s at %s, track %+v", victim, l.now, l.st.Tracks[victim])
	l.run(90*time.Second, nil)
	if tr := l.st.Tracks[victim]; tr.Phase != TrackWaiting {
		t.Fatalf("rebooting miner's track %+v", tr)
	}
	if l.st.Status().MinersWaiting != 1 || len(l.st.Status().Stragglers) != 0 {
		t.Fatalf("status %+v", l.st.Status())
	}
	l.run(5*time.Minute, nil)
	if m := f.miner(victim); m.mode != "sleep" {
		t.Fatalf("rebooted miner %s is %s after the event went on", victim, m.mode)
	}
	if n := f.curtailCommands(victim); n != 2 {
		t.Fatalf("rebooted miner got %d curtail commands, want 2", n)
	}
	tr := l.st.Tracks[victim]
	if tr.Phase != TrackHeld || tr.Reverted != 1 {
		t.Fatalf("track %+v", tr)
	}
	// While it rebooted no other miner was chosen in its place.
	if got := len(f.curtailedSet()); got != l.st.Status().MinersCurtailed {
		t.Fatalf("fleet has %d curtailed, status %d", got, l.st.Status().MinersCurtailed)
	}
	if !l.st.Achieved {
		t.Fatal("target lost after the reboot")
	}
}

func TestStragglersRetriedWithBackoffThenReplaced(t *testing.T) {
	f := newFleet()
	for i := range 6 {
		f.add(&simMiner{id: fmt.Sprintf("m-%d", i), nominalW: 3000, jth: float64(40 - i), caps: sleepOnly})
	}
	f.miners["m-0"].ignore = 2  // accepts but does nothing, twice
	f.miners["m-1"].fail = 1000 // always fails
	f.miners["m-2"].unsupported = true
	cfg := testConfig()
	cfg.MaxRetries = 3
	l := newLoop(t, f, cfg, t0)
	// Three miners' worth: m-0, m-1, m-2 are the least efficient.
	l.begin(Event{ID: "ev", Target: LimitKW(9.5)})
	l.run(30*time.Minute, nil)

	if n := len(f.miners["m-0"].commands); n != 3 {
		t.Fatalf("m-0 got %d commands, want 3 (2 ignored, 1 carried out)", n)
	}
	if tr := l.st.Tracks["m-0"]; tr.Phase != TrackHeld {
		t.Fatalf("m-0 %+v", tr)
	}
	if tr := l.st.Tracks["m-1"]; tr.Phase != TrackFailed || tr.Attempts != cfg.MaxRetries+1 || tr.LastError == "" {
		t.Fatalf("m-1 %+v", tr)
	}
	if tr := l.st.Tracks["m-2"]; tr.Phase != TrackUnsupported {
		t.Fatalf("m-2 %+v", tr)
	}
	// Replaced by the next least efficient.
	cur := f.curtailedSet()
	if !cur["m-0"] || !cur["m-3"] || !cur["m-4"] || len(cur) != 3 || !l.st.Achieved {
		t.Fatalf("curtailed %v, achieved %v", cur, l.st.Achieved)
	}
	s := l.st.Status()
	if !slices.Equal(s.Failed, []string{"m-1"}) || !slices.Equal(s.Stragglers, []string{"m-1"}) {
		t.Fatalf("status %+v", s)
	}
	// Retries backed off: the gaps between m-1's commands grow.
	var at []time.Time
	for _, st := range l.steps {
		for _, a := range st.actions {
			if a.MinerID == "m-1" {
				at = append(at, st.at)
			}
		}
	}
	for i := 2; i < len(at); i++ {
		if at[i].Sub(at[i-1]) < at[i-1].Sub(at[i-2]) {
			t.Fatalf("m-1 retries at %v: backoff did not grow", at)
		}
	}
}

func TestMinersComingOnlineAreCurtailed(t *testing.T) {
	f := randomFleet(3, 20)
	cfg := testConfig()
	l := newLoop(t, f, cfg, t0)
	l.begin(Event{ID: "all", Target: Full()})
	l.run(time.Hour, func() bool { return l.st.Achieved })
	f.add(&simMiner{id: "late", nominalW: 3000, jth: 20, caps: sleepOnly})
	l.run(10*time.Second, nil)
	if l.st.Achieved {
		t.Fatal("achieved with an uncurtailed miner online")
	}
	l.run(5*time.Minute, func() bool { return l.st.Achieved })
	if f.miner("late").mode != "sleep" || !l.st.Achieved {
		t.Fatalf("late miner %s, achieved %v", f.miner("late").mode, l.st.Achieved)
	}

	// A limit target: new load above target + tolerance/2 brings more miners in.
	f2 := randomFleet(4, 50)
	l2 := newLoop(t, f2, cfg, t0)
	l2.begin(Event{ID: "lim", Target: LimitKW(100)})
	l2.run(time.Hour, func() bool { return l2.st.Achieved })
	before := len(f2.curtailedSet())
	for i := range 5 {
		f2.add(&simMiner{id: fmt.Sprintf("new-%d", i), nominalW: 3000, jth: 25, caps: sleepOnly})
	}
	l2.run(10*time.Minute, nil)
	if after := len(f2.curtailedSet()); after < before+4 || !l2.st.Achieved || f2.totalW(l2.now) > 100e3+cfg.siteTolerance(100e3) {
		t.Fatalf("curtailed %d → %d, achieved %v, draw %.1f kW", before, after, l2.st.Achieved, f2.totalW(l2.now)/1000)
	}
}

func TestUncurtailRampsBack(t *testing.T) {
	f := randomFleet(5, 300)
	cfg := testConfig()
	cfg.StepKW = 100
	l := newLoop(t, f, cfg, t0)
	full := f.totalW(t0)
	l.begin(Event{ID: "ev", Target: LimitKW(300)})
	l.run(time.Hour, func() bool { return l.st.Achieved })
	n := len(f.curtailedSet())
	curtailSteps := len(l.steps)
	l.end("ev")
	if l.st.Phase != PhaseReleasing {
		t.Fatalf("phase %v", l.st.Phase)
	}
	l.run(time.Hour, func() bool { return l.st.Phase == PhaseIdle })
	if l.st.Phase != PhaseIdle || len(f.curtailedSet()) != 0 {
		t.Fatalf("phase %v, %d still curtailed", l.st.Phase, len(f.curtailedSet()))
	}
	if got := f.totalW(l.now); math.Abs(got-full) > 1 {
		t.Fatalf("site back to %.1f kW, was %.1f", got/1000, full/1000)
	}
	o := l.st.Last
	if o == nil || o.EventID != "ev" || o.Result != "completed" || o.Released != n || len(o.NotReleased) != 0 {
		t.Fatalf("outcome %+v, %d were curtailed", o, n)
	}
	release := l.steps[curtailSteps:]
	if len(release) < 2 {
		t.Fatalf("release in %d steps: not ramped", len(release))
	}
	for _, s := range release {
		up := 0.0
		for _, a := range s.actions {
			if a.Kind != ActRelease || a.Spec.GetAction() != pb.Action_ACTION_UNCURTAIL {
				t.Fatalf("release action %+v", a)
			}
			up += a.DeltaW
		}
		if len(s.actions) > 1 && up > cfg.StepKW*1000 {
			t.Fatalf("release step at %s raises %.1f kW, step is %.1f", s.at, up/1000, cfg.StepKW)
		}
	}
	// Most efficient back first.
	first := release[0].actions[0].MinerID
	for _, a := range release[len(release)-1].actions {
		if f.miner(a.MinerID).jth < f.miner(first).jth {
			t.Fatalf("released %s (%.1f J/TH) before %s (%.1f J/TH)", first, f.miner(first).jth, a.MinerID, f.miner(a.MinerID).jth)
		}
	}
	checkRamp(t, cfg, l.steps)
}

func TestScheduledEventStartsAndEndsOnTime(t *testing.T) {
	f := randomFleet(6, 30)
	cfg := testConfig()
	l := newLoop(t, f, cfg, t0)
	start, end := t0.Add(10*time.Minute), t0.Add(40*time.Minute)
	l.begin(Event{ID: "ev", Target: Full(), Start: start, End: end})
	l.run(10*time.Minute-cfg.TickInterval, nil)
	if len(l.steps) != 0 || l.st.Phase != PhaseScheduled {
		t.Fatalf("acted before the start: phase %v, %d steps", l.st.Phase, len(l.steps))
	}
	l.run(time.Minute, nil)
	if len(l.steps) == 0 || l.steps[0].at.Before(start) || l.steps[0].at.Sub(start) > cfg.TickInterval {
		t.Fatalf("first step %v, start %v", l.steps, start)
	}
	l.run(end.Sub(l.now)-cfg.TickInterval, nil)
	if l.st.Phase != PhaseCurtailing || !l.st.Achieved {
		t.Fatalf("before the end: %v achieved %v", l.st.Phase, l.st.Achieved)
	}
	nSteps := len(l.steps)
	l.run(time.Hour, func() bool { return l.st.Phase == PhaseIdle })
	if l.steps[nSteps].at.Before(end) || l.steps[nSteps].at.Sub(end) > cfg.TickInterval || l.steps[nSteps].actions[0].Kind != ActRelease {
		t.Fatalf("release began at %v, end %v", l.steps[nSteps].at, end)
	}
	if len(f.curtailedSet()) != 0 || l.st.Last.Result != "completed" {
		t.Fatalf("%d curtailed, outcome %+v", len(f.curtailedSet()), l.st.Last)
	}
}

func TestReplacingEventTakesMinersOver(t *testing.T) {
	f := randomFleet(7, 200)
	cfg := testConfig()
	l := newLoop(t, f, cfg, t0)
	l.begin(Event{ID: "a", Target: LimitKW(300)})
	l.run(time.Hour, func() bool { return l.st.Achieved })
	a := f.curtailedSet()
	// A looser target: some miners released (most efficient first), none newly curtailed.
	l.begin(Event{ID: "b", Target: LimitKW(450)})
	if l.st.Last == nil || l.st.Last.Result != "superseded" {
		t.Fatalf("outcome of a: %+v", l.st.Last)
	}
	l.run(time.Hour, func() bool { return l.st.Achieved && l.st.Status().MinersReleasing == 0 })
	b := f.curtailedSet()
	for id := range b {
		if !a[id] {
			t.Fatalf("%s newly curtailed on a looser target", id)
		}
	}
	if len(b) >= len(a) || f.totalW(l.now) > 450e3+cfg.siteTolerance(450e3) {
		t.Fatalf("curtailed %d → %d, draw %.1f kW", len(a), len(b), f.totalW(l.now)/1000)
	}
	// A tighter target: more miners, none released.
	l.begin(Event{ID: "c", Target: LimitKW(200)})
	l.run(time.Hour, func() bool { return l.st.Achieved })
	c := f.curtailedSet()
	for id := range b {
		if !c[id] {
			t.Fatalf("%s released on a tighter target", id)
		}
	}
	// The same start again changes nothing.
	before := len(l.steps)
	l.begin(Event{ID: "c", Target: LimitKW(200)})
	l.run(2*time.Minute, nil)
	if len(l.steps) != before {
		t.Fatal("a re-sent start commanded miners")
	}
	checkRamp(t, cfg, l.steps)
}

func TestBeginAndEndRefusals(t *testing.T) {
	st := NewState(testConfig())
	if _, err := End(st, "x", "", t0); !errors.Is(err, ErrUnknownEvent) {
		t.Fatal(err)
	}
	if _, err := Begin(st, Event{ID: "x", Target: Full(), End: t0}, t0); !errors.Is(err, ErrEventOver) {
		t.Fatal(err)
	}
	st, err := Begin(st, Event{ID: "x", Target: Full()}, t0)
	if err != nil {
		t.Fatal(err)
	}
	_, st = Reconcile(st, Observations{Miners: []MinerSnapshot{snap("m", 3000, 30, sleepOnly)}}, t0)
	if _, err := Begin(st, Event{ID: "y", Target: Full(), Start: t0.Add(time.Hour)}, t0); !errors.Is(err, ErrEventActive) {
		t.Fatal(err)
	}
	if _, err := End(st, "y", "", t0); !errors.Is(err, ErrUnknownEvent) {
		t.Fatal(err)
	}
	// Cancel before start.
	st2, _ := Begin(NewState(testConfig()), Event{ID: "z", Target: Full(), Start: t0.Add(time.Hour)}, t0)
	st2, err = End(st2, "z", "operator", t0)
	if err != nil || st2.Phase != PhaseIdle || st2.Last.Result != "cancelled" {
		t.Fatalf("%v %+v", err, st2.Last)
	}
}

func TestReleaseGivesUpOnUnreachableMiner(t *testing.T) {
	f := randomFleet(8, 10)
	cfg := testConfig()
	l := newLoop(t, f, cfg, t0)
	l.begin(Event{ID: "ev", Target: Full()})
	l.run(time.Hour, func() bool { return l.st.Achieved })
	f.miner("m-0003").unreachable = true
	l.end("ev")
	l.run(2*time.Hour, func() bool { return l.st.Phase == PhaseIdle })
	o := l.st.Last
	if l.st.Phase != PhaseIdle || o == nil || !slices.Equal(o.NotReleased, []string{"m-0003"}) || o.Released != 9 {
		t.Fatalf("phase %v outcome %+v", l.st.Phase, o)
	}
	if d := o.EndedAt.Sub(o.StartedAt); d < cfg.GiveUpAfter {
		t.Fatalf("gave up after %s", d)
	}
}

func TestReconcileIsPure(t *testing.T) {
	f := randomFleet(9, 50)
	st, _ := Begin(NewState(testConfig()), Event{ID: "ev", Target: LimitKW(50)}, t0)
	obs := Observations{Miners: f.snapshots(t0)}
	a1, s1 := Reconcile(st, obs, t0)
	a2, s2 := Reconcile(st, obs, t0)
	if len(st.Tracks) != 0 || len(a1) != len(a2) || len(s1.Tracks) != len(s2.Tracks) {
		t.Fatalf("input changed or outputs differ: %d %d %d %d", len(st.Tracks), len(a1), len(a2), len(s1.Tracks))
	}
	for i := range a1 {
		if a1[i].MinerID != a2[i].MinerID || a1[i].CommandID != a2[i].CommandID {
			t.Fatalf("action %d differs", i)
		}
	}
}

// checkRamp asserts the ramp limit over a run: steps at least StepInterval apart, each commanding at most
// StepKW (in either direction, unless it is a single miner) and at most StepMiners.
func checkRamp(t tb, cfg Config, steps []step) {
	t.Helper()
	for i, s := range steps {
		if i > 0 && s.at.Sub(steps[i-1].at) < cfg.StepInterval {
			t.Fatalf("steps at %s and %s: closer than %s", steps[i-1].at, s.at, cfg.StepInterval)
		}
		sum := 0.0
		for _, a := range s.actions {
			sum += math.Abs(a.DeltaW)
		}
		if len(s.actions) > 1 && cfg.StepKW > 0 && sum > cfg.StepKW*1000+1e-6 {
			t.Fatalf("step at %s changes %.1f kW with %d miners, limit %.1f kW", s.at, sum/1000, len(s.actions), cfg.StepKW)
		}
		if cfg.StepMiners > 0 && len(s.actions) > cfg.StepMiners {
			t.Fatalf("step at %s commands %d miners, limit %d", s.at, len(s.actions), cfg.StepMiners)
		}
	}
}

// The state is plain data: the node can keep it in its store (Env.Persist) and a restarted node resumes the
// event from it (Env.Initial), releasing exactly the miners it had curtailed.
func TestStateSurvivesJSONRoundTrip(t *testing.T) {
	f := randomFleet(10, 50)
	cfg := testConfig()
	l := newLoop(t, f, cfg, t0)
	l.begin(Event{ID: "ev", Target: LimitKW(8), Scope: Scope{MinerIDs: []string{"m-0001", "m-0002", "m-0003", "m-0010", "m-0020", "m-0030"}}})
	l.run(time.Hour, func() bool { return l.st.Achieved && l.st.Status().MinersPending == 0 })
	b, err := json.Marshal(l.st)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	l.st = back
	l.end("ev")
	l.run(time.Hour, func() bool { return l.st.Phase == PhaseIdle })
	if len(f.curtailedSet()) != 0 || l.st.Last.Released == 0 {
		t.Fatalf("restored state did not release: %+v", l.st.Last)
	}
}

// A new event right after one finished still waits StepInterval after the last release step.
func TestRampLimitHoldsAcrossEvents(t *testing.T) {
	f := randomFleet(11, 20)
	cfg := testConfig()
	cfg.SettleTime = 5 * time.Second // shorter than the step interval
	f.SleepDelay, f.WakeDelay = 0, 0
	l := newLoop(t, f, cfg, t0)
	l.begin(Event{ID: "a", Target: Full()})
	l.run(time.Hour, func() bool { return l.st.Achieved })
	l.end("a")
	l.run(time.Hour, func() bool { return l.st.Phase == PhaseIdle })
	l.begin(Event{ID: "b", Target: Full()})
	l.run(10*time.Minute, nil)
	checkRamp(t, cfg, l.steps)
}
