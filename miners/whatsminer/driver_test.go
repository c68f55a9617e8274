package whatsminer_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	wmsim "github.com/hashfleet/hashfleet/miners/sim/whatsminer"
	"github.com/hashfleet/hashfleet/miners/whatsminer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is one simulated Whatsminer on a fake clock and a driver for one of its APIs.
type harness struct {
	t     *testing.T
	clk   *clock.Fake
	fleet *wmsim.Fleet
	miner *wmsim.Miner
	dev   *pb.Device
	drv   *whatsminer.Driver
}

func newHarness(t *testing.T, version int, simMod func(*wmsim.Config), drvMod func(*whatsminer.Config)) *harness {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	sc := wmsim.Config{Count: 1, Seed: 7, Clock: clk}
	if simMod != nil {
		simMod(&sc)
	}
	f, err := wmsim.Start(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("close fleet: %v", err)
		}
	})
	h := &harness{t: t, clk: clk, fleet: f, miner: f.Miners()[0], dev: f.Devices(version)[0]}
	h.drv = h.driver(version, drvMod)
	return h
}

func (h *harness) driver(version int, mod func(*whatsminer.Config)) *whatsminer.Driver {
	h.t.Helper()
	cfg := whatsminer.Config{APIVersion: version, Clock: h.clk, ReadTimeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	d, err := whatsminer.New(h.dev, cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { d.Close() })
	return d
}

func (h *harness) poll() *pb.Telemetry {
	h.t.Helper()
	tel, err := h.drv.Poll(ctx(h.t))
	if err != nil {
		h.t.Fatalf("poll: %v", err)
	}
	return tel
}

func (h *harness) exec(spec *pb.CommandSpec) string {
	h.t.Helper()
	msg, err := h.drv.Execute(ctx(h.t), spec)
	if err != nil {
		h.t.Fatalf("%v: %v", spec.GetAction(), err)
	}
	return msg
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func near(a, b float64) bool { return math.Abs(a-b) < 0.01 }

func bothVersions(t *testing.T, fn func(t *testing.T, version int)) {
	for _, v := range []int{2, 3} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) { fn(t, v) })
	}
}

func TestPollTelemetry(t *testing.T) {
	bothVersions(t, func(t *testing.T, v int) {
		h := newHarness(t, v, nil, nil)
		h.clk.Advance(90 * time.Second)
		h.miner.SetErrors([]wmsim.ErrorCode{{Code: 2010, Reason: "fan speed low", Since: h.clk.Now()}})
		tel := h.poll()
		s := h.miner.Snapshot()
		if tel.GetState() != pb.MinerState_MINER_STATE_MINING {
			t.Fatalf("state %v", tel.GetState())
		}
		if !near(tel.GetHashrate_5SThs(), s.HashrateTHs) || !near(tel.GetHashrateAvgThs(), s.API.HashrateAvgTHs) {
			t.Fatalf("hashrate %v/%v, sim %v/%v", tel.GetHashrate_5SThs(), tel.GetHashrateAvgThs(), s.HashrateTHs, s.API.HashrateAvgTHs)
		}
		if len(tel.GetBoards()) != len(s.BoardTHs) || !near(tel.GetBoards()[0].GetHashrateThs(), s.BoardTHs[0]) ||
			tel.GetBoards()[0].GetTempC() != s.API.BoardTemps[0] || tel.GetBoards()[0].GetChipTempC() != s.API.ChipTemps[0] {
			t.Fatalf("boards %v, sim %v %v", tel.GetBoards(), s.BoardTHs, s.API.BoardTemps)
		}
		if tel.GetPowerW() != s.PowerW || tel.GetPowerTargetW() != float64(s.PowerLimitW) || tel.GetEfficiencyJth() <= 0 {
			t.Fatalf("power %v target %v eff %v, sim %v %v", tel.GetPowerW(), tel.GetPowerTargetW(), tel.GetEfficiencyJth(), s.PowerW, s.PowerLimitW)
		}
		if len(tel.GetFansRpm()) != 2 || tel.GetFansRpm()[0] != int32(s.API.Fans[0]) {
			t.Fatalf("fans %v, sim %v", tel.GetFansRpm(), s.API.Fans)
		}
		if len(tel.GetPools()) != len(s.API.Pools) || tel.GetPools()[0].GetUrl() != s.API.Pools[0].URL || tel.GetPools()[0].GetUser() != s.API.Pools[0].User {
			t.Fatalf("pools %v", tel.GetPools())
		}
		if tel.GetModel() != "WhatsMiner "+s.Model || tel.GetSerial() != s.API.Serial || tel.GetMac() != s.API.MAC || tel.GetFirmware() == "" {
			t.Fatalf("identity %q %q %q %q", tel.GetModel(), tel.GetSerial(), tel.GetMac(), tel.GetFirmware())
		}
		if tel.GetUptimeS() != 90 {
			t.Fatalf("uptime %d", tel.GetUptimeS())
		}
		if len(tel.GetErrors()) != 1 || !strings.Contains(tel.GetErrors()[0], "2010") {
			t.Fatalf("errors %v", tel.GetErrors())
		}
		if tel.GetObservedAtUnixMs() != h.clk.Now().UnixMilli() {
			t.Fatalf("observed at %d", tel.GetObservedAtUnixMs())
		}
	})
}

func TestCommonCommands(t *testing.T) {
	bothVersions(t, func(t *testing.T, v int) {
		h := newHarness(t, v, nil, nil)
		state := func(want pb.MinerState) *pb.Telemetry {
			t.Helper()
			tel := h.poll()
			if tel.GetState() != want {
				t.Fatalf("state %v, want %v", tel.GetState(), want)
			}
			return tel
		}
		state(pb.MinerState_MINER_STATE_MINING)

		h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING})
		if !h.miner.Snapshot().PoweredOff {
			t.Fatal("power off did not reach the miner")
		}
		state(pb.MinerState_MINER_STATE_STOPPED)
		h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_START_MINING})
		state(pb.MinerState_MINER_STATE_MINING)

		msg := h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 2000})
		if !strings.Contains(msg, "2000 W") || h.miner.Snapshot().PowerLimitW != 2000 {
			t.Fatalf("power target: %q, sim limit %d", msg, h.miner.Snapshot().PowerLimitW)
		}
		if tel := state(pb.MinerState_MINER_STATE_MINING); tel.GetPowerTargetW() != 2000 || tel.GetPowerW() > 2000 {
			t.Fatalf("after power target: target %v power %v", tel.GetPowerTargetW(), tel.GetPowerW())
		}

		h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL})
		state(pb.MinerState_MINER_STATE_CURTAILED)
		h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_UNCURTAIL})
		state(pb.MinerState_MINER_STATE_MINING)

		h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL, PowerTargetW: 1500})
		if tel := state(pb.MinerState_MINER_STATE_CURTAILED); tel.GetPowerTargetW() != 1500 {
			t.Fatalf("partial curtail target %v", tel.GetPowerTargetW())
		}
		h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_UNCURTAIL})
		if tel := state(pb.MinerState_MINER_STATE_MINING); tel.GetPowerTargetW() != 2000 {
			t.Fatalf("uncurtail restored target %v, want 2000", tel.GetPowerTargetW())
		}

		pools := []*pb.Pool{
			{Url: "stratum+tcp://b.example:3333", User: "acct.b", Password: "pb", Priority: 1},
			{Url: "stratum+tcp://a.example:3333", User: "acct.a", Password: "pa", Priority: 0},
		}
		if msg := h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS, Pools: pools}); msg != "2 pools configured" {
			t.Fatalf("update pools: %q", msg)
		}
		sp := h.miner.Snapshot().API.Pools
		if len(sp) != 2 || sp[0].URL != "stratum+tcp://a.example:3333" || sp[0].Password != "pa" || sp[1].User != "acct.b" {
			t.Fatalf("sim pools %+v", sp)
		}
		if msg := h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_GET_POOLS}); !strings.Contains(msg, "a.example") || !strings.HasPrefix(msg, "2 pools") {
			t.Fatalf("get pools: %q", msg)
		}
		if msg := h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_GET_ERRORS}); msg != "no active errors" {
			t.Fatalf("get errors: %q", msg)
		}
		h.miner.SetErrors([]wmsim.ErrorCode{{Code: 541, Reason: "slot0 error", Since: h.clk.Now()}})
		if msg := h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_GET_ERRORS}); !strings.Contains(msg, "541") {
			t.Fatalf("get errors: %q", msg)
		}

		if msg := h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_BLINK}); !strings.Contains(msg, "flashing") || !h.miner.Snapshot().Locating {
			t.Fatalf("blink: %q", msg)
		}
		h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_BLINK, Params: map[string]string{"enable": "false"}})
		if h.miner.Snapshot().Locating {
			t.Fatal("blink off did not reach the miner")
		}
		if _, err := h.drv.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET + 100}); !errors.Is(err, miners.ErrUnsupported) {
			t.Fatalf("unknown action: %v", err)
		}
		for _, bad := range []*pb.CommandSpec{
			{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: -5},
			{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: math.NaN()},
			{Action: pb.Action_ACTION_UPDATE_POOLS},
			{Action: pb.Action_ACTION_UPDATE_POOLS, Pools: []*pb.Pool{{Url: " "}}},
			{Action: pb.Action_ACTION_BLINK, Params: map[string]string{"enable": "sometimes"}},
		} {
			if _, err := h.drv.Execute(ctx(t), bad); !errors.Is(err, miners.ErrRefused) {
				t.Fatalf("%v: %v", bad, err)
			}
		}

		h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_REBOOT})
		if _, err := h.drv.Poll(ctx(t)); !errors.Is(err, miners.ErrUnreachable) {
			t.Fatalf("poll while rebooting: %v", err)
		}
		h.clk.Advance(wmsim.DefaultRebootDuration)
		state(pb.MinerState_MINER_STATE_MINING)

		log := h.miner.WriteLog()
		if len(log) != 11 {
			t.Fatalf("write log has %d entries", len(log))
		}
		for _, w := range log {
			if !w.Accepted || w.APIVersion != v || !strings.HasPrefix(w.Remote, "127.0.0.1:") || w.At.IsZero() {
				t.Fatalf("write %+v", w)
			}
			for k, val := range w.Params {
				if strings.Contains(val, `"pa"`) || (strings.Contains(k, "passwd") && val != "***") {
					t.Fatalf("password in the write log: %+v", w)
				}
			}
		}
	})
}

func TestWrongPasswordRefused(t *testing.T) {
	bothVersions(t, func(t *testing.T, v int) {
		h := newHarness(t, v, nil, func(c *whatsminer.Config) { c.Password = "not-the-password" })
		_, err := h.drv.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING})
		if !errors.Is(err, whatsminer.ErrBadPassword) || !errors.Is(err, miners.ErrRefused) {
			t.Fatalf("err %v, want ErrBadPassword", err)
		}
		if h.miner.Snapshot().PoweredOff {
			t.Fatal("a write with the wrong password was carried out")
		}
		log := h.miner.WriteLog()
		if len(log) == 0 || log[len(log)-1].Accepted || log[len(log)-1].Reason == "" {
			t.Fatalf("write log %+v", log)
		}
		// Reads need no password.
		if tel := h.poll(); tel.GetState() != pb.MinerState_MINER_STATE_MINING {
			t.Fatalf("state %v", tel.GetState())
		}
	})
}

// TestStaleTokenRenewed: a v2 token the miner has expired is replaced once; after a password change the
// fresh token is refused too, which is ErrBadPassword.
func TestStaleTokenRenewed(t *testing.T) {
	h := newHarness(t, 2, func(c *wmsim.Config) { c.TokenTTL = 10 * time.Minute }, func(c *whatsminer.Config) { c.TokenRefresh = 30 * time.Minute })
	h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 3000})
	h.clk.Advance(11 * time.Minute)
	h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 3100})
	log := h.miner.WriteLog()
	if len(log) != 3 || !log[0].Accepted || log[1].Accepted || !strings.Contains(log[1].Reason, "expired") || !log[2].Accepted {
		t.Fatalf("write log %+v", log)
	}
	if h.miner.Snapshot().PowerLimitW != 3100 {
		t.Fatalf("limit %d", h.miner.Snapshot().PowerLimitW)
	}
	h.miner.SetPassword("rotated")
	if _, err := h.drv.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT}); !errors.Is(err, whatsminer.ErrBadPassword) {
		t.Fatalf("after the password changed: %v", err)
	}
}

// TestV3ClockSkewRefused: a v3 write whose ts is outside the miner's window is refused, and the error
// carries the miner's reason.
func TestV3ClockSkewRefused(t *testing.T) {
	h := newHarness(t, 3, nil, nil)
	skewed := clock.NewFake(h.clk.Now().Add(-5 * time.Minute))
	d := h.driver(3, func(c *whatsminer.Config) { c.Clock = skewed })
	_, err := d.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT})
	if !errors.Is(err, miners.ErrRefused) || !strings.Contains(err.Error(), "ts out of window") {
		t.Fatalf("err %v", err)
	}
	if h.miner.Snapshot().API.Rebooting {
		t.Fatal("skewed write carried out")
	}
}

func TestHostileReplies(t *testing.T) {
	bothVersions(t, func(t *testing.T, v int) {
		h := newHarness(t, v, nil, func(c *whatsminer.Config) { c.MaxReplyBytes = 64 << 10 })
		cases := []struct {
			fault wmsim.Fault
			write bool
			is    error
			says  string
		}{
			{wmsim.FaultTruncated, false, miners.ErrMalformed, "truncated"},
			{wmsim.FaultTruncated, true, miners.ErrMalformed, "truncated"},
			{wmsim.FaultBadEnvelope, true, miners.ErrMalformed, map[int]string{2: "envelope", 3: "invalid JSON"}[v]},
			{wmsim.FaultBadEnvelope, false, miners.ErrMalformed, map[int]string{2: "", 3: "invalid JSON"}[v]},
			{wmsim.FaultOversized, false, miners.ErrMalformed, map[int]string{2: "exceeds", 3: "frame too large"}[v]},
			{wmsim.FaultClose, false, miners.ErrUnreachable, "without a reply"},
		}
		for _, c := range cases {
			h.miner.SetFault(c.fault)
			var err error
			if c.write {
				_, err = h.drv.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 2500})
			} else {
				_, err = h.drv.Poll(ctx(t))
			}
			h.miner.SetFault(wmsim.FaultNone)
			if v == 2 && c.fault == wmsim.FaultBadEnvelope && !c.write {
				if err != nil { // reads are in the clear: an envelope fault does not touch them
					t.Fatalf("clear read under FaultBadEnvelope: %v", err)
				}
				continue
			}
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("fault %d write=%v: err %v, want %v saying %q", c.fault, c.write, err, c.is, c.says)
			}
		}
		// Healthy again afterwards.
		h.poll()
	})
}

// BenchmarkPoll is one whole poll over loopback TCP against the simulator (v2: 5 exchanges; v3: 4).
func BenchmarkPoll(b *testing.B) {
	for _, v := range []int{2, 3} {
		b.Run(fmt.Sprintf("v%d", v), func(b *testing.B) {
			f, err := wmsim.Start(wmsim.Config{Count: 1, Clock: clock.NewFake(time.Now())})
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			d, err := whatsminer.New(f.Devices(v)[0], whatsminer.Config{APIVersion: v})
			if err != nil {
				b.Fatal(err)
			}
			c := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Poll(c); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "polls/s")
		})
	}
}
