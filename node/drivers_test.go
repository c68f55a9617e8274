package node_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/proto"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/miners/sim/antweb"
	"github.com/hashfleet/hashfleet/miners/sim/protorig"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/credentials"
	"github.com/hashfleet/hashfleet/node/identity"
	goproto "google.golang.org/protobuf/proto"
)

// driversHarness is a node's Drivers with real keys, against simulators on loopback.
type driversHarness struct {
	t     *testing.T
	id    *identity.Identity
	d     *node.Drivers
	owned map[string]bool
}

func newDrivers(t *testing.T) *driversHarness {
	t.Helper()
	id, err := identity.Create(t.TempDir() + "/identity")
	if err != nil {
		t.Fatal(err)
	}
	key, err := id.HPKEPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	h := &driversHarness{t: t, id: id, owned: map[string]bool{}}
	h.d = &node.Drivers{NodeID: "n1", CredentialKey: key, Proto: proto.Config{SigningKey: id.MinerSigner()},
		Owns: func(m string) bool { return h.owned[m] }}
	return h
}

// withLogin returns dev carrying password sealed to node for dev.
func (h *driversHarness) withLogin(dev *pb.Device, node, user, password string) *pb.Device {
	h.t.Helper()
	env, err := sealing.Seal(h.id.CredentialPublicKey(), node, dev.GetMinerId(), sealing.PurposeMinerLogin, []byte(password))
	if err != nil {
		h.t.Fatal(err)
	}
	b, err := env.MarshalBinary()
	if err != nil {
		h.t.Fatal(err)
	}
	d := goproto.Clone(dev).(*pb.Device)
	d.LoginEnvelope, d.LoginUser = b, user
	return d
}

func pairCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPairAntminer(t *testing.T) {
	h := newDrivers(t)
	cfg := antweb.DefaultConfig()
	cfg.Count = 2
	f, err := antweb.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	stock, locked := f.Devices()[0], f.Devices()[1]
	f.Miner(locked.GetMinerId()).SetCredentials("admin", "s3cret-web")

	for _, tc := range []struct {
		name string
		dev  *pb.Device
		code pb.ResultCode
	}{
		{"stock login by default", stock, pb.ResultCode_RESULT_CODE_SUCCEEDED},
		{"own login, none given", locked, pb.ResultCode_RESULT_CODE_NEEDS_CREDENTIALS},
		{"own login, wrong one given", h.withLogin(locked, "n1", "admin", "guess"), pb.ResultCode_RESULT_CODE_WRONG_CREDENTIALS},
		{"own login given", h.withLogin(locked, "n1", "admin", "s3cret-web"), pb.ResultCode_RESULT_CODE_SUCCEEDED},
		{"login sealed to another node", h.withLogin(locked, "n2", "admin", "s3cret-web"), pb.ResultCode_RESULT_CODE_FAILED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := h.d.Pair(pairCtx(t), tc.dev)
			if o.Code != tc.code || o.Message == "" {
				t.Fatalf("%v %q, want %v", o.Code, o.Message, tc.code)
			}
		})
	}

	// The driver factory opens a sealed login only for a device the node owns.
	dev := h.withLogin(locked, "n1", "admin", "s3cret-web")
	if _, err := h.d.New(dev); !errors.Is(err, credentials.ErrNotOwner) {
		t.Fatalf("driver for an unowned device with a sealed login: %v, want ErrNotOwner", err)
	}
	h.owned[locked.GetMinerId()] = true
	drv, err := h.d.New(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	if _, err := drv.Execute(pairCtx(t), &pb.CommandSpec{Action: pb.Action_ACTION_BLINK}); err != nil || !f.Miner(locked.GetMinerId()).Snapshot().Blinking {
		t.Fatalf("blink with the sealed login: %v", err)
	}
	// Without a credential key, a sealed login cannot be used at all.
	bare := &node.Drivers{NodeID: "n1"}
	if _, err := bare.New(dev); !errors.Is(err, node.ErrNoCredentialKey) {
		t.Fatalf("no credential key: %v", err)
	}
}

func TestPairProtoRig(t *testing.T) {
	h := newDrivers(t)
	cfg := protorig.DefaultConfig()
	cfg.Count, cfg.Password = 3, "rig-password-1"
	f, err := protorig.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	fresh, taken, configured := f.Devices()[0], f.Devices()[1], f.Devices()[2]

	// An unpaired rig takes the node's key without a password; afterwards the node's JWT works.
	if o := h.d.Pair(pairCtx(t), fresh); o.Code != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("fresh rig: %v %q", o.Code, o.Message)
	}
	if !f.Miner(fresh.GetMinerId()).Snapshot().AuthKey.Equal(h.id.MinerSigningPublicKey()) {
		t.Fatal("the rig does not hold the node's miner-signing key")
	}
	h.owned[fresh.GetMinerId()] = true
	drv, err := h.d.New(fresh)
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	if _, err := drv.Poll(pairCtx(t)); err != nil {
		t.Fatalf("poll with the node's JWT: %v", err)
	}

	// A rig paired to another key needs its password.
	other := newDrivers(t)
	if o := other.d.Pair(pairCtx(t), taken); o.Code != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("pair to the other node: %v %q", o.Code, o.Message)
	}
	if o := h.d.Pair(pairCtx(t), taken); o.Code != pb.ResultCode_RESULT_CODE_NEEDS_CREDENTIALS {
		t.Fatalf("rig paired elsewhere, no password: %v %q", o.Code, o.Message)
	}
	if o := h.d.Pair(pairCtx(t), h.withLogin(taken, "n1", "", "wrong")); o.Code != pb.ResultCode_RESULT_CODE_WRONG_CREDENTIALS {
		t.Fatalf("rig paired elsewhere, wrong password: %v %q", o.Code, o.Message)
	}
	if o := h.d.Pair(pairCtx(t), h.withLogin(taken, "n1", "", "rig-password-1")); o.Code != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("rig paired elsewhere, its password: %v %q", o.Code, o.Message)
	}
	// The other node's key no longer works.
	od, _ := other.d.New(taken)
	if _, err := od.Poll(pairCtx(t)); !errors.Is(err, proto.ErrNotPaired) {
		t.Fatalf("old owner's JWT after re-pairing: %v, want ErrNotPaired", err)
	}
	_ = od.Close()

	// An owned rig that was never paired (a configured device) is paired on first contact.
	cd, err := h.d.New(configured)
	if err != nil {
		t.Fatal(err)
	}
	defer cd.Close()
	if _, err := cd.Poll(pairCtx(t)); err != nil || f.Miner(configured.GetMinerId()).Snapshot().AuthKey == nil {
		t.Fatalf("first contact with an unpaired configured rig: %v", err)
	}

	// No miner-signing key: nothing to pair with.
	if o := (&node.Drivers{}).Pair(pairCtx(t), fresh); o.Code != pb.ResultCode_RESULT_CODE_FAILED {
		t.Fatalf("no signing key: %v %q", o.Code, o.Message)
	}
}

func TestPairCGMinerAndFactory(t *testing.T) {
	h := newDrivers(t)
	cfg := sim.DefaultConfig()
	cfg.Count = 1
	f, err := sim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dev := f.Devices()[0]
	if o := h.d.Pair(pairCtx(t), dev); o.Code != pb.ResultCode_RESULT_CODE_SUCCEEDED || !strings.Contains(o.Message, "paired") {
		t.Fatalf("CGMiner: %v %q", o.Code, o.Message)
	}
	_ = f.Close()
	if o := h.d.Pair(pairCtx(t), dev); o.Code != pb.ResultCode_RESULT_CODE_FAILED {
		t.Fatalf("CGMiner gone: %v %q", o.Code, o.Message)
	}
	// Every protocol gets its driver; an unknown one is unsupported.
	for _, p := range []pb.Protocol{pb.Protocol_PROTOCOL_CGMINER, pb.Protocol_PROTOCOL_ANTMINER, pb.Protocol_PROTOCOL_PROTO} {
		d, err := h.d.New(&pb.Device{MinerId: "x", Address: "127.0.0.1:4028", Protocol: p})
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		_ = d.Close()
	}
	if _, err := h.d.New(&pb.Device{MinerId: "x", Address: "127.0.0.1:1"}); !errors.Is(err, miners.ErrUnsupported) {
		t.Fatalf("unknown protocol: %v", err)
	}
}
