package lease

import (
	"bytes"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/cluster/gossip"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// Sender sends a lease request to the cloud on the control stream (the Uplink implements it). It must not
// block; an error means the request was not sent.
type Sender interface {
	SendLeaseRequest(req *pb.LeaseRequest) error
}

// MetaPublisher publishes this node's gossip metadata (*gossip.Gossip implements it, without blocking).
type MetaPublisher interface {
	SetMeta(meta []byte) error
}

// Env is what a LeaseHolderActor is wired to.
type Env struct {
	// Sender carries requests to the cloud. Required.
	Sender Sender
	// Gossip receives this node's Advert as metadata (nil: not advertised; the peer then never sees this
	// node holding, so set it in every real pair).
	Gossip MetaPublisher
	// Handle is updated with every new permit; the gate and the miner actors read it. Required (NewHandle).
	Handle *Handle
	// Events receives *Fenced, *Unfenced, *Promoted, *Demoted (nil: nobody).
	Events *actor.PID
	// CloudUp is the uplink's state at spawn; *CloudStatus updates it.
	CloudUp      bool
	Clock        clock.Clock
	Metrics      *Metrics
	ActorMetrics *actors.Metrics
	Logger       *slog.Logger
}

// Props returns the LeaseHolderActor's props (kind "lease-holder").
func Props(cfg Config, env Env) *actor.Props {
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	if env.Clock == nil {
		env.Clock = clock.Real()
	}
	if env.Handle == nil {
		env.Handle = NewHandle(env.Clock)
	}
	return actors.Props("lease-holder", env.ActorMetrics, func() actor.Actor { return newHolder(cfg, env) })
}

type pendingReq struct {
	op     pb.LeaseOp
	sentAt time.Time
}

// LeaseHolderActor is the node side of a warm-standby pair's lease: it asks the cloud for the lease
// (ACQUIRE, RENEW, PROMOTE, TRANSFER, RELEASE), folds grants and denials and gossip into what it knows,
// and publishes the write permit (Handle), fence/unfence and promote/demote events, and its gossip advert.
// Every decision is a pure function in decide.go; this actor gathers inputs and performs the results.
type LeaseHolderActor struct {
	cfg Config
	env Env
	log *slog.Logger

	lease         Lease
	cloudUp       bool
	peer          Peer
	transferring  bool
	handover      pb.LeaseOp // TRANSFER or RELEASE while transferring
	handoverTo    string
	handoverSent  bool
	handoverGen   uint64
	localPromoted bool
	lostAt        time.Time

	pending  map[string]pendingReq
	lastSent time.Time
	seq      uint64
	idPrefix string

	permit        Permit
	noHolderSince time.Time
	fencedAt      time.Time
	advert        []byte
	timer         clock.Timer
}

func newHolder(cfg Config, env Env) *LeaseHolderActor {
	return &LeaseHolderActor{cfg: cfg, env: env, cloudUp: env.CloudUp, pending: map[string]pendingReq{},
		log: env.Logger.With(slog.String("node", cfg.NodeID), slog.String("pair", cfg.PairID))}
}

// Receive dispatches each message to its handler.
func (a *LeaseHolderActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.onStarted(ctx)
	case tick:
		a.evaluate(ctx)
		a.schedule(ctx)
	case *pb.LeaseGrant:
		a.onGrant(ctx, msg)
	case *pb.LeaseDenied:
		a.onDenied(ctx, msg)
	case *gossip.PeerEvent:
		a.onPeer(ctx, msg)
	case *CloudStatus:
		a.onCloud(ctx, msg)
	case *TransferLease:
		a.onHandover(ctx, pb.LeaseOp_LEASE_OP_TRANSFER, msg.To)
	case *ReleaseLease:
		a.onHandover(ctx, pb.LeaseOp_LEASE_OP_RELEASE, "")
	case sendTransfer:
		a.onSendHandover(ctx, msg)
	case *MayWriteRequest:
		ctx.Respond(MayWrite(a.cfg, a.inputs(a.env.Clock.Now())))
	case *EpochRequest:
		ctx.Respond(&Epoch{Epoch: a.lease.Epoch})
	case *StatusRequest:
		ctx.Respond(a.status())
	case *actor.Stopping, *actor.Restarting:
		a.onStopping()
	case *actor.Stopped:
	default:
		a.log.Warn("lease holder: unexpected message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

func (a *LeaseHolderActor) onStarted(ctx actor.Context) {
	now := a.env.Clock.Now()
	a.idPrefix = fmt.Sprintf("%s-%x", a.cfg.NodeID, now.UnixNano())
	a.env.Handle.set(Permit{})
	a.log.Info("lease holder started", slog.Bool("standby", a.cfg.Standby), slog.Bool("local_hold", a.cfg.LocalHold),
		slog.Bool("allow_local_promotion", a.cfg.AllowLocalPromotion))
	a.evaluate(ctx)
	a.schedule(ctx)
}

func (a *LeaseHolderActor) schedule(ctx actor.Context) {
	a.timer = actors.SendAfter(a.env.Clock, ctx.ActorSystem(), ctx.Self(), a.cfg.TickInterval, tick{})
}

// onStopping withdraws the permit first: a stopped LeaseHolder must not leave writers with one.
func (a *LeaseHolderActor) onStopping() {
	a.env.Handle.set(Permit{Epoch: a.lease.Epoch})
	if a.timer != nil {
		a.timer.Stop()
	}
}

func (a *LeaseHolderActor) inputs(now time.Time) Inputs {
	// Track since when no live holder is visible; ShouldPromote waits PromoteGrace on an unclear peer.
	if a.peer.State == gossip.PeerAlive && a.peer.Holding {
		a.noHolderSince = time.Time{}
	} else if a.noHolderSince.IsZero() {
		a.noHolderSince = now
	}
	return Inputs{Now: now, Me: a.cfg.NodeID, Lease: a.lease, CloudUp: a.cloudUp, Peer: a.peer,
		Transferring: a.transferring, LocalPromoted: a.localPromoted, NoHolderFor: now.Sub(a.noHolderSince)}
}

// evaluate re-decides everything at now: pending timeouts, local promotion, the permit, the next request
// and the gossip advert.
func (a *LeaseHolderActor) evaluate(ctx actor.Context) {
	now := a.env.Clock.Now()
	a.expirePending(now)
	in := a.inputs(now)

	switch allowed := LocalPromotionAllowed(a.cfg, in) && a.lease.Holder != a.cfg.NodeID; {
	case allowed && !a.localPromoted:
		a.localPromoted = true
		a.env.Metrics.failover("local")
		a.log.Warn("promoted locally without the cloud (AllowLocalPromotion): the peer is dead in gossip and the WAN is down",
			slog.Uint64("epoch", a.lease.Epoch))
		a.emit(ctx, &Promoted{Epoch: a.lease.Epoch, Local: true})
	case !allowed && a.localPromoted:
		a.localPromoted = false
		if a.peer.State == gossip.PeerAlive {
			a.log.Error("local promotion ended: the peer is alive again, both nodes may have written (split brain)",
				slog.Uint64("epoch", a.lease.Epoch))
		} else {
			a.log.Info("local promotion ended: the cloud is back; asking it", slog.Uint64("epoch", a.lease.Epoch))
		}
		a.emit(ctx, &Demoted{Holder: a.lease.Holder, Epoch: a.lease.Epoch})
	}
	in = a.inputs(now)

	if a.transferring && a.handoverSent && !a.hasPending(now, a.handover) {
		if in.Lease.Holder == a.cfg.NodeID && now.Before(in.Lease.FenceAt) {
			a.send(ctx, a.handover, a.handoverTo, now) // unanswered: ask again (a repeat is refused as stale if it went through)
		} else {
			a.log.Info("handover abandoned: the lease lapsed meanwhile", slog.String("op", opLabel(a.handover)))
			a.transferring, a.handoverSent = false, false
			in = a.inputs(now)
		}
	}

	a.publish(ctx, MayWrite(a.cfg, in), now)

	if op := NextOp(a.cfg, in, a.lastSent, a.hasPending(now, pb.LeaseOp_LEASE_OP_ACQUIRE, pb.LeaseOp_LEASE_OP_RENEW, pb.LeaseOp_LEASE_OP_PROMOTE)); op != pb.LeaseOp_LEASE_OP_UNSPECIFIED {
		a.send(ctx, op, "", now)
		a.lastSent = now
	}
	a.advertise(now)
}

func (a *LeaseHolderActor) publish(ctx actor.Context, p Permit, now time.Time) {
	prev := a.permit
	a.permit = p
	a.env.Handle.set(p)
	left := 0.0
	if p.OK {
		left = p.Until.Sub(now).Seconds()
	}
	a.env.Metrics.observe(a.lease, p, left)
	switch {
	case prev.OK && !p.OK:
		a.fencedAt = now
		a.log.Warn("fenced: miner writes stopped", slog.Uint64("epoch", p.Epoch), slog.String("mode", p.Mode.String()))
		a.emit(ctx, &Fenced{Epoch: p.Epoch, Reason: p.Mode, At: now})
	case p.OK && (!prev.OK || prev.Mode != p.Mode || prev.Epoch != p.Epoch):
		a.log.Info("unfenced: miner writes allowed", slog.Uint64("epoch", p.Epoch), slog.String("mode", p.Mode.String()),
			slog.Time("until", p.Until))
		a.emit(ctx, &Unfenced{Epoch: p.Epoch, Mode: p.Mode, Until: p.Until})
	}
}

// advertise publishes Holding (writing, or stopped less than Drain ago) and CloudUp to the peer.
func (a *LeaseHolderActor) advertise(now time.Time) {
	if a.env.Gossip == nil {
		return
	}
	holding := a.permit.OK || (!a.fencedAt.IsZero() && now.Before(a.fencedAt.Add(a.cfg.Drain)))
	b := EncodeAdvert(Advert{Holding: holding, CloudUp: a.cloudUp, Epoch: a.lease.Epoch})
	if bytes.Equal(b, a.advert) {
		return
	}
	if err := a.env.Gossip.SetMeta(b); err != nil {
		a.log.Warn("cannot advertise lease state in gossip", slog.Any("error", err))
		return
	}
	a.advert = b
}

func (a *LeaseHolderActor) send(ctx actor.Context, op pb.LeaseOp, to string, now time.Time) {
	a.seq++
	id := fmt.Sprintf("%s-%d", a.idPrefix, a.seq)
	req := &pb.LeaseRequest{PairId: a.cfg.PairID, NodeId: a.cfg.NodeID, Op: op, Epoch: a.lease.Epoch, TransferTo: to, RequestId: id}
	if err := a.env.Sender.SendLeaseRequest(req); err != nil {
		a.env.Metrics.request(op, "send_error")
		a.log.Debug("lease request not sent", slog.String("op", opLabel(op)), slog.Any("error", err))
		return
	}
	a.pending[id] = pendingReq{op: op, sentAt: now}
	a.log.Debug("lease request sent", slog.String("op", opLabel(op)), slog.Uint64("epoch", req.Epoch), slog.String("request", id))
}

func (a *LeaseHolderActor) hasPending(now time.Time, ops ...pb.LeaseOp) bool {
	for _, p := range a.pending {
		if now.Sub(p.sentAt) < a.cfg.RequestTimeout {
			for _, op := range ops {
				if p.op == op {
					return true
				}
			}
		}
	}
	return false
}

func (a *LeaseHolderActor) expirePending(now time.Time) {
	for id, p := range a.pending {
		if now.Sub(p.sentAt) >= a.cfg.RequestTimeout {
			a.env.Metrics.request(p.op, "timeout")
			delete(a.pending, id)
		}
	}
}

func (a *LeaseHolderActor) onGrant(ctx actor.Context, g *pb.LeaseGrant) {
	if g.GetPairId() != a.cfg.PairID {
		a.log.Warn("lease grant for another pair ignored", slog.String("grant_pair", g.GetPairId()))
		return
	}
	var sentAt *time.Time
	op := pb.LeaseOp_LEASE_OP_UNSPECIFIED
	if p, ok := a.pending[g.GetRequestId()]; ok {
		sentAt, op = &p.sentAt, p.op
		delete(a.pending, g.GetRequestId())
		a.env.Metrics.request(op, "granted")
	}
	next, change := ApplyGrant(a.cfg, a.cfg.NodeID, a.lease, g, sentAt, a.lostAt)
	a.lease = next
	a.afterChange(ctx, change, op)
	if a.transferring && (g.GetHolder() != a.cfg.NodeID) {
		a.transferring, a.handoverSent = false, false
		a.log.Info("lease handed over", slog.String("to", g.GetHolder()), slog.Uint64("epoch", g.GetEpoch()))
	}
	a.evaluate(ctx)
}

func (a *LeaseHolderActor) onDenied(ctx actor.Context, d *pb.LeaseDenied) {
	if d.GetPairId() != a.cfg.PairID {
		return
	}
	op := pb.LeaseOp_LEASE_OP_UNSPECIFIED
	if p, ok := a.pending[d.GetRequestId()]; ok {
		op = p.op
		delete(a.pending, d.GetRequestId())
		a.env.Metrics.request(op, "denied")
	}
	log := a.log.With(slog.String("op", opLabel(op)), slog.String("holder", d.GetHolder()), slog.Uint64("epoch", d.GetEpoch()),
		slog.String("reason", d.GetReason()))
	if op == pb.LeaseOp_LEASE_OP_PROMOTE || op == pb.LeaseOp_LEASE_OP_ACQUIRE {
		log.Debug("lease request refused")
	} else {
		log.Info("lease request refused")
	}
	next, change := ApplyDenied(a.cfg.NodeID, a.lease, d)
	a.lease = next
	a.afterChange(ctx, change, op)
	if a.transferring && op == a.handover {
		a.transferring, a.handoverSent = false, false
		log.Warn("handover refused; keeping the lease if it is still valid")
	}
	a.evaluate(ctx)
}

func (a *LeaseHolderActor) afterChange(ctx actor.Context, c Change, op pb.LeaseOp) {
	switch c {
	case ChangePromoted:
		a.localPromoted = false
		if op == pb.LeaseOp_LEASE_OP_PROMOTE {
			a.env.Metrics.failover("cloud")
		}
		a.log.Info("lease granted: this node is the holder", slog.Uint64("epoch", a.lease.Epoch), slog.String("op", opLabel(op)))
		a.emit(ctx, &Promoted{Epoch: a.lease.Epoch})
	case ChangeDemoted:
		a.lostAt = a.env.Clock.Now()
		clear(a.pending)
		a.log.Warn("demoted: another node holds the lease", slog.String("holder", a.lease.Holder), slog.Uint64("epoch", a.lease.Epoch))
		a.emit(ctx, &Demoted{Holder: a.lease.Holder, Epoch: a.lease.Epoch})
	}
}

func (a *LeaseHolderActor) onPeer(ctx actor.Context, ev *gossip.PeerEvent) {
	if ev.Name == a.cfg.NodeID {
		return
	}
	a.peer.State = ev.State
	if ev.State == gossip.PeerAlive {
		adv, err := DecodeAdvert(ev.Meta)
		if err != nil && len(ev.Meta) > 0 {
			a.log.Warn("peer's lease advert unreadable; assuming it holds and has a cloud", slog.String("peer", ev.Name), slog.Any("error", err))
		}
		a.peer.Holding, a.peer.CloudUp = adv.Holding, adv.CloudUp
	}
	a.log.Debug("peer", slog.String("peer", ev.Name), slog.String("state", ev.State.String()),
		slog.Bool("peer_holding", a.peer.Holding), slog.Bool("peer_cloud", a.peer.CloudUp))
	a.evaluate(ctx)
}

func (a *LeaseHolderActor) onCloud(ctx actor.Context, m *CloudStatus) {
	if a.cloudUp != m.Up {
		a.log.Info("cloud link", slog.Bool("up", m.Up))
	}
	a.cloudUp = m.Up
	a.evaluate(ctx)
}

func (a *LeaseHolderActor) onHandover(ctx actor.Context, op pb.LeaseOp, to string) {
	now := a.env.Clock.Now()
	in := a.inputs(now)
	switch {
	case !holds(in) || a.transferring:
		ctx.Respond(fmt.Errorf("%s: %w", opLabel(op), ErrNotHolder))
		return
	case !a.cloudUp:
		ctx.Respond(fmt.Errorf("%s: %w", opLabel(op), ErrCloudDown))
		return
	case op == pb.LeaseOp_LEASE_OP_TRANSFER && (to == "" || to == a.cfg.NodeID):
		ctx.Respond(fmt.Errorf("%w: %q", ErrBadTransfer, to))
		return
	}
	a.transferring, a.handover, a.handoverTo, a.handoverSent = true, op, to, false
	a.handoverGen++
	a.log.Info("handing the lease over: writes stopped, draining", slog.String("op", opLabel(op)), slog.String("to", to),
		slog.Duration("drain", a.cfg.Drain))
	a.evaluate(ctx) // publishes the fence now
	actors.SendAfter(a.env.Clock, ctx.ActorSystem(), ctx.Self(), a.cfg.Drain, sendTransfer{op: op, to: to, gen: a.handoverGen})
	ctx.Respond(a.status())
}

func (a *LeaseHolderActor) onSendHandover(ctx actor.Context, m sendTransfer) {
	if !a.transferring || m.gen != a.handoverGen {
		return
	}
	a.handoverSent = true
	a.send(ctx, m.op, m.to, a.env.Clock.Now())
}

func (a *LeaseHolderActor) emit(ctx actor.Context, ev any) {
	if a.env.Events != nil {
		ctx.Send(a.env.Events, ev)
	}
}

func (a *LeaseHolderActor) status() *Status {
	return &Status{PairID: a.cfg.PairID, NodeID: a.cfg.NodeID, Holder: a.lease.Holder, Epoch: a.lease.Epoch, Mode: a.permit.Mode,
		FenceAt: a.lease.FenceAt, Permit: a.permit, CloudUp: a.cloudUp, Peer: a.peer}
}
