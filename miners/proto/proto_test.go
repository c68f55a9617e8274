package proto_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/internal/httpxtest"
	"github.com/hashfleet/hashfleet/miners/proto"
	"github.com/hashfleet/hashfleet/miners/sim/protorig"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx, exec = httpxtest.Ctx, httpxtest.Exec

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }

// harness: a small rig fleet on a fake clock, and drivers sharing that clock.
type harness = httpxtest.Harness[*protorig.Fleet, *protorig.Miner, proto.Config, *proto.Driver]

func newHarness(t *testing.T, mod func(*protorig.Config)) *harness {
	return httpxtest.Start(t, protorig.Start, protorig.DefaultConfig(), func(c *protorig.Config, clk *clock.Fake) {
		c.Count, c.Clock, c.Seed, c.RebootDuration = 2, clk, 42, time.Minute
	}, mod, proto.New, proto.DefaultConfig(), func(c *proto.Config, clk *clock.Fake) {
		c.Password, c.Clock, c.RequestTimeout = protorig.DefaultPassword, clk, 2*time.Second
	})
}

func TestPollMatchesSimulator(t *testing.T) {
	h := newHarness(t, nil)
	d, m := h.Driver(1, nil)
	m.SetErrors([]protorig.RigError{{Source: "fan", Slot: 3, Code: "FanSlow", Message: "Fan 3 is slow"}})
	h.Clock.Advance(90 * time.Second)
	tel, err := d.Poll(ctx(t))
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	s := m.Snapshot()
	if tel.MinerId != s.ID || tel.State != pb.MinerState_MINER_STATE_MINING || tel.ObservedAtUnixMs != h.Clock.Now().UnixMilli() {
		t.Errorf("id/state/time = %q %v %d", tel.MinerId, tel.State, tel.ObservedAtUnixMs)
	}
	if !near(tel.Hashrate_5SThs, s.HashrateTHs) || !near(tel.HashrateAvgThs, s.HashrateTHs) || tel.Hashrate_5SThs == 0 {
		t.Errorf("hashrate = %v/%v, want %v", tel.Hashrate_5SThs, tel.HashrateAvgThs, s.HashrateTHs)
	}
	if !near(tel.PowerW, s.PowerW) || !near(tel.EfficiencyJth, s.EfficiencyJTH) || !near(tel.PowerTargetW, float64(s.PowerTargetW)) {
		t.Errorf("power/eff/target = %v/%v/%v, want %v/%v/%v", tel.PowerW, tel.EfficiencyJth, tel.PowerTargetW, s.PowerW, s.EfficiencyJTH, s.PowerTargetW)
	}
	if tel.UptimeS != 90 || tel.Firmware != s.Firmware || tel.Model != "Proto Rig" || tel.Serial != s.Serial || tel.Mac != s.MAC {
		t.Errorf("uptime/firmware/model/serial/mac = %d %q %q %q %q", tel.UptimeS, tel.Firmware, tel.Model, tel.Serial, tel.Mac)
	}
	if len(tel.Boards) != len(s.Boards) {
		t.Fatalf("boards = %d, want %d", len(tel.Boards), len(s.Boards))
	}
	for i, b := range tel.Boards {
		sb := s.Boards[i]
		if int(b.Index) != sb.Index || !near(b.HashrateThs, sb.HashrateTHs) || !near(b.TempC, sb.AvgC) || int(b.Chips) != sb.Asics {
			t.Errorf("board %d = %v, want %+v", i, b, sb)
		}
	}
	if len(tel.FansRpm) != len(s.Fans) || int(tel.FansRpm[0]) != s.Fans[0].RPM {
		t.Errorf("fans = %v, want %+v", tel.FansRpm, s.Fans)
	}
	if len(tel.Pools) != len(s.Pools) || tel.Pools[0].Url != s.Pools[0].URL || !tel.Pools[0].Active || tel.Pools[0].Accepted != s.Pools[0].Accepted || tel.Pools[1].Status != "Idle" {
		t.Errorf("pools = %v, want %+v", tel.Pools, s.Pools)
	}
	if len(tel.Errors) != 1 || !strings.Contains(tel.Errors[0], "FanSlow") || !strings.Contains(tel.Errors[0], "fan 3") {
		t.Errorf("errors = %q", tel.Errors)
	}
	// Reads are not writes.
	if log := m.WriteLog(); len(log) != 0 {
		t.Errorf("poll wrote: %+v", log)
	}
}

func TestCommandsChangeSimulatorState(t *testing.T) {
	h := newHarness(t, nil)
	d, m := h.Driver(0, nil)
	poll := func() *pb.Telemetry {
		t.Helper()
		tel, err := d.Poll(ctx(t))
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		return tel
	}

	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING})
	if s := m.Snapshot(); s.Status != "Stopped" || s.HashrateTHs != 0 {
		t.Fatalf("after stop: %s %v", s.Status, s.HashrateTHs)
	}
	if tel := poll(); tel.State != pb.MinerState_MINER_STATE_STOPPED || tel.Hashrate_5SThs != 0 {
		t.Fatalf("poll after stop: %v %v", tel.State, tel.Hashrate_5SThs)
	}
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_START_MINING})
	if s := m.Snapshot(); s.Status != "Mining" {
		t.Fatalf("after start: %s", s.Status)
	}

	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 3000})
	if s := m.Snapshot(); s.PowerTargetW != 3000 || s.PowerW != 3000 {
		t.Fatalf("after power target: %d %v", s.PowerTargetW, s.PowerW)
	}
	if _, err := d.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 99999}); !errors.Is(err, miners.ErrRefused) {
		t.Fatalf("out-of-range target: %v, want ErrRefused", err)
	}

	// Full curtailment stops mining; uncurtail starts it again.
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL})
	if s := m.Snapshot(); s.Status != "Stopped" {
		t.Fatalf("after curtail: %s", s.Status)
	}
	if tel := poll(); tel.State != pb.MinerState_MINER_STATE_CURTAILED {
		t.Fatalf("poll after curtail: %v", tel.State)
	}
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_UNCURTAIL})
	if s := m.Snapshot(); s.Status != "Mining" {
		t.Fatalf("after uncurtail: %s", s.Status)
	}
	if tel := poll(); tel.State != pb.MinerState_MINER_STATE_MINING {
		t.Fatalf("poll after uncurtail: %v", tel.State)
	}
	// Partial curtailment lowers the target; uncurtail restores the rig's default.
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL, PowerTargetW: 1500})
	if s := m.Snapshot(); s.PowerTargetW != 1500 || s.Status != "Mining" {
		t.Fatalf("after partial curtail: %d %s", s.PowerTargetW, s.Status)
	}
	if tel := poll(); tel.State != pb.MinerState_MINER_STATE_CURTAILED {
		t.Fatalf("poll after partial curtail: %v", tel.State)
	}
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_UNCURTAIL})
	if s := m.Snapshot(); s.PowerTargetW != s.DefaultPowerTargetW {
		t.Fatalf("after uncurtail: target %d, want default %d", s.PowerTargetW, s.DefaultPowerTargetW)
	}
	// The rig's own curtailment service shows as CURTAILED.
	m.SetCurtailment(true)
	if tel := poll(); tel.State != pb.MinerState_MINER_STATE_CURTAILED || tel.Hashrate_5SThs != 0 {
		t.Fatalf("poll while the rig curtails itself: %v %v", tel.State, tel.Hashrate_5SThs)
	}
	m.SetCurtailment(false)

	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_BLINK, Params: map[string]string{"seconds": "30"}})
	if !m.Snapshot().Locating {
		t.Fatal("not locating after blink")
	}
	h.Clock.Advance(31 * time.Second)
	if m.Snapshot().Locating {
		t.Fatal("still locating after 31s of a 30s blink")
	}

	pools := []*pb.Pool{
		{Url: "stratum+tcp://second.example:3333", User: "w2", Password: "p2", Priority: 5},
		{Url: "stratum+tcp://first.example:3333", User: "w1", Password: "p1", Priority: 1},
	}
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS, Pools: pools})
	s := m.Snapshot()
	if len(s.Pools) != 2 || s.Pools[0].URL != "stratum+tcp://first.example:3333" || s.Pools[0].User != "w1" || s.Pools[0].Password != "p1" || s.Pools[1].URL != "stratum+tcp://second.example:3333" {
		t.Fatalf("pools after update: %+v", s.Pools)
	}
	if _, err := d.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS, Pools: make([]*pb.Pool, 4)}); !errors.Is(err, miners.ErrRefused) {
		t.Fatalf("4 pools: %v, want ErrRefused", err)
	}
	if msg := exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_GET_POOLS}); !strings.Contains(msg, "first.example") || !strings.HasPrefix(msg, "2 pools") {
		t.Fatalf("get pools: %q", msg)
	}
	m.SetErrors([]protorig.RigError{{Source: "psu", Slot: 1, Code: "PsuHot", Message: "PSU hot"}})
	if msg := exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_GET_ERRORS}); !strings.Contains(msg, "PsuHot") {
		t.Fatalf("get errors: %q", msg)
	}

	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT})
	if _, err := d.Poll(ctx(t)); !errors.Is(err, miners.ErrUnreachable) {
		t.Fatalf("poll while rebooting: %v, want ErrUnreachable", err)
	}
	h.Clock.Advance(time.Minute)
	if tel := poll(); tel.UptimeS != 0 || tel.State != pb.MinerState_MINER_STATE_MINING {
		t.Fatalf("after reboot: uptime %d state %v", tel.UptimeS, tel.State)
	}

	if _, err := d.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_UNSPECIFIED}); !errors.Is(err, miners.ErrUnsupported) {
		t.Fatalf("unspecified action: %v, want ErrUnsupported", err)
	}

	// Every accepted write is in the rig's log, in order, by the password principal.
	var paths []string
	for _, r := range m.WriteLog() {
		if r.Accepted {
			paths = append(paths, r.Method+" "+r.Path)
			if r.Principal != "password" {
				t.Errorf("record %+v: principal %q", r, r.Principal)
			}
		}
	}
	want := []string{
		"POST /api/v1/mining/stop", "POST /api/v1/mining/start", "PUT /api/v1/mining/target",
		"POST /api/v1/mining/stop", "POST /api/v1/mining/start", "PUT /api/v1/mining/target",
		"PUT /api/v1/mining/target", "POST /api/v1/system/locate", "POST /api/v1/pools", "POST /api/v1/system/reboot",
	}
	if strings.Join(paths, ",") != strings.Join(want, ",") {
		t.Errorf("accepted writes:\n got %q\nwant %q", paths, want)
	}
}

func TestBearerLogin(t *testing.T) {
	h := newHarness(t, nil)
	bad, m := h.Driver(0, func(c *proto.Config) { c.Password = "not-the-password" })
	_, err := bad.Poll(ctx(t))
	if !errors.Is(err, miners.ErrRefused) || !errors.Is(err, proto.ErrBadPassword) || !strings.Contains(err.Error(), "login refused") {
		t.Fatalf("wrong password: %v, want ErrRefused naming the login", err)
	}
	// A write with a wrong password is refused and never reaches the rig's state.
	if _, err := bad.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING}); !errors.Is(err, miners.ErrRefused) {
		t.Fatalf("stop with wrong password: %v", err)
	}
	if m.Snapshot().Stopped {
		t.Fatal("rig stopped by a client with a wrong password")
	}

	none, _ := h.Driver(0, func(c *proto.Config) { c.Password = "" })
	if _, err := none.Poll(ctx(t)); !errors.Is(err, proto.ErrNoCredentials) {
		t.Fatalf("no credentials: %v", err)
	}

	// Access tokens expire on the rig's clock; the driver refreshes and carries on.
	d, _ := h.Driver(0, nil)
	if _, err := d.Poll(ctx(t)); err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(protorig.DefaultAccessTokenTTL + time.Minute)
	if _, err := d.Poll(ctx(t)); err != nil {
		t.Fatalf("poll after token expiry: %v", err)
	}
	// The password changes: refresh still works (refresh tokens outlive it); after the refresh token expires
	// too the driver logs in again and is refused.
	m.SetPassword("a-new-password")
	h.Clock.Advance(25 * time.Hour)
	if _, err := d.Poll(ctx(t)); !errors.Is(err, miners.ErrRefused) {
		t.Fatalf("poll after password change: %v, want ErrRefused", err)
	}
}

func TestPairingAndJWT(t *testing.T) {
	h := newHarness(t, nil)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	jwtOnly := func(k ed25519.PrivateKey, iss string) func(*proto.Config) {
		return func(c *proto.Config) { c.Password, c.SigningKey, c.Issuer = "", k, iss }
	}

	d, m := h.Driver(0, jwtOnly(key, "node-a"))
	if _, err := d.Poll(ctx(t)); !errors.Is(err, proto.ErrNotPaired) || !errors.Is(err, miners.ErrRefused) {
		t.Fatalf("poll before pairing: %v, want ErrNotPaired", err)
	}
	info, err := d.Pair(ctx(t))
	if err != nil {
		t.Fatalf("pair: %v", err)
	}
	s := m.Snapshot()
	if info.Serial != s.Serial || info.MAC != s.MAC || !s.AuthKey.Equal(key.Public()) {
		t.Fatalf("pairing info %+v, rig key %x", info, s.AuthKey)
	}
	if _, err := d.Poll(ctx(t)); err != nil {
		t.Fatalf("poll after pairing: %v", err)
	}
	exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING})
	log := m.WriteLog()
	if last := log[len(log)-1]; last.Path != "/api/v1/mining/stop" || last.Principal != "jwt:node-a" || !last.Accepted {
		t.Fatalf("write by JWT logged as %+v", last)
	}
	// Tokens stay valid across time as the driver re-mints them.
	h.Clock.Advance(10 * time.Minute)
	if _, err := d.Poll(ctx(t)); err != nil {
		t.Fatalf("poll 10 min later: %v", err)
	}

	// A JWT signed by another key is refused by the rig, and the rig's state does not change.
	intruder, _ := h.Driver(0, jwtOnly(otherKey, "node-b"))
	if _, err := intruder.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_START_MINING}); !errors.Is(err, miners.ErrRefused) {
		t.Fatalf("JWT of another key: %v, want ErrRefused", err)
	}
	if !m.Snapshot().Stopped {
		t.Fatal("rig started by a JWT of another key")
	}
	if _, err := intruder.Pair(ctx(t)); !errors.Is(err, miners.ErrRefused) {
		t.Fatalf("re-pairing an owned rig without the password: %v, want ErrRefused", err)
	}
	if !m.Snapshot().AuthKey.Equal(key.Public()) {
		t.Fatal("intruder replaced the pairing key")
	}

	// With the password, another node can take the rig over (operator-confirmed transfer); then the first
	// node's JWTs stop working.
	newOwner, _ := h.Driver(0, func(c *proto.Config) { c.SigningKey, c.Issuer = otherKey, "node-b" })
	if _, err := newOwner.Pair(ctx(t)); err != nil {
		t.Fatalf("pair with password fallback: %v", err)
	}
	if _, err := newOwner.Poll(ctx(t)); err != nil {
		t.Fatalf("new owner poll: %v", err)
	}
	if _, err := d.Poll(ctx(t)); !errors.Is(err, proto.ErrNotPaired) {
		t.Fatalf("old owner after transfer: %v, want ErrNotPaired", err)
	}
	// Re-pairing with the key already registered works without the password (authenticated by the JWT).
	again, _ := h.Driver(0, jwtOnly(otherKey, "node-b"))
	if _, err := again.Pair(ctx(t)); err != nil {
		t.Fatalf("re-pair with the current key: %v", err)
	}
	if err := again.Unpair(ctx(t)); err != nil || m.Snapshot().AuthKey != nil {
		t.Fatalf("unpair: %v", err)
	}
}

func TestHostileReplies(t *testing.T) {
	elsewhere, redirected := httpxtest.Elsewhere(t)
	h := newHarness(t, func(c *protorig.Config) {
		c.SlowByteDelay, c.HugeBodyBytes, c.RedirectURL = 50*time.Millisecond, 8<<20, elsewhere
	})
	d, m := h.Driver(0, func(c *proto.Config) { c.RequestTimeout, c.MaxBodyBytes = 500*time.Millisecond, 64<<10 })
	if _, err := d.Poll(ctx(t)); err != nil { // log in and cache the rig info first
		t.Fatal(err)
	}
	httpxtest.RunHostile(t, m.SetFault, "poll", func(ctx context.Context) error {
		_, err := d.Poll(ctx)
		return err
	}, nil)
	if n := redirected(); n != 0 {
		t.Fatalf("driver followed a redirect to another host %d times", n)
	}
	if _, err := d.Poll(ctx(t)); err != nil {
		t.Fatalf("poll after faults cleared: %v", err)
	}
}

func TestSchemeMismatch(t *testing.T) {
	t.Run("http to https", func(t *testing.T) {
		h := newHarness(t, func(c *protorig.Config) { c.TLS = true })
		d, _ := h.Driver(0, nil)
		if _, err := d.Poll(ctx(t)); !errors.Is(err, proto.ErrSchemeMismatch) || !errors.Is(err, miners.ErrUnreachable) || !strings.Contains(err.Error(), "speaks HTTPS") {
			t.Fatalf("poll: %v, want ErrSchemeMismatch", err)
		}
		good, _ := h.Driver(0, func(c *proto.Config) { c.Scheme, c.TLS = "https", h.Fleet.ClientTLS() })
		if _, err := good.Poll(ctx(t)); err != nil {
			t.Fatalf("https poll: %v", err)
		}
	})
	t.Run("https to http", func(t *testing.T) {
		h := newHarness(t, nil)
		d, _ := h.Driver(0, func(c *proto.Config) { c.Scheme = "https" })
		if _, err := d.Poll(ctx(t)); !errors.Is(err, proto.ErrSchemeMismatch) || !strings.Contains(err.Error(), "plain HTTP") {
			t.Fatalf("poll: %v, want ErrSchemeMismatch", err)
		}
	})
	t.Run("tls alert to http", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				buf := make([]byte, 4096)
				_, _ = c.Read(buf)
				_, _ = c.Write([]byte{0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46}) // TLS alert: protocol_version
				c.Close()
			}
		}()
		defer func() { ln.Close(); <-done }()
		d, err := proto.New(&pb.Device{MinerId: "x", Address: ln.Addr().String()}, proto.Config{Password: "whatever1"})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if _, err := d.Poll(ctx(t)); !errors.Is(err, proto.ErrSchemeMismatch) {
			t.Fatalf("poll: %v, want ErrSchemeMismatch", err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	if err := proto.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]proto.Config{
		"ttl":    {TokenTTL: time.Hour},
		"scheme": {Scheme: "ftp"},
		"body":   {MaxBodyBytes: 10},
		"locate": {LocateSeconds: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := proto.New(&pb.Device{Address: "127.0.0.1:1"}, c); err == nil {
			t.Errorf("%s: New accepted", name)
		}
	}
	if _, err := proto.New(&pb.Device{MinerId: "x"}, proto.Config{}); err == nil {
		t.Error("New accepted a device without address")
	}
}
