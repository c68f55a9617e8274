package cloudcluster

import (
	"context"
	"fmt"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/gateway"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/store"
)

// Fleet is the member's side of server/gateway.Fleet: each node's streams on this member go through one
// StreamLink (made on first use), and telemetry goes to the node's Node grain, which applies each batch
// once in the shared store whichever member received it.
type Fleet struct {
	m     *Member
	mu    sync.Mutex
	links map[string]*actor.PID
}

var _ gateway.Fleet = (*Fleet)(nil)

func newFleet(m *Member) *Fleet { return &Fleet{m: m, links: map[string]*actor.PID{}} }

// System implements gateway.Fleet.
func (f *Fleet) System() *actor.ActorSystem { return f.m.system }

// NodePID implements gateway.Fleet: the node's StreamLink on this member.
func (f *Fleet) NodePID(_ context.Context, node string) (*actor.PID, error) {
	if err := store.ValidNodeID(node); err != nil {
		return nil, err
	}
	if f.m.isStopped() {
		return nil, errStopped
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if pid := f.links[node]; pid != nil {
		return pid, nil
	}
	e := f.m.env
	pid := f.m.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return newStreamLink(e, node) }))
	f.links[node] = pid
	return pid, nil
}

// IngestTelemetry implements gateway.Fleet.
func (f *Fleet) IngestTelemetry(ctx context.Context, node string, b *pb.TelemetryBatch) (grains.IngestResult, error) {
	if err := store.ValidNodeID(node); err != nil {
		return grains.IngestResult{}, err
	}
	res, err := f.m.request(ctx, node, KindNode, &pb.ClusterIngestTelemetry{Batch: b})
	if err != nil {
		return grains.IngestResult{}, err
	}
	r, ok := res.(*pb.ClusterIngestReply)
	if !ok {
		return grains.IngestResult{}, fmt.Errorf("%w: node grain answered %T", ErrRequest, res)
	}
	if r.GetError() != "" {
		return grains.IngestResult{}, fmt.Errorf("%w: ingest: %s", ErrRequest, r.GetError())
	}
	return grains.IngestResult{Duplicate: r.GetDuplicate(), Applied: int(r.GetApplied()), Rejected: int(r.GetRejected())}, nil
}

// IngestEvents implements gateway.Fleet. The clustered cloud deduplicates event batches by the shared mark;
// the events themselves are not interpreted on this path yet (device reports, audit and lease events need
// the Org grain, which is single-member so far).
func (f *Fleet) IngestEvents(_ context.Context, node string, b *pb.EventBatch) (grains.IngestResult, error) {
	dup, err := f.m.env.cfg.Store.ApplyOnce(store.Batch{Mark: &store.Mark{Node: node, Kind: store.KindEvents, Seq: b.GetBatchSeq()}})
	if err != nil {
		return grains.IngestResult{}, err
	}
	return grains.IngestResult{Duplicate: dup}, nil
}
