package bootstrap

import (
	"context"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/lease"
	"google.golang.org/grpc"
)

// failoverTarget is the goal for the standby to be in control after the active dies, with default
// settings.
const failoverTarget = 10 * time.Second

// killAndFailover runs a steady command stream through the API, stops the active (killed: its gossip
// vanishes; or stopped: its gossip leaves; its lease is never released), and checks that the standby is in
// control (its first successful miner write) within failoverTarget, that every command the API accepted
// reaches a final state (none stuck or dropped) and that no two nodes' writes to a miner overlap. It returns
// the time to the standby's first write.
func killAndFailover(t *testing.T, p *pairSite, kill bool) time.Duration {
	t.Helper()
	stop := make(chan struct{})
	stream := p.commandStream(300*time.Millisecond, stop, "start")
	time.Sleep(1500 * time.Millisecond)
	epoch := p.cloud().Epoch
	killed := time.Now() // before the stop: a graceful one includes its handover
	p.stop("a", kill)
	var first time.Time
	waitFor(t, 2*failoverTarget, "the standby's first write", func() bool {
		var ok bool
		first, ok = p.firstWrite("b", killed)
		return ok
	})
	took := first.Sub(killed)
	time.Sleep(time.Second)
	close(stop)
	ids := <-stream
	if c := p.cloud(); c.Holder != p.nodes["b"].id || c.Epoch <= epoch {
		t.Fatalf("cloud after failover: %+v (epoch before %d)", c, epoch)
	}
	res := p.settle(ids, 90*time.Second)
	var succeeded, failed int
	for _, v := range res {
		if v.Status == "succeeded" {
			succeeded++
		} else {
			failed++
			for _, r := range v.Results {
				t.Logf("command not succeeded: %s %s %s", r.MinerID, r.Status, r.Message)
			}
		}
	}
	writes := p.checkWrites()
	t.Logf("standby in control %s after the active was %s; %d commands accepted: %d succeeded, %d failed (interrupted); %d miner writes",
		took, map[bool]string{true: "killed", false: "stopped"}[kill], len(ids), succeeded, failed, writes)
	if took > failoverTarget {
		t.Fatalf("failover took %s, target %s", took, failoverTarget)
	}
	return took
}

// (a) The active is killed in-process (gossip vanishes, no release). Then it comes back with its old
// epoch (d): the cloud's hello tells it who holds the lease, it stays fenced and never writes.
func TestPairKillActive(t *testing.T) {
	p := startPair(t, 3)
	killAndFailover(t, p, true)
	epoch := p.cloud().Epoch
	restarted := time.Now()
	p.start("a")
	waitFor(t, 15*time.Second, "the returning node demoted", func() bool {
		st := p.status("a")
		return st.Lease.Holder == p.nodes["b"].id && st.Lease.Epoch == epoch && !st.Lease.Permit.OK
	})
	stop := make(chan struct{})
	stream := p.commandStream(200*time.Millisecond, stop, "start")
	time.Sleep(3 * time.Second)
	close(stop)
	p.settle(<-stream, 30*time.Second)
	if first, ok := p.firstWrite("a", restarted); ok {
		t.Fatalf("the returning stale node wrote at %s", first)
	}
	if c := p.cloud(); c.Holder != p.nodes["b"].id || c.Epoch != epoch {
		t.Fatalf("the stale node's return moved the lease: %+v", c)
	}
	p.checkWrites()
}

// (a) The active stops in-process without releasing its lease (KeepLeaseOnStop; its gossip leaves
// gracefully): the standby promotes as soon as the cloud lets it.
func TestPairStopActiveWithoutRelease(t *testing.T) {
	p := startPairWith(t, 3, func(_ string, o *NodeRunOptions) {
		o.PairTune = func(c *node.PairConfig) { c.KeepLeaseOnStop = true }
	})
	killAndFailover(t, p, false)
}

// A graceful stop of the active hands the lease to the live standby first (the upgrade path): the standby
// writes within a few seconds instead of after the lease's expiry, with every accepted command run once and
// no two nodes' writes overlapping (killAndFailover's checks).
func TestPairGracefulStopHandsOver(t *testing.T) {
	p := startPair(t, 3)
	epoch := p.cloud().Epoch
	took := killAndFailover(t, p, false)
	if took > 4*time.Second {
		t.Fatalf("the standby's first write came %s after a graceful stop; a handover should take about Drain + a round trip", took)
	}
	var pair struct {
		Failovers int `json:"failovers"`
		History   []struct {
			To   string `json:"to"`
			Kind string `json:"kind"`
		} `json:"history"`
	}
	if st := p.do("GET", "/api/v1/pairs/"+p.pairID, nil, &pair); st != 200 {
		t.Fatalf("GET pair: HTTP %d", st)
	}
	if h := pair.History; len(h) == 0 || h[len(h)-1].Kind != "transfer" || h[len(h)-1].To != p.nodes["b"].id || pair.Failovers != 0 {
		t.Fatalf("the last holder change should be a transfer to b, with no failover: %+v (epoch before %d)", pair, epoch)
	}
}

// (b) The active loses the cloud but not the LAN: it fences itself before the standby's first write, as the
// simulated miners' own write logs show (every write attributed to the node whose logged window holds it:
// after the standby's first, none of the old active's). (d) When its link comes back with its old epoch it
// is refused, demotes, and never writes.
func TestPairActiveCutFromCloud(t *testing.T) {
	part := &partition{}
	p := startPairWith(t, 3, func(name string, o *NodeRunOptions) {
		if name == "a" {
			o.GatewayDialOptions = []grpc.DialOption{grpc.WithContextDialer(part.dial)}
		}
	})
	stop := make(chan struct{})
	stream := p.commandStream(200*time.Millisecond, stop, "start")
	time.Sleep(1500 * time.Millisecond)
	part.set(true)
	cut := time.Now()
	var fenced time.Time
	waitFor(t, 15*time.Second, "a fences itself", func() bool {
		if !p.status("a").Lease.Permit.OK {
			fenced = time.Now()
			return true
		}
		return false
	})
	p.waitHolder("b", 20*time.Second)
	var first time.Time
	waitFor(t, 10*time.Second, "b's first write", func() bool {
		var ok bool
		first, ok = p.firstWrite("b", cut)
		return ok
	})
	if !fenced.Before(first) {
		t.Fatalf("a fenced at %s, after b's first write at %s", fenced, first)
	}
	close(stop)
	ids := <-stream

	a, b := p.nodes["a"].id, p.nodes["b"].id
	var sawB bool
	for _, w := range p.minerWrites() {
		switch w.Node {
		case b:
			sawB = true
		case a:
			if sawB {
				t.Fatalf("miner %s got a write from the cut-off active at %s after the standby's first", w.Miner, w.At)
			}
		}
	}
	t.Logf("cut at 0; a fenced at +%s; b's first write at +%s", fenced.Sub(cut), first.Sub(cut))

	epoch := p.cloud().Epoch
	healed := time.Now()
	part.set(false)
	waitFor(t, 15*time.Second, "a back on the cloud, demoted", func() bool {
		st := p.status("a")
		return st.Lease.CloudUp && st.Lease.Holder == b && st.Lease.Epoch == epoch && !st.Lease.Permit.OK
	})
	stop = make(chan struct{})
	stream2 := p.commandStream(200*time.Millisecond, stop, "start")
	time.Sleep(2 * time.Second)
	close(stop)
	p.settle(append(ids, <-stream2...), 60*time.Second)
	if w, ok := p.firstWrite("a", healed); ok {
		t.Fatalf("the stale active wrote at %s after returning", w)
	}
	p.checkWrites()
}

// (c) The LAN between the pair is cut (the active's gossip halts: the standby declares it dead) while the
// cloud still hears the active: the standby asks and is refused; no promotion, the active keeps writing.
func TestPairLANCutNoPromotion(t *testing.T) {
	p := startPair(t, 3)
	a := p.nodes["a"]
	epoch := p.cloud().Epoch
	if err := a.proc.Node.HaltGossip(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b declares a dead", func() bool { return p.status("b").PeerState == "dead" })
	stop := make(chan struct{})
	stream := p.commandStream(300*time.Millisecond, stop, "start")
	// Longer than the lease's TTL + margin: a promotion would have happened by now.
	deadline := time.Now().Add(9 * time.Second)
	for time.Now().Before(deadline) {
		if c := p.cloud(); c.Holder != a.id || c.Epoch != epoch {
			t.Fatalf("promotion while the cloud hears the active: %+v", c)
		}
		if st := p.status("b"); st.Lease.Mode != lease.ModeStandby {
			t.Fatalf("standby left standby: %+v", st.Lease)
		}
		time.Sleep(250 * time.Millisecond)
	}
	close(stop)
	res := p.settle(<-stream, 30*time.Second)
	for id, v := range res {
		if v.Status != "succeeded" {
			t.Fatalf("command %s %s while the active held the lease: %+v", id, v.Status, v.Results)
		}
	}
	if _, ok := p.firstWrite("b", time.Time{}); ok {
		t.Fatal("the standby wrote")
	}
	p.checkWrites()
}

// (e) Graceful TransferLease under a steady command stream: zero commands lost, none run twice, no
// overlapping writes; every command the API accepted succeeded.
func TestPairGracefulTransfer(t *testing.T) {
	p := startPair(t, 3)
	stop := make(chan struct{})
	stream := p.commandStream(150*time.Millisecond, stop, "start")
	time.Sleep(1500 * time.Millisecond)
	epoch := p.cloud().Epoch
	if err := p.nodes["a"].proc.Node.TransferLease(context.Background()); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	e2 := p.waitHolder("b", 15*time.Second)
	if e2 != epoch+1 {
		t.Fatalf("epoch after transfer %d, want %d", e2, epoch+1)
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	ids := <-stream
	res := p.settle(ids, 60*time.Second)
	for id, v := range res {
		if v.Status != "succeeded" {
			t.Fatalf("command %s lost in the handover: %s %+v", id, v.Status, v.Results)
		}
	}
	writes := p.checkWrites()
	if writes != len(ids) {
		t.Fatalf("%d miner writes for %d commands (each names one miner): lost or duplicated", writes, len(ids))
	}
	t.Logf("%d commands through a graceful transfer, epoch %d → %d, all succeeded exactly once", len(ids), epoch, e2)
}
