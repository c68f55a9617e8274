package node_test

import (
	"errors"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/credentials"
	"github.com/hashfleet/hashfleet/node/identity"
)

// sealedPools is an update_pools spec whose first pool's password is sealed to each of to (node id → key).
func sealedPools(t *testing.T, miner, password string, to map[string]*identity.Identity) *pb.CommandSpec {
	t.Helper()
	spec := &pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS, Pools: []*pb.Pool{
		{Url: "stratum+tcp://pool.example:3333", User: "worker.1", Priority: 0},
		{Url: "stratum+tcp://backup.example:3333", User: "worker.1", Priority: 1},
	}}
	for nodeID, id := range to {
		env, err := sealing.Seal(id.CredentialPublicKey(), nodeID, miner, sealing.PoolPassword(0), []byte(password))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := env.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		spec.Sealed = append(spec.Sealed, &pb.SealedSecret{MinerId: miner, Purpose: sealing.PoolPassword(0), Envelope: raw})
	}
	return spec
}

// startOwnedSimMiner starts one simulated CGMiner miner owned by h's node and a command driver for it; both
// are closed when the test ends, the driver first.
func startOwnedSimMiner(t *testing.T, h *driversHarness) (*sim.Fleet, *pb.Device, miners.Driver) {
	t.Helper()
	cfg := sim.DefaultConfig()
	cfg.Count = 1
	f, err := sim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	dev := f.Devices()[0]
	h.owned[dev.GetMinerId()] = true
	drv, err := h.d.NewForCommands(dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = drv.Close() })
	return f, dev, drv
}

// newPeerIdentity is another node's identity, in its own temporary directory.
func newPeerIdentity(t *testing.T) *identity.Identity {
	t.Helper()
	id, err := identity.Create(t.TempDir() + "/identity")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestSealedPoolPasswordReachesMiner: update_pools with a pool password sealed to this node (and to its
// pair partner) sets the plaintext on a real simulated miner; the spec handed in keeps only envelopes.
func TestSealedPoolPasswordReachesMiner(t *testing.T) {
	h := newDrivers(t)
	f, dev, drv := startOwnedSimMiner(t, h)
	partner := newPeerIdentity(t)
	spec := sealedPools(t, dev.GetMinerId(), "pool-s3cret", map[string]*identity.Identity{"n1": h.id, "n2": partner})
	if _, err := drv.Execute(pairCtx(t), spec); err != nil {
		t.Fatal(err)
	}
	pools := f.Miners()[0].Snapshot().Pools
	if len(pools) != 2 || pools[0].Password != "pool-s3cret" || pools[0].User != "worker.1" || pools[1].Password == "pool-s3cret" {
		t.Fatalf("miner pools %+v", pools)
	}
	for _, p := range spec.GetPools() {
		if p.GetPassword() != "" {
			t.Fatalf("the caller's spec was given a plaintext: %+v", p)
		}
	}

	// Commands without sealed secrets pass through untouched.
	if _, err := drv.Execute(pairCtx(t), &pb.CommandSpec{Action: pb.Action_ACTION_GET_POOLS}); err != nil {
		t.Fatal(err)
	}
}

// TestSealedPoolPasswordRefusals: each hostile or unusable sealed secret fails the command before the miner
// is written.
func TestSealedPoolPasswordRefusals(t *testing.T) {
	h := newDrivers(t)
	f, dev, drv := startOwnedSimMiner(t, h)
	miner := dev.GetMinerId()
	other := newPeerIdentity(t)
	before := f.Miners()[0].Snapshot().Pools

	for _, tc := range []struct {
		name string
		spec func() *pb.CommandSpec
	}{
		{"sealed only to another node", func() *pb.CommandSpec {
			return sealedPools(t, miner, "pw", map[string]*identity.Identity{"n2": other})
		}},
		{"bound to this node but sealed to another key", func() *pb.CommandSpec {
			return sealedPools(t, miner, "pw", map[string]*identity.Identity{"n1": other})
		}},
		{"malformed envelope", func() *pb.CommandSpec {
			s := sealedPools(t, miner, "pw", map[string]*identity.Identity{"n1": h.id})
			s.Sealed[0].Envelope = s.Sealed[0].Envelope[:len(s.Sealed[0].Envelope)-3]
			return s
		}},
		{"tampered ciphertext", func() *pb.CommandSpec {
			s := sealedPools(t, miner, "pw", map[string]*identity.Identity{"n1": h.id})
			s.Sealed[0].Envelope[len(s.Sealed[0].Envelope)-1] ^= 1
			return s
		}},
		{"two envelopes for this node", func() *pb.CommandSpec {
			s := sealedPools(t, miner, "pw", map[string]*identity.Identity{"n1": h.id})
			s.Sealed = append(s.Sealed, s.Sealed[0])
			return s
		}},
		{"envelope moved to another purpose", func() *pb.CommandSpec {
			s := sealedPools(t, miner, "pw", map[string]*identity.Identity{"n1": h.id})
			s.Sealed[0].Purpose = sealing.PoolPassword(1)
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := drv.Execute(pairCtx(t), tc.spec())
			if !errors.Is(err, node.ErrSealedSecret) {
				t.Fatalf("err %v, want ErrSealedSecret", err)
			}
		})
	}
	// An envelope for another miner is never opened for this one.
	spec := sealedPools(t, "other-miner", "pw", map[string]*identity.Identity{"n1": h.id})
	spec.Sealed = append(spec.Sealed, sealedPools(t, miner, "pw", map[string]*identity.Identity{"n2": other}).Sealed...)
	if _, err := drv.Execute(pairCtx(t), spec); !errors.Is(err, node.ErrSealedSecret) {
		t.Fatalf("other miner's envelope: %v", err)
	}
	if got := f.Miners()[0].Snapshot().Pools; len(got) != len(before) || (len(got) > 0 && got[0].URL != before[0].URL) {
		t.Fatalf("a refused command wrote the miner: %+v", got)
	}

	// A device this node does not own is never opened for.
	h.owned[miner] = false
	spec = sealedPools(t, miner, "pw", map[string]*identity.Identity{"n1": h.id})
	if _, err := drv.Execute(pairCtx(t), spec); !errors.Is(err, credentials.ErrNotOwner) {
		t.Fatalf("unowned device: %v", err)
	}
	// Without a credential key a sealed secret cannot be used.
	bare := &node.Drivers{NodeID: "n1"}
	bd, err := bare.NewForCommands(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer bd.Close()
	if _, err := bd.Execute(pairCtx(t), sealedPools(t, miner, "pw", map[string]*identity.Identity{"n1": h.id})); !errors.Is(err, node.ErrNoCredentialKey) {
		t.Fatalf("no key: %v", err)
	}
}
