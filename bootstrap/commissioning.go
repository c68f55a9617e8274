package bootstrap

import (
	"context"
	"crypto/hpke"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/antminer"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/proto"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/identity"
	"github.com/hashfleet/hashfleet/server"
	"github.com/hashfleet/hashfleet/server/credentials"
	"go.uber.org/fx"
	goproto "google.golang.org/protobuf/proto"
)

// Commissioning wiring shared by the modes: every node builds its drivers from its own keys (the
// miner-signing key signs Proto rigs' JWTs, the credential key opens the logins the cloud sealed to it), runs
// a DiscoveryActor, and pairs what the operator confirms.

// nodeDrivers returns the drivers of a node with identity id: CGMiner and Antminer defaults (Antminer's
// stock root/root login unless the device carries its own), Proto rigs authenticated by JWTs signed with the
// node's miner-signing key, and logins opened with its credential key. The caller sets Owns to the node's
// ownership check once the node exists.
func nodeDrivers(id *identity.Identity, nodeID string, env processEnv) (*node.Drivers, hpke.PrivateKey, error) {
	key, err := id.HPKEPrivateKey()
	if err != nil {
		return nil, nil, fmt.Errorf("node credential key: %w", err)
	}
	cg := cgminer.DefaultConfig()
	cg.Clock = env.Clock
	ant := antminer.Config{Clock: env.Clock}
	pr := proto.Config{SigningKey: id.MinerSigner(), Issuer: nodeID, Clock: env.Clock}
	d := &node.Drivers{CGMiner: cg, Antminer: ant, Proto: pr, NodeID: nodeID, CredentialKey: key}
	return d, key, nil
}

// localIdentity is the combined node's keys: made at first run in DataDir/node-identity (0700, keys 0600),
// or in a temporary directory removed at stop when there is no DataDir (tests).
type localIdentity struct {
	id *identity.Identity
}

func newLocalIdentity(lc fx.Lifecycle, o CombinedOptions) (*localIdentity, error) {
	dir := subdir(o.DataDir, "node-identity")
	if dir == "" {
		tmp, err := os.MkdirTemp("", "hashfleet-node-identity-*")
		if err != nil {
			return nil, fmt.Errorf("combined: node identity directory: %w", err)
		}
		lc.Append(fx.StopHook(func() { _ = os.RemoveAll(tmp) }))
		dir = filepath.Join(tmp, "identity")
	} else if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("combined: data directory: %w", err)
	}
	id, _, err := identity.LoadOrCreate(dir)
	if err != nil {
		return nil, fmt.Errorf("combined: node identity: %w", err)
	}
	return &localIdentity{id: id}, nil
}

// nodeKeys is the combined server's view of node credential keys: the local node's only.
func (l *localIdentity) nodeKeys(orgID string) func(string) (credentials.NodeKey, error) {
	k := credentials.NodeKey{NodeID: LocalNodeID, OrgID: orgID, PublicKey: l.id.CredentialPublicKey().Bytes()}
	return func(nodeID string) (credentials.NodeKey, error) {
		if nodeID != LocalNodeID {
			return credentials.NodeKey{}, fmt.Errorf("combined mode has one node, %q, not %q", LocalNodeID, nodeID)
		}
		return k, nil
	}
}

// localDevices are the configured devices as owned by the local node.
func localDevices(devs []*pb.Device) []*pb.Device {
	out := make([]*pb.Device, len(devs))
	for i, d := range devs {
		c := goproto.Clone(d).(*pb.Device)
		c.NodeId = LocalNodeID
		out[i] = c
	}
	return out
}

// registerConfigured records the configured devices as the local node's in the cloud's ownership map before
// the node starts: listing a device in combined mode's device file is the operator's confirmation. The node
// then runs exactly what the map says, configured and paired devices alike.
// The cloud knows the local node from the start, connected or not yet.
func registerConfigured(lc fx.Lifecycle, srv *server.Server, devs []*pb.Device) {
	lc.Append(fx.StartHook(func(ctx context.Context) error {
		if _, err := srv.Fleet().NodePID(ctx, LocalNodeID); err != nil {
			return fmt.Errorf("combined: the local node: %w", err)
		}
		if len(devs) == 0 {
			return nil
		}
		if err := srv.Fleet().RegisterDevices(ctx, devs); err != nil {
			return fmt.Errorf("combined: register the configured devices: %w", err)
		}
		return nil
	}))
}

// wrapFactory applies wrap to every driver f makes.
func wrapFactory(f func(*pb.Device) (miners.Driver, error), wrap func(*pb.Device, miners.Driver) miners.Driver) func(*pb.Device) (miners.Driver, error) {
	if wrap == nil {
		return f
	}
	return func(d *pb.Device) (miners.Driver, error) {
		drv, err := f(d)
		if err != nil {
			return nil, err
		}
		return wrap(d, drv), nil
	}
}
