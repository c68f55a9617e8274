package harness

import (
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/cluster/gossip"
	"github.com/hashfleet/hashfleet/node/lease"
	cloudlease "github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/simulations/oracle"
)

// wanCutWrites plays the wan-active scenario on the real write decision (node/lease.MayWrite) of both pair
// members, with the cloud's default timing (server/lease: the standby is granted ExpiresAt + Margin): the
// active's last renewal is sent at 0 and then its WAN is cut; it keeps the LAN, so it sees the standby alive
// with a cloud. Each member writes to one miner every 50ms while its permit allows; the writes are what the
// miner's log would hold.
func wanCutWrites(noSelfFence bool) []oracle.Write {
	cc := cloudlease.DefaultConfig()
	ncfg := lease.DefaultConfig()
	ncfg.NodeID, ncfg.PairID, ncfg.UnsafeTestNoSelfFence = "active", "p1", noSelfFence
	t0 := time.Unix(1_700_000_000, 0)
	a := lease.Lease{Holder: "active", Epoch: 1, FenceAt: t0.Add(ncfg.DefaultTTL - ncfg.Margin)}
	grantB := t0.Add(cc.TTL + cc.Margin) // the cloud's expiry of the request sent at 0, plus its margin
	b := lease.Lease{Holder: "active", Epoch: 1}
	var out []oracle.Write
	for at := t0; at.Before(t0.Add(12 * time.Second)); at = at.Add(50 * time.Millisecond) {
		pa := lease.MayWrite(ncfg, lease.Inputs{Now: at, Me: "active", Lease: a, CloudUp: false,
			Peer: lease.Peer{State: gossip.PeerAlive, CloudUp: true}})
		if pa.OK && pa.Valid(at) {
			out = append(out, oracle.Write{MinerID: "m", At: at, Writer: "active", Epoch: pa.Epoch, Op: "addpool"})
		}
		if !at.Before(grantB) && b.Holder != "standby" {
			b = lease.Lease{Holder: "standby", Epoch: 2, FenceAt: at.Add(ncfg.DefaultTTL - ncfg.Margin)}
		}
		bcfg := ncfg
		bcfg.NodeID, bcfg.UnsafeTestNoSelfFence = "standby", false
		pb := lease.MayWrite(bcfg, lease.Inputs{Now: at, Me: "standby", Lease: b, CloudUp: true, Peer: lease.Peer{State: gossip.PeerAlive}})
		if pb.OK && pb.Valid(at) {
			out = append(out, oracle.Write{MinerID: "m", At: at.Add(time.Millisecond), Writer: "standby", Epoch: pb.Epoch, Op: "addpool"})
		}
	}
	return out
}

// TestBrokenSelfFenceIsCaught: with self-fencing on, the active's last write precedes the standby's first
// and the single-writer oracle passes; with the test-only knob that disables it (a deliberately broken
// build), the active writes on after the standby took over and the oracle fails.
func TestBrokenSelfFenceIsCaught(t *testing.T) {
	if vs := oracle.NoOverlappingWriters(wanCutWrites(false)); len(vs) != 0 {
		t.Fatalf("self-fencing on: %v", vs)
	}
	ws := wanCutWrites(true)
	vs := oracle.NoOverlappingWriters(ws)
	if len(vs.Of(oracle.InvSingleWriter)) == 0 {
		t.Fatalf("self-fencing off: the oracle found nothing in %d writes", len(ws))
	}
	kinds := map[oracle.Kind]bool{}
	for _, v := range vs {
		kinds[v.Kind] = true
	}
	if !kinds[oracle.KindOverlap] || !kinds[oracle.KindEpochRegression] {
		t.Fatalf("want an overlap and an epoch regression, got %v", vs)
	}
}
