package uplink_test

import (
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/internal/gatewaytest"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/uplink"
)

// TestLeaseTraffic: the hello carries the gossip address and lease epoch, heartbeats the current epoch;
// lease requests go out on the control stream only while the link is up (never kept for later), and the
// cloud's grants and denials reach Env.Lease.
func TestLeaseTraffic(t *testing.T) {
	gw, err := gatewaytest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Stop()
	gw.OnLease(func(r *pb.LeaseRequest) []*pb.CloudToNode {
		if r.GetOp() == pb.LeaseOp_LEASE_OP_ACQUIRE {
			return []*pb.CloudToNode{{Msg: &pb.CloudToNode_LeaseGrant{LeaseGrant: &pb.LeaseGrant{PairId: r.GetPairId(),
				Holder: r.GetNodeId(), Epoch: 3, RequestId: r.GetRequestId(), TtlMs: 6000}}}}
		}
		return []*pb.CloudToNode{{Msg: &pb.CloudToNode_LeaseDenied{LeaseDenied: &pb.LeaseDenied{PairId: r.GetPairId(),
			Holder: "other", Epoch: 9, RequestId: r.GetRequestId(), Reason: "no"}}}}
	})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	sys := actors.NewSystem(log)
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	leaseBox, gateBox := &inbox{}, &inbox{answerCmd: true}
	leasePID := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return leaseBox }))
	gatePID := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return gateBox }))
	var epoch atomic.Uint64
	epoch.Store(2)
	cfg := uplink.DefaultConfig()
	cfg.NodeID, cfg.Dial, cfg.HandshakeTimeout = "n1", gw.Dial, 2*time.Second
	pid := sys.Root.Spawn(uplink.Props(cfg, uplink.Env{Gate: gatePID, Lease: leasePID, LeaseEpoch: epoch.Load,
		GossipAddr: func() string { return "10.1.2.3:7946" }, Clock: clk, Logger: log, Seed: 1}))
	defer func() {
		for _, p := range []*actor.PID{pid, leasePID, gatePID} {
			_ = sys.Root.StopFuture(p).Wait()
		}
		sys.Shutdown()
	}()
	status := func() uplink.Status {
		s, err := actors.Request[uplink.Status](sys.Root, pid, &uplink.StatusRequest{}, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	testutil.Eventually(t, "link up", func() bool { return status().Up })
	h := gw.Hellos()
	if len(h) != 1 || h[0].Msg.GetGossipAddr() != "10.1.2.3:7946" || h[0].Msg.GetLeaseEpoch() != 2 {
		t.Fatalf("hello %+v", h)
	}

	sys.Root.Send(pid, &pb.LeaseRequest{PairId: "p", NodeId: "n1", Op: pb.LeaseOp_LEASE_OP_ACQUIRE, RequestId: "r1"})
	sys.Root.Send(pid, &pb.LeaseRequest{PairId: "p", NodeId: "n1", Op: pb.LeaseOp_LEASE_OP_RENEW, Epoch: 3, RequestId: "r2"})
	testutil.Eventually(t, "grant and denial delivered", func() bool {
		return len(all[*pb.LeaseGrant](leaseBox)) == 1 && len(all[*pb.LeaseDenied](leaseBox)) == 1
	})
	if g := all[*pb.LeaseGrant](leaseBox)[0]; g.GetRequestId() != "r1" || g.GetEpoch() != 3 {
		t.Fatalf("grant %v", g)
	}
	if d := all[*pb.LeaseDenied](leaseBox)[0]; d.GetRequestId() != "r2" || d.GetHolder() != "other" {
		t.Fatalf("denial %v", d)
	}
	if len(all[*pb.LeaseGrant](gateBox)) != 0 {
		t.Fatal("lease answers must not reach the gate")
	}

	epoch.Store(3)
	clk.Advance(cfg.HeartbeatInterval)
	testutil.Eventually(t, "heartbeat with the epoch", func() bool {
		e := gw.PingEpochs()
		return len(e) > 0 && e[len(e)-1] == 3
	})

	// Down: a lease request is dropped, not kept for the next session.
	gw.Refuse(true)
	gw.DropAll()
	testutil.Eventually(t, "link down", func() bool { return !status().Up })
	sys.Root.Send(pid, &pb.LeaseRequest{PairId: "p", NodeId: "n1", Op: pb.LeaseOp_LEASE_OP_RENEW, Epoch: 3, RequestId: "r3"})
	gw.Refuse(false)
	clk.Advance(time.Minute)
	testutil.Eventually(t, "link up again", func() bool { return status().Up })
	status() // the uplink has handled everything sent before
	for _, r := range gw.LeaseRequests() {
		if r.GetRequestId() == "r3" {
			t.Fatal("a lease request made while down was sent later")
		}
	}
	if n := len(gw.LeaseRequests()); n != 2 {
		t.Fatalf("%d lease requests, want 2", n)
	}
}
