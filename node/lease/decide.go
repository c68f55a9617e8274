package lease

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/cluster/gossip"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// Mode says why a node may or may not write.
type Mode int

const (
	// ModeStandby: another node holds the lease (or nobody does); no writes.
	ModeStandby Mode = iota
	// ModeLease: this node holds a valid cloud lease; writes until Permit.Until.
	ModeLease
	// ModeFenced: this node was the holder but its lease lapsed without renewal (self-fence), or it is
	// handing the lease over; no writes.
	ModeFenced
	// ModeLocalHold: the WAN is down, the lease lapsed, and the peer is alive in gossip without a cloud
	// either: the holder keeps control under its last epoch.
	ModeLocalHold
	// ModeLocalPromoted: AllowLocalPromotion let the standby take control without the cloud.
	ModeLocalPromoted
	// ModeConfirming: the cloud named this node the holder without a request of its own (a TRANSFER to it);
	// no writes until the RENEW it sends at once is granted, normally within one round trip. Commands of
	// this epoch arriving meanwhile may wait for it (the gate holds them briefly) instead of bouncing.
	ModeConfirming
)

func (m Mode) String() string {
	switch m {
	case ModeStandby:
		return "standby"
	case ModeLease:
		return "lease"
	case ModeFenced:
		return "fenced"
	case ModeLocalHold:
		return "local_hold"
	case ModeLocalPromoted:
		return "local_promoted"
	case ModeConfirming:
		return "confirming"
	}
	return "unknown"
}

// Lease is what the node knows of its pair's lease.
type Lease struct {
	// Holder is the holder as last heard from the cloud ("" unknown or nobody).
	Holder string
	// Epoch is the highest epoch heard.
	Epoch uint64
	// FenceAt is, when Holder is this node, when its writes must stop, on this node's clock: the send time
	// of the request that got the latest grant + TTL − Margin. Zero: no valid grant (e.g. a grant this node
	// did not ask for, which it must renew before writing).
	FenceAt time.Time
	// NeedAcquire: the cloud said this node's lease expired though nobody took it; ACQUIRE, not RENEW.
	NeedAcquire bool
}

// Peer is the other member as gossip shows it.
type Peer struct {
	// State is the gossip state; 0 when the peer was never seen.
	State gossip.PeerState
	// CloudUp and Holding are what the peer advertises in its gossip metadata (Advert).
	CloudUp bool
	Holding bool
}

// Inputs are everything a decision looks at.
type Inputs struct {
	Now     time.Time
	Me      string
	Lease   Lease
	CloudUp bool
	Peer    Peer
	// Transferring: a TransferLease or ReleaseLease is in progress; this node has stopped writing.
	Transferring bool
	// LocalPromoted: this standby took control locally (AllowLocalPromotion) and has not given it back.
	LocalPromoted bool
	// NoHolderFor is how long no live holder has been visible (the peer not alive-and-holding).
	NoHolderFor time.Duration
}

// Permit is the write decision.
type Permit struct {
	OK    bool
	Mode  Mode
	Epoch uint64
	// Until bounds writes started under this permit: a write must not start at or after Until, and must
	// use Until as its I/O deadline. For ModeLease it is the lease's FenceAt; for local modes it is a short
	// horizon the actor keeps moving while the conditions hold.
	Until time.Time
}

// Valid reports whether the permit allows a write at now.
func (p Permit) Valid(now time.Time) bool { return p.OK && now.Before(p.Until) }

// holds reports whether this node holds a grant that is valid at now.
func holds(in Inputs) bool {
	return in.Lease.Holder == in.Me && !in.Lease.FenceAt.IsZero() && in.Now.Before(in.Lease.FenceAt)
}

// localHorizon is how far a local-mode permit reaches: the actor re-evaluates every tick, so a stalled
// actor stops writes within two ticks.
func localHorizon(cfg Config) time.Duration { return 2 * cfg.TickInterval }

// MayWrite is the node's write decision, pure.
func MayWrite(cfg Config, in Inputs) Permit {
	p := Permit{Epoch: in.Lease.Epoch}
	switch {
	case in.Transferring:
		p.Mode = ModeFenced
	case holds(in):
		p.OK, p.Mode, p.Until = true, ModeLease, in.Lease.FenceAt
	case cfg.UnsafeTestNoSelfFence && in.Lease.Holder == in.Me && !in.Lease.FenceAt.IsZero():
		p.OK, p.Mode, p.Until = true, ModeLease, in.Now.Add(localHorizon(cfg)) // test-only: no self-fence
	case in.Lease.Holder == in.Me && LocalHoldAllowed(cfg, in):
		p.OK, p.Mode, p.Until = true, ModeLocalHold, in.Now.Add(localHorizon(cfg))
	case in.Lease.Holder == in.Me && in.Lease.FenceAt.IsZero() && !in.Lease.NeedAcquire && in.CloudUp:
		p.Mode = ModeConfirming
	case in.Lease.Holder == in.Me:
		p.Mode = ModeFenced
	case in.LocalPromoted && LocalPromotionAllowed(cfg, in):
		p.OK, p.Mode, p.Until = true, ModeLocalPromoted, in.Now.Add(localHorizon(cfg))
	default:
		p.Mode = ModeStandby
	}
	return p
}

// LocalHoldAllowed: the lapsed holder may keep writing while the WAN is down only when it sees the peer
// alive and the peer says it has no cloud and is not writing. The peer then cannot be promoted (promotion
// needs the cloud) and, seeing this node alive and holding, does not ask. A suspect peer ends the hold:
// suspicion comes before death, so this node stops before the peer could decide it is dead.
func LocalHoldAllowed(cfg Config, in Inputs) bool {
	return cfg.LocalHold && !in.CloudUp && in.Peer.State == gossip.PeerAlive && !in.Peer.CloudUp && !in.Peer.Holding
}

// LocalPromotionAllowed: with the policy on, a standby without cloud may take control when gossip declared
// the peer dead (seen and lost, not merely never seen).
func LocalPromotionAllowed(cfg Config, in Inputs) bool {
	return cfg.AllowLocalPromotion && !in.CloudUp && (in.Peer.State == gossip.PeerDead || in.Peer.State == gossip.PeerLeft)
}

// ShouldPromote: a standby asks the cloud to promote it only when no live holder is visible. At once when
// gossip declared the peer dead or gone, or the peer is alive but advertises that it lost its cloud and is
// not writing; after PromoteGrace without a visible holder when the peer was never seen or is alive with a
// cloud but not writing (it is starting, and will acquire). A peer alive and holding, or merely suspect, is
// never challenged. The cloud confirms anyway.
func ShouldPromote(cfg Config, in Inputs) bool {
	if !in.CloudUp || in.Lease.Holder == in.Me {
		return false
	}
	switch in.Peer.State {
	case gossip.PeerSuspect:
		return false
	case gossip.PeerDead, gossip.PeerLeft:
		return true
	case gossip.PeerAlive:
		if in.Peer.Holding {
			return false
		}
		if !in.Peer.CloudUp {
			return true
		}
	}
	return in.NoHolderFor >= cfg.PromoteGrace
}

// NextOp is the request the node should send now, if any (LEASE_OP_UNSPECIFIED: none). lastSent is when the
// last automatic request was sent; pending says one is still awaiting its answer.
func NextOp(cfg Config, in Inputs, lastSent time.Time, pending bool) pb.LeaseOp {
	if !in.CloudUp || pending || in.Transferring {
		return pb.LeaseOp_LEASE_OP_UNSPECIFIED
	}
	since := in.Now.Sub(lastSent)
	if in.Lease.Holder == in.Me {
		switch {
		case in.Lease.NeedAcquire:
			if since >= cfg.RetryInterval {
				return pb.LeaseOp_LEASE_OP_ACQUIRE
			}
		case in.Lease.FenceAt.IsZero() || since >= cfg.RenewInterval:
			return pb.LeaseOp_LEASE_OP_RENEW
		}
		return pb.LeaseOp_LEASE_OP_UNSPECIFIED
	}
	if since < cfg.RetryInterval {
		return pb.LeaseOp_LEASE_OP_UNSPECIFIED
	}
	if !cfg.Standby && in.Lease.Holder == "" && in.Peer.State != gossip.PeerSuspect && !(in.Peer.State == gossip.PeerAlive && in.Peer.Holding) {
		return pb.LeaseOp_LEASE_OP_ACQUIRE
	}
	if ShouldPromote(cfg, in) {
		return pb.LeaseOp_LEASE_OP_PROMOTE
	}
	return pb.LeaseOp_LEASE_OP_UNSPECIFIED
}

// Change is what a grant or denial did to this node's role.
type Change int

const (
	// ChangeNone: this node's role did not change.
	ChangeNone Change = iota
	// ChangePromoted: this node became the holder (new epoch, or first grant).
	ChangePromoted
	// ChangeDemoted: this node was the holder and is not any more.
	ChangeDemoted
)

// ApplyGrant folds a grant into what the node knows. sentAt is the send time of this node's request the
// grant answers, or nil for a grant it did not ask for (a transfer to it, a late answer to a request it
// gave up): such a grant names the holder and epoch but gives no write validity, since this node cannot
// know when the cloud started its TTL. lostAt is when this node last lost or gave up the lease: a grant to
// a request sent before that is stale and ignored.
func ApplyGrant(cfg Config, me string, l Lease, g *pb.LeaseGrant, sentAt *time.Time, lostAt time.Time) (Lease, Change) {
	if g.GetEpoch() < l.Epoch {
		return l, ChangeNone
	}
	wasMine := l.Holder == me
	switch holder := g.GetHolder(); {
	case holder == "": // released
		next := Lease{Holder: "", Epoch: g.GetEpoch()}
		if wasMine {
			return next, ChangeDemoted
		}
		return next, ChangeNone
	case holder != me:
		next := Lease{Holder: holder, Epoch: g.GetEpoch()}
		if wasMine {
			return next, ChangeDemoted
		}
		return next, ChangeNone
	}
	// A grant naming this node.
	if g.GetEpoch() == l.Epoch && !wasMine {
		return l, ChangeNone // this epoch was released or lost meanwhile: stale
	}
	if sentAt != nil && !sentAt.After(lostAt) && !lostAt.IsZero() {
		return l, ChangeNone
	}
	next := l
	if g.GetEpoch() > l.Epoch {
		next.FenceAt = time.Time{}
	}
	next.Holder, next.Epoch, next.NeedAcquire = me, g.GetEpoch(), false
	if sentAt != nil {
		ttl := time.Duration(g.GetTtlMs()) * time.Millisecond
		if ttl <= 0 {
			ttl = cfg.DefaultTTL
		}
		if fence := sentAt.Add(ttl - cfg.Margin); fence.After(next.FenceAt) {
			next.FenceAt = fence
		}
	}
	if !wasMine || g.GetEpoch() != l.Epoch {
		return next, ChangePromoted
	}
	return next, ChangeNone
}

// ApplyDenied folds a refusal into what the node knows: a newer epoch or another holder demotes this node;
// its own expired lease (nobody took it) makes it ACQUIRE again; older information is ignored.
func ApplyDenied(me string, l Lease, d *pb.LeaseDenied) (Lease, Change) {
	switch {
	case d.GetEpoch() < l.Epoch:
		return l, ChangeNone // older than what we know (a cloud that lost its store also lands here)
	case d.GetHolder() == me && d.GetEpoch() == l.Epoch:
		if l.Holder == me {
			l.NeedAcquire = true // RENEW after the cloud's expiry; the lease is still ours to re-acquire
		}
		return l, ChangeNone
	}
	wasMine := l.Holder == me
	next := Lease{Holder: d.GetHolder(), Epoch: d.GetEpoch()}
	if d.GetHolder() == me { // the cloud says we hold a newer epoch than we know: we have no validity for it
		next.NeedAcquire = true
	}
	if wasMine && d.GetHolder() != me {
		return next, ChangeDemoted
	}
	return next, ChangeNone
}

// Advert is what a node tells its peer through gossip metadata.
type Advert struct {
	// Holding: this node writes, or stopped less than Drain ago.
	Holding bool
	// CloudUp: this node's uplink is connected.
	CloudUp bool
	Epoch   uint64
}

const advertVersion = 1

// EncodeAdvert returns the gossip metadata for a.
func EncodeAdvert(a Advert) []byte {
	var flags byte
	if a.Holding {
		flags |= 1
	}
	if a.CloudUp {
		flags |= 2
	}
	return binary.AppendUvarint([]byte{advertVersion, flags}, a.Epoch)
}

// DecodeAdvert parses gossip metadata. Undecodable metadata is an error; the caller then assumes the
// cautious reading (Holding and CloudUp true: never challenge the peer, never hold locally against it).
func DecodeAdvert(b []byte) (Advert, error) {
	if len(b) < 2 || b[0] != advertVersion {
		return Advert{Holding: true, CloudUp: true}, fmt.Errorf("%w: %x", ErrBadMeta, b)
	}
	e, n := binary.Uvarint(b[2:])
	if n <= 0 {
		return Advert{Holding: true, CloudUp: true}, fmt.Errorf("%w: bad epoch in %x", ErrBadMeta, b)
	}
	return Advert{Holding: b[1]&1 != 0, CloudUp: b[1]&2 != 0, Epoch: e}, nil
}
