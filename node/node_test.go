package node_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/gate"
	"github.com/hashfleet/hashfleet/node/internal/drivertest"
	"github.com/hashfleet/hashfleet/node/internal/gatewaytest"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/site"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
}

func command(id string, seq uint64, action pb.Action, ids ...string) *pb.ControlCommand {
	p, _ := proto.Marshal(&pb.CommandPayload{MinerIds: ids, Spec: &pb.CommandSpec{Action: action}})
	return &pb.ControlCommand{CommandId: id, Actor: "user:test", NodeId: "n1", MonotonicSeq: seq, Signature: []byte("sig-" + id),
		IdempotencyKey: "idem-" + id, Payload: p}
}

func start(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

func stop(t *testing.T, n *node.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := node.DefaultConfig()
	_, err := node.New(cfg)
	if err == nil || !strings.Contains(err.Error(), "NodeID") || !strings.Contains(err.Error(), "DriverFactory") {
		t.Fatalf("empty config: %v", err)
	}
	cfg.NodeID = "n1"
	cfg.DriverFactory = node.DefaultDriverFactory(cgminer.Config{})
	cfg.Dial = (&gatewaytest.Server{}).Dial
	if _, err := node.New(cfg); !errors.Is(err, gate.ErrNoVerifier) {
		t.Fatalf("cloud link without a verifier: %v", err)
	}
	cfg.Verifier = gate.InProcessVerifier{}
	cfg.PollJitter = time.Hour
	if _, err := node.New(cfg); err == nil || !strings.Contains(err.Error(), "jitter") {
		t.Fatalf("jitter above interval: %v", err)
	}
	cfg.PollJitter = 0
	cfg.Devices = []*pb.Device{{MinerId: "a"}, {MinerId: "a"}}
	if _, err := node.New(cfg); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate devices: %v", err)
	}
}

// TestNodeWithFakeCloudAndMiners runs a whole node on a fake clock against fake miners and the fake gateway:
// ownership from the hello_ack, polling, telemetry and events uploaded and acked, a command end to end, the
// query API, and a restart that keeps the seq mark and the ownership map.
func TestNodeWithFakeCloudAndMiners(t *testing.T) {
	gw, err := gatewaytest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Stop()
	fleet, devs := drivertest.NewFleet(20)
	gw.SetDevices(devs[:10]) // the cloud confirmed 10 of them
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	dir := t.TempDir()

	cfg := node.DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.Clock, cfg.Logger = "n1", dir, clk, quietLogger()
	cfg.Devices = devs[15:] // static list until the cloud answers
	cfg.DriverFactory, cfg.Dial, cfg.Verifier = fleet.Factory, gw.Dial, gate.InProcessVerifier{}
	cfg.Registerer = prometheus.NewRegistry()
	n := start(t, cfg)
	ctx := context.Background()

	testutil.Eventually(t, "link up", func() bool { s, err := n.LinkStatus(ctx); return err == nil && s.Up })
	testutil.Eventually(t, "ownership from the hello_ack", func() bool {
		l, err := n.Miners(ctx)
		return err == nil && len(l) == 10 && l[0].MinerID == "m-0"
	})
	if h := gw.Hellos()[0]; h.Msg.GetLastSeq() != 0 || h.NodeMD != "n1" {
		t.Fatalf("hello %+v", h)
	}

	// Poll everything a few times; samples flow to the cloud in batches and are acked.
	for range 3 {
		clk.Advance(cfg.PollInterval + cfg.PollJitter)
		time.Sleep(20 * time.Millisecond)
	}
	clk.Advance(cfg.BatchInterval)
	testutil.Eventually(t, "all miners mining", func() bool {
		clk.Advance(100 * time.Millisecond)
		l, _ := n.Miners(ctx)
		for _, s := range l {
			if s.State != pb.MinerState_MINER_STATE_MINING {
				return false
			}
		}
		return len(l) == 10
	})
	testutil.Eventually(t, "telemetry at the cloud", func() bool {
		clk.Advance(cfg.BatchInterval)
		samples := 0
		for _, b := range gw.Telemetry() {
			samples += len(b.GetSamples())
		}
		return samples >= 20
	})
	testutil.Eventually(t, "state changes at the cloud", func() bool {
		clk.Advance(cfg.BatchInterval)
		k := 0
		for _, e := range gw.Events() {
			if e.GetKind() == pb.EventKind_EVENT_KIND_STATE_CHANGE && e.GetToState() == pb.MinerState_MINER_STATE_MINING {
				k++
			}
		}
		return k == 10
	})
	testutil.Eventually(t, "outbox drained by acks", func() bool {
		st, err := n.Telemetry(ctx)
		return err == nil && st.BacklogTelemetryBatches == 0 && st.BacklogEventBatches == 0
	})

	// A command from the cloud, end to end.
	gw.SendCommand(command("c1", 1, pb.Action_ACTION_STOP_MINING, "m-3", "m-4"))
	testutil.Eventually(t, "final result at the cloud", func() bool {
		for _, r := range gw.Results() {
			if r.GetCommandId() == "c1" && r.GetDone() {
				return true
			}
		}
		return false
	})
	if a := gw.Acks()[0]; a.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING {
		t.Fatalf("ack %v", a)
	}
	for _, id := range []string{"m-3", "m-4"} {
		if c := fleet.Get(id).Calls(); len(c) != 1 || c[0].Action != pb.Action_ACTION_STOP_MINING {
			t.Fatalf("%s calls %v", id, c)
		}
		s, err := n.Miner(ctx, id)
		if err != nil || s.State != pb.MinerState_MINER_STATE_STOPPED {
			t.Fatalf("%s: %v %v", id, s.State, err)
		}
	}
	// A command for a miner the cloud did not confirm is refused and audited.
	gw.SendCommand(command("c2", 2, pb.Action_ACTION_REBOOT, "m-15"))
	testutil.Eventually(t, "refusal", func() bool { return len(gw.Acks()) == 2 })
	if a := gw.Acks()[1]; a.GetCode() != pb.ResultCode_RESULT_CODE_REFUSED_OWNERSHIP {
		t.Fatalf("ack %v", a)
	}
	if len(fleet.Get("m-15").Calls()) != 0 {
		t.Fatal("executed on a miner the node does not own")
	}
	audit, err := n.Audit(0, 0)
	if err != nil || len(audit) != 2 || audit[1].GetCode() != pb.ResultCode_RESULT_CODE_REFUSED_OWNERSHIP {
		t.Fatalf("audit %v, %v", audit, err)
	}
	testutil.Eventually(t, "audit events at the cloud", func() bool {
		clk.Advance(cfg.BatchInterval)
		k := 0
		for _, e := range gw.Events() {
			if e.GetKind() == pb.EventKind_EVENT_KIND_COMMAND_AUDIT {
				k++
			}
		}
		return k == 2
	})
	if _, err := n.Miner(ctx, "m-19"); !errors.Is(err, site.ErrUnknownMiner) {
		t.Fatalf("unknown miner: %v", err)
	}
	stop(t, n)
	if _, err := n.Miners(ctx); !errors.Is(err, node.ErrNotStarted) {
		t.Fatalf("after stop: %v", err)
	}

	// Restart on the same data dir with the cloud unreachable: the confirmed ownership and the seq mark
	// survive; the hello sent once the cloud is back carries the mark.
	gw.Refuse(true)
	n = start(t, cfg)
	testutil.Eventually(t, "saved ownership used", func() bool { l, err := n.Miners(ctx); return err == nil && len(l) == 10 })
	g, err := n.Gate(ctx)
	if err != nil || g.SeqMark != 2 || g.Owned != 10 {
		t.Fatalf("gate after restart %+v, %v", g, err)
	}
	gw.Refuse(false)
	testutil.Eventually(t, "link up again", func() bool {
		clk.Advance(time.Second)
		s, _ := n.LinkStatus(ctx)
		return s.Up
	})
	hellos := gw.Hellos()
	if last := hellos[len(hellos)-1]; last.Msg.GetLastSeq() != 2 {
		t.Fatalf("hello after restart has last_seq %d, want 2", last.Msg.GetLastSeq())
	}
	// The cloud re-sends c1 (it never got... or did): DUPLICATE and the recorded result, not a second stop.
	gw.SendCommand(command("c1", 1, pb.Action_ACTION_STOP_MINING, "m-3", "m-4"))
	testutil.Eventually(t, "duplicate", func() bool {
		a := gw.Acks()
		return len(a) == 3 && a[2].GetCode() == pb.ResultCode_RESULT_CODE_DUPLICATE
	})
	if c := fleet.Get("m-3").Calls(); len(c) != 1 {
		t.Fatalf("m-3 executed %d times", len(c))
	}
	stop(t, n)
	if v := fleet.Violations(); v != 0 {
		t.Fatalf("driver contract broken %d times", v)
	}
}

func TestNodeWithoutCloudLink(t *testing.T) {
	fleet, devs := drivertest.NewFleet(3)
	cfg := node.DefaultConfig()
	cfg.NodeID, cfg.Devices, cfg.DriverFactory, cfg.Logger = "solo", devs, fleet.Factory, quietLogger()
	cfg.Clock = clock.NewFake(time.Unix(0, 0))
	n := start(t, cfg)
	if _, err := n.LinkStatus(context.Background()); !errors.Is(err, node.ErrNoUplink) {
		t.Fatalf("link status: %v", err)
	}
	if err := n.Start(context.Background()); !errors.Is(err, node.ErrAlreadyStarted) {
		t.Fatalf("second start: %v", err)
	}
	l, err := n.Miners(context.Background())
	if err != nil || len(l) != 3 {
		t.Fatalf("%v %v", l, err)
	}
	stop(t, n)
	if err := n.Start(context.Background()); !errors.Is(err, node.ErrStopped) {
		t.Fatalf("start after stop: %v", err)
	}
}

// TestNodeAgainstSimulatorOverTCP runs the node with the real CGMiner driver against simulated miners on
// loopback and the fake cloud, on the wall clock: a reboot issued by the cloud reaches exactly the miners
// named, exactly once, even when the cloud re-sends it; a replayed seq never executes.
func TestNodeAgainstSimulatorOverTCP(t *testing.T) {
	fleet, err := sim.Start(sim.Config{Count: 8, Seed: 3, RebootDuration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	gw, err := gatewaytest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Stop()
	gw.SetDevices(fleet.Devices())

	cfg := node.DefaultConfig()
	cfg.NodeID, cfg.Logger = "n1", quietLogger()
	cfg.PollInterval, cfg.PollJitter, cfg.PollTimeout = 100*time.Millisecond, 20*time.Millisecond, time.Second
	cfg.BatchInterval, cfg.MinRebootTime = 50*time.Millisecond, 200*time.Millisecond
	cfg.DriverFactory = node.DefaultDriverFactory(cgminer.Config{ReadTimeout: time.Second})
	cfg.Dial, cfg.Verifier = gw.Dial, gate.InProcessVerifier{}
	n := start(t, cfg)
	defer stop(t, n)
	ctx := context.Background()

	testutil.Eventually(t, "all mining", func() bool {
		l, err := n.Miners(ctx)
		if err != nil || len(l) != 8 {
			return false
		}
		for _, s := range l {
			if s.State != pb.MinerState_MINER_STATE_MINING {
				return false
			}
		}
		return true
	})
	ids := []string{fleet.Devices()[1].GetMinerId(), fleet.Devices()[5].GetMinerId()}
	reboot := command("r1", 1, pb.Action_ACTION_REBOOT, ids...)
	gw.SendCommand(reboot)
	testutil.Eventually(t, "reboot done", func() bool {
		for _, r := range gw.Results() {
			if r.GetCommandId() == "r1" && r.GetDone() {
				for _, mr := range r.GetResults() {
					if mr.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
						t.Fatalf("reboot result %v", mr)
					}
				}
				return true
			}
		}
		return false
	})
	gw.SendCommand(reboot) // re-sent by the cloud
	replay := command("r1-replay", 1, pb.Action_ACTION_REBOOT, fleet.Devices()[0].GetMinerId())
	gw.SendCommand(replay) // same seq, different command: a replay
	testutil.Eventually(t, "answers", func() bool { return len(gw.Acks()) == 3 })
	codes := []pb.ResultCode{}
	for _, a := range gw.Acks() {
		codes = append(codes, a.GetCode())
	}
	if !slices.Equal(codes, []pb.ResultCode{pb.ResultCode_RESULT_CODE_RUNNING, pb.ResultCode_RESULT_CODE_DUPLICATE, pb.ResultCode_RESULT_CODE_REFUSED_SEQ}) {
		t.Fatalf("acks %v", codes)
	}
	for _, m := range fleet.Miners() {
		w := m.WriteLog()
		if slices.Contains(ids, m.ID()) {
			if len(w) != 1 || w[0].Command != "restart" {
				t.Fatalf("%s write log %+v, want exactly one restart", m.ID(), w)
			}
		} else if len(w) != 0 {
			t.Fatalf("%s was written to: %+v", m.ID(), w)
		}
	}
	testutil.Eventually(t, "rebooted miners back to mining", func() bool {
		for _, id := range ids {
			s, err := n.Miner(ctx, id)
			if err != nil || s.State != pb.MinerState_MINER_STATE_MINING {
				return false
			}
		}
		return true
	})
	testutil.Eventually(t, "reboot state changes at the cloud", func() bool {
		k := 0
		for _, e := range gw.Events() {
			if e.GetKind() == pb.EventKind_EVENT_KIND_STATE_CHANGE && e.GetToState() == pb.MinerState_MINER_STATE_REBOOTING {
				k++
			}
		}
		return k == 2
	})
}
