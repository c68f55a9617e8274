package cgminer

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/sim"
)

// simHarness is one simulated miner on a fake clock and a driver pointed at it.
type simHarness struct {
	clock  *clock.Fake
	fleet  *sim.Fleet
	miner  *sim.Miner
	driver *Driver
}

func newSimHarness(t *testing.T, cfg sim.Config, dcfg Config) *simHarness {
	t.Helper()
	fake := clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	cfg.Clock, dcfg.Clock = fake, fake
	f, err := sim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &simHarness{clock: fake, fleet: f, miner: f.Miners()[0], driver: New(f.Devices()[0], dcfg)}
}

func (h *simHarness) exec(t *testing.T, a pb.Action, pools ...*pb.Pool) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.driver.Execute(ctx, &pb.CommandSpec{Action: a, Pools: pools})
}

func TestPollMatchesSimulator(t *testing.T) {
	for seed := range int64(4) { // covers every simulated model
		h := newSimHarness(t, sim.Config{Seed: seed}, Config{})
		h.clock.Advance(90*time.Minute + 7*time.Second)
		tel := mustPoll(t, h.driver)
		s := h.miner.Snapshot()

		if tel.MinerId != h.miner.ID() || tel.ObservedAtUnixMs != h.clock.Now().UnixMilli() || tel.PollLatencyUs <= 0 {
			t.Errorf("id %q observed %d latency %d", tel.MinerId, tel.ObservedAtUnixMs, tel.PollLatencyUs)
		}
		if tel.State != pb.MinerState_MINER_STATE_MINING || !s.Mining {
			t.Errorf("state %v, sim mining %v", tel.State, s.Mining)
		}
		if !near(tel.Hashrate_5SThs, s.HashrateTHs) || !near(tel.HashrateAvgThs, s.HashrateAvgTHs) {
			t.Errorf("hashrate %v/%v, sim %v/%v", tel.Hashrate_5SThs, tel.HashrateAvgThs, s.HashrateTHs, s.HashrateAvgTHs)
		}
		if tel.UptimeS != int64(s.Uptime.Seconds()) || tel.Model != s.Model || tel.Firmware != s.Firmware ||
			tel.Serial != s.Serial || tel.Mac != s.MAC || tel.WorkMode != s.WorkMode {
			t.Errorf("uptime %d model %q firmware %q serial %q mac %q mode %q; sim %+v", tel.UptimeS, tel.Model, tel.Firmware, tel.Serial, tel.Mac, tel.WorkMode, s)
		}
		if tel.PowerW != s.PowerW || !near(tel.EfficiencyJth, s.PowerW/s.HashrateTHs) {
			t.Errorf("power %v efficiency %v, sim power %v", tel.PowerW, tel.EfficiencyJth, s.PowerW)
		}
		if len(tel.Boards) != len(s.BoardTemps) {
			t.Fatalf("boards %v, sim temps %v", tel.Boards, s.BoardTemps)
		}
		for i, b := range tel.Boards {
			if b.Index != int32(i+1) || b.TempC != s.BoardTemps[i] || b.ChipTempC != s.ChipTemps[i] || !near(b.HashrateThs, s.BoardHashrateTHs[i]) || b.Chips == 0 {
				t.Errorf("board %d = %v; sim temp %v chip %v rate %v", i, b, s.BoardTemps[i], s.ChipTemps[i], s.BoardHashrateTHs[i])
			}
		}
		var fans []int32
		for _, f := range s.Fans {
			fans = append(fans, int32(f))
		}
		if !slices.Equal(tel.FansRpm, fans) || len(tel.Errors) != 0 {
			t.Errorf("fans %v errors %v, sim fans %v", tel.FansRpm, tel.Errors, s.Fans)
		}
		checkPools(t, tel.Pools, s.Pools)
		if s.Pools[0].Accepted == 0 {
			t.Errorf("no shares accepted after 90 minutes of mining")
		}
	}
}

func checkPools(t *testing.T, got []*pb.Pool, want []sim.Pool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("pools %v, sim %+v", got, want)
	}
	for i, p := range got {
		w := want[i]
		if p.Url != w.URL || p.User != w.User || p.Priority != int32(w.Priority) || p.Status != w.Status ||
			p.Accepted != w.Accepted || p.Rejected != w.Rejected || p.Active != w.Active {
			t.Errorf("pool %d = %v, sim %+v", i, p, w)
		}
	}
}

func TestExecuteChangesSimulator(t *testing.T) {
	h := newSimHarness(t, sim.Config{}, Config{})
	steps := []struct {
		action         pb.Action
		command, param string
		state          pb.MinerState
		check          func(sim.State) bool
	}{
		{pb.Action_ACTION_STOP_MINING, "pause", "", pb.MinerState_MINER_STATE_STOPPED, func(s sim.State) bool { return s.Paused && !s.Mining && s.HashrateTHs == 0 }},
		{pb.Action_ACTION_START_MINING, "resume", "", pb.MinerState_MINER_STATE_MINING, func(s sim.State) bool { return !s.Paused && s.Mining }},
		{pb.Action_ACTION_CURTAIL, "curtail", "sleep", pb.MinerState_MINER_STATE_CURTAILED, func(s sim.State) bool {
			return s.Sleeping && s.WorkMode == "sleep" && s.PowerW < 100
		}},
		{pb.Action_ACTION_UNCURTAIL, "curtail", "wakeup", pb.MinerState_MINER_STATE_MINING, func(s sim.State) bool { return !s.Sleeping && s.Mining }},
	}
	for i, st := range steps {
		msg, err := h.exec(t, st.action)
		if err != nil || !strings.HasPrefix(msg, st.command+" accepted: ") {
			t.Fatalf("%v: %q, %v", st.action, msg, err)
		}
		if s := h.miner.Snapshot(); !st.check(s) {
			t.Errorf("%v: sim state %+v", st.action, s)
		}
		if tel := mustPoll(t, h.driver); tel.State != st.state {
			t.Errorf("%v: polled state %v, want %v", st.action, tel.State, st.state)
		}
		log := h.miner.WriteLog()
		if len(log) != i+1 {
			t.Fatalf("write log %+v", log)
		}
		if w := log[i]; w.Command != st.command || w.Parameter != st.param || !w.Accepted || !strings.HasPrefix(w.Remote, "127.0.0.1:") || !w.At.Equal(h.clock.Now()) {
			t.Errorf("%v: write %+v", st.action, w)
		}
	}
}

func TestUpdatePools(t *testing.T) {
	h := newSimHarness(t, sim.Config{}, Config{})
	user := "hashfleet." + h.miner.ID()
	want := []*pb.Pool{
		{Url: "stratum+tcp://new.example:3333", User: `acct,with\comma`, Password: "p,w", Priority: 0},
		{Url: "stratum+tcp://pool-b.sim.invalid:3333", User: user, Priority: 1}, // already configured: kept
	}
	msg, err := h.exec(t, pb.Action_ACTION_UPDATE_POOLS, want[1], want[0]) // out of order on purpose
	if err != nil {
		t.Fatal(err)
	}
	if msg != "pools updated: 1 added, 2 removed, active stratum+tcp://new.example:3333" {
		t.Errorf("message %q", msg)
	}
	s := h.miner.Snapshot()
	got := make([]string, len(s.Pools))
	for i, p := range s.Pools {
		got[i] = p.URL + " " + p.User
		if p.Active != (p.URL == want[0].Url) || (p.Priority == 0) != (p.URL == want[0].Url) {
			t.Errorf("pool %+v: want only the new pool active and first", p)
		}
	}
	if !slices.Equal(got, []string{"stratum+tcp://pool-b.sim.invalid:3333 " + user, `stratum+tcp://new.example:3333 acct,with\comma`}) || s.Pools[1].Password != "p,w" {
		t.Errorf("sim pools %q, new pool's password %q", got, s.Pools[1].Password)
	}
	var cmds []string
	for _, w := range h.miner.WriteLog() {
		if !w.Accepted {
			t.Errorf("refused write %+v", w)
		}
		cmds = append(cmds, w.Command+"|"+w.Parameter)
	}
	wantCmds := []string{`addpool|stratum+tcp://new.example:3333,acct\,with\\comma,p\,w`, "switchpool|3", "removepool|2", "removepool|0", "poolpriority|1,0"}
	if !slices.Equal(cmds, wantCmds) {
		t.Errorf("writes %q, want %q", cmds, wantCmds)
	}

	text, err := h.exec(t, pb.Action_ACTION_GET_POOLS)
	if err != nil || !strings.Contains(text, "pool 1 stratum+tcp://new.example:3333 user acct,with\\comma Alive priority 0 accepted 0 rejected 0 active") {
		t.Errorf("GET_POOLS = %q, %v", text, err)
	}
	if _, err := h.exec(t, pb.Action_ACTION_UPDATE_POOLS); err == nil {
		t.Error("UPDATE_POOLS without pools succeeded")
	}
}

func TestUnsupportedActions(t *testing.T) {
	h := newSimHarness(t, sim.Config{}, Config{})
	for _, a := range []pb.Action{pb.Action_ACTION_BLINK, pb.Action_ACTION_SET_POWER_TARGET, pb.Action_ACTION_GET_ERRORS, pb.Action_ACTION_UNSPECIFIED} {
		_, err := h.exec(t, a)
		if !errors.Is(err, miners.ErrUnsupported) || !strings.Contains(err.Error(), "unsupported by this model: ") {
			t.Errorf("%v: err = %v, want ErrUnsupported", a, err)
		}
	}
	if log := h.miner.WriteLog(); len(log) != 0 {
		t.Errorf("unsupported actions reached the miner: %+v", log)
	}
}

func TestRebootUnreachableThenBack(t *testing.T) {
	h := newSimHarness(t, sim.Config{RebootDuration: 30 * time.Second}, Config{})
	h.clock.Advance(time.Hour)
	if _, err := h.exec(t, pb.Action_ACTION_STOP_MINING); err != nil {
		t.Fatal(err)
	}
	if msg, err := h.exec(t, pb.Action_ACTION_REBOOT); err != nil || msg != "restart accepted: Restarting cgminer" {
		t.Fatalf("reboot: %q, %v", msg, err)
	}
	if _, err := poll(t, h.driver); !errors.Is(err, miners.ErrUnreachable) {
		t.Fatalf("poll while rebooting: %v, want ErrUnreachable", err)
	}
	if !h.miner.Snapshot().Rebooting {
		t.Error("sim does not report Rebooting")
	}
	h.clock.Advance(29 * time.Second)
	if _, err := poll(t, h.driver); !errors.Is(err, miners.ErrUnreachable) {
		t.Fatalf("poll 1s before the reboot ends: %v, want ErrUnreachable", err)
	}
	h.clock.Advance(2 * time.Second)
	tel := mustPoll(t, h.driver)
	if tel.State != pb.MinerState_MINER_STATE_MINING || tel.UptimeS != 1 || tel.Pools[0].Accepted != 0 {
		t.Errorf("after reboot: state %v uptime %d accepted %d, want mining, 1s, counters reset", tel.State, tel.UptimeS, tel.Pools[0].Accepted)
	}
}

func TestSimulatorFaults(t *testing.T) {
	h := newSimHarness(t, sim.Config{SlowDelay: time.Second}, Config{ReadTimeout: 150 * time.Millisecond})
	m := h.miner

	m.Down()
	if _, err := poll(t, h.driver); !errors.Is(err, miners.ErrUnreachable) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("down: %v", err)
	}
	m.SetFault(sim.FaultSlow)
	if _, err := poll(t, h.driver); !errors.Is(err, miners.ErrUnreachable) || !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("slow: %v", err)
	}
	m.SetFault(sim.FaultHang)
	if _, err := poll(t, h.driver); !errors.Is(err, miners.ErrUnreachable) || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("hang: %v", err)
	}
	m.SetFault(sim.FaultMalformed)
	if _, err := poll(t, h.driver); !errors.Is(err, miners.ErrMalformed) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("malformed: %v", err)
	}
	m.SetFault(sim.FaultFlapping)
	for i := range 4 {
		_, err := poll(t, h.driver)
		if up := i%2 == 0; up != (err == nil) || (!up && !errors.Is(err, miners.ErrUnreachable)) {
			t.Errorf("flapping poll %d: %v", i, err)
		}
	}
	m.Up()
	mustPoll(t, h.driver)
}

func TestSlowMinerWithinDeadline(t *testing.T) {
	h := newSimHarness(t, sim.Config{SlowDelay: 50 * time.Millisecond}, Config{ReadTimeout: 2 * time.Second})
	h.miner.SetFault(sim.FaultSlow)
	mustPoll(t, h.driver)
}
