package grains

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/proto"
)

// The Org's part in warm-standby pairs (pairs.go has the picture): declarations, one LeaseActor per pair
// as a child, and the routing of pair devices' commands to the current holder.

// pairBook is the Org's pair state.
type pairBook struct {
	byID     map[string]*orgPair
	ofNode   map[string]string // node → pair id
	ofDevice map[string]string // miner → pair id
	gossip   map[string]string // node → gossip addr it last reported (pair members or not)
}

type orgPair struct {
	rec   *store.PairRecord
	lease *actor.PID
	// holder and epoch as the LeaseActor last told (its status at start, then every HolderChanged);
	// known is false until the first answer.
	holder string
	epoch  uint64
	known  bool
	// waiting are commands for the pair's devices issued while nobody held the lease.
	waiting []pairCommand
}

func newPairBook() pairBook {
	return pairBook{byID: map[string]*orgPair{}, ofNode: map[string]string{}, ofDevice: map[string]string{}, gossip: map[string]string{}}
}

func (o *Org) onPairMessage(ctx actor.Context, msg any) {
	if o.pairs.byID == nil { // the store failed before the pairs loaded
		o.pairs = newPairBook()
	}
	switch m := msg.(type) {
	case *declarePair:
		o.onDeclarePair(ctx, m)
	case *deletePair:
		o.onDeletePair(ctx, m)
	case *requestTransfer:
		o.onRequestTransfer(ctx, m)
	case *getPair:
		p := o.pairs.byID[m.id]
		if p == nil {
			ctx.Respond(fmt.Errorf("%w: %s", ErrUnknownPair, m.id))
			return
		}
		ctx.Respond(o.snapshot(p))
	case *listPairs:
		out := make([]pairSnapshot, 0, len(o.pairs.byID))
		for _, id := range slices.Sorted(maps.Keys(o.pairs.byID)) {
			out = append(out, o.snapshot(o.pairs.byID[id]))
		}
		ctx.Respond(out)
	case *memberGossip:
		o.onMemberGossip(ctx, m)
	case *nodeStarted:
		if p := o.pairs.byID[o.pairs.ofNode[m.node]]; p != nil {
			o.tellMember(ctx, p, m.node)
		}
	case *pairCommandsMoved:
		o.onCommandsMoved(ctx, m)
	case *lease.HolderChanged:
		o.onHolderChanged(ctx, m)
	case *lease.Status:
		o.onLeaseStatus(ctx, m)
	}
}

func (o *Org) snapshot(p *orgPair) pairSnapshot {
	rec := *p.rec
	rec.Devices = slices.Clone(p.rec.Devices)
	rec.Failovers = slices.Clone(p.rec.Failovers)
	rec.KeyEnvelopes = nil
	g := map[string]string{}
	for _, n := range p.rec.Members {
		g[n] = o.pairs.gossip[n]
	}
	return pairSnapshot{rec: &rec, lease: p.lease, gossip: g}
}

// loadPairs spawns a LeaseActor for every declared pair and tells the members.
func (o *Org) loadPairs(ctx actor.Context) error {
	o.pairs = newPairBook()
	if o.cfg.Pairs == nil {
		return nil
	}
	recs, err := o.cfg.Pairs.Pairs()
	if err != nil {
		return fmt.Errorf("load pairs: %w", err)
	}
	for _, rec := range recs {
		o.addPair(ctx, rec)
	}
	if len(recs) == 0 {
		return nil
	}
	active, err := o.cfg.Store.ActiveCommands()
	if err != nil {
		return fmt.Errorf("load pairs: active commands: %w", err)
	}
	// A command a member's queue holds was sent (its seq may not have reached the record before a crash).
	queued := map[string]bool{}
	for _, rec := range recs {
		for _, n := range rec.Members {
			_, q, err := o.cfg.Store.NodeQueue(n)
			if err != nil {
				return fmt.Errorf("load pairs: queue of %s: %w", n, err)
			}
			for _, c := range q {
				queued[c.GetCommandId()] = true
			}
		}
	}
	waiting := 0
	for _, rec := range active {
		if queued[rec.GetCommandId()] {
			continue
		}
		for pid, c := range waitingParts(rec, o.pairs) {
			o.pairs.byID[pid].waiting = append(o.pairs.byID[pid].waiting, c)
			waiting++
		}
	}
	o.log.Info("pairs loaded", slog.Int("pairs", len(recs)), slog.Int("waiting_commands", waiting))
	return nil
}

// waitingParts finds, in an unfinished command, the pair parts no member was ever sent: they were waiting
// for a holder when the server stopped, and wait again.
func waitingParts(rec *pb.CommandRecord, book pairBook) map[string]pairCommand {
	out := map[string]pairCommand{}
	for _, id := range rec.GetMinerIds() {
		pid := book.ofDevice[id]
		if pid == "" {
			continue
		}
		if r := rec.GetResults()[id]; r != nil && IsFinalResult(r.GetCode()) {
			continue
		}
		p := book.byID[pid]
		if _, sent := rec.GetNodeSeqs()[p.rec.Members[0]]; sent {
			continue
		}
		if _, sent := rec.GetNodeSeqs()[p.rec.Members[1]]; sent {
			continue
		}
		c, ok := out[pid]
		if !ok {
			c = pairCommand{commandID: rec.GetCommandId(), actor: rec.GetActor(), spec: rec.GetSpec(),
				issuedAt: time.UnixMilli(rec.GetCreatedAtUnixMs())}
		}
		c.minerIDs = append(c.minerIDs, id)
		out[pid] = c
	}
	return out
}

// addPair indexes a pair, spawns its LeaseActor, asks its status and tells both members.
func (o *Org) addPair(ctx actor.Context, rec *store.PairRecord) {
	p := &orgPair{rec: rec}
	o.pairs.byID[rec.ID] = p
	for _, n := range rec.Members {
		o.pairs.ofNode[n] = rec.ID
		o.node(ctx, n)
	}
	for _, d := range rec.Devices {
		o.pairs.ofDevice[d] = rec.ID
	}
	env := lease.Env{Store: o.cfg.Leases, Members: rec.Members, Notify: ctx.Self(), Clock: o.cfg.Clock,
		Metrics: o.cfg.LeaseMetrics, ActorMetrics: o.cfg.ActorMetrics, Logger: o.log}
	pid, err := ctx.SpawnNamed(lease.Props(rec.ID, o.cfg.Lease, env), "lease-"+rec.ID)
	if err != nil {
		o.log.Warn("spawn lease actor", slog.String("pair", rec.ID), slog.Any("err", err))
	}
	p.lease = pid
	ctx.Request(pid, &lease.StatusRequest{})
	o.tellMembers(ctx, p)
}

// tellMembers sends each member its PairInfo and the pair's devices.
func (o *Org) tellMembers(ctx actor.Context, p *orgPair) {
	for _, n := range p.rec.Members {
		o.tellMember(ctx, p, n)
	}
}

func (o *Org) tellMember(ctx actor.Context, p *orgPair, node string) {
	var devs []*pb.Device
	for _, id := range p.rec.Devices {
		if d := o.devices[id]; d != nil {
			devs = append(devs, d.device)
		}
	}
	ctx.Send(o.node(ctx, node), &setNodePair{info: pairInfoFor(p.rec, node, o.pairs.gossip, p.holder, p.epoch), lease: p.lease, devices: devs})
}

func (o *Org) pairRegistry() pairRegistry {
	return pairRegistry{
		orgID:  o.cfg.OrgID,
		record: o.cfg.NodeRecord,
		owner: func(id string) (string, bool) {
			d, ok := o.devices[id]
			if !ok {
				return "", false
			}
			return d.device.GetNodeId(), true
		},
		pairOfNode:   func(n string) string { return o.pairs.ofNode[n] },
		pairOfDevice: func(id string) string { return o.pairs.ofDevice[id] },
	}
}

func (o *Org) onDeclarePair(ctx actor.Context, m *declarePair) {
	if o.cfg.NodeRecord == nil || o.cfg.Pairs == nil || o.cfg.Leases == nil {
		ctx.Respond(ErrPairsUnsupported)
		return
	}
	d := m.decl
	if err := checkPairDecl(d, o.pairRegistry()); err != nil {
		ctx.Respond(err)
		return
	}
	var recs [2]*pb.NodeRecord
	for i, n := range d.Members {
		recs[i], _ = o.cfg.NodeRecord(n) // checked above
	}
	id := newPairID()
	envs, err := sealPairKey(id, recs)
	if err != nil {
		ctx.Respond(fmt.Errorf("%w: %v", ErrPairConflict, err))
		return
	}
	rec := &store.PairRecord{ID: id, OrgID: o.cfg.OrgID, Site: d.Site, Members: d.Members, Standby: d.Standby,
		Devices: slices.Clone(d.Devices), KeyEnvelopes: envs, DeclaredBy: d.Actor, DeclaredAt: o.cfg.Clock.Now()}
	if err := o.cfg.Pairs.PutPair(rec); errors.Is(err, store.ErrExists) {
		// Another declaration (another Org activation, another member) claimed a member or device first.
		ctx.Respond(fmt.Errorf("%w: %v", ErrPairConflict, err))
		return
	} else if err != nil {
		ctx.Respond(fmt.Errorf("%w: %v", ErrStore, err))
		return
	}
	o.addPair(ctx, rec)
	o.log.Info("pair declared", slog.String("pair", id), slog.String("site", d.Site), slog.String("member_a", d.Members[0]),
		slog.String("member_b", d.Members[1]), slog.String("standby", d.Standby), slog.Int("devices", len(d.Devices)),
		slog.String("actor", d.Actor))
	ctx.Respond(o.snapshot(o.pairs.byID[id]))
}

func (o *Org) onDeletePair(ctx actor.Context, m *deletePair) {
	p := o.pairs.byID[m.id]
	if p == nil {
		ctx.Respond(fmt.Errorf("%w: %s", ErrUnknownPair, m.id))
		return
	}
	if err := o.cfg.Pairs.DeletePair(m.id); err != nil && !errors.Is(err, store.ErrNotFound) {
		ctx.Respond(fmt.Errorf("%w: %v", ErrStore, err))
		return
	}
	delete(o.pairs.byID, m.id)
	for _, n := range p.rec.Members {
		delete(o.pairs.ofNode, n)
		ctx.Send(o.node(ctx, n), &setNodePair{})
	}
	for _, d := range p.rec.Devices {
		delete(o.pairs.ofDevice, d)
	}
	if p.lease != nil {
		ctx.Stop(p.lease)
	}
	o.cfg.LeaseMetrics.Forget(m.id)
	// Waiting commands go to the devices' owners, as for any device.
	for _, c := range p.waiting {
		o.routePlain(ctx, c)
	}
	o.log.Info("pair deleted", slog.String("pair", m.id), slog.Int("waiting_commands_rerouted", len(p.waiting)))
	ctx.Respond(okReply{})
}

// routePlain sends a command part to its devices' registered owners.
func (o *Org) routePlain(ctx actor.Context, c pairCommand) {
	parts := map[string][]string{}
	for _, id := range c.minerIDs {
		if d := o.devices[id]; d != nil {
			parts[d.device.GetNodeId()] = append(parts[d.device.GetNodeId()], id)
		}
	}
	for node, miners := range parts {
		ctx.Send(o.node(ctx, node), &enqueueCommand{commandID: c.commandID, actor: c.actor, minerIDs: miners, spec: c.spec, issuedAt: c.issuedAt})
	}
}

func (o *Org) onRequestTransfer(ctx actor.Context, m *requestTransfer) {
	p := o.pairs.byID[m.id]
	if p == nil {
		ctx.Respond(fmt.Errorf("%w: %s", ErrUnknownPair, m.id))
		return
	}
	if m.to != p.rec.Members[0] && m.to != p.rec.Members[1] {
		ctx.Respond(fmt.Errorf("%w: transfer target %q is not a member of pair %s", ErrInvalidPair, m.to, m.id))
		return
	}
	rec := *p.rec
	rec.Transfer = &store.PairTransfer{To: m.to, By: m.actor, RequestedAt: o.cfg.Clock.Now()}
	if err := o.cfg.Pairs.PutPair(&rec); err != nil {
		ctx.Respond(fmt.Errorf("%w: %v", ErrStore, err))
		return
	}
	p.rec = &rec
	o.log.Info("lease transfer requested; the holder hands over from its local UI or CLI", slog.String("pair", m.id),
		slog.String("to", m.to), slog.String("holder", p.holder), slog.String("actor", m.actor))
	ctx.Respond(o.snapshot(p))
}

// onMemberGossip records a node's gossip address and, when it changed, sends its partner a fresh PairInfo.
func (o *Org) onMemberGossip(ctx actor.Context, m *memberGossip) {
	if o.pairs.gossip[m.node] == m.addr {
		return
	}
	o.pairs.gossip[m.node] = m.addr
	p := o.pairs.byID[o.pairs.ofNode[m.node]]
	if p == nil {
		return
	}
	o.log.Info("pair member gossip address changed", slog.String("pair", p.rec.ID), slog.String("node", m.node), slog.String("addr", m.addr))
	o.tellMembers(ctx, p)
}

func (o *Org) onLeaseStatus(ctx actor.Context, st *lease.Status) {
	p := o.pairs.byID[st.PairID]
	if p == nil || p.known {
		return
	}
	p.holder, p.epoch, p.known = st.Holder, st.Epoch, true
	o.tellMembers(ctx, p)
	o.flushWaiting(ctx, p)
}

// onHolderChanged follows the lease: history, the unasked grant of a TRANSFER, and the commands.
func (o *Org) onHolderChanged(ctx actor.Context, hc *lease.HolderChanged) {
	p := o.pairs.byID[hc.PairID]
	if p == nil {
		return
	}
	p.holder, p.epoch, p.known = hc.To, hc.Epoch, true
	now := o.cfg.Clock.Now()
	rec := *p.rec
	rec.Failovers = append(slices.Clone(rec.Failovers), store.PairFailover{From: hc.From, To: hc.To, Epoch: hc.Epoch, At: now, Kind: changeKind(hc)})
	if n := len(rec.Failovers); n > store.MaxPairHistory {
		rec.Failovers = rec.Failovers[n-store.MaxPairHistory:]
	}
	if rec.Transfer != nil && rec.Transfer.To == hc.To {
		rec.Transfer = nil
	}
	if err := o.cfg.Pairs.PutPair(&rec); err != nil {
		o.log.Error("persist pair history", slog.String("pair", hc.PairID), slog.Any("err", err))
	}
	p.rec = &rec
	o.log.Info("pair holder changed", slog.String("pair", hc.PairID), slog.String("from", hc.From), slog.String("to", hc.To),
		slog.Uint64("epoch", hc.Epoch), slog.String("kind", changeKind(hc)), slog.Int("waiting", len(p.waiting)))
	if isTransfer(hc) {
		g := proto.Clone(hc.Grant).(*pb.LeaseGrant)
		g.RequestId = ""
		ctx.Send(o.node(ctx, hc.To), &deliverGrant{grant: g})
	}
	if hc.From != "" && hc.From != hc.To {
		devs := make(map[string]bool, len(p.rec.Devices))
		for _, d := range p.rec.Devices {
			devs[d] = true
		}
		ctx.Send(o.node(ctx, hc.From), &withdrawPair{pairID: hc.PairID, devices: devs, from: hc.From, to: hc.To, epoch: hc.Epoch, failover: hc.Failover})
	}
	o.flushWaiting(ctx, p)
}

func (o *Org) onCommandsMoved(ctx actor.Context, m *pairCommandsMoved) {
	p := o.pairs.byID[m.pairID]
	if p == nil {
		for _, c := range m.cmds {
			o.routePlain(ctx, c)
		}
		return
	}
	o.log.Info("commands moved from the old holder", slog.String("pair", m.pairID), slog.Int("commands", len(m.cmds)), slog.String("to", p.holder))
	p.waiting = append(p.waiting, m.cmds...)
	o.flushWaiting(ctx, p)
}

// routePair sends a pair command part to the holder, or keeps it until there is one.
func (o *Org) routePair(ctx actor.Context, pairID string, c pairCommand) {
	p := o.pairs.byID[pairID]
	p.waiting = append(p.waiting, c)
	o.flushWaiting(ctx, p)
}

// flushWaiting sends waiting commands to the holder with its epoch; expired ones are dropped (the
// CommandTracker times them out).
func (o *Org) flushWaiting(ctx actor.Context, p *orgPair) {
	if p.holder == "" || len(p.waiting) == 0 {
		return
	}
	live, expired := livePairCommands(p.waiting, o.cfg.CommandTimeout, o.cfg.Clock.Now())
	p.waiting = nil
	if expired > 0 {
		o.log.Warn("pair commands waited past their timeout and are not sent", slog.String("pair", p.rec.ID), slog.Int("commands", expired))
	}
	holder := o.node(ctx, p.holder)
	for _, c := range live {
		ctx.Send(holder, &enqueueCommand{commandID: c.commandID, actor: c.actor, minerIDs: c.minerIDs, spec: c.spec, issuedAt: c.issuedAt,
			pair: p.rec.ID, epoch: p.epoch})
	}
}

// planPairParts splits a command's miners into pair parts (by pair) and plain parts (by owning node). A
// command may not mix a pair's devices with other devices of one of that pair's members: moving it on a
// holder change would move devices the new holder does not own.
func (o *Org) planPairParts(parts map[string][]string) (map[string][]string, error) {
	pairParts := map[string][]string{}
	for node, miners := range parts {
		keep := miners[:0:0]
		for _, id := range miners {
			if pid := o.pairs.ofDevice[id]; pid != "" {
				pairParts[pid] = append(pairParts[pid], id)
				continue
			}
			keep = append(keep, id)
		}
		if len(keep) == 0 {
			delete(parts, node)
		} else {
			parts[node] = keep
		}
	}
	for pid := range pairParts {
		for _, n := range o.pairs.byID[pid].rec.Members {
			if len(parts[n]) > 0 {
				return nil, fmt.Errorf("%w: the command names devices of pair %s and other devices of its member %s; issue them separately",
					ErrInvalidCommand, pid, n)
			}
		}
	}
	return pairParts, nil
}

// partnerOwns reports whether node shares minerID as a member of its pair.
func (o *Org) partnerOwns(node, minerID string) bool {
	pid := o.pairs.ofDevice[minerID]
	return pid != "" && o.pairs.ofNode[node] == pid
}

// lookupFor is the device lookup for telemetry from node: a pair member owns its partner's pair devices
// too (the standby polls them read-only).
func (o *Org) lookupFor(node string) lookupFunc {
	if o.pairs.ofNode[node] == "" {
		return o.lookup
	}
	return func(id string) (known, bool) {
		k, ok := o.lookup(id)
		if ok && k.device.GetNodeId() != node && o.partnerOwns(node, id) {
			d := proto.Clone(k.device).(*pb.Device)
			d.NodeId = node
			k.device = d
		}
		return k, ok
	}
}
