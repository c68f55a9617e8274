package cloudcluster

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/proto"
)

// KindOrg is the cluster kind of Org grains (identity: the org id).
const KindOrg = "org"

// OrgGrain is the operator's entry for commands to many miners of one org. It validates the request with
// server/grains' rules, resolves each miner's owning node from the shared device registry, records the
// command with every miner PENDING in the shared store before anything is sent, then hands each node's part
// to the node's Node grain (one command per node, queued under that node's next seq). Idempotent by the
// org's idempotency key, in the store: a retried request, on this activation or another, returns the first
// command and re-issues only parts not queued yet (a Node grain returns a command id it queued before
// instead of queueing it twice). At a command's deadline it wakes the Miner grains still without a final
// result, which time themselves out.
//
//	API (any member) ──ClusterOrgIssue──▶ OrgGrain ──CreateOrgCommand──▶ Postgres (record + rows, PENDING)
//	                                        │ caller: ClusterIssueCommand per node ──▶ NodeGrain ×parts
//	                                        └ deadline: ClusterMinerTrack ──▶ MinerGrain (stragglers)
//
// Activation (first request, or after its member died) resumes the org's unfinished commands from the store:
// unqueued parts are issued, deadlines re-armed.
type OrgGrain struct {
	env    *env
	org    string
	member string
	log    *slog.Logger

	deadlines map[string]clock.Timer // active command → its deadline timer
	issuing   map[string]*issuing    // command → requesters waiting for its parts to be queued
}

// issuing is a command whose requesters wait for the Node grains' answers (at most until replyDue).
type issuing struct {
	reply      *pb.ClusterOrgIssueReply
	requesters []requester
	waiting    map[string]bool // nodes not answered yet
	due        clock.Timer
}

// requester is who waits for a command's reply; existing: its request named a command issued before.
type requester struct {
	pid      *actor.PID
	existing bool
}

// Org grain's own messages.
type (
	partTag struct {
		commandID, node string
	}
	orgDeadline struct{ commandID string }
	orgReplyDue struct {
		commandID string
		is        *issuing // the wait it ends (a later wait for the same command has its own)
	}
)

func newOrgGrain(e *env) actor.Actor {
	return &OrgGrain{env: e, deadlines: map[string]clock.Timer{}, issuing: map[string]*issuing{}}
}

// Receive dispatches each message to its handler.
func (g *OrgGrain) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		g.onStarted(ctx)
	case *cluster.ClusterInit:
	case *pb.ClusterOrgIssue:
		g.onIssue(ctx, m)
	case *pb.ClusterOrgWake:
		g.onWake(ctx)
	case *callDone:
		g.onCallDone(ctx, m)
	case *orgDeadline:
		g.onDeadline(m)
	case *orgReplyDue:
		if g.issuing[m.commandID] == m.is {
			g.respond(ctx, m.commandID)
		}
	case *actor.Stopping:
		g.onStopping()
	case *actor.Stopped, *actor.Restarting, *actor.Terminated:
	default:
		g.env.log.Warn("org grain: unexpected message", slog.String("org", g.org), slog.String("type", fmt.Sprintf("%T", m)))
	}
}

func (g *OrgGrain) onStarted(ctx actor.Context) {
	g.org = cluster.GetClusterIdentity(ctx).Identity
	g.member = ctx.ActorSystem().ID
	g.log = g.env.log.With(slog.String("org", g.org), slog.String("grain", "org"))
	g.resumeUnfinished(ctx)
}

// onWake: a sweeper saw one of the org's commands open past its deadline. Commands this activation does
// not watch (recorded by an activation that died) are resumed; overdue ones are timed out at once.
func (g *OrgGrain) onWake(ctx actor.Context) {
	g.resumeUnfinished(ctx)
	ctx.Respond(&pb.ClusterOrgWake{OrgId: g.org})
}

// resumeUnfinished resumes the org's commands without a final result for every miner that this activation
// does not watch yet: their deadlines armed (at once when past), their unqueued parts issued.
func (g *OrgGrain) resumeUnfinished(ctx actor.Context) {
	cs := g.env.commands
	if cs == nil {
		return
	}
	ids, err := cs.ActiveOrgCommands(g.org)
	if err != nil {
		g.log.Error("load unfinished commands; they resume on the next request or sweep", slog.Any("err", err))
		return
	}
	resumed := 0
	for _, id := range ids {
		if g.deadlines[id] != nil || g.issuing[id] != nil {
			continue
		}
		oc, err := cs.OrgCommand(id, nil)
		if err != nil {
			g.log.Error("load unfinished command", slog.String("command", id), slog.Any("err", err))
			continue
		}
		g.resume(ctx, oc, nil, nil)
		resumed++
	}
	if resumed > 0 {
		g.log.Info("resumed unfinished commands", slog.Int("commands", resumed), slog.String("member", g.member))
	}
}

func (g *OrgGrain) onStopping() {
	for _, t := range g.deadlines {
		t.Stop()
	}
	for _, is := range g.issuing {
		is.due.Stop()
	}
}

func (g *OrgGrain) refuse(ctx actor.Context, why pb.ClusterRefusal, err error, unknown []string) {
	ctx.Respond(&pb.ClusterOrgIssueReply{Refusal: why, Error: err.Error(), UnknownMiners: unknown, OrgMember: g.member})
}

func (g *OrgGrain) onIssue(ctx actor.Context, m *pb.ClusterOrgIssue) {
	cs := g.env.commands
	if cs == nil {
		g.refuse(ctx, pb.ClusterRefusal_CLUSTER_REFUSAL_UNAVAILABLE, ErrUnavailable, nil)
		return
	}
	if m.GetOrgId() != g.org {
		g.refuse(ctx, pb.ClusterRefusal_CLUSTER_REFUSAL_INVALID, fmt.Errorf("request for org %q reached the grain of %q", m.GetOrgId(), g.org), nil)
		return
	}
	req := requestOf(m)
	if err := validateOrgCommand(req, g.env.cfg.MaxCommandMiners); err != nil {
		g.refuse(ctx, pb.ClusterRefusal_CLUSTER_REFUSAL_INVALID, err, nil)
		return
	}
	if key := req.IdempotencyKey; key != "" {
		id, err := cs.OrgCommandByKey(g.org, key)
		switch {
		case err == nil:
			g.retried(ctx, id, req)
			return
		case !errors.Is(err, store.ErrNotFound):
			g.refuse(ctx, pb.ClusterRefusal_CLUSTER_REFUSAL_STORE, err, nil)
			return
		}
	}
	owners, err := cs.MinerOwners(req.MinerIDs)
	if err != nil {
		g.refuse(ctx, pb.ClusterRefusal_CLUSTER_REFUSAL_STORE, err, nil)
		return
	}
	if unknown := unownedMiners(req.MinerIDs, owners, g.org); len(unknown) > 0 {
		g.refuse(ctx, pb.ClusterRefusal_CLUSTER_REFUSAL_UNKNOWN_MINERS,
			fmt.Errorf("%d miner(s) are not registered to a node of org %s: %v", len(unknown), g.org, head(unknown, 20)), unknown)
		return
	}
	nodeOf := make(map[string]string, len(owners))
	for id, o := range owners {
		nodeOf[id] = o.NodeID
	}
	now := g.env.cfg.Clock.Now()
	rec := grains.NewCommandRecord(grains.NewCommandID(now), req, now)
	id, existed, err := cs.CreateOrgCommand(g.org, rec, nodeOf, now.Add(g.env.cfg.CommandTimeout))
	if err != nil {
		g.refuse(ctx, pb.ClusterRefusal_CLUSTER_REFUSAL_STORE, err, nil)
		return
	}
	if existed { // another activation recorded it a moment ago
		g.retried(ctx, id, req)
		return
	}
	g.log.Info("command recorded", slog.String("command", id), slog.String("action", grains.ActionName(req.Action)),
		slog.Int("miners", len(req.MinerIDs)), slog.String("actor", req.Actor))
	oc := &pgstore.OrgCommand{OrgID: g.org, Record: rec, Parts: partsOf(req.MinerIDs, nodeOf), Deadline: now.Add(g.env.cfg.CommandTimeout),
		Active: true}
	g.resume(ctx, oc, ctx.Sender(), &pb.ClusterOrgIssueReply{CommandId: id, OrgMember: g.member})
}

// retried answers a request whose idempotency key names command id: the same command asked again gets it
// (and its unqueued parts issued), a different one is refused.
func (g *OrgGrain) retried(ctx actor.Context, id string, req grains.CommandRequest) {
	oc, err := g.env.commands.OrgCommand(id, grains.RecordStatus)
	if err != nil {
		g.refuse(ctx, pb.ClusterRefusal_CLUSTER_REFUSAL_STORE, err, nil)
		return
	}
	if !grains.SameCommand(oc.Record, req) {
		g.refuse(ctx, pb.ClusterRefusal_CLUSTER_REFUSAL_CONFLICT,
			fmt.Errorf("idempotency key %q of org %s issued command %s, which asks for something else", req.IdempotencyKey, g.org, id), nil)
		return
	}
	g.log.Info("command asked again under its idempotency key", slog.String("command", id), slog.Bool("active", oc.Active))
	g.resume(ctx, oc, ctx.Sender(), &pb.ClusterOrgIssueReply{CommandId: id, Existing: true, OrgMember: g.member})
}

// resume arms an active command's deadline and issues its parts not queued yet; from (nil: nobody) gets
// reply with every part once the Node grains answered, or at the reply deadline (half the request timeout).
func (g *OrgGrain) resume(ctx actor.Context, oc *pgstore.OrgCommand, from *actor.PID, reply *pb.ClusterOrgIssueReply) {
	id := oc.Record.GetCommandId()
	if oc.Active {
		g.armDeadline(ctx, id, oc.Deadline)
	}
	is := g.issuing[id]
	if is == nil {
		is = &issuing{reply: reply, waiting: map[string]bool{}}
		if reply == nil {
			is.reply = &pb.ClusterOrgIssueReply{CommandId: id, OrgMember: g.member}
		}
		for _, p := range oc.Parts {
			is.reply.Parts = append(is.reply.Parts, &pb.ClusterIssuedPart{NodeId: p.NodeID, MinerIds: p.MinerIDs, Seq: p.Seq})
		}
		if oc.Active {
			g.issueParts(ctx, oc, is)
		}
	}
	if from != nil {
		is.requesters = append(is.requesters, requester{pid: from, existing: reply.GetExisting()})
	}
	if len(is.waiting) == 0 {
		g.issuing[id] = is
		g.respond(ctx, id)
		return
	}
	if g.issuing[id] == nil {
		g.issuing[id] = is
		// Answer before the requester's own request times out; parts still unanswered are marked so.
		is.due = selfAfter(g.env.cfg.Clock, ctx, g.env.cfg.RequestTimeout/2, &orgReplyDue{commandID: id, is: is})
	}
}

// issueParts hands each unqueued part to its Node grain through the caller (retried until the deadline).
func (g *OrgGrain) issueParts(ctx actor.Context, oc *pgstore.OrgCommand, is *issuing) {
	rec := oc.Record
	for _, p := range oc.Parts {
		if p.Seq != 0 {
			continue
		}
		payload, err := partPayload(p, rec.GetSpec())
		if err != nil {
			g.log.Error("command part not issued", slog.String("command", rec.GetCommandId()), slog.String("node", p.NodeID), slog.Any("err", err))
			continue
		}
		ok := g.env.caller.Go(call{identity: p.NodeID, kind: KindNode, until: oc.Deadline, replyTo: ctx.Self(),
			tag: partTag{commandID: rec.GetCommandId(), node: p.NodeID},
			msg: &pb.ClusterIssueCommand{NodeId: p.NodeID, CommandId: rec.GetCommandId(), Actor: rec.GetActor(), Payload: payload,
				IssuedAtUnixMs: rec.GetCreatedAtUnixMs()}})
		if ok {
			is.waiting[p.NodeID] = true
		}
	}
}

func (g *OrgGrain) onCallDone(ctx actor.Context, m *callDone) {
	tag, ok := m.tag.(partTag)
	if !ok {
		g.log.Warn("org grain: call outcome with an unexpected tag", slog.String("type", fmt.Sprintf("%T", m.tag)))
		return
	}
	part := &pb.ClusterIssuedPart{NodeId: tag.node}
	r, _ := m.res.(*pb.ClusterIssueReply)
	switch {
	case m.err != nil:
		part.Error = m.err.Error()
		g.log.Error("command part not queued; it is issued again on the next request with the key or the org grain's next activation",
			slog.String("command", tag.commandID), slog.String("node", tag.node), slog.Any("err", m.err))
	case r == nil:
		part.Error = fmt.Sprintf("node grain answered %T", m.res)
	default:
		part.Seq, part.Sent, part.StreamMember = r.GetSeq(), r.GetSent(), r.GetStreamMember()
		if err := g.env.commands.SetPartSeq(tag.commandID, tag.node, r.GetSeq()); err != nil {
			g.log.Error("record part seq", slog.String("command", tag.commandID), slog.String("node", tag.node), slog.Any("err", err))
		}
	}
	is := g.issuing[tag.commandID]
	if is == nil {
		return
	}
	for _, p := range is.reply.Parts {
		if p.NodeId == tag.node {
			p.Seq, p.Sent, p.StreamMember, p.Error = part.Seq, part.Sent, part.StreamMember, part.Error
		}
	}
	delete(is.waiting, tag.node)
	if len(is.waiting) == 0 {
		g.respond(ctx, tag.commandID)
	}
}

// respond answers the requesters of a command with its parts as known now.
func (g *OrgGrain) respond(ctx actor.Context, id string) {
	is := g.issuing[id]
	if is == nil {
		return
	}
	delete(g.issuing, id)
	if is.due != nil {
		is.due.Stop()
	}
	for _, p := range is.reply.Parts {
		if is.waiting[p.NodeId] && p.Error == "" {
			p.Error = "not queued yet: the node grain has not answered (retried until the command's deadline)"
		}
	}
	for _, r := range is.requesters {
		rep := proto.Clone(is.reply).(*pb.ClusterOrgIssueReply)
		rep.Existing = r.existing
		ctx.Send(r.pid, rep)
	}
}

func (g *OrgGrain) armDeadline(ctx actor.Context, id string, at time.Time) {
	if g.deadlines[id] != nil {
		return
	}
	g.deadlines[id] = selfAfter(g.env.cfg.Clock, ctx, at.Sub(g.env.cfg.Clock.Now()), &orgDeadline{commandID: id})
}

// onDeadline wakes the Miner grains of a command's miners still without a final result: each times itself
// out (its own decision, on its row).
func (g *OrgGrain) onDeadline(m *orgDeadline) {
	delete(g.deadlines, m.commandID)
	open, err := g.env.commands.OpenMiners(m.commandID)
	if err != nil {
		g.log.Error("command deadline: load open miners", slog.String("command", m.commandID), slog.Any("err", err))
		return
	}
	if len(open) == 0 {
		return
	}
	g.log.Warn("command deadline passed; timing out miners without a final result", slog.String("command", m.commandID),
		slog.Int("miners", len(open)))
	until := g.env.cfg.Clock.Now().Add(g.env.cfg.CommandTimeout)
	for _, miner := range open {
		g.env.caller.Go(call{identity: miner, kind: KindMiner, until: until,
			msg: &pb.ClusterMinerTrack{MinerId: miner, CommandId: m.commandID}})
	}
}

func head(ids []string, n int) []string {
	if len(ids) > n {
		return ids[:n]
	}
	return ids
}
