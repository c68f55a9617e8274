package automation

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func policyWith(mut func(p *Policy)) Policy {
	p := Policy{Version: 1, Org: "org-1", Site: "site-a"}
	mut(&p)
	if err := p.Compile(); err != nil {
		panic(err)
	}
	return p
}

func TestOverheatCurtailsAndResumesWithHysteresis(t *testing.T) {
	p := policyWith(func(p *Policy) {
		p.Rules.Overheat = []OverheatRule{{ID: "hot", ThresholdC: 90, HysteresisC: 10, Action: "curtail"}}
	})
	s := newSite(3, t0)
	l := newEvalLoop(p, s, t0)
	if acts := l.step(); len(acts) != 0 {
		t.Fatalf("acted on cool miners: %+v", acts)
	}
	s.set("m-0001", func(m *simMiner) { m.tempC = 91.5 })
	acts := l.step()
	if len(acts) != 1 || acts[0].RuleID != "hot" || acts[0].Name != "curtail" || acts[0].Spec.GetAction() != pb.Action_ACTION_CURTAIL ||
		acts[0].MinerIDs[0] != "m-0001" || !strings.Contains(acts[0].Message, "91.5") {
		t.Fatalf("%+v", acts)
	}
	// Cooling, but not below threshold − hysteresis: still held.
	s.set("m-0001", func(m *simMiner) { m.tempC = 85 })
	l.run(time.Minute, 10*time.Second, nil)
	if len(l.actions) != 1 || l.st.Held["m-0001"].RuleID != "hot" {
		t.Fatalf("resumed too early: %+v", l.actions)
	}
	s.set("m-0001", func(m *simMiner) { m.tempC = 79.9 })
	acts = l.step()
	if len(acts) != 1 || acts[0].Name != "resume" || acts[0].Spec.GetAction() != pb.Action_ACTION_UNCURTAIL || len(l.st.Held) != 0 {
		t.Fatalf("%+v", acts)
	}
}

func TestOverheatStopRetriesAndRuleRemoval(t *testing.T) {
	p := policyWith(func(p *Policy) {
		p.Rules.Overheat = []OverheatRule{{ID: "hot", ThresholdC: 90, HysteresisC: 5, Action: "stop", Miners: []string{"m-0000"}}}
	})
	s := newSite(2, t0)
	s.all(func(m *simMiner) { m.tempC = 95 })
	l := newEvalLoop(p, s, t0)
	acts := l.step()
	if len(acts) != 1 || acts[0].MinerIDs[0] != "m-0000" || acts[0].Spec.GetAction() != pb.Action_ACTION_STOP_MINING {
		t.Fatalf("scope ignored or wrong action: %+v", acts)
	}
	// The miner ignored the stop (still mining, still hot): sent again after CommandRetry.
	s.set("m-0000", func(m *simMiner) { m.state = pb.MinerState_MINER_STATE_MINING })
	l.run(l.st.Config.CommandRetry-10*time.Second, 10*time.Second, nil)
	if s.commandsOf("m-0000", pb.Action_ACTION_STOP_MINING) != 1 {
		t.Fatal("re-sent before CommandRetry")
	}
	l.run(20*time.Second, 10*time.Second, nil)
	if s.commandsOf("m-0000", pb.Action_ACTION_STOP_MINING) != 2 || l.st.Held["m-0000"].Attempts != 2 {
		t.Fatalf("not re-sent: %+v", l.st.Held)
	}
	// A new policy without the rule resumes what it held.
	l.p = policyWith(func(p *Policy) { p.Version = 2 })
	acts = l.step()
	if len(acts) != 1 || acts[0].Name != "resume" || acts[0].Spec.GetAction() != pb.Action_ACTION_START_MINING || len(l.st.Held) != 0 {
		t.Fatalf("%+v", acts)
	}
}

func hashratePolicy(maxConcurrent int, suppressPct float64) Policy {
	return policyWith(func(p *Policy) {
		p.Rules.HashrateDrop = []HashrateDropRule{{ID: "hr", DropPct: 30, Window: Duration(10 * time.Minute),
			MinInterval: Duration(time.Hour), MaxConcurrent: maxConcurrent, SuppressSiteWidePct: suppressPct}}
	})
}

func TestHashrateDropRebootsAfterSustainedDrop(t *testing.T) {
	s := newSite(10, t0)
	l := newEvalLoop(hashratePolicy(2, 0), s, t0)
	l.run(30*time.Minute, 30*time.Second, nil) // build references
	// A drop with one healthy blip in the middle: the window restarts.
	s.set("m-0003", func(m *simMiner) { m.hashTHs = 60 })
	l.run(6*time.Minute, 30*time.Second, nil)
	s.set("m-0003", func(m *simMiner) { m.hashTHs = 99 })
	l.run(30*time.Second, 30*time.Second, nil)
	s.set("m-0003", func(m *simMiner) { m.hashTHs = 60 })
	l.run(9*time.Minute, 30*time.Second, nil)
	if n := s.commandsOf("m-0003", pb.Action_ACTION_REBOOT); n != 0 {
		t.Fatal("rebooted before the drop was sustained for the window")
	}
	// A small dip (below 30%) never counts.
	s.set("m-0004", func(m *simMiner) { m.hashTHs = 80 })
	l.run(90*time.Second, 30*time.Second, nil)
	if n := s.commandsOf("m-0003", pb.Action_ACTION_REBOOT); n != 1 {
		t.Fatalf("%d reboots after a sustained drop", n)
	}
	a := l.actions[len(l.actions)-1]
	if a.RuleID != "hr" || a.Name != "reboot" || !strings.Contains(a.Message, "reference") {
		t.Fatalf("%+v", a)
	}
	// After the reboot it comes back hashing 60 again (hardware): not rebooted again within MinInterval.
	s.RebootFor = time.Minute
	l.run(50*time.Minute, 30*time.Second, func() {
		if s.miners["m-0003"].state == pb.MinerState_MINER_STATE_MINING {
			s.miners["m-0003"].hashTHs = 60
		}
	})
	if n := s.commandsOf("m-0003", pb.Action_ACTION_REBOOT); n != 1 {
		t.Fatalf("%d reboots within the per-miner interval", n)
	}
	if l.st.Deferred.RateLimited != 1 {
		t.Fatalf("deferred %+v", l.st.Deferred)
	}
	l.run(15*time.Minute, 30*time.Second, func() {
		if s.miners["m-0003"].state == pb.MinerState_MINER_STATE_MINING {
			s.miners["m-0003"].hashTHs = 60
		}
	})
	if n := s.commandsOf("m-0003", pb.Action_ACTION_REBOOT); n != 2 {
		t.Fatalf("%d reboots after the per-miner interval", n)
	}
	if s.commandsOf("m-0004", pb.Action_ACTION_REBOOT) != 0 {
		t.Fatal("a 20% dip caused a reboot")
	}
}

// Reboot storms: every miner of a 1,000-miner site drops at once; never more than the cap reboot together,
// counting reboots commanded but not yet showing, while reboots keep going at the cap's pace.
func TestSiteWideDropNeverRebootsMoreThanTheCap(t *testing.T) {
	for _, lag := range []time.Duration{0, 25 * time.Second} {
		t.Run(fmt.Sprintf("lag=%s", lag), func(t *testing.T) {
			const cap = 7
			s := newSite(1000, t0)
			s.RebootLag, s.RebootFor = lag, 4*time.Minute
			l := newEvalLoop(hashratePolicy(cap, 0), s, t0)
			l.run(20*time.Minute, 10*time.Second, nil)
			s.all(func(m *simMiner) { m.hashTHs = 40; m.healthyTHs = 40 }) // and a reboot does not fix it
			peak := 0
			l.run(2*time.Hour, 15*time.Second, func() {
				n := s.rebootingOrPending()
				peak = max(peak, n)
				if n > cap {
					t.Fatalf("%d miners rebooting at %s, cap %d", n, l.now, cap)
				}
			})
			if peak != cap {
				t.Fatalf("peak %d, want the cap %d used", peak, cap)
			}
			rebooted := 0
			for id := range s.miners {
				n := s.commandsOf(id, pb.Action_ACTION_REBOOT)
				if n > 1 {
					t.Fatalf("%s rebooted %d times within its per-miner interval", id, n)
				}
				rebooted += n
			}
			// About cap miners per reboot cycle (lag + 4m + one tick to notice), for the 2 hours.
			cycle := lag + 4*time.Minute + 15*time.Second
			if want := cap * int(2*time.Hour/cycle); rebooted < want*8/10 {
				t.Fatalf("%d rebooted in 2h, want about %d: the cap throttles but must not stall", rebooted, want)
			}
			if l.st.Deferred.Cap == 0 {
				t.Fatal("no candidate deferred by the cap")
			}
		})
	}
}

func TestSiteWideDropSuppressed(t *testing.T) {
	s := newSite(100, t0)
	l := newEvalLoop(hashratePolicy(5, 50), s, t0)
	l.run(20*time.Minute, 10*time.Second, nil)
	s.all(func(m *simMiner) { m.hashTHs = 10 })
	l.run(time.Hour, 10*time.Second, nil)
	notices := 0
	for _, a := range l.actions {
		if a.Kind == ActCommand {
			t.Fatalf("rebooted during a site-wide drop: %+v", a)
		}
		if a.Kind == ActNotify && strings.Contains(a.Message, "site-wide") {
			notices++
		}
	}
	if notices != 1 || l.st.Deferred.Suppressed != 100 {
		t.Fatalf("%d notices, deferred %+v", notices, l.st.Deferred)
	}
	// Recovery ends the episode; a single miner's drop is then handled normally.
	s.all(func(m *simMiner) { m.hashTHs = 100 })
	l.run(time.Minute, 10*time.Second, nil)
	s.set("m-0042", func(m *simMiner) { m.hashTHs = 10 })
	l.run(11*time.Minute, 10*time.Second, nil)
	if s.commandsOf("m-0042", pb.Action_ACTION_REBOOT) != 1 {
		t.Fatal("a lone drop after the episode was not handled")
	}
}

func TestPowerTargetChangeResetsReference(t *testing.T) {
	s := newSite(1, t0)
	l := newEvalLoop(hashratePolicy(1, 0), s, t0)
	l.run(20*time.Minute, 10*time.Second, nil)
	s.set("m-0000", func(m *simMiner) { m.powerTarget = 1500; m.hashTHs = 50 }) // limited on purpose
	l.run(time.Hour, 10*time.Second, nil)
	if s.commandsOf("m-0000", pb.Action_ACTION_REBOOT) != 0 {
		t.Fatal("a power-limited miner was rebooted for its lower hashrate")
	}
}

func TestUnreachableNotifiesOncePerOutage(t *testing.T) {
	p := policyWith(func(p *Policy) {
		p.Rules.Unreachable = []UnreachableRule{{ID: "gone", After: Duration(30 * time.Minute)}}
	})
	s := newSite(2, t0)
	l := newEvalLoop(p, s, t0)
	s.set("m-0001", func(m *simMiner) { s.setState(m, pb.MinerState_MINER_STATE_UNREACHABLE, t0) })
	l.run(29*time.Minute, time.Minute, nil)
	if len(l.actions) != 0 {
		t.Fatal("notified early")
	}
	l.run(3*time.Hour, time.Minute, nil)
	if len(l.actions) != 1 || l.actions[0].Kind != ActNotify || l.actions[0].MinerIDs[0] != "m-0001" || !l.at[0].Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("%+v at %v", l.actions, l.at)
	}
	// Back, then down again: a new outage, a new notice.
	s.set("m-0001", func(m *simMiner) { s.setState(m, pb.MinerState_MINER_STATE_MINING, l.now) })
	l.run(time.Minute, time.Minute, nil)
	s.set("m-0001", func(m *simMiner) { s.setState(m, pb.MinerState_MINER_STATE_UNREACHABLE, l.now) })
	l.run(31*time.Minute, time.Minute, nil)
	if len(l.actions) != 2 {
		t.Fatalf("%d notices", len(l.actions))
	}
}

func TestSchedulesStartAndStopEvents(t *testing.T) {
	p := policyWith(func(p *Policy) {
		p.Schedules = []Schedule{
			{ID: "evening", TimeZone: "America/New_York", Start: "17:00", End: "21:00", TargetKW: 1500, Mode: "sleep"},
			{ID: "overlap", TimeZone: "UTC", Start: "00:00", End: "23:59", Full: true, Days: []string{"tue"}},
		}
	})
	s := newSite(1, t0)
	l := newEvalLoop(p, s, utc("2026-03-08 20:00")) // 16:00 EDT, a Sunday: New York sprang forward this morning
	l.run(30*time.Hour, time.Minute, nil)
	var got []string
	for i, a := range l.actions {
		got = append(got, fmt.Sprintf("%s %s %s", a.Name, a.RuleID, l.at[i].UTC().Format("01-02 15:04")))
	}
	want := []string{
		"start_event evening 03-08 21:00", // 17:00 EDT
		"stop_event evening 03-09 01:00",  // 21:00 EDT
		"start_event evening 03-09 21:00",
		// Tuesday (UTC) begins at 00:00 while evening runs: evening is listed first and keeps running; when it
		// ends, the Tuesday schedule's event replaces it (no stop: the new event takes the miners over).
		"start_event overlap 03-10 01:00",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	ev := l.actions[0].Event
	if ev.ID != ScheduleEventID("evening", utc("2026-03-08 21:00")) || !ev.End.Equal(utc("2026-03-09 01:00")) ||
		ev.Target.KW != 1500 || ev.Mode.String() != "sleep" || ev.Source != "automation:evening" {
		t.Fatalf("%+v", ev)
	}
	// A node restarted mid-window starts the same event again.
	l2 := newEvalLoop(p, s, utc("2026-03-08 22:30"))
	acts := l2.step()
	if len(acts) != 1 || acts[0].Event.ID != ev.ID {
		t.Fatalf("%+v", acts)
	}
}

func TestEvaluateIsPure(t *testing.T) {
	p := policyWith(func(p *Policy) {
		p.Rules.Overheat = []OverheatRule{{ID: "hot", ThresholdC: 90, HysteresisC: 10, Action: "curtail"}}
	})
	s := newSite(5, t0)
	s.all(func(m *simMiner) { m.tempC = 99 })
	st := NewState(DefaultConfig())
	obs := Observations{Miners: s.snapshots(t0)}
	a1, s1 := Evaluate(p, st, obs, t0)
	a2, _ := Evaluate(p, st, obs, t0)
	if len(st.Held) != 0 || len(a1) != 5 || len(a2) != 5 || len(s1.Held) != 5 {
		t.Fatalf("%d %d %d %d", len(st.Held), len(a1), len(a2), len(s1.Held))
	}
}
