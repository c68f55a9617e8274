package localui

import (
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/miner"
	"github.com/hashfleet/hashfleet/node/uplink"
)

func TestMinerViewFromStatus(t *testing.T) {
	good := &pb.Telemetry{Model: "S19", Firmware: "fw1", Hashrate_5SThs: 101.5, HashrateAvgThs: 100, PowerW: 3200,
		PowerTargetW: 3300, UptimeS: 60, Errors: []string{"fan 2 slow"},
		Boards: []*pb.Board{{Index: 0, TempC: 60, ChipTempC: 71}, {Index: 1, TempC: 75, ChipTempC: 70}},
		Pools:  []*pb.Pool{{Url: "stratum+tcp://p:3333", User: "u", Password: "secret", Active: true}}}
	v := MinerViewFromStatus(miner.Status{MinerID: "m1", Device: &pb.Device{Address: "10.0.0.1:4028", Model: "dev"},
		State: pb.MinerState_MINER_STATE_MINING, StateSince: t0, Sample: good, LastGood: good, LastPollAt: t0})
	if v.ID != "m1" || v.State != "mining" || v.Model != "S19" || v.HashrateTHs != 101.5 || v.TempMaxC != 75 ||
		v.PowerW != 3200 || v.Address != "10.0.0.1:4028" || len(v.Boards) != 2 || len(v.Pools) != 1 || v.ErrorText() != "fan 2 slow" {
		t.Fatalf("mining view %+v", v)
	}
	// Unreachable: last good sample gives model and pools; no live readings.
	failed := &pb.Telemetry{PollError: "i/o timeout"}
	v = MinerViewFromStatus(miner.Status{MinerID: "m1", State: pb.MinerState_MINER_STATE_UNREACHABLE, Sample: failed,
		LastGood: good, LastError: "i/o timeout"})
	if v.State != "unreachable" || v.HashrateTHs != 0 || v.PowerW != 0 || v.Model != "S19" || len(v.Pools) != 1 || v.Error != "i/o timeout" {
		t.Fatalf("unreachable view %+v", v)
	}
	if StateName(pb.MinerState(99)) != "unknown" || StateName(pb.MinerState_MINER_STATE_UNSPECIFIED) != "unknown" {
		t.Fatal("odd states")
	}
	l := LinkViewFromStatus(uplink.Status{Up: true, Since: t0}, true)
	if !l.Configured || !l.Up || !l.Since.Equal(t0) {
		t.Fatalf("link %+v", l)
	}
}

func TestCommandViewFromPB(t *testing.T) {
	c := &pb.LocalCommand{CommandId: "c1", IdempotencyKey: "k", Actor: "local:admin", LocalOrigin: true, LeaseEpoch: 3,
		Hlc: &pb.HLC{WallMs: t0.UnixMilli(), Logical: 2, NodeId: "n"}, MinerIds: []string{"a", "b", "c", "d"},
		Spec: &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 2500},
		Results: []*pb.MinerResult{
			{MinerId: "a", Code: pb.ResultCode_RESULT_CODE_SUCCEEDED, FinishedAtUnixMs: t0.Add(time.Second).UnixMilli()},
			{MinerId: "b", Code: pb.ResultCode_RESULT_CODE_TIMEOUT},
			{MinerId: "c", Code: pb.ResultCode_RESULT_CODE_RUNNING},
		}}
	v := CommandViewFromPB(c)
	if v.Action != "set_power_target" || v.PowerTargetW != 2500 || !v.IssuedAt.Equal(t0) || v.HLC != "2025-03-01T12:00:00.000Z+2@n" ||
		v.Summary != (CommandSummary{Miners: 4, Succeeded: 1, Failed: 1, Pending: 2}) || v.Summary.Status() != "running" {
		t.Fatalf("view %+v", v)
	}
	for _, tc := range []struct {
		s    CommandSummary
		want string
	}{
		{CommandSummary{Miners: 2, Pending: 2}, "pending"},
		{CommandSummary{Miners: 2, Succeeded: 2}, "succeeded"},
		{CommandSummary{Miners: 2, Failed: 2}, "failed"},
		{CommandSummary{Miners: 2, Succeeded: 1, Failed: 1}, "partial"},
	} {
		if got := tc.s.Status(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.s, got, tc.want)
		}
	}
	for _, name := range LocalActions() {
		a, err := ParseAction(name)
		if err != nil || ActionName(a) != name {
			t.Errorf("action %s round trip: %v", name, err)
		}
	}
}
