package grains

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/proto"
)

// The Org's part in commissioning (see commissioning.go): it records scans and pairings, sends their signed
// commands through the node's queue, folds the node's answers in, and registers paired devices.

// knownNode reports whether the org knows node: it connected, owns devices or has a queue, or it is an
// enrolled node the cloud can seal credentials to (Config.NodeKey), connected or not.
func (o *Org) knownNode(node string) bool {
	if _, ok := o.nodes[node]; ok {
		return true
	}
	if o.cfg.NodeKey == nil || store.ValidNodeID(node) != nil {
		return false
	}
	_, err := o.cfg.NodeKey(node)
	return err == nil
}

// onlyNode returns the org's single node, or an error naming the choice.
func (o *Org) onlyNode() (string, error) {
	if len(o.nodes) == 1 {
		for id := range o.nodes {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w: the org has %d nodes: name the node", ErrInvalidNode, len(o.nodes))
}

func (o *Org) onStartScan(ctx actor.Context, m *startScan) {
	if !o.knownNode(m.node) {
		ctx.Respond(fmt.Errorf("%w: no node %q", ErrInvalidNode, m.node))
		return
	}
	now := o.cfg.Clock.Now()
	rec := &pb.ScanRecord{ScanId: m.scanID, NodeId: m.node, Actor: m.actor, CreatedAtUnixMs: now.UnixMilli(),
		Targets: m.req.GetTargets(), Protocols: m.req.GetProtocols(), State: ScanRequested}
	payload, err := proto.Marshal(&pb.CommandPayload{Discovery: m.req})
	if err == nil {
		err = o.cfg.Store.PutScan(rec)
	}
	if err != nil {
		ctx.Respond(fmt.Errorf("%w: scan %s: %v", ErrStore, m.scanID, err))
		return
	}
	ctx.Send(o.node(ctx, m.node), &enqueueCommand{commandID: m.scanID, actor: m.actor, issuedAt: now, control: payload})
	o.log.Info("discovery scan requested", slog.String("scan", m.scanID), slog.String("node", m.node),
		slog.Int("targets", len(m.req.GetTargets())), slog.Bool("credentials", len(m.req.GetAntminerEnvelope()) > 0))
	ctx.Respond(ScanStarted{ScanID: m.scanID, Node: m.node})
}

// applyScans merges a batch's scan reports into their records. It runs before the batch (and its dedup mark)
// is written, and merging is idempotent, so a batch re-sent after a crash changes nothing twice.
func (o *Org) applyScans(node string, reports []*pb.ScanReport) error {
	recs := map[string]*pb.ScanRecord{}
	var order []string
	for _, r := range reports {
		rec, ok := recs[r.GetScanId()]
		if !ok {
			var err error
			rec, err = o.cfg.Store.Scan(r.GetScanId())
			switch {
			case errors.Is(err, store.ErrNotFound):
				// A scan the cloud did not ask for (or whose record is gone): keep what the node says.
				rec = &pb.ScanRecord{ScanId: r.GetScanId(), NodeId: node, State: ScanRunning}
			case err != nil:
				return err
			case rec.GetNodeId() != node:
				o.log.Warn("scan report from a node that does not run the scan; dropped", slog.String("scan", r.GetScanId()),
					slog.String("node", node), slog.String("scan_node", rec.GetNodeId()))
				continue
			}
			order = append(order, r.GetScanId())
		}
		recs[r.GetScanId()] = mergeScan(rec, r, o.cfg.Clock.Now())
	}
	for _, id := range order {
		if err := o.cfg.Store.PutScan(recs[id]); err != nil {
			return err
		}
		if r := recs[id]; scanFinal(r.GetState()) {
			o.log.Info("discovery scan finished", slog.String("scan", id), slog.String("node", node), slog.String("state", r.GetState()),
				slog.Int("found", int(r.GetFoundCount())), slog.Int("errors", int(r.GetErrorCount())))
		}
	}
	return nil
}

// onPreparePairing resolves each device's target node and checks that it may own the device.
func (o *Org) onPreparePairing(ctx actor.Context, m *preparePairing) {
	plan, err := o.planPairing(m.node, m.minerIDs)
	if err != nil {
		ctx.Respond(err)
		return
	}
	ctx.Respond(plan)
}

func (o *Org) planPairing(node string, ids []string) (pairingPlan, error) {
	if len(ids) == 0 || len(ids) > maxPairDevices {
		return pairingPlan{}, fmt.Errorf("%w: name 1 to %d devices, got %d", ErrInvalidPairing, maxPairDevices, len(ids))
	}
	if node != "" {
		if err := store.ValidNodeID(node); err != nil {
			return pairingPlan{}, fmt.Errorf("%w: %v", ErrInvalidNode, err)
		}
		if !o.knownNode(node) {
			return pairingPlan{}, fmt.Errorf("%w: no node %q", ErrInvalidNode, node)
		}
	}
	pending, err := o.cfg.Store.PendingDevices()
	if err != nil {
		return pairingPlan{}, fmt.Errorf("%w: %v", ErrStore, err)
	}
	byID := map[string][]*pb.Device{}
	for _, d := range pending {
		byID[d.GetMinerId()] = append(byID[d.GetMinerId()], d)
	}
	var plan pairingPlan
	seen := map[string]bool{}
	var errs []error
	for _, id := range ids {
		if seen[id] {
			errs = append(errs, fmt.Errorf("%w: %s named twice", ErrInvalidPairing, id))
			continue
		}
		seen[id] = true
		var reg *pb.Device
		if d, ok := o.devices[id]; ok {
			reg = d.device
		}
		target, dev, err := pairingTarget(id, node, byID[id], reg, o.cfg.Owners)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case plan.node == "":
			plan.node = target
		case plan.node != target:
			errs = append(errs, fmt.Errorf("%w: the devices were discovered by different nodes (%s, %s): pair them one node at a time",
				ErrInvalidPairing, plan.node, target))
			continue
		}
		plan.devices = append(plan.devices, dev)
	}
	if err := errors.Join(errs...); err != nil {
		return pairingPlan{}, err
	}
	return plan, nil
}

func (o *Org) onStartPairing(ctx actor.Context, m *startPairing) {
	ids := make([]string, len(m.devices))
	for i, d := range m.devices {
		ids[i] = d.GetMinerId()
	}
	// Check again: ownership may have changed since the plan.
	if _, err := o.planPairing(m.node, ids); err != nil {
		ctx.Respond(err)
		return
	}
	now := o.cfg.Clock.Now()
	rec := &pb.PairingRecord{PairingId: m.pairingID, NodeId: m.node, Actor: m.actor, CreatedAtUnixMs: now.UnixMilli()}
	for _, d := range m.devices {
		reg := scrubDevice(d)
		reg.NodeId, reg.LoginUser = m.node, d.GetLoginUser()
		rec.Devices = append(rec.Devices, &pb.DevicePairing{MinerId: d.GetMinerId(), Code: pb.ResultCode_RESULT_CODE_PENDING,
			CredentialsGiven: m.given, AtUnixMs: now.UnixMilli(), Device: reg})
	}
	payload, err := proto.Marshal(&pb.CommandPayload{Pairing: &pb.PairingRequest{PairingId: m.pairingID, Devices: m.devices}})
	if err == nil {
		err = o.cfg.Store.PutPairing(rec)
	}
	if err != nil {
		ctx.Respond(fmt.Errorf("%w: pairing %s: %v", ErrStore, m.pairingID, err))
		return
	}
	ctx.Send(o.node(ctx, m.node), &enqueueCommand{commandID: m.pairingID, actor: m.actor, issuedAt: now, control: payload})
	o.log.Info("pairing requested", slog.String("pairing", m.pairingID), slog.String("node", m.node),
		slog.Int("devices", len(m.devices)), slog.Bool("credentials", m.given))
	ctx.Respond(PairingStarted{PairingID: m.pairingID, Node: m.node})
}

// onControlOutcome folds a node's answer to a scan or pairing command into its record.
func (o *Org) onControlOutcome(ctx actor.Context, m *controlOutcome) {
	var err error
	switch {
	case strings.HasPrefix(m.commandID, scanIDPrefix):
		err = o.scanOutcome(m)
	case strings.HasPrefix(m.commandID, pairingIDPrefix):
		err = o.pairingOutcome(ctx, m)
	case isSiteCommand(m.commandID):
		o.siteOutcome(m)
	default:
		o.log.Warn("outcome of an unknown control command", slog.String("command", m.commandID), slog.String("node", m.node))
	}
	if err != nil {
		o.log.Error("record a control command's outcome", slog.String("command", m.commandID), slog.String("node", m.node), slog.Any("err", err))
	}
}

func (o *Org) scanOutcome(m *controlOutcome) error {
	rec, err := o.cfg.Store.Scan(m.commandID)
	if err != nil {
		return err
	}
	code, msg := pb.ResultCode_RESULT_CODE_UNSPECIFIED, ""
	switch {
	case m.ack != nil:
		code, msg = m.ack.GetCode(), m.ack.GetMessage()
	case m.report != nil:
		for _, r := range m.report.GetResults() {
			code, msg = r.GetCode(), r.GetMessage()
		}
	}
	now := o.cfg.Clock.Now()
	switch {
	case code == pb.ResultCode_RESULT_CODE_SUCCEEDED || code == pb.ResultCode_RESULT_CODE_RUNNING || code == pb.ResultCode_RESULT_CODE_DUPLICATE:
		if rec.GetState() == ScanRequested {
			rec.State = ScanRunning
		}
		if code == pb.ResultCode_RESULT_CODE_SUCCEEDED && msg != "" && rec.GetMessage() == "" {
			rec.Message = msg
		}
	case IsFinalResult(code) && !scanFinal(rec.GetState()):
		rec.State, rec.Message, rec.FinishedAtUnixMs = ScanRefused, ResultCodeName(code)+": "+msg, now.UnixMilli()
		o.log.Warn("discovery scan not run", slog.String("scan", rec.GetScanId()), slog.String("node", m.node), slog.String("reason", rec.Message))
	default:
		return nil
	}
	return o.cfg.Store.PutScan(rec)
}

func (o *Org) pairingOutcome(ctx actor.Context, m *controlOutcome) error {
	rec, err := o.cfg.Store.Pairing(m.commandID)
	if err != nil {
		return err
	}
	if rec.GetNodeId() != m.node {
		return fmt.Errorf("pairing %s is for node %s, not %s", rec.GetPairingId(), rec.GetNodeId(), m.node)
	}
	now := o.cfg.Clock.Now()
	var paired []*pb.Device
	if m.ack != nil {
		applyPairingAck(rec, m.ack.GetCode(), m.ack.GetMessage(), now)
	}
	if m.report != nil {
		paired = applyPairingResult(rec, m.report.GetResults(), now)
	}
	var ok []*pb.Device
	for _, d := range paired {
		if cur, owned := o.devices[d.GetMinerId()]; owned {
			if err := o.cfg.Owners.canOwn(cur.device.GetNodeId(), m.node); err != nil {
				// Paired elsewhere meanwhile: the first pairing wins; this one is not recorded as owner.
				o.markPairing(rec, d.GetMinerId(), pb.ResultCode_RESULT_CODE_FAILED, err.Error(), now)
				continue
			}
		}
		ok = append(ok, d)
	}
	if len(ok) > 0 {
		o.stampSites(ok)
		if err := o.cfg.Store.Apply(store.Batch{Devices: ok}); err != nil {
			return fmt.Errorf("register paired devices: %w", err)
		}
		o.register(ctx, ok)
		for _, d := range ok {
			o.log.Info("device paired", slog.String("miner", d.GetMinerId()), slog.String("node", m.node),
				slog.String("pairing", rec.GetPairingId()))
		}
	}
	for _, d := range rec.GetDevices() {
		if c := d.GetCode(); IsFinalResult(c) && c != pb.ResultCode_RESULT_CODE_SUCCEEDED && d.GetAtUnixMs() == now.UnixMilli() {
			o.log.Warn("device not paired", slog.String("miner", d.GetMinerId()), slog.String("node", m.node),
				slog.String("status", PairingStatus(c)), slog.String("reason", d.GetMessage()))
		}
	}
	return o.cfg.Store.PutPairing(rec)
}

func (o *Org) markPairing(rec *pb.PairingRecord, id string, code pb.ResultCode, msg string, now interface{ UnixMilli() int64 }) {
	for _, d := range rec.GetDevices() {
		if d.GetMinerId() == id {
			d.Code, d.Message, d.AtUnixMs = code, msg, now.UnixMilli()
		}
	}
}
