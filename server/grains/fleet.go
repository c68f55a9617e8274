package grains

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
)

// Fleet owns the org's actor tree and is how code outside the actors (the API, the gateway) talks to it.
// Every method is one request to one actor, bounded by the context's deadline or RequestTimeout.
type Fleet struct {
	cfg    Config
	system *actor.ActorSystem

	mu      sync.Mutex
	running bool
	org     *actor.PID
	view    *actor.PID
	tracker *actor.PID
}

// New checks cfg and prepares the fleet on system; Start spawns the actors.
func New(cfg Config, system *actor.ActorSystem) (*Fleet, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := pairDefaults(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if system == nil {
		return nil, errors.New("grains: an actor system is required")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil, cfg.Clock)
	}
	return &Fleet{cfg: cfg, system: system}, nil
}

// System is the actor system the fleet runs on.
func (f *Fleet) System() *actor.ActorSystem { return f.system }

// Clock is the fleet's business clock.
func (f *Fleet) Clock() clock.Clock { return f.cfg.Clock }

// Start spawns the FleetView, the CommandTracker and the Org (which loads the store and spawns the node and
// miner actors), and returns once the Org has loaded.
func (f *Fleet) Start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running {
		return errors.New("grains: fleet already started")
	}
	cfg := &f.cfg
	root := f.system.Root
	prefix := "server/" + cfg.OrgID + "/"
	sup := actor.WithSupervisor(actors.NewSupervisor(cfg.Supervisor, cfg.Clock, cfg.ActorMetrics, "grain"))
	view, err := root.SpawnNamed(actors.Props("fleet-view", cfg.ActorMetrics, func() actor.Actor {
		return newFleetView(cfg.Clock, cfg.StaleAfter, cfg.Logger)
	}), prefix+"view")
	if err != nil {
		return fmt.Errorf("grains: spawn fleet view: %w", err)
	}
	tracker, err := root.SpawnNamed(actors.Props("command-tracker", cfg.ActorMetrics, func() actor.Actor {
		return newCommandTracker(cfg)
	}), prefix+"commands")
	if err != nil {
		root.Stop(view)
		return fmt.Errorf("grains: spawn command tracker: %w", err)
	}
	org, err := root.SpawnNamed(actors.Props("org", cfg.ActorMetrics, func() actor.Actor {
		return newOrg(cfg, view, tracker)
	}, sup), prefix+"org")
	if err != nil {
		root.Stop(tracker)
		root.Stop(view)
		return fmt.Errorf("grains: spawn org: %w", err)
	}
	root.Send(tracker, &trackerOrg{pid: org})
	if _, err := actors.Request[okReply](root, org, &orgReady{}, cfg.RequestTimeout); err != nil {
		f.stopAll(context.Background(), org, tracker, view)
		return fmt.Errorf("grains: org did not load: %w", err)
	}
	f.org, f.view, f.tracker, f.running = org, view, tracker, true
	return nil
}

// Stop stops the org (and with it every node and miner actor), then the tracker (flushing records), then
// the view, waiting for each within ctx.
func (f *Fleet) Stop(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.running {
		return nil
	}
	f.running = false
	return f.stopAll(ctx, f.org, f.tracker, f.view)
}

func (f *Fleet) stopAll(ctx context.Context, pids ...*actor.PID) error {
	var errs []error
	for _, pid := range pids {
		fut := f.system.Root.PoisonFuture(pid)
		done := make(chan error, 1)
		go func() { done <- fut.Wait() }()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, actor.ErrDeadLetter) {
				errs = append(errs, fmt.Errorf("stop %s: %w", pid.Id, err))
			}
		case <-ctx.Done():
			return fmt.Errorf("grains: stop %s: %w", pid.Id, ctx.Err())
		}
	}
	return errors.Join(errs...)
}

func (f *Fleet) pids() (org, view, tracker *actor.PID, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.running {
		return nil, nil, nil, ErrNotRunning
	}
	return f.org, f.view, f.tracker, nil
}

func (f *Fleet) timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return f.cfg.RequestTimeout
}

func ask[T any](ctx context.Context, f *Fleet, pick func(org, view, tracker *actor.PID) *actor.PID, msg any) (T, error) {
	org, view, tracker, err := f.pids()
	if err != nil {
		var zero T
		return zero, err
	}
	return actors.Request[T](f.system.Root, pick(org, view, tracker), msg, f.timeout(ctx))
}

func toOrg(org, _, _ *actor.PID) *actor.PID    { return org }
func toView(_, view, _ *actor.PID) *actor.PID  { return view }
func toTracker(_, _, tr *actor.PID) *actor.PID { return tr }

// NodePID returns the Node actor of nodeID, spawning it on first use.
func (f *Fleet) NodePID(ctx context.Context, nodeID string) (*actor.PID, error) {
	return ask[*actor.PID](ctx, f, toOrg, &getNode{id: nodeID})
}

// IngestTelemetry applies a node's telemetry batch; once it returns without error the batch is persisted and
// visible in the read model, and may be acked.
func (f *Fleet) IngestTelemetry(ctx context.Context, nodeID string, b *pb.TelemetryBatch) (IngestResult, error) {
	return ask[IngestResult](ctx, f, toOrg, &ingestTelemetry{node: nodeID, batch: b})
}

// IngestEncodedTelemetry is IngestTelemetry for a batch decoded from the wire with each sample's encoding
// kept (encoded[i] encodes b.Samples[i]): the store keeps those bytes rather than encoding the samples
// again. Encodings that do not match the samples one to one are ignored.
func (f *Fleet) IngestEncodedTelemetry(ctx context.Context, nodeID string, b *pb.TelemetryBatch, encoded [][]byte) (IngestResult, error) {
	if len(encoded) != len(b.GetSamples()) {
		encoded = nil
	}
	return ask[IngestResult](ctx, f, toOrg, &ingestTelemetry{node: nodeID, batch: b, encoded: encoded})
}

// IngestEvents applies a node's event batch, like IngestTelemetry.
func (f *Fleet) IngestEvents(ctx context.Context, nodeID string, b *pb.EventBatch) (IngestResult, error) {
	return ask[IngestResult](ctx, f, toOrg, &ingestEvents{node: nodeID, batch: b})
}

// RegisterDevices records operator-confirmed devices (each with its owning node).
func (f *Fleet) RegisterDevices(ctx context.Context, devs []*pb.Device) error {
	_, err := ask[okReply](ctx, f, toOrg, &registerDevices{devices: devs})
	return err
}

// IssueCommand validates, records and routes an operator command. Errors wrap ErrInvalidCommand,
// ErrUnknownMiner (an *UnknownMinersError), ErrIdempotencyConflict or ErrStore.
func (f *Fleet) IssueCommand(ctx context.Context, req CommandRequest) (IssuedCommand, error) {
	return ask[IssuedCommand](ctx, f, toOrg, &issueCommand{req: req})
}

// Command returns a copy of a command's record; ErrUnknownCommand when there is none.
func (f *Fleet) Command(ctx context.Context, id string) (*pb.CommandRecord, error) {
	return ask[*pb.CommandRecord](ctx, f, toTracker, &getCommand{id: id})
}

// ListMiners answers a page of the read model.
func (f *Fleet) ListMiners(ctx context.Context, q MinerQuery) (MinerPage, error) {
	return ask[MinerPage](ctx, f, toView, &listMiners{q: q})
}

// Miner returns one miner's row; ErrUnknownMiner when there is none.
func (f *Fleet) Miner(ctx context.Context, id string) (MinerRow, error) {
	return ask[MinerRow](ctx, f, toView, &getMiner{id: id})
}

// Nodes returns every node's status.
func (f *Fleet) Nodes(ctx context.Context) (NodesPage, error) {
	return ask[NodesPage](ctx, f, toView, &listNodes{})
}

// Metrics are the fleet's series.
func (f *Fleet) Metrics() *Metrics { return f.cfg.Metrics }

// RotateKeys rotates the org's command-issuance key (the current key retires after overlap) and queues the
// signed announcement to every node in nodes and every node the org knows.
func (f *Fleet) RotateKeys(ctx context.Context, overlap time.Duration, nodes []string) (KeyChange, error) {
	return ask[KeyChange](ctx, f, toOrg, &rotateKeys{overlap: overlap, nodes: nodes})
}

// RevokeKey revokes a command-issuance key for good and queues the signed revocation to every node in nodes
// and every node the org knows. Errors wrap ErrUnknownKey or ErrKeys.
func (f *Fleet) RevokeKey(ctx context.Context, keyID string, nodes []string) (KeyChange, error) {
	return ask[KeyChange](ctx, f, toOrg, &revokeKey{keyID: keyID, nodes: nodes})
}

// PairDevices makes devices node reported (PendingDevices) owned by it: the operator's pairing. The node is
// sent its new ownership map at once if it is connected. Errors wrap ErrUnknownMiner or ErrInvalidNode.
func (f *Fleet) PairDevices(ctx context.Context, node string, minerIDs []string) error {
	_, err := ask[okReply](ctx, f, toOrg, &pairDevices{node: node, minerIDs: minerIDs})
	return err
}

// InjectCommand writes cmd on node's live control stream exactly as given: no seq, no signature, no
// tracking. It is how tests and `hashfleet server --debug-inject` show that a node refuses what the cloud
// did not sign for it. Errors wrap ErrNotConnected.
func (f *Fleet) InjectCommand(ctx context.Context, node string, cmd *pb.ControlCommand) error {
	if err := store.ValidNodeID(node); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidNode, err)
	}
	_, err := ask[okReply](ctx, f, toOrg, &injectCommand{node: node, cmd: cmd})
	return err
}

// PendingDevices lists devices nodes reported that no operator has paired.
func (f *Fleet) PendingDevices() ([]*pb.Device, error) { return f.cfg.Store.PendingDevices() }

// NodeAudit returns the newest limit records of a node's CommandGate audit, as the node reported them.
func (f *Fleet) NodeAudit(node string, limit int) ([]*pb.AuditRecord, error) {
	return f.cfg.Store.NodeAudit(node, limit)
}

// SentCommand returns the signed command node was sent at seq; an error wrapping store.ErrNotFound if none.
func (f *Fleet) SentCommand(node string, seq uint64) (*pb.ControlCommand, error) {
	return f.cfg.Store.SentCommand(node, seq)
}
