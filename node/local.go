package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/gate"
	"github.com/hashfleet/hashfleet/node/hlc"
	"github.com/hashfleet/hashfleet/node/localui"
	"github.com/hashfleet/hashfleet/node/site"
	"github.com/hashfleet/hashfleet/node/store"
)

// The node as the local UI sees it (localui.Site): live telemetry straight from the miner actors, the link
// from the uplink, and local commands through the gate's one local command path (gate/local.go), which
// stamps, persists, runs and reports them.

// localEnv wires the gate's local command path to the node store, with an HLC on the node's clock.
func (n *Node) localEnv(st *store.Badger) (*gate.LocalEnv, error) {
	c, err := hlc.New(hlc.DefaultConfig(n.cfg.NodeID), n.cfg.Clock)
	if err != nil {
		return nil, fmt.Errorf("local command clock: %w", err)
	}
	return &gate.LocalEnv{Log: st, HLC: c, Epoch: n.localEpoch, Retention: n.cfg.LocalLogRetention}, nil
}

// localEpoch is the lease epoch local commands are stamped with: the LeaseHolder's current epoch for a pair
// member, 0 for a node outside a warm-standby pair. The gate checks it like a cloud command's (a fenced
// node or a standby refuses local commands too).
func (n *Node) localEpoch() uint64 { return n.guard.Epoch() }

// LocalSite returns the node as a localui.Site.
func (n *Node) LocalSite() localui.Site { return localSite{n} }

type localSite struct{ n *Node }

var _ localui.Site = localSite{}

// Miners implements localui.Site.
func (s localSite) Miners(ctx context.Context) ([]localui.MinerView, error) {
	ms, err := s.n.Miners(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]localui.MinerView, 0, len(ms))
	for _, m := range ms {
		out = append(out, localui.MinerViewFromStatus(m))
	}
	return out, nil
}

// Miner implements localui.Site.
func (s localSite) Miner(ctx context.Context, id string) (localui.MinerView, error) {
	m, err := s.n.Miner(ctx, id)
	if errors.Is(err, site.ErrUnknownMiner) {
		return localui.MinerView{}, fmt.Errorf("miner %q: %w", id, localui.ErrUnknownMiner)
	}
	if err != nil {
		return localui.MinerView{}, err
	}
	return localui.MinerViewFromStatus(m), nil
}

// Link implements localui.Site.
func (s localSite) Link(ctx context.Context) localui.LinkView {
	st, err := s.n.LinkStatus(ctx)
	if errors.Is(err, ErrNoUplink) {
		return localui.LinkView{Configured: false}
	}
	if err != nil {
		return localui.LinkView{Configured: true, LastError: err.Error()}
	}
	v := localui.LinkViewFromStatus(st, true)
	v.Pair = s.n.pairView(ctx)
	return v
}

// Submit implements localui.Site.
func (s localSite) Submit(ctx context.Context, req localui.LocalCommandRequest) (string, error) {
	return s.n.SubmitLocal(ctx, gate.LocalSubmit{IdempotencyKey: req.IdempotencyKey, Actor: req.Actor,
		MinerIDs: req.MinerIDs, All: req.All, Spec: req.Spec()})
}

// Curtailment implements localui.Site: curtail or uncurtail every miner, as one local command.
func (s localSite) Curtailment(ctx context.Context, req localui.CurtailmentRequest) (string, error) {
	return s.Submit(ctx, req.AsCommand())
}

// Commands implements localui.Site: the persisted local command log, newest first, with the results so
// far of commands still running.
func (s localSite) Commands(ctx context.Context, limit int) ([]localui.CommandView, error) {
	entries, err := s.n.LocalCommands(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]localui.CommandView, 0, len(entries))
	for _, e := range entries {
		out = append(out, localui.CommandViewFromPB(e.GetCommand()))
	}
	return out, nil
}

// SubmitLocal runs a local command through the gate: stamped (local_origin, HLC, lease epoch), persisted,
// then run; the same idempotency key twice runs once. It returns the command id. Errors wrap
// localui.ErrIdempotencyKeyReused or localui.ErrRefused where the UI answers with a status of its own.
func (n *Node) SubmitLocal(ctx context.Context, m gate.LocalSubmit) (string, error) {
	sys, _, _, _, gatePID, err := n.pids()
	if err != nil {
		return "", err
	}
	r, err := actors.Request[*gate.LocalSubmitted](sys.Root, gatePID, &m, timeout(ctx))
	switch {
	case errors.Is(err, gate.ErrIdempotencyKeyReused):
		return "", fmt.Errorf("%w: %w", localui.ErrIdempotencyKeyReused, err)
	case errors.Is(err, gate.ErrLocalRefused), errors.Is(err, gate.ErrLocalUnsupported):
		return "", fmt.Errorf("%w: %w", localui.ErrRefused, err)
	case err != nil:
		return "", fmt.Errorf("local command: %w", err)
	}
	return r.CommandID, nil
}

// LocalCommands returns the newest limit local commands (all when limit <= 0), newest first, read from the
// persisted log, with the results so far of those still running.
func (n *Node) LocalCommands(ctx context.Context, limit int) ([]*pb.LocalLogEntry, error) {
	sys, _, _, _, gatePID, err := n.pids()
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	st := n.store
	n.mu.Unlock()
	running, err := actors.Request[[]*pb.LocalLogEntry](sys.Root, gatePID, &gate.LocalRunningRequest{}, timeout(ctx))
	if err != nil {
		return nil, fmt.Errorf("running local commands: %w", err)
	}
	live := make(map[string]*pb.LocalLogEntry, len(running))
	for _, e := range running {
		live[e.GetCommand().GetCommandId()] = e
	}
	var out []*pb.LocalLogEntry
	err = st.LocalCommands(true, func(e *pb.LocalLogEntry) bool {
		if r, ok := live[e.GetCommand().GetCommandId()]; ok {
			e = r
		}
		out = append(out, e)
		return limit <= 0 || len(out) < limit
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
