package node_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/identity"
	"google.golang.org/protobuf/proto"
)

// transferSpec is ACTION_TRANSFER of miner to node "n2" (key to), carrying the pool password sealed to
// each of from.
func transferSpec(t *testing.T, miner string, to *identity.Identity, from map[string]*identity.Identity) *pb.CommandSpec {
	t.Helper()
	spec := sealedPools(t, miner, "pool-s3cret", from)
	spec.Action, spec.Pools = pb.Action_ACTION_TRANSFER, nil
	spec.Params = map[string]string{sealing.ParamTransferTo: "n2",
		sealing.ParamTransferCredentialKey: base64.StdEncoding.EncodeToString(to.CredentialPublicKey().Bytes())}
	return spec
}

// TestTransferReseals: the outgoing node opens its own envelope of a credential and seals it to the new
// owner, whose key opens it and whose key only; hostile or malformed transfer specs are refused with
// ErrSealedSecret and nothing in the result.
func TestTransferReseals(t *testing.T) {
	h := newDrivers(t)
	cfg := sim.DefaultConfig()
	cfg.Count = 1
	f, err := sim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	dev := f.Devices()[0]
	id := dev.GetMinerId()
	h.owned[id] = true
	to, err := identity.Create(t.TempDir() + "/identity")
	if err != nil {
		t.Fatal(err)
	}
	drv, err := h.d.NewForCommands(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()

	msg, err := drv.Execute(pairCtx(t), transferSpec(t, id, to, map[string]*identity.Identity{"n1": h.id}))
	if err != nil {
		t.Fatal(err)
	}
	summary, envs, ok, err := sealing.ParseResealed(msg)
	if err != nil || !ok || len(envs) != 1 || !strings.Contains(summary, "re-sealed 1 credential(s) to node n2") {
		t.Fatalf("result %q: %d envelopes, %v", summary, len(envs), err)
	}
	toKey, _ := to.HPKEPrivateKey()
	pt, err := sealing.Open(toKey, envs[0], "n2", id, sealing.PoolPassword(0))
	if err != nil || string(pt) != "pool-s3cret" {
		t.Fatalf("the new owner opens %q, %v", pt, err)
	}
	ownKey, _ := h.id.HPKEPrivateKey()
	if _, err := sealing.Open(ownKey, envs[0], "n2", id, sealing.PoolPassword(0)); err == nil {
		t.Fatal("the outgoing node's key opens the new owner's envelope")
	}
	if strings.Contains(msg, "pool-s3cret") {
		t.Fatal("the plaintext is in the result")
	}

	good := transferSpec(t, id, to, map[string]*identity.Identity{"n1": h.id})
	bad := map[string]func(s *pb.CommandSpec){
		"no target":           func(s *pb.CommandSpec) { delete(s.Params, sealing.ParamTransferTo) },
		"target is this node": func(s *pb.CommandSpec) { s.Params[sealing.ParamTransferTo] = "n1" },
		"target not an id":    func(s *pb.CommandSpec) { s.Params[sealing.ParamTransferTo] = "../n2" },
		"key not base64":      func(s *pb.CommandSpec) { s.Params[sealing.ParamTransferCredentialKey] = "%%%" },
		"key wrong size":      func(s *pb.CommandSpec) { s.Params[sealing.ParamTransferCredentialKey] = "AAAA" },
		"signing key bad":     func(s *pb.CommandSpec) { s.Params[sealing.ParamTransferSigningKey] = "AAAA" },
		"envelope garbage":    func(s *pb.CommandSpec) { s.Sealed[0].Envelope = []byte("junk") },
		"envelope duplicated": func(s *pb.CommandSpec) { s.Sealed = append(s.Sealed, s.Sealed[0]) },
		"envelope rebound":    func(s *pb.CommandSpec) { s.Sealed[0].Purpose = sealing.PoolPassword(1) },
		"another node's key": func(s *pb.CommandSpec) {
			other := transferSpec(t, id, to, map[string]*identity.Identity{"n1": to}) // bound to n1, sealed to another key
			s.Sealed = other.Sealed
		},
	}
	for name, mutate := range bad {
		spec := proto.Clone(good).(*pb.CommandSpec)
		mutate(spec)
		msg, err := drv.Execute(pairCtx(t), spec)
		if !errors.Is(err, node.ErrSealedSecret) || msg != "" {
			t.Errorf("%s: %q, %v; want ErrSealedSecret", name, msg, err)
		}
	}
	// Envelopes for other nodes are not this node's to re-seal: nothing to do for them.
	msg, err = drv.Execute(pairCtx(t), transferSpec(t, id, to, map[string]*identity.Identity{"n3": to}))
	if _, envs, _, perr := sealing.ParseResealed(msg); err != nil || perr != nil || len(envs) != 0 {
		t.Fatalf("others' envelopes: %q, %v", msg, err)
	}
}
