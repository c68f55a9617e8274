package node

import (
	"context"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/commission"
	"github.com/hashfleet/hashfleet/node/discovery"
	"github.com/hashfleet/hashfleet/node/internal/promx"
)

// spawnCommissioning starts the node's DiscoveryActor and the CommissionActor that runs the cloud's
// discovery and pairing commands for the gate and reports scan progress to the batcher.
func (n *Node) spawnCommissioning(spawn func(string, *actor.Props) (*actor.PID, error), am *actors.Metrics) error {
	cfg := n.cfg
	dc := cfg.Discovery
	if dc.Clock == nil {
		dc.Clock = cfg.Clock
	}
	if dc.Logger == nil {
		dc.Logger = cfg.Logger.With("node", cfg.NodeID)
	}
	if dc.Metrics == nil {
		dc.Metrics = discovery.NewMetrics(promx.Tolerant(cfg.Registerer))
	}
	scanner, err := discovery.NewScanner(dc)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	if n.discovery, err = spawn("discovery", actors.Props("discovery", am, discovery.Producer(discovery.Env{Scanner: scanner}))); err != nil {
		return err
	}
	var pair commission.PairFunc
	if p := cfg.Pairer; p != nil {
		pair = func(ctx context.Context, dev *pb.Device) (pb.ResultCode, string) {
			o := p.Pair(ctx, dev)
			return o.Code, o.Message
		}
	}
	n.commission, err = spawn("commission", commission.Props(commission.DefaultConfig(), commission.Env{
		NodeID: cfg.NodeID, Discovery: n.discovery, Sink: n.batcher, Pair: pair, CredentialKey: cfg.CredentialKey,
		Clock: cfg.Clock, ActorMetrics: am, Logger: cfg.Logger,
	}))
	return err
}

// Owns reports whether the node owns a device per its confirmed ownership map (false before Start). Safe
// from any goroutine: the driver factory's credential opener asks it.
func (n *Node) Owns(minerID string) bool { return n.ownership.Has(minerID) }
