package lease

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// casAttempts bounds how often one request is decided again after losing a compare-and-set to another
// activation. Each retry reloads the state, so a second conflict in a row means a live fight between two
// activations; the request is then refused and the node asks again.
const casAttempts = 3

// Env is what a LeaseActor is wired to.
type Env struct {
	// Store persists every durable change before the reply. Required.
	Store Store
	// Members are the pair's two nodes, used when the store has no state for the pair yet.
	Members [2]string
	// Notify receives *HolderChanged (nil: nobody).
	Notify       *actor.PID
	Clock        clock.Clock
	Metrics      *Metrics
	ActorMetrics *actors.Metrics
	Logger       *slog.Logger
}

// Props returns the props of pairID's LeaseActor (kind "lease").
func Props(pairID string, cfg Config, env Env) *actor.Props {
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	if env.Clock == nil {
		env.Clock = clock.Real()
	}
	return actors.Props("lease", env.ActorMetrics, func() actor.Actor { return newLeaseActor(pairID, cfg, env) })
}

// LeaseActor is the Lease grain of one pair: it loads the pair's state, decides each request with Decide on
// its injected clock, persists by compare-and-set, and only then replies.
type LeaseActor struct {
	pairID string
	cfg    Config
	env    Env
	log    *slog.Logger

	state  State
	loaded bool
}

func newLeaseActor(pairID string, cfg Config, env Env) *LeaseActor {
	return &LeaseActor{pairID: pairID, cfg: cfg, env: env, log: env.Logger.With(slog.String("pair", pairID))}
}

// Receive dispatches each message to its handler.
func (a *LeaseActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.onStarted()
	case *pb.LeaseRequest:
		a.onRequest(ctx, msg)
	case *Heartbeat:
		a.onHeartbeat(msg)
	case *StatusRequest:
		a.onStatus(ctx)
	case *SetMembers:
		a.onSetMembers(ctx, msg)
	case *actor.Stopping, *actor.Stopped, *actor.Restarting:
	default:
		a.log.Warn("lease: unexpected message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

func (a *LeaseActor) onStarted() {
	if err := a.load(); err != nil {
		a.log.Error("lease: cannot load state; requests are refused until it loads", slog.Any("error", err))
	}
}

// load reads the pair's state. Every member counts as heard now: heartbeats are not persisted, and
// assuming silence would let a fresh activation promote over a live holder.
func (a *LeaseActor) load() error {
	s, err := a.env.Store.Load(a.pairID)
	switch {
	case errors.Is(err, ErrNotFound):
		s = NewState(a.pairID, a.env.Members)
	case err != nil:
		a.loaded = false
		return err
	}
	now := a.env.Clock.Now()
	old := a.state.LastHeartbeat
	s.LastHeartbeat = map[string]time.Time{}
	for _, m := range s.Members {
		if m != "" {
			s.LastHeartbeat[m] = now
		}
	}
	for n, t := range old { // a reload after a conflict keeps what this activation heard
		if t.After(s.LastHeartbeat[n]) {
			s.LastHeartbeat[n] = t
		}
	}
	a.state, a.loaded = s, true
	a.env.Metrics.state(s)
	return nil
}

func (a *LeaseActor) onRequest(ctx actor.Context, req *pb.LeaseRequest) {
	op := opLabel(req.GetOp())
	log := a.log.With(slog.String("node", req.GetNodeId()), slog.String("op", op), slog.Uint64("epoch", req.GetEpoch()),
		slog.String("request", req.GetRequestId()))
	if !a.loaded {
		if err := a.load(); err != nil {
			a.refuse(ctx, req, op, log, fmt.Errorf("%w: %w", ErrStore, err))
			return
		}
	}
	for attempt := 1; ; attempt++ {
		now := a.env.Clock.Now()
		next, reply, derr := Decide(a.cfg, a.state, req, now)
		if derr != nil {
			a.state = next // the requester was heard
			a.env.Metrics.observe(a.state)
			a.env.Metrics.decided(op, string(OutcomeDenied))
			log.Info("lease request refused", slog.Any("reason", derr), slog.String("holder", a.state.Holder),
				slog.Uint64("current_epoch", a.state.Epoch))
			ctx.Respond(reply.Denied)
			return
		}
		if next.Version != a.state.Version {
			err := a.env.Store.CompareAndSet(a.pairID, a.state.Version, next)
			if errors.Is(err, ErrConflict) && attempt < casAttempts {
				a.env.Metrics.conflict()
				log.Warn("lease state changed under this activation; reloading", slog.Int("attempt", attempt))
				if lerr := a.load(); lerr != nil {
					a.refuse(ctx, req, op, log, fmt.Errorf("%w: %w", ErrStore, lerr))
					return
				}
				continue
			}
			if err != nil {
				if errors.Is(err, ErrConflict) {
					a.env.Metrics.conflict()
					a.loaded = false // read the winner's state before the next decision
				}
				a.refuse(ctx, req, op, log, err)
				return
			}
		}
		a.state = next
		// Order of the two sends: Notify's receiver routes commands to the holder as soon as it hears of
		// the change. A requester that became the holder gets its grant first, so the grant is ahead of
		// any command stamped with its epoch; one that gave the lease up (TRANSFER, RELEASE) gets its
		// answer after Notify, so nothing asked after that answer is routed to it any more.
		if reply.Grant.GetHolder() == req.GetNodeId() {
			ctx.Respond(reply.Grant)
			a.committed(ctx, op, reply, log)
		} else {
			a.committed(ctx, op, reply, log)
			ctx.Respond(reply.Grant)
		}
		return
	}
}

func (a *LeaseActor) committed(ctx actor.Context, op string, r Reply, log *slog.Logger) {
	a.env.Metrics.decided(op, string(r.Outcome))
	a.env.Metrics.state(a.state)
	if !r.HolderChanged() {
		log.Debug("lease renewed", slog.String("outcome", string(r.Outcome)), slog.Time("expires_at", a.state.ExpiresAt))
		return
	}
	if r.Failover {
		a.env.Metrics.failover(a.pairID)
	}
	log.Info("lease holder changed", slog.String("outcome", string(r.Outcome)), slog.String("from", r.From),
		slog.String("to", a.state.Holder), slog.Uint64("epoch", a.state.Epoch), slog.Time("expires_at", a.state.ExpiresAt),
		slog.Bool("failover", r.Failover))
	if a.env.Notify != nil {
		hc := &HolderChanged{PairID: a.pairID, From: r.From, To: a.state.Holder, Epoch: a.state.Epoch, Failover: r.Failover}
		if a.state.Holder != "" {
			hc.Grant = r.Grant
		}
		ctx.Send(a.env.Notify, hc)
	}
}

// refuse answers a request the actor could not decide (store failure), leaving the state as it was.
func (a *LeaseActor) refuse(ctx actor.Context, req *pb.LeaseRequest, op string, log *slog.Logger, err error) {
	a.env.Metrics.decided(op, string(OutcomeDenied))
	log.Error("lease request not decided", slog.Any("error", err))
	ctx.Respond(deny(a.state, req, err))
}

func (a *LeaseActor) onHeartbeat(m *Heartbeat) {
	if !a.state.IsMember(m.NodeID) {
		return
	}
	if a.state.LastHeartbeat == nil {
		a.state.LastHeartbeat = map[string]time.Time{}
	}
	a.state.LastHeartbeat[m.NodeID] = a.env.Clock.Now()
	a.env.Metrics.observe(a.state)
}

func (a *LeaseActor) status() *Status {
	s := a.state
	now := a.env.Clock.Now()
	return &Status{PairID: a.pairID, Holder: s.Holder, Epoch: s.Epoch, ExpiresAt: s.ExpiresAt, Members: s.Members,
		Version: s.Version, Live: s.Live(now), Heard: maps.Clone(s.LastHeartbeat), AsOf: now}
}

func (a *LeaseActor) onStatus(ctx actor.Context) {
	if !a.loaded {
		if err := a.load(); err != nil {
			ctx.Respond(fmt.Errorf("lease %s status: %w: %w", a.pairID, ErrStore, err))
			return
		}
	}
	ctx.Respond(a.status())
}

func (a *LeaseActor) onSetMembers(ctx actor.Context, m *SetMembers) {
	if !a.loaded {
		if err := a.load(); err != nil {
			ctx.Respond(fmt.Errorf("lease %s members: %w: %w", a.pairID, ErrStore, err))
			return
		}
	}
	next, err := DecideMembers(a.state, m.Members)
	if err == nil && next.Version != a.state.Version {
		err = a.env.Store.CompareAndSet(a.pairID, a.state.Version, next)
		if errors.Is(err, ErrConflict) {
			a.loaded = false
		}
	}
	if err != nil {
		ctx.Respond(fmt.Errorf("lease %s members: %w", a.pairID, err))
		return
	}
	a.state = next
	a.log.Info("lease pair members set", slog.String("member_a", m.Members[0]), slog.String("member_b", m.Members[1]))
	ctx.Respond(a.status())
}

func opLabel(op pb.LeaseOp) string {
	return strings.ToLower(strings.TrimPrefix(op.String(), "LEASE_OP_"))
}
