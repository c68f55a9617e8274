package curtail

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/miner"
)

func snap(id string, powerW, jth float64, caps Capabilities, tags ...string) MinerSnapshot {
	return MinerSnapshot{ID: id, State: pb.MinerState_MINER_STATE_MINING, ObservedAt: t0, PowerW: powerW,
		HashrateTHs: powerW / jth, EfficiencyJTH: jth, Caps: caps, Tags: tags}
}

var sleepOnly = Capabilities{CanSleep: true}

func ids(as []Assignment) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.MinerID
	}
	return out
}

func TestPlanChoosesLeastEfficientFirst(t *testing.T) {
	miners := []MinerSnapshot{
		snap("a", 3000, 20, sleepOnly),
		snap("b", 3000, 35, sleepOnly),
		snap("c", 3000, 25, sleepOnly),
		snap("d", 3000, 30, sleepOnly),
		{ID: "e", State: pb.MinerState_MINER_STATE_MINING, ObservedAt: t0, PowerW: 3000, Caps: sleepOnly}, // draws, hashes nothing
	}
	p := Plan(testConfig(), Event{ID: "ev", Target: LimitKW(9.2)}, miners, t0)
	if got, want := ids(p.Assignments), []string{"e", "b"}; !equal(got, want) {
		t.Fatalf("chose %v, want %v (no hashrate first, then highest J/TH)", got, want)
	}
	if p.BaselineW != 15000 || p.TargetW != 9200 || p.ProjectedW > 9200 || p.UnmetW != 0 {
		t.Fatalf("plan %+v", p)
	}
}

func TestPlanOrders(t *testing.T) {
	miners := []MinerSnapshot{
		snap("small-bad", 1000, 40, sleepOnly),
		snap("big-good", 5000, 15, sleepOnly, "sacrificial"),
		snap("mid", 3000, 25, sleepOnly, "old-gen"),
	}
	cfg := testConfig()
	full := Event{ID: "ev", Target: Full()}
	cases := []struct {
		order Order
		want  []string
	}{
		{OrderLeastEfficient, []string{"small-bad", "mid", "big-good"}},
		{OrderHighestPower, []string{"big-good", "mid", "small-bad"}},
		{OrderPriority, []string{"big-good", "mid", "small-bad"}},
	}
	cfg.PriorityTags = []string{"sacrificial", "old-gen"}
	for _, c := range cases {
		ev := full
		ev.Order = c.order
		if got := ids(Plan(cfg, ev, miners, t0).Assignments); !equal(got, c.want) {
			t.Errorf("%v: %v, want %v", c.order, got, c.want)
		}
	}
}

func TestPlanSleepOrLimitByCapability(t *testing.T) {
	limit := Capabilities{CanSetPowerTarget: true, MinPowerW: 1500, MaxPowerW: 3500}
	both := Capabilities{CanSleep: true, CanSetPowerTarget: true, MinPowerW: 1500, MaxPowerW: 3500}
	none := Capabilities{}
	noFloor := Capabilities{CanSetPowerTarget: true} // range unknown: never power-limited
	miners := []MinerSnapshot{
		snap("none", 3000, 40, none),
		snap("nofloor", 3000, 39, noFloor),
		snap("limit", 3000, 38, limit),
		snap("sleep", 3000, 37, sleepOnly),
		snap("both", 3000, 36, both),
	}
	cfg := testConfig()
	// Need 5000 W off 15000: "limit" can only go to 1500 (saves 1500), "sleep" saves 2940, then "both" is
	// the last miner and takes a power target for the remaining 560 W.
	p := Plan(cfg, Event{ID: "ev", Target: LimitKW(10)}, miners, t0)
	if got, want := ids(p.Assignments), []string{"limit", "sleep", "both"}; !equal(got, want) {
		t.Fatalf("chose %v, want %v", got, want)
	}
	a := p.Assignments
	if a[0].Kind != ActLimit || a[0].LimitW != 1500 || a[1].Kind != ActSleep || a[2].Kind != ActLimit {
		t.Fatalf("assignments %+v", a)
	}
	if math.Abs(p.ProjectedW-10000) > 1 {
		t.Fatalf("projected %v, want the target met to the watt by the last power target", p.ProjectedW)
	}

	// Sleep mode skips power-limit-only miners; power-limit mode skips sleep-only ones.
	ps := Plan(cfg, Event{ID: "ev", Target: Full(), Mode: ModeSleep}, miners, t0)
	if got, want := ids(ps.Assignments), []string{"sleep", "both"}; !equal(got, want) {
		t.Fatalf("sleep mode chose %v, want %v", got, want)
	}
	pl := Plan(cfg, Event{ID: "ev", Target: Full(), Mode: ModePowerLimit}, miners, t0)
	if got, want := ids(pl.Assignments), []string{"limit", "both"}; !equal(got, want) {
		t.Fatalf("power-limit mode chose %v, want %v", got, want)
	}
	for _, a := range pl.Assignments {
		if a.Kind != ActLimit || a.LimitW != 1500 {
			t.Fatalf("full power-limit assignment %+v, want the floor", a)
		}
	}
	if pf := Plan(cfg, Event{ID: "ev", Target: LimitKW(0)}, miners, t0); pf.UnmetW == 0 {
		t.Fatalf("a 0 kW limit with uncurtailable miners must report what is unmet: %+v", pf)
	}
}

func TestPlanSkipsMinersNotAvailable(t *testing.T) {
	miners := []MinerSnapshot{
		snap("ok", 3000, 30, sleepOnly),
		{ID: "curtailed-by-someone", State: pb.MinerState_MINER_STATE_CURTAILED, ObservedAt: t0, PowerW: 30, Caps: sleepOnly},
		{ID: "stopped", State: pb.MinerState_MINER_STATE_STOPPED, ObservedAt: t0, PowerW: 50, Caps: sleepOnly},
		{ID: "rebooting", State: pb.MinerState_MINER_STATE_REBOOTING, ObservedAt: t0.Add(-time.Minute), PowerW: 3000, Caps: sleepOnly},
		{ID: "unreachable", State: pb.MinerState_MINER_STATE_UNREACHABLE, PowerW: 3000, Caps: sleepOnly},
		{ID: "never-polled", State: pb.MinerState_MINER_STATE_ONLINE, PowerW: 0, Caps: sleepOnly},
	}
	p := Plan(testConfig(), Event{ID: "ev", Target: Full()}, miners, t0)
	if got := ids(p.Assignments); !equal(got, []string{"ok"}) {
		t.Fatalf("chose %v", got)
	}
	// The rebooting miner's last draw counts (it is expected back); the unreachable one's does not.
	if p.BaselineW != 3000+30+50+3000 {
		t.Fatalf("baseline %v", p.BaselineW)
	}
}

func TestPlanScopeAndShed(t *testing.T) {
	miners := []MinerSnapshot{snap("a", 3000, 40, sleepOnly), snap("b", 3000, 30, sleepOnly), snap("c", 3000, 20, sleepOnly)}
	p := Plan(testConfig(), Event{ID: "ev", Target: ShedKW(2), Scope: Scope{MinerIDs: []string{"b", "c"}}}, miners, t0)
	if p.BaselineW != 6000 || p.TargetW != 4000 || !equal(ids(p.Assignments), []string{"b"}) {
		t.Fatalf("plan %+v", p)
	}
}

func TestPlanRampSteps(t *testing.T) {
	var miners []MinerSnapshot
	for i := range 10 {
		miners = append(miners, snap(string(rune('a'+i)), 3000, float64(40-i), sleepOnly))
	}
	cfg := testConfig()
	cfg.StepKW = 6.5 // two sleeping miners (2 × 2940 W) per step
	start := t0.Add(time.Hour)
	p := Plan(cfg, Event{ID: "ev", Target: Full(), Start: start}, miners, t0)
	if len(p.Steps) != 5 {
		t.Fatalf("%d steps, want 5: %+v", len(p.Steps), p.Steps)
	}
	for i, s := range p.Steps {
		if !s.At.Equal(start.Add(time.Duration(i) * cfg.StepInterval)) {
			t.Fatalf("step %d at %v", i, s.At)
		}
		if len(s.MinerIDs) != 2 || -s.DeltaW > cfg.StepKW*1000 {
			t.Fatalf("step %d: %+v", i, s)
		}
	}
	if p.RampTime() != 4*cfg.StepInterval {
		t.Fatalf("ramp time %s", p.RampTime())
	}
	// A miner larger than a step still goes, alone.
	cfg.StepKW = 1
	if p := Plan(cfg, Event{ID: "ev", Target: Full()}, miners[:3], t0); len(p.Steps) != 3 {
		t.Fatalf("steps %+v", p.Steps)
	}
	cfg.StepKW, cfg.StepMiners = 0, 3
	if p := Plan(cfg, Event{ID: "ev", Target: Full()}, miners, t0); len(p.Steps) != 4 || len(p.Steps[3].MinerIDs) != 1 {
		t.Fatalf("steps %+v", p.Steps)
	}
}

func TestEventValidate(t *testing.T) {
	bad := []Event{
		{Target: Full()},
		{ID: "x"},
		{ID: "x", Target: LimitKW(-1)},
		{ID: "x", Target: LimitKW(math.NaN())},
		{ID: "x", Target: ShedKW(0)},
		{ID: "x", Target: Full(), Start: t0, End: t0},
		{ID: "x", Target: Full(), Mode: Mode(9)},
		{ID: "x", Target: Full(), Scope: Scope{MinerIDs: []string{""}}},
	}
	for _, e := range bad {
		if err := e.Validate(); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%+v: %v", e, err)
		}
	}
	if err := (Event{ID: "x", Target: LimitKW(0)}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.StepKW, c.StepMiners, c.StepInterval, c.TickInterval = 0, 0, 0, -1
	c.Order = OrderPriority
	err := c.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatal(err)
	}
	t.Log(err)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSnapshotFromStatusAndBoard(t *testing.T) {
	good := &pb.Telemetry{MinerId: "m", ObservedAtUnixMs: t0.UnixMilli(), State: pb.MinerState_MINER_STATE_MINING, PowerW: 3200,
		Hashrate_5SThs: 100, EfficiencyJth: 32, PowerTargetW: 3300, UptimeS: 50,
		Boards: []*pb.Board{{TempC: 60, ChipTempC: 71}, {TempC: 75, ChipTempC: 70}}}
	st := miner.Status{MinerID: "m", Device: &pb.Device{MinerId: "m", Protocol: pb.Protocol_PROTOCOL_PROTO},
		State: pb.MinerState_MINER_STATE_REBOOTING, Sample: &pb.Telemetry{MinerId: "m", PollError: "timeout"}, LastGood: good}
	s := SnapshotFromStatus(st, sleepOnly, nil)
	if s.PowerW != 3200 || !s.ObservedAt.Equal(t0) || s.MaxTempC != 75 || s.EfficiencyJTH != 32 || s.PowerTargetW != 3300 {
		t.Fatalf("%+v", s)
	}
	if s.countedW() != 3200 {
		t.Fatal("a rebooting miner counts its last draw")
	}
	b := NewBoard(nil, func(*pb.Device) []string { return []string{"x"} })
	b.Update(st)
	st2 := st
	st2.MinerID, st2.Device = "a", &pb.Device{MinerId: "a"}
	b.Update(st2)
	got := b.Snapshots()
	if len(got) != 2 || got[0].ID != "a" || !got[1].Caps.CanSleep || got[0].Caps.CanSleep || got[1].Tags[0] != "x" {
		t.Fatalf("%+v", got)
	}
	b.Replace([]miner.Status{st})
	if got := b.Snapshots(); len(got) != 1 || got[0].ID != "m" {
		t.Fatalf("%+v", got)
	}
}
