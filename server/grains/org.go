package grains

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/store"
)

// Org owns the org's device registry (miner → owning node) and is the parent of its Node and Miner actors.
// It ingests telemetry and events (dedup by node and batch_seq, ownership check, registration of a trusted
// node's devices, one WriteBatch per batch) and fans the result out to miners and the FleetView; it
// validates operator commands, refuses unknown miners, persists the record and routes each miner to its
// owning node's queue.
type Org struct {
	cfg *Config
	// localWMs caches each node's local watermark (reconcile.go), read from the store on first use.
	localWMs map[string]*pb.HLC
	log      *slog.Logger
	view     *actor.PID
	tracker  *actor.PID
	history  *actor.PID // nil without Config.History

	devices map[string]*orgDevice
	nodes   map[string]*actor.PID
	marks   map[markKey]uint64
	pairs   pairBook // warm-standby pairs (org_pairs.go)
	sites   siteBook // site policy and curtailment commands (site_policy.go)
	loadErr error
}

type orgDevice struct {
	device     *pb.Device
	observedMs int64
	pid        *actor.PID
	// minerState is the state the Miner actor holds after the messages sent to it (told: any sent): a sample
	// goes to the Miner only when it changes that state (minerTelemetryDue).
	minerState pb.MinerState
	told       bool
}

type markKey struct{ node, kind string }

func newOrg(cfg *Config, view, tracker *actor.PID) *Org {
	return &Org{cfg: cfg, log: cfg.Logger, view: view, tracker: tracker}
}

func (o *Org) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		o.onStarted(ctx)
	case *actor.Stopping, *actor.Stopped, *actor.Restarting, *actor.Terminated:
	case *orgReady:
		if o.loadErr != nil {
			ctx.Respond(o.loadErr)
			return
		}
		ctx.Respond(okReply{})
	case *getNode:
		o.onGetNode(ctx, m)
	case *ingestTelemetry:
		o.onTelemetry(ctx, m)
	case *ingestEvents:
		o.onEvents(ctx, m)
	case *issueCommand:
		o.onIssue(ctx, m)
	case *registerDevices:
		o.onRegister(ctx, m)
	case *pairDevices:
		o.onPair(ctx, m)
	case *rotateKeys:
		o.onRotate(ctx, m)
	case *revokeKey:
		o.onRevoke(ctx, m)
	case *injectCommand:
		ctx.Forward(o.node(ctx, m.node))
	case *startScan:
		o.onStartScan(ctx, m)
	case *preparePairing:
		o.onPreparePairing(ctx, m)
	case *startPairing:
		o.onStartPairing(ctx, m)
	case *startTransfer:
		o.onStartTransfer(ctx, m)
	case *transferResealed:
		o.onTransferResealed(ctx, m)
	case siteMessage:
		o.onSite(ctx, m)
	case *controlOutcome:
		o.onControlOutcome(ctx, m)
	case *declarePair, *deletePair, *requestTransfer, *getPair, *listPairs, *memberGossip, *pairCommandsMoved,
		*nodeStarted, *lease.HolderChanged, *lease.Status:
		o.onPairMessage(ctx, m)
	case *onlyNode:
		if id, err := o.onlyNode(); err != nil {
			ctx.Respond(err)
		} else {
			ctx.Respond(id)
		}
	default:
		o.log.Warn("org: unexpected message", slog.String("type", fmt.Sprintf("%T", m)))
	}
}

// onStarted loads devices, latest telemetry and dedup marks, spawns the node and miner actors and seeds the
// FleetView.
func (o *Org) onStarted(ctx actor.Context) {
	o.devices, o.nodes, o.marks = map[string]*orgDevice{}, map[string]*actor.PID{}, map[markKey]uint64{}
	o.history = o.spawnHistory(ctx)
	o.loadErr = o.load(ctx)
	o.historyGroupsChanged(ctx)
	if o.loadErr != nil {
		o.log.Error("org: load from store", slog.Any("err", o.loadErr))
	}
}

func (o *Org) load(ctx actor.Context) error {
	st := o.cfg.Store
	devs, err := st.Devices()
	if err != nil {
		return err
	}
	if err := o.stampLoadedSites(devs); err != nil {
		return err
	}
	tels, err := st.LatestTelemetry()
	if err != nil {
		return err
	}
	marks, err := st.Marks()
	if err != nil {
		return err
	}
	nodeIDs, err := st.NodeIDs()
	if err != nil {
		return err
	}
	for _, m := range marks {
		o.marks[markKey{m.Node, m.Kind}] = m.Seq
	}
	for _, id := range nodeIDs {
		o.node(ctx, id)
	}
	for _, d := range devs {
		o.devices[d.GetMinerId()] = &orgDevice{device: d, pid: o.spawnMiner(ctx, d)}
		o.node(ctx, d.GetNodeId())
	}
	var seeded []*pb.Telemetry
	for _, t := range tels {
		if d := o.devices[t.GetMinerId()]; d != nil {
			d.observedMs = t.GetObservedAtUnixMs()
			o.tellMiner(ctx, d, t)
			seeded = append(seeded, t)
		}
	}
	if err := o.loadPairs(ctx); err != nil {
		return err
	}
	ctx.Send(o.view, &viewSeed{devices: devs, telemetry: seeded})
	o.cfg.Metrics.setDevices(len(o.devices))
	o.log.Info("org loaded", slog.Int("devices", len(devs)), slog.Int("nodes", len(o.nodes)))
	return nil
}

// node returns the Node actor of id, spawning it on first use.
func (o *Org) node(ctx actor.Context, id string) *actor.PID {
	if pid, ok := o.nodes[id]; ok {
		return pid
	}
	pid, err := ctx.SpawnNamed(actors.Props("node", o.cfg.ActorMetrics, func() actor.Actor {
		return newNode(id, o.cfg, o.tracker, o.view)
	}), "node-"+id)
	if err != nil { // a name clash means a stopping namesake; its replacement is the same address
		o.log.Warn("spawn node actor", slog.String("node", id), slog.Any("err", err))
	}
	o.nodes[id] = pid
	return pid
}

func (o *Org) spawnMiner(ctx actor.Context, d *pb.Device) *actor.PID {
	pid := ctx.Spawn(actors.Props("cloud-miner", o.cfg.ActorMetrics, func() actor.Actor {
		return newMiner(d.GetMinerId(), o.view, o.log)
	}))
	ctx.Send(pid, &minerDevice{device: d})
	return pid
}

func (o *Org) onGetNode(ctx actor.Context, m *getNode) {
	if err := store.ValidNodeID(m.id); err != nil {
		ctx.Respond(fmt.Errorf("%w: %v", ErrInvalidNode, err))
		return
	}
	ctx.Respond(o.node(ctx, m.id))
}

func (o *Org) lookup(id string) (known, bool) {
	d, ok := o.devices[id]
	if !ok {
		return known{}, false
	}
	return known{device: d.device, observedMs: d.observedMs, ref: d}, true
}

// duplicate reports whether a batch at seq was applied before (batch_seq strictly increases per node and
// stream kind, so the mark is the highest applied).
func (o *Org) duplicate(k markKey, seq uint64) bool {
	last, ok := o.marks[k]
	return ok && seq <= last
}

func (o *Org) onTelemetry(ctx actor.Context, m *ingestTelemetry) {
	k := markKey{m.node, store.KindTelemetry}
	seq := m.batch.GetBatchSeq()
	if o.duplicate(k, seq) {
		o.cfg.Metrics.batch(k.kind, "duplicate")
		o.cfg.Metrics.sample("duplicate", len(m.batch.GetSamples()))
		o.log.Debug("duplicate telemetry batch", slog.String("node", m.node), slog.Uint64("batch_seq", seq))
		ctx.Respond(IngestResult{Duplicate: true})
		return
	}
	now := o.cfg.Clock.Now()
	p := planTelemetry(m.node, m.batch.GetSamples(), o.lookupFor(m.node), o.cfg.TrustNodeDevices, now)
	o.stampSites(p.newDevices)
	err := o.cfg.Store.Apply(store.Batch{Devices: p.newDevices, Telemetry: p.apply, TelemetryEncoded: p.encoded(m.encoded),
		Mark: &store.Mark{Node: m.node, Kind: k.kind, Seq: seq}})
	if err != nil {
		o.cfg.Metrics.batch(k.kind, "failed")
		o.log.Error("persist telemetry batch", slog.String("node", m.node), slog.Uint64("batch_seq", seq), slog.Any("err", err))
		ctx.Respond(fmt.Errorf("%w: telemetry batch %d: %v", ErrStore, seq, err))
		return
	}
	o.marks[k] = seq
	o.register(ctx, p.newDevices)
	o.recordHistory(ctx, p.history)
	for i, s := range p.apply {
		d := p.refs[i]
		if d == nil { // registered by this batch
			d = o.devices[s.GetMinerId()]
		}
		d.observedMs = s.GetObservedAtUnixMs()
		o.tellMiner(ctx, d, s)
	}
	if len(p.apply) > 0 {
		ctx.Send(o.view, &viewTelemetry{samples: p.apply, receivedAt: now})
	}
	for res, n := range p.counts {
		o.cfg.Metrics.sample(res, n)
	}
	o.cfg.Metrics.nodeSamples(m.node, len(p.apply))
	o.cfg.Metrics.batch(k.kind, resApplied)
	rejected := len(m.batch.GetSamples()) - len(p.apply)
	if p.counts[resUnowned] > 0 || p.counts[resInvalid] > 0 {
		o.log.Warn("telemetry samples refused", slog.String("node", m.node), slog.Uint64("batch_seq", seq),
			slog.Int("unowned", p.counts[resUnowned]), slog.Int("invalid", p.counts[resInvalid]))
	}
	ctx.Respond(IngestResult{Applied: len(p.apply), Rejected: rejected})
}

func (o *Org) onEvents(ctx actor.Context, m *ingestEvents) {
	k := markKey{m.node, store.KindEvents}
	seq := m.batch.GetBatchSeq()
	if o.duplicate(k, seq) {
		o.cfg.Metrics.batch(k.kind, "duplicate")
		ctx.Respond(IngestResult{Duplicate: true})
		return
	}
	now := o.cfg.Clock.Now()
	p := planEvents(m.node, m.batch.GetEvents(), o.lookup, o.cfg.TrustNodeDevices, now)
	if err := o.applyScans(m.node, p.scans); err != nil {
		o.cfg.Metrics.batch(k.kind, "failed")
		o.log.Error("persist scan reports", slog.String("node", m.node), slog.Uint64("batch_seq", seq), slog.Any("err", err))
		ctx.Respond(fmt.Errorf("%w: event batch %d: %v", ErrStore, seq, err))
		return
	}
	if err := o.applyLocal(ctx, m.node, m.batch.GetEvents()); err != nil {
		o.cfg.Metrics.batch(k.kind, "failed")
		o.log.Error("persist local commands", slog.String("node", m.node), slog.Uint64("batch_seq", seq), slog.Any("err", err))
		ctx.Respond(fmt.Errorf("%w: event batch %d: %v", ErrStore, seq, err))
		return
	}
	o.stampSites(p.devices)
	if err := o.cfg.Store.Apply(store.Batch{Devices: p.devices, Pending: p.pending, Audit: p.audit,
		Mark: &store.Mark{Node: m.node, Kind: k.kind, Seq: seq}}); err != nil {
		o.cfg.Metrics.batch(k.kind, "failed")
		o.log.Error("persist event batch", slog.String("node", m.node), slog.Uint64("batch_seq", seq), slog.Any("err", err))
		ctx.Respond(fmt.Errorf("%w: event batch %d: %v", ErrStore, seq, err))
		return
	}
	o.marks[k] = seq
	o.register(ctx, p.devices)
	o.saveCurtail(m.node, p.curtail)
	if len(p.pending) > 0 {
		o.log.Info("node reported devices waiting for pairing", slog.String("node", m.node), slog.Int("devices", len(p.pending)))
	}
	for _, a := range p.audit {
		if a.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING && a.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED && !a.GetLocalOrigin() {
			o.log.Warn("node gate did not run a command", slog.String("node", m.node), slog.Uint64("seq", a.GetMonotonicSeq()),
				slog.String("command", a.GetCommandId()), slog.String("code", ResultCodeName(a.GetCode())), slog.String("reason", a.GetMessage()))
		}
	}
	for _, c := range p.states {
		o.tellMinerState(ctx, o.devices[c.miner], c)
	}
	if len(p.states) > 0 {
		ctx.Send(o.view, &viewStates{changes: p.states})
	}
	if p.nodeMetrics != nil {
		ctx.Send(o.node(ctx, m.node), &nodeProcess{metrics: p.nodeMetrics, receivedAt: now})
	}
	for res, n := range p.counts {
		o.cfg.Metrics.event(res, n)
	}
	o.cfg.Metrics.batch(k.kind, resApplied)
	ctx.Respond(IngestResult{Applied: p.counts[resApplied], Rejected: len(m.batch.GetEvents()) - p.counts[resApplied]})
}

// register adds persisted devices to the registry (new ones get a Miner actor) and tells their nodes and
// the FleetView.
func (o *Org) register(ctx actor.Context, devs []*pb.Device) {
	if len(devs) == 0 {
		return
	}
	byNode := map[string][]*pb.Device{}
	for _, d := range devs {
		id := d.GetMinerId()
		if cur, ok := o.devices[id]; ok {
			cur.device = d
			ctx.Send(cur.pid, &minerDevice{device: d})
		} else {
			o.devices[id] = &orgDevice{device: d, pid: o.spawnMiner(ctx, d)}
			o.log.Info("device registered", slog.String("miner", id), slog.String("node", d.GetNodeId()))
		}
		byNode[d.GetNodeId()] = append(byNode[d.GetNodeId()], d)
	}
	for node, ds := range byNode {
		ctx.Send(o.node(ctx, node), &addDevices{devices: ds})
	}
	ctx.Send(o.view, &viewDevices{devices: devs})
	o.cfg.Metrics.setDevices(len(o.devices))
	o.historyGroupsChanged(ctx)
}

// onRegister registers devices an operator confirmed (the pairing seam). Moving a device to another node is
// refused until ownership transfer exists.
func (o *Org) onRegister(ctx actor.Context, m *registerDevices) {
	for _, d := range m.devices {
		if err := store.ValidID(d.GetMinerId()); err != nil {
			ctx.Respond(fmt.Errorf("register device: %w", err))
			return
		}
		if err := store.ValidNodeID(d.GetNodeId()); err != nil {
			ctx.Respond(fmt.Errorf("register device %s: %w: %v", d.GetMinerId(), ErrInvalidNode, err))
			return
		}
		if cur, ok := o.devices[d.GetMinerId()]; ok && cur.device.GetNodeId() != d.GetNodeId() {
			ctx.Respond(fmt.Errorf("register device %s: owned by node %s; moving it to %s is not supported yet",
				d.GetMinerId(), cur.device.GetNodeId(), d.GetNodeId()))
			return
		}
	}
	o.stampSites(m.devices)
	if err := o.cfg.Store.Apply(store.Batch{Devices: m.devices}); err != nil {
		ctx.Respond(fmt.Errorf("%w: register devices: %v", ErrStore, err))
		return
	}
	o.register(ctx, m.devices)
	ctx.Respond(okReply{})
}

func (o *Org) onIssue(ctx actor.Context, m *issueCommand) {
	req := m.req
	if err := ValidateCommand(req, o.cfg.MaxCommandMiners); err != nil {
		ctx.Respond(err)
		return
	}
	if key := req.IdempotencyKey; key != "" {
		rec, err := o.cfg.Store.CommandByIdempotencyKey(key)
		switch {
		case err == nil && SameCommand(rec, req):
			ctx.Respond(IssuedCommand{CommandID: rec.GetCommandId(), Existing: true})
			return
		case err == nil:
			ctx.Respond(fmt.Errorf("%w: key %q issued command %s", ErrIdempotencyConflict, key, rec.GetCommandId()))
			return
		case !errors.Is(err, store.ErrNotFound):
			ctx.Respond(fmt.Errorf("%w: %v", ErrStore, err))
			return
		}
	}
	var unknown []string
	parts := map[string][]string{}
	for _, id := range req.MinerIDs {
		d, ok := o.devices[id]
		if !ok {
			unknown = append(unknown, id)
			continue
		}
		parts[d.device.GetNodeId()] = append(parts[d.device.GetNodeId()], id)
	}
	if len(unknown) > 0 {
		ctx.Respond(&UnknownMinersError{IDs: unknown})
		return
	}
	pairParts, err := o.planPairParts(parts)
	if err != nil {
		ctx.Respond(err)
		return
	}
	now := o.cfg.Clock.Now()
	rec := NewCommandRecord(NewCommandID(now), req, now)
	if err := o.sealCommandSecrets(rec); err != nil {
		ctx.Respond(err)
		return
	}
	if err := o.sealNewLogin(rec, req.NewPassword); err != nil {
		ctx.Respond(err)
		return
	}
	if err := o.cfg.Store.PutCommand(rec); err != nil {
		ctx.Respond(fmt.Errorf("%w: %v", ErrStore, err))
		return
	}
	id := rec.GetCommandId()
	spec := rec.GetSpec()
	ctx.Send(o.tracker, &trackCommand{rec: rec}) // the tracker owns rec from here on
	for node, miners := range parts {
		ctx.Send(o.node(ctx, node), &enqueueCommand{commandID: id, actor: req.Actor, minerIDs: miners, spec: spec, issuedAt: now,
			watermark: o.localWatermark(node), stamped: true})
	}
	for pid, miners := range pairParts {
		o.routePair(ctx, pid, pairCommand{commandID: id, actor: req.Actor, minerIDs: miners, spec: spec, issuedAt: now})
	}
	for _, mid := range req.MinerIDs {
		ctx.Send(o.devices[mid].pid, &minerCommand{spec: spec, at: now})
	}
	o.cfg.Metrics.commandIssued()
	o.log.Info("command issued", slog.String("command", id), slog.String("action", ActionName(req.Action)),
		slog.Int("miners", len(req.MinerIDs)), slog.Int("nodes", len(parts)), slog.String("actor", req.Actor))
	ctx.Respond(IssuedCommand{CommandID: id})
}

// NewCommandID is time-ordered (ms, hex) then random.
func NewCommandID(now time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%012x%s", now.UnixMilli(), hex.EncodeToString(b[:]))
}
