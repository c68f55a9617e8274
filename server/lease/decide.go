package lease

import (
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Outcome names what a decision did; it is the "result" label of the decision metric.
type Outcome string

const (
	// OutcomeAcquired: a node took a lease nobody held, or took it over from an expired, silent holder.
	OutcomeAcquired Outcome = "acquired"
	// OutcomePromoted: as OutcomeAcquired, asked as PROMOTE by a standby.
	OutcomePromoted Outcome = "promoted"
	// OutcomeExtended: ACQUIRE or PROMOTE by the current holder; its lease was extended, same epoch.
	OutcomeExtended Outcome = "extended"
	// OutcomeRenewed: RENEW by the holder.
	OutcomeRenewed Outcome = "renewed"
	// OutcomeTransferred: the holder handed the lease to the other member.
	OutcomeTransferred Outcome = "transferred"
	// OutcomeReleased: the holder gave the lease up.
	OutcomeReleased Outcome = "released"
	// OutcomeDenied: the request was refused; Reply.Denied says why.
	OutcomeDenied Outcome = "denied"
)

// Reply is what the LeaseActor answers the requester: exactly one of Grant and Denied is set.
//
// A RELEASE is answered with a Grant whose Holder is "" (the lease is free, Epoch the last one issued); a
// TRANSFER with a Grant naming the new holder and its epoch, so the old holder sees it lost the lease.
type Reply struct {
	Grant   *pb.LeaseGrant
	Denied  *pb.LeaseDenied
	Outcome Outcome
	// From is the holder before the decision ("" when none); From != Grant.Holder means the holder changed.
	From string
	// Failover is true when the lease was taken over from a previous holder that did not hand it over
	// (ACQUIRE or PROMOTE after its expiry), as opposed to a transfer, a release or a first grant.
	Failover bool
}

// HolderChanged reports whether the decision moved the lease to another node (or to nobody).
func (r Reply) HolderChanged() bool {
	return r.Grant != nil && r.Grant.GetHolder() != r.From
}

// Decide is the cloud's lease decision, pure: the state, the request and the cloud's now in; the next state
// and the reply out. A refused request returns a Denied reply and the named error (errors.Is with the
// sentinels in errors.go); the next state then differs from s at most in LastHeartbeat, which records that
// the requester was heard. next.Version is s.Version+1 exactly when a durable field changed, and the caller
// must persist such a state (CompareAndSet on s.Version) before sending the reply.
func Decide(cfg Config, s State, req *pb.LeaseRequest, now time.Time) (State, Reply, error) {
	next := s.Clone()
	if err := check(s, req); err != nil {
		return next, Reply{Denied: deny(s, req, err), Outcome: OutcomeDenied, From: s.Holder}, err
	}
	node := req.GetNodeId()
	next.LastHeartbeat[node] = now

	var (
		out Outcome
		err error
	)
	switch req.GetOp() {
	case pb.LeaseOp_LEASE_OP_ACQUIRE, pb.LeaseOp_LEASE_OP_PROMOTE:
		out, err = take(cfg, s, &next, req, now)
	case pb.LeaseOp_LEASE_OP_RENEW:
		out, err = renew(cfg, s, &next, req, now)
	case pb.LeaseOp_LEASE_OP_TRANSFER:
		out, err = transfer(cfg, s, &next, req, now)
	case pb.LeaseOp_LEASE_OP_RELEASE:
		out, err = release(s, &next, req)
	default:
		err = fmt.Errorf("%w: op %s", ErrInvalidRequest, req.GetOp())
	}
	if err != nil {
		// Only the heartbeat survives a refusal.
		hb := next.LastHeartbeat
		next = s.Clone()
		next.LastHeartbeat = hb
		return next, Reply{Denied: deny(s, req, err), Outcome: OutcomeDenied, From: s.Holder}, err
	}
	if !next.DurableEqual(s) {
		next.Version = s.Version + 1
	}
	r := Reply{Grant: grant(cfg, next, req), Outcome: out, From: s.Holder}
	r.Failover = (out == OutcomeAcquired || out == OutcomePromoted) && s.Holder != "" && s.Holder != node
	return next, r, nil
}

// check refuses requests that are malformed or come from outside the pair.
func check(s State, req *pb.LeaseRequest) error {
	switch {
	case s.PairID == "" || s.Members[0] == "" || s.Members[1] == "":
		return ErrNoPair
	case req == nil || req.GetNodeId() == "":
		return fmt.Errorf("%w: no node id", ErrInvalidRequest)
	case req.GetPairId() != s.PairID:
		return fmt.Errorf("%w: pair %q, this lease is %q", ErrInvalidRequest, req.GetPairId(), s.PairID)
	case !s.IsMember(req.GetNodeId()):
		return fmt.Errorf("%w: %s (members %s, %s)", ErrNotMember, req.GetNodeId(), s.Members[0], s.Members[1])
	case req.GetEpoch() > s.Epoch:
		return fmt.Errorf("%w: request names epoch %d, the latest issued is %d", ErrFutureEpoch, req.GetEpoch(), s.Epoch)
	}
	return nil
}

// checkEpoch refuses RENEW, TRANSFER and RELEASE that do not name the current epoch and holder.
func checkEpoch(s State, req *pb.LeaseRequest) error {
	if req.GetEpoch() != s.Epoch {
		return fmt.Errorf("%w: request names epoch %d, current is %d held by %q", ErrStaleEpoch, req.GetEpoch(), s.Epoch, s.Holder)
	}
	if s.Holder != req.GetNodeId() {
		return fmt.Errorf("%w: holder of epoch %d is %q", ErrNotHolder, s.Epoch, s.Holder)
	}
	return nil
}

// takeable says whether a non-holder may take the lease at now.
func takeable(cfg Config, s State, now time.Time) error {
	if s.Holder == "" {
		return nil
	}
	if until := s.ExpiresAt.Add(cfg.Margin); now.Before(until) {
		return fmt.Errorf("%w: %s holds epoch %d until %s (+%s margin)", ErrHeld, s.Holder, s.Epoch,
			s.ExpiresAt.UTC().Format(time.RFC3339Nano), cfg.Margin)
	}
	if hb, ok := s.LastHeartbeat[s.Holder]; ok && now.Sub(hb) < cfg.HeartbeatTimeout {
		return fmt.Errorf("%w: %s was heard %s ago (timeout %s)", ErrHolderAlive, s.Holder, now.Sub(hb), cfg.HeartbeatTimeout)
	}
	return nil
}

func take(cfg Config, s State, next *State, req *pb.LeaseRequest, now time.Time) (Outcome, error) {
	node := req.GetNodeId()
	if s.Holder == node {
		if exp := now.Add(cfg.TTL); exp.After(s.ExpiresAt) {
			next.ExpiresAt = exp
		}
		return OutcomeExtended, nil
	}
	if err := takeable(cfg, s, now); err != nil {
		return "", err
	}
	next.Holder, next.Epoch, next.ExpiresAt = node, s.Epoch+1, now.Add(cfg.TTL)
	if req.GetOp() == pb.LeaseOp_LEASE_OP_PROMOTE {
		return OutcomePromoted, nil
	}
	return OutcomeAcquired, nil
}

func renew(cfg Config, s State, next *State, req *pb.LeaseRequest, now time.Time) (Outcome, error) {
	if err := checkEpoch(s, req); err != nil {
		return "", err
	}
	if !s.Live(now) {
		return "", fmt.Errorf("%w: epoch %d expired at %s; ACQUIRE again", ErrExpired, s.Epoch, s.ExpiresAt.UTC().Format(time.RFC3339Nano))
	}
	next.ExpiresAt = now.Add(cfg.TTL)
	return OutcomeRenewed, nil
}

func transfer(cfg Config, s State, next *State, req *pb.LeaseRequest, now time.Time) (Outcome, error) {
	if err := checkEpoch(s, req); err != nil {
		return "", err
	}
	to := req.GetTransferTo()
	if to == "" || to == req.GetNodeId() || !s.IsMember(to) {
		return "", fmt.Errorf("%w: %q", ErrBadTransfer, to)
	}
	if !s.Live(now) {
		return "", fmt.Errorf("%w: epoch %d cannot be transferred", ErrExpired, s.Epoch)
	}
	next.Holder, next.Epoch, next.ExpiresAt = to, s.Epoch+1, now.Add(cfg.TTL)
	return OutcomeTransferred, nil
}

func release(s State, next *State, req *pb.LeaseRequest) (Outcome, error) {
	if err := checkEpoch(s, req); err != nil {
		return "", err
	}
	next.Holder, next.ExpiresAt = "", time.Time{}
	return OutcomeReleased, nil
}

func grant(cfg Config, s State, req *pb.LeaseRequest) *pb.LeaseGrant {
	g := &pb.LeaseGrant{PairId: s.PairID, Holder: s.Holder, Epoch: s.Epoch, RequestId: req.GetRequestId(),
		TtlMs: cfg.TTL.Milliseconds()}
	if !s.ExpiresAt.IsZero() {
		g.ExpiresAtUnixMs = s.ExpiresAt.UnixMilli()
	}
	return g
}

func deny(s State, req *pb.LeaseRequest, err error) *pb.LeaseDenied {
	d := &pb.LeaseDenied{PairId: s.PairID, Holder: s.Holder, Epoch: s.Epoch, Reason: err.Error(), RequestId: req.GetRequestId()}
	if !s.ExpiresAt.IsZero() {
		d.ExpiresAtUnixMs = s.ExpiresAt.UnixMilli()
	}
	return d
}

// DecideMembers is the pure decision for an operator changing the pair's members. The holder keeps its lease
// and epoch even when it is no longer a member: its requests are then refused (ErrNotMember) so it demotes
// itself, and the new member can take the lease only after it expired by Margin, as after a failure.
func DecideMembers(s State, members [2]string) (State, error) {
	if members[0] == "" || members[1] == "" || members[0] == members[1] {
		return s, fmt.Errorf("%w: members %q and %q must be two different nodes", ErrInvalidRequest, members[0], members[1])
	}
	next := s.Clone()
	next.Members = members
	if !next.DurableEqual(s) {
		next.Version = s.Version + 1
	}
	return next, nil
}
