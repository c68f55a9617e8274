package node_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/lease"
)

// TestPairFailoverAndStaleReturn: two nodes join a pair from their HelloAcks (real memberlist on loopback,
// real gRPC); the active acquires and runs commands, the standby refuses them (FENCED) and a wrong epoch is
// refused (REFUSED_EPOCH). The active is killed (gossip vanishes, no release): the standby is promoted by the
// cloud and runs the next command. The old active comes back with its old epoch: the hello tells it who holds
// the lease, it demotes and never writes. No two nodes' writes to a miner overlap, and every write the
// simulated miners saw is in a node's write log.
func TestPairFailoverAndStaleReturn(t *testing.T) {
	h := newPairHarness(t)
	h.start("a")
	h.start("b")
	epoch := h.waitHolder("a")
	testutil.Eventually(t, "b sees a in gossip", func() bool {
		st := h.status("b")
		return st.PeerState == "alive" && st.Lease.Mode == lease.ModeStandby && st.Lease.Holder == "a"
	})
	if st := h.status("b"); !st.Paired || st.PairID != "p1" || st.Peer != "a" || st.GossipAddr == "" {
		t.Fatalf("b's pair status %+v", st)
	}
	m0, m1 := h.devs[0].GetMinerId(), h.devs[1].GetMinerId()

	h.cloud.command("a", "c1", epoch, pb.Action_ACTION_START_MINING, m0)
	if r := h.result("a", "c1"); r.GetResults()[0].GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("holder's command: %s", minerResult(r))
	}
	h.cloud.command("b", "c-standby", epoch, pb.Action_ACTION_START_MINING, m1)
	if a := h.ack("b", "c-standby"); a.GetCode() != pb.ResultCode_RESULT_CODE_FENCED {
		t.Fatalf("standby's ack %v", a)
	}
	h.cloud.command("a", "c-wrong-epoch", epoch+7, pb.Action_ACTION_START_MINING, m1)
	if a := h.ack("a", "c-wrong-epoch"); a.GetCode() != pb.ResultCode_RESULT_CODE_REFUSED_EPOCH {
		t.Fatalf("wrong epoch's ack %v", a)
	}

	h.stop("a", true) // abrupt: no gossip leave, no release
	killed := time.Now()
	epoch2 := h.waitHolder("b")
	if epoch2 <= epoch {
		t.Fatalf("promotion epoch %d after %d", epoch2, epoch)
	}
	h.cloud.command("b", "c2", epoch2, pb.Action_ACTION_START_MINING, m1)
	if r := h.result("b", "c2"); r.GetResults()[0].GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("new holder's command: %s", minerResult(r))
	}
	took := time.Since(killed)
	t.Logf("standby in control %s after the kill (lease ttl 1.5 s)", took)
	if took > 10*time.Second {
		t.Fatalf("failover took %s", took)
	}
	testutil.Eventually(t, "EVENT_KIND_LEASE promotion event at the cloud", func() bool {
		for _, e := range h.cloud.gws["b"].Events() {
			if e.GetKind() == pb.EventKind_EVENT_KIND_LEASE && strings.HasPrefix(e.GetMessage(), "promoted") {
				return true
			}
		}
		return false
	})

	if v := h.metric("b", "hashfleet_node_lease_epoch", nil); v != float64(epoch2) {
		t.Fatalf("b's lease epoch metric %v, want %d", v, epoch2)
	}
	if v := h.metric("b", "hashfleet_node_lease_mode", map[string]string{"mode": "lease"}); v != 1 {
		t.Fatalf("b's lease mode metric %v", v)
	}
	if v := h.metric("b", "hashfleet_node_lease_failovers_total", map[string]string{"kind": "cloud"}); v != 1 {
		t.Fatalf("b's failovers %v", v)
	}
	if v := h.metric("b", "hashfleet_gossip_peer_events_total", map[string]string{"state": "dead"}); v < 1 {
		t.Fatalf("b's gossip dead events %v", v)
	}

	if v := h.nodes["b"].n.LocalSite().Link(context.Background()).Pair; v == nil || v.Mode != "lease" || v.Holder != "b" || v.Epoch != epoch2 || v.WritesUntil.IsZero() {
		t.Fatalf("local UI pair panel %+v", v)
	}

	// The old active returns with its old epoch: demoted by the hello, refuses commands of its old epoch,
	// never writes.
	a := h.start("a")
	testutil.Eventually(t, "returning a demoted", func() bool {
		st := h.status("a")
		return st.Lease.Holder == "b" && st.Lease.Epoch == epoch2 && st.Lease.Mode == lease.ModeStandby
	})
	h.cloud.command("a", "c-stale", epoch, pb.Action_ACTION_START_MINING, m0)
	if ack := h.ack("a", "c-stale"); ack.GetCode() != pb.ResultCode_RESULT_CODE_FENCED && ack.GetCode() != pb.ResultCode_RESULT_CODE_REFUSED_EPOCH {
		t.Fatalf("stale command on the returning node: %v", ack)
	}
	if err := a.n.TransferLease(context.Background()); !errors.Is(err, lease.ErrNotHolder) {
		t.Fatalf("transfer from a non-holder: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	for _, e := range a.writes.Entries() {
		if e.Wrote() {
			t.Fatalf("the returning node wrote: %+v", e)
		}
	}
	if h.cloud.lease().Holder != "b" {
		t.Fatalf("cloud holder %q", h.cloud.lease().Holder)
	}
	h.checkNoOverlap()
	h.stop("a", false)
	h.stop("b", false)
}

// TestPairTransferUnderCommandStream: the holder hands the lease to its partner while the cloud sends a
// command every 50 ms to whoever holds it; every command ends SUCCEEDED on exactly one node or was refused
// (FENCED/REFUSED_EPOCH, never run) and is re-sent to the new holder; no write overlaps.
func TestPairTransferUnderCommandStream(t *testing.T) {
	h := newPairHarness(t)
	h.start("a")
	h.start("b")
	h.waitHolder("a")
	testutil.Eventually(t, "b sees a", func() bool { return h.status("b").PeerState == "alive" })

	type sent struct{ id, to string }
	var cmds []sent
	done := map[string]string{} // command → node it succeeded on
	i := 0
	send := func() {
		st := h.cloud.lease()
		if st.Holder == "" {
			return
		}
		i++
		id := fmt.Sprintf("s%03d", i)
		h.cloud.command(st.Holder, id, st.Epoch, pb.Action_ACTION_START_MINING, h.devs[i%len(h.devs)].GetMinerId())
		cmds = append(cmds, sent{id, st.Holder})
	}
	for range 10 {
		send()
		time.Sleep(50 * time.Millisecond)
	}
	if err := h.nodes["a"].n.TransferLease(context.Background()); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		send()
		time.Sleep(50 * time.Millisecond)
	}
	h.waitHolder("b")
	for range 10 {
		send()
		time.Sleep(50 * time.Millisecond)
	}
	// Every command: succeeded on its node, or refused there without running (the cloud moves it).
	retried := 0
	for _, c := range cmds {
		ack := h.ack(c.to, c.id)
		switch ack.GetCode() {
		case pb.ResultCode_RESULT_CODE_RUNNING:
			r := h.result(c.to, c.id)
			for _, m := range r.GetResults() {
				if m.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED && m.GetCode() != pb.ResultCode_RESULT_CODE_FENCED {
					t.Fatalf("command %s on %s: %s %v", c.id, c.to, minerResult(r), r)
				}
				if m.GetCode() == pb.ResultCode_RESULT_CODE_SUCCEEDED {
					if prev, ok := done[c.id]; ok && prev != c.to {
						t.Fatalf("command %s ran on %s and %s", c.id, prev, c.to)
					}
					done[c.id] = c.to
				} else {
					retried++
				}
			}
		case pb.ResultCode_RESULT_CODE_FENCED, pb.ResultCode_RESULT_CODE_REFUSED_EPOCH:
			retried++
		default:
			t.Fatalf("command %s on %s acked %v", c.id, c.to, ack)
		}
	}
	if len(done) == 0 || retried > 20 {
		t.Fatalf("%d commands succeeded, %d refused during the handover", len(done), retried)
	}
	t.Logf("%d commands: %d succeeded, %d refused during the handover (to be moved by the cloud)", len(cmds), len(done), retried)
	h.checkNoOverlap()
	h.stop("a", false)
	h.stop("b", false)
}

// TestPairCloudCutSelfFences: the active loses the cloud but not the LAN. It fences itself (no renewals)
// before the cloud lets the standby take over; the standby's first write comes after the active's fence.
// Then the LAN only: with both clouds up, no promotion happens while the cloud hears the active.
func TestPairCloudCutSelfFences(t *testing.T) {
	h := newPairHarness(t)
	h.start("a")
	h.start("b")
	epoch := h.waitHolder("a")
	testutil.Eventually(t, "b sees a", func() bool { return h.status("b").PeerState == "alive" })
	m0 := h.devs[0].GetMinerId()
	h.cloud.command("a", "c1", epoch, pb.Action_ACTION_START_MINING, m0)
	h.result("a", "c1")

	h.cloud.setWAN("a", false)
	var aFenced time.Time
	testutil.Eventually(t, "a fences itself", func() bool {
		st := h.status("a")
		if !st.Lease.Permit.OK && aFenced.IsZero() {
			aFenced = time.Now()
		}
		return !aFenced.IsZero()
	})
	epoch2 := h.waitHolder("b")
	bHolds := time.Now()
	if !aFenced.Before(bHolds) {
		t.Fatalf("a fenced at %s, b held at %s", aFenced, bHolds)
	}
	h.cloud.command("b", "c2", epoch2, pb.Action_ACTION_START_MINING, m0)
	h.result("b", "c2")
	first, _, ok := writelogSpan(h, "b")
	_, lastA, okA := writelogSpan(h, "a")
	if !ok || !okA || !lastA.Before(first) || !aFenced.Before(first) {
		t.Fatalf("a's last write %s (fenced %s), b's first %s", lastA, aFenced, first)
	}
	if st := h.status("a"); st.Lease.Permit.OK {
		t.Fatalf("cut-off node may still write: %+v", st.Lease)
	}
	h.cloud.setWAN("a", true)
	testutil.Eventually(t, "a learns b holds", func() bool {
		st := h.status("a")
		return st.Lease.Holder == "b" && st.Lease.Epoch == epoch2 && !st.Lease.Permit.OK
	})
	h.checkNoOverlap()
	h.stop("a", false)
	h.stop("b", false)
}

func writelogSpan(h *pairHarness, id string) (first, last time.Time, ok bool) {
	for _, e := range h.allWrites() {
		if e.Node != id || !e.Wrote() {
			continue
		}
		if !ok || e.Start.Before(first) {
			first = e.Start
		}
		if !ok || e.Finish.After(last) {
			last = e.Finish
		}
		ok = true
	}
	return first, last, ok
}

// TestPairLANCutNoPromotion: with the LAN between the pair cut (gossip halted on the active, so the standby
// declares it dead) but the active's cloud link up, the standby asks and the cloud refuses: no promotion
// while the cloud hears the active.
func TestPairLANCutNoPromotion(t *testing.T) {
	h := newPairHarness(t)
	h.start("a")
	h.start("b")
	epoch := h.waitHolder("a")
	testutil.Eventually(t, "b sees a", func() bool { return h.status("b").PeerState == "alive" })
	if err := h.nodes["a"].n.HaltGossip(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "b declares a dead", func() bool {
		s := h.status("b").PeerState
		return s == "dead"
	})
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if st := h.cloud.lease(); st.Holder != "a" || st.Epoch != epoch {
			t.Fatalf("promotion while the cloud hears the active: %+v", st)
		}
		if st := h.status("a"); !st.Lease.Permit.OK {
			t.Fatalf("active lost its permit: %+v", st.Lease)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var asked bool
	for _, r := range h.cloud.gws["b"].LeaseRequests() {
		asked = asked || r.GetOp() == pb.LeaseOp_LEASE_OP_PROMOTE
	}
	if !asked {
		t.Fatal("the standby never asked to be promoted (the cloud's refusal is what this test shows)")
	}
	h.stop("a", false)
	h.stop("b", false)
}

// TestPairInfoHostile: PairInfo the node cannot act on keeps writes fenced; an envelope for another node,
// or a garbled one, leaves gossip off (the lease still works through the cloud); a HelloAck without pair
// returns the node to a lone node that writes freely.
func TestPairInfoHostile(t *testing.T) {
	h := newPairHarness(t)
	gw := h.cloud.gws["a"]
	var mode string
	gw.OnHello(func(hello *pb.ControlHello, ack *pb.HelloAck) {
		h.cloud.onHello("a", hello, ack)
		switch mode {
		case "no-members":
			ack.Pair.Members = []string{"a", "x"}
		case "self-peer":
			ack.Pair.PeerNodeId = "a"
		case "garbled-key":
			ack.Pair.PairKeyEnvelope = []byte("garbage")
		case "other-node-key":
			ack.Pair.PairKeyEnvelope = append([]byte(nil), ack.Pair.PairKeyEnvelope...)
			ack.Pair.PairKeyEnvelope[len(ack.Pair.PairKeyEnvelope)-1] ^= 1
		case "none":
			ack.Pair = nil
		}
	})
	mode = "no-members"
	a := h.start("a")
	m0 := h.devs[0].GetMinerId()
	testutil.Eventually(t, "fenced on unusable pair info", func() bool { st := h.status("a"); return st.Paired && st.Pending })
	h.cloud.command("a", "c1", 0, pb.Action_ACTION_START_MINING, m0)
	if ack := h.ack("a", "c1"); ack.GetCode() != pb.ResultCode_RESULT_CODE_FENCED {
		t.Fatalf("write with unusable pair info: %v", ack)
	}
	for _, m := range []string{"self-peer", "garbled-key", "other-node-key"} {
		mode = m
		gw.DropAll()
		time.Sleep(50 * time.Millisecond)
		testutil.Eventually(t, m+" handled", func() bool {
			st := h.status("a")
			if m == "self-peer" {
				return st.Paired && st.Pending
			}
			return st.PairID == "p1" && st.GossipError != ""
		})
		if m != "self-peer" {
			if st := h.status("a"); !strings.Contains(st.GossipError, "pair key") {
				t.Fatalf("%s: gossip error %q", m, st.GossipError)
			}
			h.waitHolder("a") // the lease works without gossip: the cloud decides
		}
	}
	mode = "none"
	gw.DropAll()
	testutil.Eventually(t, "lone node again", func() bool { return !h.status("a").Paired })
	h.cloud.command("a", "c2", 0, pb.Action_ACTION_START_MINING, m0)
	if r := h.result("a", "c2"); r.GetResults()[0].GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("lone node's write: %s", minerResult(r))
	}
	if err := a.n.ReleaseLease(context.Background()); !errors.Is(err, node.ErrNotPaired) {
		t.Fatalf("release on a lone node: %v", err)
	}
	h.stop("a", false)
}

func TestPairConfigValidate(t *testing.T) {
	if err := node.DefaultPairConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, mut := range map[string]func(*node.PairConfig){
		"listen not host:port": func(c *node.PairConfig) { c.GossipListen = "7946" },
		"listen host a name":   func(c *node.PairConfig) { c.GossipListen = "gossip.local:7946" },
		"bad port":             func(c *node.PairConfig) { c.GossipListen = "0.0.0.0:99999" },
		"advertise other port": func(c *node.PairConfig) { c.GossipAdvertise = "10.0.0.2:7000" },
		"advertise a name":     func(c *node.PairConfig) { c.GossipAdvertise = "node-a:7946" },
		"lease renew ≥ ttl":    func(c *node.PairConfig) { c.Lease.RenewInterval = time.Minute },
		"gossip probe timeout": func(c *node.PairConfig) { c.Gossip.ProbeTimeout = time.Hour },
	} {
		c := node.DefaultPairConfig()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := node.DefaultPairConfig()
	c.GossipAdvertise = "10.0.0.2:7946"
	if err := c.Validate(); err != nil {
		t.Fatalf("advertise on the listen port: %v", err)
	}
}
