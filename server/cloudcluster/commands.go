package cloudcluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/proto"
)

// Org commands in the cluster: the operator's entry (Member.OrgIssue, on any member) and the pure decisions
// the Org, Node and Miner grains take for them. The rules are server/grains' (ValidateCommand, the record,
// ApplyAck / ApplyReport / ApplyTimeout, RecordStatus), applied per miner.

// clusterUnsupported are the actions whose secrets or artifacts the cluster path cannot carry yet: pool and
// login passwords are sealed to the owning nodes with the single-member credential vault, and firmware
// images live in that member's artifact store.
var clusterUnsupported = map[pb.Action]bool{
	pb.Action_ACTION_UPDATE_POOLS:    true,
	pb.Action_ACTION_UPDATE_PASSWORD: true,
	pb.Action_ACTION_FIRMWARE_UPDATE: true,
}

// validateOrgCommand checks a request before anything is stored: grains.ValidateCommand, then the actions
// the cluster path carries.
func validateOrgCommand(req grains.CommandRequest, maxMiners int) error {
	if err := grains.ValidateCommand(req, maxMiners); err != nil {
		return err
	}
	if clusterUnsupported[req.Action] {
		return fmt.Errorf("%w: %s is not available through the cluster endpoints yet (its secrets are sealed by a single member)",
			grains.ErrInvalidCommand, grains.ActionName(req.Action))
	}
	return nil
}

// specOf is the command spec a request records (grains' record, so the two never differ).
func specOf(req grains.CommandRequest) *pb.CommandSpec {
	return grains.NewCommandRecord("", req, time.Time{}).GetSpec()
}

// requestOf is the request an Org grain receives, back in grains' terms.
func requestOf(m *pb.ClusterOrgIssue) grains.CommandRequest {
	s := m.GetSpec()
	req := grains.CommandRequest{MinerIDs: m.GetMinerIds(), Action: s.GetAction(), PowerTargetW: s.GetPowerTargetW(),
		Pools: s.GetPools(), Firmware: s.GetFirmware(), IdempotencyKey: m.GetIdempotencyKey(), Actor: m.GetActor()}
	if p := s.GetParams(); p != nil {
		req.CoolingMode = p["cooling_mode"]
		req.FanPWM, _ = strconv.Atoi(p["fan_pwm"])
	}
	return req
}

// unownedMiners are the ids that are not registered to a node of org, in request order.
func unownedMiners(ids []string, owners map[string]pgstore.MinerOwner, org string) []string {
	var out []string
	for _, id := range ids {
		if o, ok := owners[id]; !ok || o.OrgID != org || store.ValidNodeID(o.NodeID) != nil {
			out = append(out, id)
		}
	}
	return out
}

// partsOf splits a command's miners by owning node (one command per node, as single mode sends them),
// nodes and miners in order.
func partsOf(ids []string, nodeOf map[string]string) []pgstore.CommandPart {
	by := map[string][]string{}
	for _, id := range ids {
		by[nodeOf[id]] = append(by[nodeOf[id]], id)
	}
	out := make([]pgstore.CommandPart, 0, len(by))
	for n, ms := range by {
		slices.Sort(ms)
		out = append(out, pgstore.CommandPart{NodeID: n, MinerIDs: ms})
	}
	slices.SortFunc(out, func(a, b pgstore.CommandPart) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return out
}

// partPayload is the CommandPayload of one node's part.
func partPayload(p pgstore.CommandPart, spec *pb.CommandSpec) ([]byte, error) {
	b, err := proto.Marshal(&pb.CommandPayload{MinerIds: p.MinerIDs, Spec: spec})
	if err != nil {
		return nil, fmt.Errorf("encode payload for %s: %w", p.NodeID, err)
	}
	return b, nil
}

// minerUpdates turns a node's ack or result frame for its part of an org command into one update per miner
// of the part. Results naming miners outside the part are dropped. Nil for other frames.
func minerUpdates(node string, part pgstore.CommandPart, f *pb.NodeToCloud) []*pb.ClusterMinerUpdate {
	in := make(map[string]bool, len(part.MinerIDs))
	for _, m := range part.MinerIDs {
		in[m] = true
	}
	var out []*pb.ClusterMinerUpdate
	switch x := f.GetMsg().(type) {
	case *pb.NodeToCloud_Ack:
		a := x.Ack
		for _, m := range part.MinerIDs {
			out = append(out, &pb.ClusterMinerUpdate{MinerId: m, CommandId: a.GetCommandId(), NodeId: node, Seq: a.GetMonotonicSeq(),
				Ack: true, Code: a.GetCode(), Message: a.GetMessage()})
		}
	case *pb.NodeToCloud_Result:
		r := x.Result
		by := map[string]*pb.ClusterMinerUpdate{}
		for _, res := range r.GetResults() {
			if !in[res.GetMinerId()] || by[res.GetMinerId()] != nil {
				continue
			}
			u := &pb.ClusterMinerUpdate{MinerId: res.GetMinerId(), CommandId: r.GetCommandId(), NodeId: node, Seq: r.GetMonotonicSeq(),
				Result: res, Done: r.GetDone()}
			by[res.GetMinerId()] = u
			out = append(out, u)
		}
		if r.GetDone() {
			for _, m := range part.MinerIDs {
				if by[m] == nil {
					out = append(out, &pb.ClusterMinerUpdate{MinerId: m, CommandId: r.GetCommandId(), NodeId: node,
						Seq: r.GetMonotonicSeq(), Done: true})
				}
			}
		}
	}
	return out
}

// decideMinerUpdate folds an update into a miner's current result with grains' rules (ApplyAck,
// ApplyReport): duplicates change nothing, a final result never changes.
func decideMinerUpdate(cur *pb.MinerResult, u *pb.ClusterMinerUpdate, now time.Time) (*pb.MinerResult, bool) {
	id := cur.GetMinerId()
	if grains.IsFinalResult(cur.GetCode()) || u.GetMinerId() != id {
		return cur, false
	}
	rec := &pb.CommandRecord{Results: map[string]*pb.MinerResult{id: proto.Clone(cur).(*pb.MinerResult)}}
	changed := false
	if u.GetAck() && u.GetCode() != pb.ResultCode_RESULT_CODE_UNSPECIFIED {
		changed = grains.ApplyAck(rec, []string{id}, u.GetCode(), u.GetMessage(), now)
	}
	if u.GetResult() != nil || u.GetDone() {
		var rs []*pb.MinerResult
		if u.GetResult() != nil {
			rs = []*pb.MinerResult{u.GetResult()}
		}
		changed = grains.ApplyReport(rec, []string{id}, rs, u.GetDone(), now) || changed
	}
	return rec.Results[id], changed
}

// decideTimeout is a miner's result when its command's deadline passed: TIMEOUT unless final.
func decideTimeout(cur *pb.MinerResult, timeout time.Duration, now time.Time) (*pb.MinerResult, bool) {
	id := cur.GetMinerId()
	rec := &pb.CommandRecord{Results: map[string]*pb.MinerResult{id: proto.Clone(cur).(*pb.MinerResult)}}
	changed := grains.ApplyTimeout(rec, timeout, now)
	return rec.Results[id], changed
}

// dueCommands are the open commands whose deadline is at or before now, in id order.
func dueCommands(open map[string]*pgstore.MinerCommand, now time.Time) []string {
	var out []string
	for id, c := range open {
		if !c.Deadline.After(now) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// nextDeadline is the earliest deadline among open commands.
func nextDeadline(open map[string]*pgstore.MinerCommand) (time.Time, bool) {
	var at time.Time
	for _, c := range open {
		if at.IsZero() || c.Deadline.Before(at) {
			at = c.Deadline
		}
	}
	return at, !at.IsZero()
}

// settleAt returns grains.SettleRecord at now, for the store's finishing transaction.
func settleAt(now time.Time) func(*pb.CommandRecord) bool {
	return func(rec *pb.CommandRecord) bool { return grains.SettleRecord(rec, now) }
}

// OrgIssue issues an operator command to miners of org through the org's Org grain, wherever it is: when
// it returns without error the command is recorded (every miner PENDING) in the shared store and each
// owning node's part was handed to the node's Node grain (Parts say which are queued). A request with an
// idempotency key the org used before returns the first command (Existing) and issues nothing twice.
func (m *Member) OrgIssue(ctx context.Context, org string, req grains.CommandRequest) (*pb.ClusterOrgIssueReply, error) {
	if err := store.ValidNodeID(org); err != nil {
		return nil, fmt.Errorf("%w: org: %w", ErrInvalid, err)
	}
	if m.env.commands == nil {
		return nil, ErrUnavailable
	}
	if err := validateOrgCommand(req, m.env.cfg.MaxCommandMiners); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	res, err := m.request(ctx, org, KindOrg, &pb.ClusterOrgIssue{OrgId: org, IdempotencyKey: req.IdempotencyKey,
		MinerIds: req.MinerIDs, Spec: specOf(req), Actor: req.Actor})
	if err != nil {
		return nil, err
	}
	r, ok := res.(*pb.ClusterOrgIssueReply)
	if !ok {
		return nil, fmt.Errorf("%w: org grain answered %T", ErrRequest, res)
	}
	switch r.GetRefusal() {
	case pb.ClusterRefusal_CLUSTER_REFUSAL_UNSPECIFIED:
		return r, nil
	case pb.ClusterRefusal_CLUSTER_REFUSAL_INVALID:
		return r, fmt.Errorf("%w: %s", ErrInvalid, r.GetError())
	case pb.ClusterRefusal_CLUSTER_REFUSAL_UNKNOWN_MINERS:
		return r, fmt.Errorf("%w: %s", ErrUnknownMiners, r.GetError())
	case pb.ClusterRefusal_CLUSTER_REFUSAL_CONFLICT:
		return r, fmt.Errorf("%w: %s", ErrConflict, r.GetError())
	case pb.ClusterRefusal_CLUSTER_REFUSAL_UNAVAILABLE:
		return r, fmt.Errorf("%w: %s", ErrUnavailable, r.GetError())
	}
	return r, fmt.Errorf("%w: %s", ErrRequest, r.GetError())
}

// OrgCommand reads a command from the shared store (any member answers the same): the record with every
// miner's result as its Miner grain wrote it, and its parts.
func (m *Member) OrgCommand(_ context.Context, id string) (*pgstore.OrgCommand, error) {
	if err := store.ValidID(id); err != nil {
		return nil, fmt.Errorf("%w: command id: %w", ErrInvalid, err)
	}
	if m.env.commands == nil {
		return nil, ErrUnavailable
	}
	c, err := m.env.commands.OrgCommand(id, grains.RecordStatus)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: command %q", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRequest, err)
	}
	return c, nil
}

// Miner asks the miner's Miner grain for its latest telemetry and its commands in flight.
func (m *Member) Miner(ctx context.Context, id string) (*pb.ClusterMinerReply, error) {
	if err := store.ValidID(id); err != nil {
		return nil, fmt.Errorf("%w: miner id: %w", ErrInvalid, err)
	}
	if m.env.commands == nil {
		return nil, ErrUnavailable
	}
	res, err := m.request(ctx, id, KindMiner, &pb.ClusterMinerGet{MinerId: id})
	if err != nil {
		return nil, err
	}
	r, ok := res.(*pb.ClusterMinerReply)
	if !ok {
		return nil, fmt.Errorf("%w: miner grain answered %T", ErrRequest, res)
	}
	if r.GetError() != "" {
		return r, fmt.Errorf("%w: %s", ErrRequest, r.GetError())
	}
	if !r.GetKnown() && r.GetLatest() == nil && len(r.GetInFlight()) == 0 {
		return r, fmt.Errorf("%w: miner %q", ErrNotFound, id)
	}
	return r, nil
}

// selfAfter delivers msg to the actor itself after d on clk; at once (not at the clock's next tick) when d
// is not positive, as a deadline already past must not wait for a fake clock to move again.
func selfAfter(clk clock.Clock, ctx actor.Context, d time.Duration, msg any) clock.Timer {
	if d <= 0 {
		ctx.Send(ctx.Self(), msg)
		return firedTimer{}
	}
	return actors.SendAfter(clk, ctx.ActorSystem(), ctx.Self(), d, msg)
}

// firedTimer stands for a timer whose message was sent already.
type firedTimer struct{}

func (firedTimer) C() <-chan time.Time      { return nil }
func (firedTimer) Stop() bool               { return false }
func (firedTimer) Reset(time.Duration) bool { return false }
