package miner

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
)

// TestAgainstSimulatedMinersOverTCP runs MinerActors with the real CGMiner driver against the simulator on
// loopback, on the wall clock: polling, a miner going down and coming back, malformed replies, a reboot.
func TestAgainstSimulatedMinersOverTCP(t *testing.T) {
	fleet, err := sim.Start(sim.Config{Count: 12, Seed: 7, RebootDuration: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	cfg := DefaultConfig()
	cfg.PollInterval, cfg.PollJitter, cfg.PollTimeout = 60*time.Millisecond, 10*time.Millisecond, time.Second
	cfg.MinRebootTime = 100 * time.Millisecond
	drivers := func(d *pb.Device) (miners.Driver, error) {
		return cgminer.New(d, cgminer.Config{ReadTimeout: time.Second}), nil
	}
	h := startHarness(t, cfg, fleet.Devices(), drivers, clock.Real())
	ids := make([]string, 0, len(h.devices))
	for _, d := range h.devices {
		ids = append(ids, d.GetMinerId())
	}
	waitState := func(id string, want pb.MinerState) {
		t.Helper()
		testutil.Eventually(t, id+" "+want.String(), func() bool { return h.rec.state(id) == want })
	}
	for _, id := range ids {
		waitState(id, mining)
	}
	s := h.status(ids[0])
	if s.LastGood.GetHashrate_5SThs() <= 0 || s.LastGood.GetModel() == "" || len(s.LastGood.GetBoards()) == 0 {
		t.Fatalf("sample from the simulator is thin: %v", s.LastGood)
	}

	down, bad, rebooted := ids[1], ids[2], ids[3]
	fleet.Miner(down).SetFault(sim.FaultDown)
	fleet.Miner(bad).SetFault(sim.FaultMalformed)
	waitState(down, unreachable)
	waitState(bad, unreachable)
	if e := h.rec.lastSample(bad).GetPollError(); !strings.HasPrefix(e, "malformed: ") {
		t.Fatalf("malformed reply gave poll error %q", e)
	}
	if e := h.rec.lastSample(down).GetPollError(); !strings.HasPrefix(e, "unreachable: ") {
		t.Fatalf("refused connection gave poll error %q", e)
	}
	fleet.Miner(down).SetFault(sim.FaultNone)
	fleet.Miner(bad).SetFault(sim.FaultNone)
	waitState(down, mining)
	waitState(bad, mining)

	h.execute(rebooted, "reboot-1", "", pb.Action_ACTION_REBOOT)
	testutil.Eventually(t, "reboot result", func() bool { return len(h.rec.resultsFor("reboot-1")) == 1 })
	if r := h.rec.resultsFor("reboot-1")[0].Result; r.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("reboot: %v", r)
	}
	waitState(rebooted, mining)
	changes := h.rec.stateChanges(rebooted)
	if !slices.Contains(changes, "MINER_STATE_MINING>MINER_STATE_REBOOTING") || !slices.Contains(changes, "MINER_STATE_REBOOTING>MINER_STATE_MINING") {
		t.Fatalf("reboot transitions %v", changes)
	}
	if slices.Contains(changes, "MINER_STATE_REBOOTING>MINER_STATE_UNREACHABLE") {
		t.Fatalf("a reboot inside the reboot timeout must not show UNREACHABLE: %v", changes)
	}
	writes := fleet.Miner(rebooted).WriteLog()
	if len(writes) != 1 || writes[0].Command != "restart" || !writes[0].Accepted {
		t.Fatalf("miner write log %+v, want exactly one restart", writes)
	}
	for _, id := range ids {
		if id != down && id != bad && id != rebooted && len(fleet.Miner(id).WriteLog()) != 0 {
			t.Fatalf("%s was written to", id)
		}
	}
}
