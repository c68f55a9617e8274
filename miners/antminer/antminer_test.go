package antminer_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/antminer"
	"github.com/hashfleet/hashfleet/miners/internal/httpxtest"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/miners/sim/antweb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx, exec = httpxtest.Ctx, httpxtest.Exec

func poll(t *testing.T, d *antminer.Driver) *pb.Telemetry {
	t.Helper()
	tel, err := d.Poll(ctx(t))
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	if tel.PollError != "" {
		t.Fatalf("poll: web side failed: %s", tel.PollError)
	}
	return tel
}

type harness = httpxtest.Harness[*antweb.Fleet, *antweb.Miner, antminer.Config, *antminer.Driver]

func newHarness(t *testing.T, mod func(*antweb.Config)) *harness {
	return httpxtest.Start(t, antweb.Start, antweb.DefaultConfig(), func(c *antweb.Config, clk *clock.Fake) {
		c.Count, c.Clock, c.Seed, c.RebootDuration = 2, clk, 11, time.Minute
	}, mod, antminer.New, antminer.DefaultConfig(), func(c *antminer.Config, clk *clock.Fake) {
		c.Clock, c.RequestTimeout, c.CGMiner.Clock = clk, 2*time.Second, clk
	})
}

func TestPollMatchesSimulator(t *testing.T) {
	h := newHarness(t, nil)
	d, m := h.Driver(1, nil)
	h.Clock.Advance(42 * time.Second)
	tel := poll(t, d)
	s := m.Snapshot().API
	if tel.MinerId != m.ID() || tel.State != pb.MinerState_MINER_STATE_MINING || tel.WorkMode != "normal" {
		t.Errorf("id/state/mode = %q %v %q", tel.MinerId, tel.State, tel.WorkMode)
	}
	if math.Abs(tel.Hashrate_5SThs-s.HashrateTHs) > 1e-6 || math.Abs(tel.PowerW-s.PowerW) > 1e-6 || tel.UptimeS != 42 {
		t.Errorf("hashrate/power/uptime = %v %v %d, want %v %v 42", tel.Hashrate_5SThs, tel.PowerW, tel.UptimeS, s.HashrateTHs, s.PowerW)
	}
	if tel.Model != s.Model || tel.Serial != s.Serial || tel.Mac != s.MAC || tel.Firmware != s.Firmware {
		t.Errorf("identity = %q %q %q %q, want %q %q %q %q", tel.Model, tel.Serial, tel.Mac, tel.Firmware, s.Model, s.Serial, s.MAC, s.Firmware)
	}
	if len(tel.Boards) != len(s.BoardHashrateTHs) || len(tel.Pools) != len(s.Pools) || len(tel.FansRpm) != len(s.Fans) {
		t.Errorf("boards/pools/fans = %d %d %d", len(tel.Boards), len(tel.Pools), len(tel.FansRpm))
	}
	if d.Hostname() != m.Snapshot().Hostname {
		t.Errorf("hostname %q", d.Hostname())
	}
	if len(m.WriteLog()) != 0 {
		t.Errorf("poll wrote: %+v", m.WriteLog())
	}
}

func TestCommandsChangeSimulatorState(t *testing.T) {
	h := newHarness(t, nil)
	d, m := h.Driver(0, nil)

	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING})
	if s := m.Snapshot(); !s.API.Sleeping || s.WorkMode != "1" {
		t.Fatalf("after stop: %+v", s)
	}
	if tel := poll(t, d); tel.State != pb.MinerState_MINER_STATE_STOPPED || tel.Hashrate_5SThs != 0 || tel.WorkMode != "sleep" {
		t.Fatalf("poll after stop: %v %v %q", tel.State, tel.Hashrate_5SThs, tel.WorkMode)
	}
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_START_MINING})
	if s := m.Snapshot(); s.API.Sleeping || !s.API.Mining {
		t.Fatalf("after start: %+v", s)
	}
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL})
	if tel := poll(t, d); tel.State != pb.MinerState_MINER_STATE_CURTAILED || !m.Snapshot().API.Sleeping {
		t.Fatalf("poll after curtail: %v", tel.State)
	}
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_UNCURTAIL})
	if tel := poll(t, d); tel.State != pb.MinerState_MINER_STATE_MINING {
		t.Fatalf("poll after uncurtail: %v", tel.State)
	}

	if _, err := d.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 2500}); !errors.Is(err, miners.ErrUnsupported) {
		t.Fatalf("power target without PowerModes: %v, want ErrUnsupported", err)
	}

	pools := []*pb.Pool{
		{Url: "stratum+tcp://b.example:3333", User: "w.b", Password: "pb", Priority: 2},
		{Url: "stratum+tcp://a.example:3333", User: "w.a", Password: "pa", Priority: 1},
	}
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS, Pools: pools})
	s := m.Snapshot()
	if len(s.Pools) != 2 || s.Pools[0].URL != "stratum+tcp://a.example:3333" || s.Pools[0].Pass != "pa" || s.Pools[1].URL != "stratum+tcp://b.example:3333" {
		t.Fatalf("pools after update: %+v", s.Pools)
	}
	tel := poll(t, d)
	if len(tel.Pools) != 2 || !strings.Contains(exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_GET_POOLS}), "a.example") {
		t.Fatalf("pools as polled: %v", tel.Pools)
	}
	if _, err := d.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS}); !errors.Is(err, miners.ErrRefused) {
		t.Fatalf("no pools: %v", err)
	}

	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_BLINK})
	if !m.Snapshot().Blinking {
		t.Fatal("not blinking")
	}
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_BLINK, Params: map[string]string{"enable": "false"}})
	if m.Snapshot().Blinking {
		t.Fatal("still blinking")
	}
	if msg := exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_GET_ERRORS}); msg == "" {
		t.Fatal("no errors message")
	}

	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT})
	if _, err := d.Poll(ctx(t)); !errors.Is(err, miners.ErrUnreachable) {
		t.Fatalf("poll while rebooting: %v", err)
	}
	if _, err := d.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_BLINK}); !errors.Is(err, miners.ErrUnreachable) {
		t.Fatalf("blink while rebooting: %v", err)
	}
	h.Clock.Advance(time.Minute)
	if tel := poll(t, d); tel.UptimeS != 0 || tel.State != pb.MinerState_MINER_STATE_MINING {
		t.Fatalf("after reboot: %d %v", tel.UptimeS, tel.State)
	}

	if _, err := d.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_UNSPECIFIED}); !errors.Is(err, miners.ErrUnsupported) {
		t.Fatalf("unspecified: %v", err)
	}

	var got []string
	for _, r := range m.WriteLog() {
		if !r.Accepted || r.User != "root" {
			t.Errorf("write %+v", r)
		}
		got = append(got, r.Path[len("/cgi-bin/"):]+" "+r.Params["bitmain-work-mode"])
	}
	want := []string{
		"set_miner_conf.cgi 1", "set_miner_conf.cgi 0", "set_miner_conf.cgi 1", "set_miner_conf.cgi 0",
		"set_miner_conf.cgi 0", "blink.cgi ", "blink.cgi ", "reboot.cgi ",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("write log:\n got %q\nwant %q", got, want)
	}
}

func TestPowerModes(t *testing.T) {
	h := newHarness(t, nil)
	d, m := h.Driver(0, func(c *antminer.Config) {
		c.PowerModes = []antminer.PowerMode{{WorkMode: "3", PowerW: 2200}, {WorkMode: "0", PowerW: 3100}}
	})
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 2500})
	if s := m.Snapshot(); s.WorkMode != "3" {
		t.Fatalf("2500 W: mode %q", s.WorkMode)
	}
	if tel := poll(t, d); tel.WorkMode != "low" || tel.State != pb.MinerState_MINER_STATE_MINING {
		t.Fatalf("poll: %q %v", tel.WorkMode, tel.State)
	}
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 5000})
	if s := m.Snapshot(); s.WorkMode != "0" {
		t.Fatalf("5000 W: mode %q", s.WorkMode)
	}
	if _, err := d.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 1000}); !errors.Is(err, miners.ErrUnsupported) {
		t.Fatalf("1000 W: %v", err)
	}
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL, PowerTargetW: 2300})
	if tel := poll(t, d); tel.State != pb.MinerState_MINER_STATE_CURTAILED || tel.WorkMode != "low" {
		t.Fatalf("partial curtail: %v %q", tel.State, tel.WorkMode)
	}
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_UNCURTAIL})
	if s := m.Snapshot(); s.WorkMode != "0" {
		t.Fatalf("uncurtail: mode %q", s.WorkMode)
	}
}

func TestDigestAuth(t *testing.T) {
	t.Run("wrong password", func(t *testing.T) {
		h := newHarness(t, nil)
		d, m := h.Driver(0, func(c *antminer.Config) { c.Password = "not-root" })
		_, err := d.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING})
		if !errors.Is(err, antminer.ErrBadCredentials) || !errors.Is(err, miners.ErrRefused) {
			t.Fatalf("stop with a wrong password: %v", err)
		}
		if m.Snapshot().API.Sleeping {
			t.Fatal("miner slept on a wrong password")
		}
		// Reads still work through the API; the web part of the poll says what failed.
		tel, err := d.Poll(ctx(t))
		if err != nil || !strings.Contains(tel.PollError, "refused") {
			t.Fatalf("poll: %v, PollError %q", err, tel.GetPollError())
		}
	})
	t.Run("nonce reuse and stale", func(t *testing.T) {
		h := newHarness(t, func(c *antweb.Config) { c.NonceTTL = time.Minute })
		d, m := h.Driver(0, nil)
		for range 3 {
			poll(t, d)
		}
		if st := m.AuthStats(); st.Challenges != 1 || st.Accepted != 4 || st.Stale != 0 {
			t.Fatalf("steady state: %+v, want one challenge for four requests (info once, conf thrice)", st)
		}
		h.Clock.Advance(2 * time.Minute)
		exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_BLINK})
		if st := m.AuthStats(); st.Stale != 1 || st.Failed != 0 || st.Challenges != 2 {
			t.Fatalf("after expiry: %+v, want one stale re-challenge", st)
		}
		// The miner forgets its nonces on reboot; the driver signs afresh.
		exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT})
		h.Clock.Advance(time.Minute)
		exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_BLINK})
		if !m.Snapshot().Blinking {
			t.Fatal("blink after reboot did not land")
		}
	})
	t.Run("sha-256 preferred", func(t *testing.T) {
		h := newHarness(t, func(c *antweb.Config) { c.DigestAlgorithms = []string{"MD5", "SHA-256-sess"} })
		d, m := h.Driver(0, nil)
		poll(t, d)
		if st := m.AuthStats(); st.LastAlgorithm != "SHA-256-sess" {
			t.Fatalf("algorithm %q", st.LastAlgorithm)
		}
	})
}

func TestHostileWeb(t *testing.T) {
	elsewhere, redirected := httpxtest.Elsewhere(t)
	h := newHarness(t, func(c *antweb.Config) {
		c.SlowByteDelay, c.HugeBodyBytes, c.RedirectURL = 50*time.Millisecond, 8<<20, elsewhere
	})
	d, m := h.Driver(0, func(c *antminer.Config) { c.RequestTimeout, c.MaxBodyBytes = 500*time.Millisecond, 64<<10 })
	poll(t, d) // authenticate first, so faults hit the CGI replies
	httpxtest.RunHostile(t, m.SetFault, "system info", func(ctx context.Context) error {
		_, err := d.SystemInfo(ctx)
		return err
	}, func(t *testing.T) {
		// A poll survives a broken web side: the API sample comes back with the web error noted.
		tel, err := d.Poll(ctx(t))
		if err != nil || tel.PollError == "" || tel.Hashrate_5SThs == 0 {
			t.Fatalf("poll with web fault: %v %+v", err, tel)
		}
	})
	if n := redirected(); n != 0 {
		t.Fatalf("followed a redirect to another host %d times", n)
	}
	// An API-side fault fails the poll.
	m.API().SetFault(sim.FaultSlow) // past the cgminer deadline below
	defer m.API().SetFault(sim.FaultNone)
	short, _ := h.Driver(0, func(c *antminer.Config) { c.CGMiner.ReadTimeout = 200 * time.Millisecond })
	if _, err := short.Poll(ctx(t)); !errors.Is(err, miners.ErrUnreachable) {
		t.Fatalf("poll with a slow API: %v", err)
	}
}

func TestSchemeMismatch(t *testing.T) {
	h := newHarness(t, func(c *antweb.Config) { c.TLS = true })
	d, _ := h.Driver(0, nil)
	if _, err := d.SystemInfo(ctx(t)); !errors.Is(err, antminer.ErrSchemeMismatch) || !errors.Is(err, miners.ErrUnreachable) {
		t.Fatalf("http to https: %v", err)
	}
	good, _ := h.Driver(0, func(c *antminer.Config) { c.Scheme, c.TLS = "https", h.Fleet.ClientTLS() })
	if _, err := good.SystemInfo(ctx(t)); err != nil {
		t.Fatalf("https: %v", err)
	}
	plain := newHarness(t, nil)
	bad, _ := plain.Driver(0, func(c *antminer.Config) { c.Scheme = "https" })
	if _, err := bad.SystemInfo(ctx(t)); !errors.Is(err, antminer.ErrSchemeMismatch) {
		t.Fatalf("https to http: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := antminer.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]antminer.Config{
		"scheme": {Scheme: "gopher"},
		"body":   {MaxBodyBytes: 1},
		"modes":  {PowerModes: []antminer.PowerMode{{WorkMode: "9", PowerW: 1}}},
	} {
		if _, err := antminer.New(&pb.Device{Address: "127.0.0.1:4028"}, c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	d, err := antminer.New(&pb.Device{MinerId: "x", Address: "127.0.0.1:4028"}, antminer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_ = d.Close()
}
