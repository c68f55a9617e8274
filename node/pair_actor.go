package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/cluster/gossip"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/node/lease"
	"github.com/hashfleet/hashfleet/node/uplink"
)

// pairPeersFile is where a pair member's gossip remembers its partner's address, under the data directory.
const pairPeersFile = "pair-gossip-peers.json"

// Messages of the PairActor besides *pb.HelloAck, *uplink.LinkChanged, *pb.LeaseGrant, *pb.LeaseDenied and
// the LeaseHolder's events.

// peerEvent is a gossip event tagged with the pair incarnation whose gossip produced it.
type peerEvent struct {
	gen uint64
	ev  gossip.PeerEvent
}

type pairSnapshotRequest struct{}

// haltGossip cuts this node off the pair LAN (fault injection): its gossip stops without a goodbye.
type haltGossip struct{}

type pairSnapshot struct {
	status PairStatus
	holder *actor.PID
}

// PairActor makes this node a warm-standby pair member, or a lone node, as the cloud's HelloAck says: it
// opens the pair key, runs the pair's gossip and LeaseHolderActor (its child), points the node's leaseGuard
// at the holder's Handle, relays the cloud link's state and the cloud's lease answers to the holder, and
// reports the holder's fence/unfence/promote/demote events to the cloud as EVENT_KIND_LEASE events.
type PairActor struct {
	cfg Config
	env pairEnv
	log *slog.Logger

	info    *pb.PairInfo
	keySum  [32]byte // SHA-256 of the pair key in use (zero: none opened)
	gen     uint64
	g       *gossip.Gossip
	gossErr string
	holder  *actor.PID
	cloudUp bool
	wg      sync.WaitGroup // gossip shutdowns in flight
}

func newPairActor(cfg Config, env pairEnv) *PairActor {
	return &PairActor{cfg: cfg, env: env, log: cfg.Logger.With(slog.String("node", cfg.NodeID))}
}

// Receive dispatches each message to its handler.
func (a *PairActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.onStarted()
	case *pb.HelloAck:
		a.cloudUp = true // a hello_ack comes before the LinkChanged{Up} of its session
		a.onPairInfo(ctx, msg.GetPair())
	case *uplink.LinkChanged:
		a.onLink(ctx, msg)
	case *uplink.Acked: // the uplink's subscribers get every batch ack; nothing to do here
	case *pb.LeaseGrant:
		a.toHolder(ctx, msg)
	case *pb.LeaseDenied:
		a.toHolder(ctx, msg)
	case *peerEvent:
		if msg.gen == a.gen && a.holder != nil {
			ev := msg.ev
			ctx.Send(a.holder, &ev)
		}
	case *lease.Fenced, *lease.Unfenced, *lease.Promoted, *lease.Demoted:
		a.onLeaseEvent(ctx, msg)
	case *pairSnapshotRequest:
		ctx.Respond(a.snapshot())
	case *haltGossip:
		a.onHaltGossip(ctx)
	case *actor.Stopping, *actor.Restarting:
		// A restart loses the pair: its gossip ends here, its holder (a child) is stopped, writes stay fenced
		// (the guard keeps a withdrawn permit) until the next HelloAck starts them again.
		a.stopPair(ctx, true)
		a.wg.Wait()
		if a.env.guard.paired() {
			a.env.guard.pending()
		}
	case *actor.Stopped, *actor.Terminated:
	default:
		a.log.Warn("pair: unexpected message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

func (a *PairActor) onStarted() {
	if r, ok := readPairFile(a.cfg.DataDir); ok {
		a.env.guard.pending()
		a.log.Info("this node was a pair member at its last run: miner writes wait for the cloud's answer",
			slog.String("pair", r.PairID))
	}
}

func (a *PairActor) onLink(ctx actor.Context, m *uplink.LinkChanged) {
	a.cloudUp = m.Up
	if a.holder != nil {
		ctx.Send(a.holder, &lease.CloudStatus{Up: m.Up})
	}
}

func (a *PairActor) toHolder(ctx actor.Context, m any) {
	if a.holder == nil {
		a.log.Debug("lease message ignored: this node is not in a pair", slog.String("type", fmt.Sprintf("%T", m)))
		return
	}
	ctx.Send(a.holder, m)
}

// validPairInfo reports why p cannot be acted on, if it cannot.
func (a *PairActor) validPairInfo(p *pb.PairInfo) error {
	me := a.cfg.NodeID
	switch {
	case p.GetPairId() == "":
		return fmt.Errorf("%w: no pair id", ErrBadPairInfo)
	case p.GetPeerNodeId() == "" || p.GetPeerNodeId() == me:
		return fmt.Errorf("%w: partner %q", ErrBadPairInfo, p.GetPeerNodeId())
	case len(p.GetMembers()) != 2 || !slices.Contains(p.GetMembers(), me) || !slices.Contains(p.GetMembers(), p.GetPeerNodeId()):
		return fmt.Errorf("%w: members %q must be this node and its partner", ErrBadPairInfo, p.GetMembers())
	case p.GetHolder() != "" && !slices.Contains(p.GetMembers(), p.GetHolder()):
		return fmt.Errorf("%w: holder %q is not a member", ErrBadPairInfo, p.GetHolder())
	}
	return nil
}

// samePair reports whether p is the pair this node runs (a repeated HelloAck, a new peer address): same
// pair, partner, members and role, and the same pair key (an envelope may be re-sealed; its key is compared).
func (a *PairActor) samePair(p *pb.PairInfo) bool {
	cur := a.info
	if cur.GetPairId() != p.GetPairId() || cur.GetPeerNodeId() != p.GetPeerNodeId() || cur.GetStandby() != p.GetStandby() ||
		!slices.Equal(slices.Sorted(slices.Values(cur.GetMembers())), slices.Sorted(slices.Values(p.GetMembers()))) {
		return false
	}
	if bytes.Equal(cur.GetPairKeyEnvelope(), p.GetPairKeyEnvelope()) {
		return true
	}
	key, err := a.openKey(p)
	if err != nil {
		return a.keySum == [32]byte{} // still no usable key: nothing to restart for
	}
	defer sealing.Wipe(key)
	return sha256.Sum256(key) == a.keySum
}

func (a *PairActor) onPairInfo(ctx actor.Context, p *pb.PairInfo) {
	if p == nil {
		if a.info != nil || a.env.guard.paired() {
			a.log.Info("the cloud says this node is no longer in a pair: lease and gossip stopped, writes unfenced",
				slog.String("pair", a.info.GetPairId()))
			a.stopPair(ctx, false)
			a.env.guard.set(nil)
			if err := writePairFile(a.cfg.DataDir, nil); err != nil {
				a.log.Error("cannot forget the pair", slog.Any("error", err))
			}
		}
		return
	}
	if err := a.validPairInfo(p); err != nil {
		// Something claims a pair but cannot be acted on: keep writes fenced (the safe side) until the cloud
		// sends a usable pair or none.
		a.log.Error("pair info from the cloud refused; miner writes stay fenced", slog.Any("error", err))
		if a.info == nil {
			a.env.guard.pending()
		}
		return
	}
	if a.info != nil && a.samePair(p) {
		a.info = p
		a.seed(ctx, p)
		return
	}
	if a.info != nil {
		a.log.Info("pair changed: restarting lease and gossip", slog.String("from", a.info.GetPairId()), slog.String("to", p.GetPairId()))
		a.stopPair(ctx, false)
	}
	a.startPair(ctx, p)
}

// startPair runs the pair's gossip and LeaseHolder for p.
func (a *PairActor) startPair(ctx actor.Context, p *pb.PairInfo) {
	a.gen++
	a.info = p
	a.env.guard.pending()
	if err := writePairFile(a.cfg.DataDir, &pairRecord{PairID: p.GetPairId()}); err != nil {
		a.log.Error("cannot remember the pair across restarts", slog.Any("error", err))
	}
	log := a.log.With(slog.String("pair", p.GetPairId()), slog.String("peer", p.GetPeerNodeId()))

	a.gossErr, a.keySum = "", [32]byte{}
	if g, err := a.startGossip(ctx, p); err != nil {
		a.gossErr = err.Error()
		log.Error("pair gossip not running: the partner cannot see this node, and this node promotes only when the cloud confirms",
			slog.Any("error", err))
	} else {
		a.g = g
		a.env.gossipAddr.Store(ptr(g.LocalAddr()))
	}

	lc := a.cfg.Pair.Lease
	lc.NodeID, lc.PairID, lc.Standby = a.cfg.NodeID, p.GetPairId(), p.GetStandby()
	handle := lease.NewHandle(a.cfg.Clock)
	env := lease.Env{Sender: uplinkSender{root: ctx.ActorSystem().Root, pid: a.env.uplink}, Handle: handle,
		Events: ctx.Self(), CloudUp: a.cloudUp, Clock: a.cfg.Clock, Metrics: a.env.metrics, ActorMetrics: a.env.am,
		Logger: a.cfg.Logger}
	if a.g != nil {
		env.Gossip = a.g
	}
	pid, err := ctx.SpawnNamed(lease.Props(lc, env), "lease-holder-"+strconv.FormatUint(a.gen, 10))
	if err != nil {
		log.Error("cannot start the lease holder; miner writes stay fenced", slog.Any("error", err))
		return
	}
	a.holder = pid
	a.env.guard.set(handle)
	a.seed(ctx, p)
	log.Info("joined a warm-standby pair", slog.Bool("standby", p.GetStandby()), slog.String("holder", p.GetHolder()),
		slog.Uint64("epoch", p.GetEpoch()), slog.String("peer_gossip", p.GetPeerGossipAddr()))
}

// seed tells the holder what the cloud said of the lease in the hello (information, never a grant): a node
// returning with an old epoch learns at once that its partner holds a newer one, and demotes. A hello naming
// this node as the holder is not used: only a granted request gives validity, and the holder asks at once.
func (a *PairActor) seed(ctx actor.Context, p *pb.PairInfo) {
	if a.holder == nil || p.GetHolder() == "" || p.GetHolder() == a.cfg.NodeID {
		return
	}
	ctx.Send(a.holder, &pb.LeaseDenied{PairId: p.GetPairId(), Holder: p.GetHolder(), Epoch: p.GetEpoch(), Reason: "hello"})
}

// openKey opens p's pair key envelope with this node's credential key; the caller wipes the key.
func (a *PairActor) openKey(p *pb.PairInfo) ([]byte, error) {
	if a.cfg.CredentialKey == nil {
		return nil, fmt.Errorf("%w: no credential key to open the pair key with", ErrPairKey)
	}
	env, err := sealing.Parse(p.GetPairKeyEnvelope())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPairKey, err)
	}
	key, err := sealing.Open(a.cfg.CredentialKey, env, a.cfg.NodeID, p.GetPairId(), PairPurpose)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPairKey, err)
	}
	return key, nil
}

func (a *PairActor) startGossip(ctx actor.Context, p *pb.PairInfo) (*gossip.Gossip, error) {
	key, err := a.openKey(p)
	if err != nil {
		return nil, err
	}
	defer sealing.Wipe(key)
	a.keySum = sha256.Sum256(key)

	gc := a.cfg.Pair.Gossip
	host, port, _ := splitHostPort(a.cfg.Pair.GossipListen) // validated
	gc.NodeName, gc.BindAddr, gc.BindPort, gc.SecretKey = a.cfg.NodeID, host, port, key
	if adv := a.cfg.Pair.GossipAdvertise; adv != "" {
		gc.AdvertiseAddr, _, _ = splitHostPort(adv)
	}
	gc.Peers = nil
	if addr := p.GetPeerGossipAddr(); addr != "" {
		if _, _, err := net.SplitHostPort(addr); err == nil {
			gc.Peers = []string{addr}
		} else {
			a.log.Warn("partner's gossip address ignored", slog.String("addr", addr), slog.Any("error", err))
		}
	}
	if a.cfg.DataDir != "" {
		gc.PeersFile = filepath.Join(a.cfg.DataDir, pairPeersFile)
	}
	gc.Meta = lease.EncodeAdvert(lease.Advert{CloudUp: a.cloudUp})
	gc.Metrics, gc.Logger = a.env.gossipM, a.cfg.Logger
	sys, self, gen := ctx.ActorSystem(), ctx.Self(), a.gen
	gc.Events = func(_ context.Context, ev gossip.PeerEvent) { sys.Root.Send(self, &peerEvent{gen: gen, ev: ev}) }
	return gossip.Start(gc)
}

// stopPair ends the current pair's holder and gossip. Outside a node stop the gossip leaves in a goroutine
// the actor waits for when it stops (a graceful leave takes up to a second).
func (a *PairActor) stopPair(ctx actor.Context, sync bool) {
	if a.holder != nil {
		ctx.Stop(a.holder)
		a.holder = nil
	}
	if g := a.g; g != nil {
		a.g = nil
		halt := a.env.halt != nil && a.env.halt.Load()
		stop := func() {
			var err error
			if halt {
				err = g.Halt()
			} else {
				err = g.Stop()
			}
			if err != nil {
				a.log.Warn("pair gossip did not stop cleanly", slog.Any("error", err))
			}
		}
		if sync {
			stop()
		} else {
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				stop()
			}()
		}
	}
	a.env.gossipAddr.Store(nil)
	a.info = nil
	a.gen++
}

func (a *PairActor) onHaltGossip(ctx actor.Context) {
	if a.g != nil {
		if err := a.g.Halt(); err != nil {
			a.log.Warn("pair gossip halt", slog.Any("error", err))
		}
		a.g = nil
		a.gossErr = "halted (fault injection)"
		a.env.gossipAddr.Store(nil)
		a.log.Warn("pair gossip halted: this node is cut off the pair LAN")
	}
	ctx.Respond(true)
}

func (a *PairActor) onLeaseEvent(ctx actor.Context, ev any) {
	var msg string
	var epoch uint64
	switch e := ev.(type) {
	case *lease.Fenced:
		epoch, msg = e.Epoch, fmt.Sprintf("fenced: miner writes stopped (%s, epoch %d)", e.Reason, e.Epoch)
	case *lease.Unfenced:
		epoch, msg = e.Epoch, fmt.Sprintf("unfenced: miner writes allowed (%s, epoch %d, until %s)", e.Mode, e.Epoch,
			e.Until.UTC().Format(time.RFC3339Nano))
	case *lease.Promoted:
		kind := "cloud"
		if e.Local {
			kind = "local, without the cloud"
		}
		epoch, msg = e.Epoch, fmt.Sprintf("promoted: this node holds the lease (epoch %d, %s)", e.Epoch, kind)
	case *lease.Demoted:
		epoch, msg = e.Epoch, fmt.Sprintf("demoted: holder %q, epoch %d", e.Holder, e.Epoch)
	}
	if a.env.batcher == nil {
		return
	}
	now := a.cfg.Clock.Now()
	ctx.Send(a.env.batcher, &pb.Event{EventId: fmt.Sprintf("lease/%s/%d/%d", a.cfg.NodeID, epoch, now.UnixNano()),
		Kind: pb.EventKind_EVENT_KIND_LEASE, Message: msg, AtUnixMs: now.UnixMilli()})
}

func (a *PairActor) snapshot() *pairSnapshot {
	st := PairStatus{Paired: a.info != nil || a.env.guard.paired(), GossipError: a.gossErr}
	if a.info == nil {
		st.Pending = st.Paired
		return &pairSnapshot{status: st}
	}
	p := a.info
	st.PairID, st.Members, st.Peer, st.PeerGossipAddr = p.GetPairId(), slices.Clone(p.GetMembers()), p.GetPeerNodeId(), p.GetPeerGossipAddr()
	if a.g != nil {
		st.GossipAddr = a.g.LocalAddr()
	}
	return &pairSnapshot{status: st, holder: a.holder}
}

// uplinkSender is the LeaseHolder's Sender: the request goes to the Uplink actor, which writes it on the
// control stream when the link is up (the holder asks only while it is).
type uplinkSender struct {
	root *actor.RootContext
	pid  *atomic.Pointer[actor.PID]
}

func (s uplinkSender) SendLeaseRequest(r *pb.LeaseRequest) error {
	p := s.pid.Load()
	if p == nil {
		return lease.ErrCloudDown
	}
	s.root.Send(p, r)
	return nil
}

func ptr[T any](v T) *T { return &v }
