package braiins_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/braiins"
	bossim "github.com/hashfleet/hashfleet/miners/sim/braiins"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type harness struct {
	t     *testing.T
	clk   *clock.Fake
	fleet *bossim.Fleet
	miner *bossim.Miner
	dev   *pb.Device
	drv   *braiins.Driver
}

func newHarness(t *testing.T, simMod func(*bossim.Config), drvMod func(*braiins.Config)) *harness {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	sc := bossim.Config{Count: 1, Seed: 3, Clock: clk, Password: "s3cret"}
	if simMod != nil {
		simMod(&sc)
	}
	f, err := bossim.Start(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("close fleet: %v", err)
		}
	})
	h := &harness{t: t, clk: clk, fleet: f, miner: f.Miners()[0], dev: f.Devices()[0]}
	h.drv = h.driver(func(c *braiins.Config) {
		c.Password = "s3cret"
		if drvMod != nil {
			drvMod(c)
		}
	})
	return h
}

func (h *harness) driver(mod func(*braiins.Config)) *braiins.Driver {
	h.t.Helper()
	cfg := braiins.Config{Clock: h.clk, RequestTimeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	d, err := braiins.New(h.dev, cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { d.Close() })
	return d
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func (h *harness) exec(spec *pb.CommandSpec) string {
	h.t.Helper()
	msg, err := h.drv.Execute(ctx(h.t), spec)
	if err != nil {
		h.t.Fatalf("%v: %v", spec.GetAction(), err)
	}
	return msg
}

func (h *harness) state(want pb.MinerState) *pb.Telemetry {
	h.t.Helper()
	tel, err := h.drv.Poll(ctx(h.t))
	if err != nil {
		h.t.Fatalf("poll: %v", err)
	}
	if tel.GetState() != want {
		h.t.Fatalf("state %v, want %v", tel.GetState(), want)
	}
	return tel
}

func TestPollTelemetry(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.clk.Advance(45 * time.Second)
	tel := h.state(pb.MinerState_MINER_STATE_MINING)
	s := h.miner.Snapshot().API
	if tel.GetHashrate_5SThs() != s.HashrateTHs || tel.GetPowerW() != s.PowerW || len(tel.GetBoards()) != len(s.BoardHashrateTHs) ||
		len(tel.GetFansRpm()) != len(s.Fans) || len(tel.GetPools()) != len(s.Pools) || tel.GetUptimeS() != 45 {
		t.Fatalf("telemetry %v\nsim %+v", tel, s)
	}
}

func TestCommonCommands(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING})
	if !h.miner.Snapshot().API.Paused {
		t.Fatal("pause did not reach the miner")
	}
	h.state(pb.MinerState_MINER_STATE_STOPPED)
	h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_START_MINING})
	h.state(pb.MinerState_MINER_STATE_MINING)

	if msg := h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 3000}); msg != "power target set to 3000 W" {
		t.Fatalf("power target: %q", msg)
	}
	if h.miner.Snapshot().PowerTargetW != 3000 {
		t.Fatalf("sim target %d", h.miner.Snapshot().PowerTargetW)
	}
	if tel := h.state(pb.MinerState_MINER_STATE_MINING); tel.GetPowerTargetW() != 3000 {
		t.Fatalf("telemetry target %v", tel.GetPowerTargetW())
	}

	h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL})
	h.state(pb.MinerState_MINER_STATE_CURTAILED)
	h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_UNCURTAIL})
	h.state(pb.MinerState_MINER_STATE_MINING)

	h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL, PowerTargetW: 1200})
	if h.miner.Snapshot().PowerTargetW != 1200 {
		t.Fatalf("partial curtail target %d", h.miner.Snapshot().PowerTargetW)
	}
	h.state(pb.MinerState_MINER_STATE_CURTAILED)
	if msg := h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_UNCURTAIL}); !strings.Contains(msg, "3000 W") {
		t.Fatalf("uncurtail: %q", msg)
	}
	if h.miner.Snapshot().PowerTargetW != 3000 {
		t.Fatalf("restored target %d", h.miner.Snapshot().PowerTargetW)
	}
	h.state(pb.MinerState_MINER_STATE_MINING)

	pools := []*pb.Pool{
		{Url: "stratum+tcp://second.example:3333", User: "w.2", Password: "p2", Priority: 5},
		{Url: "stratum+tcp://first.example:3333", User: "w.1", Password: "p1", Priority: 1},
	}
	if msg := h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS, Pools: pools}); msg != "2 pools configured" {
		t.Fatalf("update pools: %q", msg)
	}
	sp := h.miner.Snapshot().API.Pools
	if len(sp) != 2 || sp[0].URL != "stratum+tcp://first.example:3333" || sp[0].Password != "p1" || sp[1].User != "w.2" {
		t.Fatalf("sim pools %+v", sp)
	}
	if g := h.miner.Snapshot().PoolGroups; len(g) != 1 || g[0].GetName() != "hashfleet" || g[0].GetPools()[1].GetPassword() != "p2" {
		t.Fatalf("pool groups %v", g)
	}
	if msg := h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_GET_POOLS}); !strings.Contains(msg, "first.example") {
		t.Fatalf("get pools: %q", msg)
	}
	if msg := h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_GET_ERRORS}); msg != "no active errors" {
		t.Fatalf("get errors: %q", msg)
	}
	h.miner.SetErrors([]bossim.Error{{Since: h.clk.Now(), Message: "chip temperature too high", Component: "hashboard 2"}})
	if msg := h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_GET_ERRORS}); !strings.Contains(msg, "hashboard 2: chip temperature too high") {
		t.Fatalf("get errors: %q", msg)
	}
	if msg := h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_BLINK}); msg != "locate LED on" || !h.miner.Snapshot().Locating {
		t.Fatalf("blink: %q", msg)
	}
	h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_BLINK, Params: map[string]string{"enable": "false"}})
	if h.miner.Snapshot().Locating {
		t.Fatal("blink off did not reach the miner")
	}

	for _, bad := range []*pb.CommandSpec{
		{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 0},
		{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 50}, // the miner refuses it
		{Action: pb.Action_ACTION_UPDATE_POOLS, Pools: make([]*pb.Pool, 4)},
		{Action: pb.Action_ACTION_BLINK, Params: map[string]string{"enable": "maybe"}},
	} {
		if _, err := h.drv.Execute(ctx(t), bad); !errors.Is(err, miners.ErrRefused) {
			t.Fatalf("%v: %v", bad, err)
		}
	}

	h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_REBOOT})
	if _, err := h.drv.Poll(ctx(t)); !errors.Is(err, miners.ErrUnreachable) {
		t.Fatalf("poll while rebooting: %v", err)
	}
	if _, err := h.drv.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_GET_ERRORS}); !errors.Is(err, miners.ErrUnreachable) {
		t.Fatalf("gRPC while rebooting: %v", err)
	}
	h.clk.Advance(bossim.DefaultRebootDuration)
	h.state(pb.MinerState_MINER_STATE_MINING)

	log := h.miner.WriteLog()
	refused := 0
	for _, w := range log {
		if !strings.HasPrefix(w.Remote, "127.0.0.1:") || w.At.IsZero() {
			t.Fatalf("write %+v", w)
		}
		if !w.Accepted {
			refused++
		}
		for k, v := range w.Params {
			if strings.Contains(k, "password") && v != "***" {
				t.Fatalf("password in the write log: %+v", w)
			}
		}
	}
	if refused != 1 || len(log) != 12 {
		t.Fatalf("%d writes, %d refused: %+v", len(log), refused, log)
	}
}

func TestWrongPasswordRefused(t *testing.T) {
	h := newHarness(t, nil, func(c *braiins.Config) { c.Password = "guess" })
	_, err := h.drv.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING})
	if !errors.Is(err, braiins.ErrBadPassword) || !errors.Is(err, miners.ErrRefused) {
		t.Fatalf("err %v", err)
	}
	if h.miner.Snapshot().API.Paused || h.miner.LoginFailures() != 1 {
		t.Fatalf("paused %v, login failures %d", h.miner.Snapshot().API.Paused, h.miner.LoginFailures())
	}
	// Reads go over the cgminer API and need no login.
	h.state(pb.MinerState_MINER_STATE_MINING)
}

// TestTokenRenewed: a token the miner has expired (its clock ran ahead of the driver's) is replaced by one
// new login and the call goes through; a token voided by a password change leads to a login that is
// refused, which is ErrBadPassword. Each refused call is in the miner's write log with the reason.
func TestTokenRenewed(t *testing.T) {
	h := newHarness(t, func(c *bossim.Config) { c.TokenTTL = 10 * time.Minute }, nil)
	driverClock := clock.NewFake(h.clk.Now())
	d := h.driver(func(c *braiins.Config) { c.Password, c.Clock = "s3cret", driverClock })
	exec := func(w float64) error {
		_, err := d.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: w})
		return err
	}
	if err := exec(2500); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(11 * time.Minute) // the miner's clock only: the driver still trusts its token
	if err := exec(2600); err != nil {
		t.Fatalf("after the miner expired the token: %v", err)
	}
	h.miner.SetPassword("rotated") // voids every token
	if err := exec(2700); !errors.Is(err, braiins.ErrBadPassword) {
		t.Fatalf("after the password changed: %v", err)
	}
	log := h.miner.WriteLog()
	if len(log) != 4 || !log[0].Accepted || log[1].Reason != "token expired" || !log[2].Accepted || log[3].Reason != "unknown token" {
		t.Fatalf("write log %+v", log)
	}
	if h.miner.Snapshot().PowerTargetW != 2600 || h.miner.LoginFailures() != 1 {
		t.Fatalf("target %d, login failures %d", h.miner.Snapshot().PowerTargetW, h.miner.LoginFailures())
	}
}

func TestHostileReplies(t *testing.T) {
	h := newHarness(t, nil, func(c *braiins.Config) { c.MaxReplyBytes = 64 << 10 })
	cases := []struct {
		fault bossim.Fault
		is    error
		says  string
	}{
		{bossim.FaultGarbage, miners.ErrMalformed, "not a valid protobuf"},
		{bossim.FaultOversized, miners.ErrMalformed, "exceeds 65536 bytes"},
		{bossim.FaultUnavailable, miners.ErrUnreachable, "unavailable"},
	}
	for _, c := range cases {
		h.miner.SetFault(c.fault)
		_, err := h.drv.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_GET_ERRORS})
		h.miner.SetFault(bossim.FaultNone)
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.says) {
			t.Fatalf("fault %d: err %v, want %v saying %q", c.fault, err, c.is, c.says)
		}
	}
	h.exec(&pb.CommandSpec{Action: pb.Action_ACTION_GET_ERRORS})
}

// TestNothingListening: a gRPC port with nothing behind it is ErrUnreachable within the request timeout.
func TestNothingListening(t *testing.T) {
	d, err := braiins.New(&pb.Device{MinerId: "x", Address: "127.0.0.1:1", WebAddress: "127.0.0.1:1"}, braiins.Config{RequestTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	start := time.Now()
	if _, err := d.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT}); !errors.Is(err, miners.ErrUnreachable) {
		t.Fatalf("err %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []braiins.Config{{GRPCPort: 70000}, {MaxReplyBytes: 10}, {RequestTimeout: -time.Second}} {
		if c.Validate() == nil {
			t.Errorf("%+v validated", c)
		}
		if _, err := braiins.New(&pb.Device{MinerId: "x", Address: "127.0.0.1:4028"}, c); err == nil {
			t.Errorf("New accepted %+v", c)
		}
	}
	if err := braiins.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := braiins.New(&pb.Device{MinerId: "x"}, braiins.Config{}); err == nil {
		t.Fatal("a device without address accepted")
	}
}
