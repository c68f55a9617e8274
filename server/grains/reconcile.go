package grains

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/proto"
)

// Local-degraded mode, cloud side.
//
//	node ─EVENT_KIND_LOCAL_COMMAND (spooled, batch-deduplicated)─▶ Org.onEvents
//	          └ store.ApplyLocalCommands: once per command id → node audit (local_origin, actor local:<user>),
//	            node's local watermark raised ──localWatermark──▶ Node actor
//	Node.onEnqueue: every command stamped with the watermark (signed) ──▶ node gate: Reconcile
//	node ─CommandResultReport with RESULT_CODE_CONFLICT miners─▶ Node.onResult ─▶ store.CreateConflict
//	API GET /api/v1/conflicts, POST /api/v1/conflicts/{id}/resolve {apply|discard} ─▶ Fleet.ResolveConflict
//	          apply: the held command issued again for that miner (a fresh watermark), idempotent per conflict

// Conflict resolutions.
const (
	ResolveApply   = "apply"
	ResolveDiscard = "discard"
)

// Errors of conflict resolution.
var (
	// ErrUnknownConflict: no conflict with that id.
	ErrUnknownConflict = errors.New("unknown conflict")
	// ErrConflictResolved: the conflict was resolved already.
	ErrConflictResolved = errors.New("conflict already resolved")
	// ErrInvalidResolution: a resolution other than apply or discard.
	ErrInvalidResolution = errors.New("resolution must be apply or discard")
)

// localWatermark tells a Node actor the newest local-command HLC its node reported.
type localWatermark struct{ hlc *pb.HLC }

// localCommandsOf picks the LOCAL_COMMAND events of a batch, valid ones only.
func localCommandsOf(events []*pb.Event) (cmds []*pb.LocalCommand, invalid int) {
	for _, ev := range events {
		if ev.GetKind() != pb.EventKind_EVENT_KIND_LOCAL_COMMAND {
			continue
		}
		c := ev.GetLocalCommand()
		if c == nil || store.ValidID(c.GetCommandId()) != nil || c.GetHlc() == nil {
			invalid++
			continue
		}
		cmds = append(cmds, c)
	}
	return cmds, invalid
}

// localAudit is the audit record of a node's local command, as the cloud shows it.
func localAudit(c *pb.LocalCommand) *pb.AuditRecord {
	ok, failed := 0, 0
	for _, r := range c.GetResults() {
		switch r.GetCode() {
		case pb.ResultCode_RESULT_CODE_SUCCEEDED, pb.ResultCode_RESULT_CODE_DUPLICATE:
			ok++
		default:
			failed++
		}
	}
	code := pb.ResultCode_RESULT_CODE_SUCCEEDED
	if failed > 0 {
		code = pb.ResultCode_RESULT_CODE_FAILED
	}
	action := strings.ToLower(strings.TrimPrefix(c.GetSpec().GetAction().String(), "ACTION_"))
	msg := fmt.Sprintf("local %s on %d miner(s): %d succeeded, %d failed (hlc %d.%d)", action, len(c.GetMinerIds()), ok, failed,
		c.GetHlc().GetWallMs(), c.GetHlc().GetLogical())
	return &pb.AuditRecord{CommandId: c.GetCommandId(), Actor: c.GetActor(), MinerIds: c.GetMinerIds(), Code: code, Message: msg,
		AtUnixMs: c.GetHlc().GetWallMs(), LeaseEpoch: c.GetLeaseEpoch(), LocalOrigin: true}
}

// applyLocal records a batch's local commands (before the batch's mark, so a crash re-delivers them and the
// command id keeps each once) and tells the node actor its new watermark.
func (o *Org) applyLocal(ctx actor.Context, node string, events []*pb.Event) error {
	cmds, invalid := localCommandsOf(events)
	if invalid > 0 {
		o.log.Warn("local command events without a command id or HLC ignored", slog.String("node", node), slog.Int("events", invalid))
	}
	if len(cmds) == 0 {
		return nil
	}
	fresh, wm, err := o.cfg.Store.ApplyLocalCommands(node, cmds, localAudit)
	if err != nil {
		return err
	}
	if fresh > 0 {
		o.log.Info("local commands backfilled into the audit", slog.String("node", node), slog.Int("new", fresh),
			slog.Int("repeated", len(cmds)-fresh))
	}
	if wm != nil {
		if cur := o.localWatermark(node); cur == nil || store.HLCAfter(wm, cur) {
			o.localWMs[node] = proto.Clone(wm).(*pb.HLC)
		}
		ctx.Send(o.node(ctx, node), &localWatermark{hlc: wm})
	}
	return nil
}

// localWatermark is the newest local-command HLC the Org has recorded for node (nil: none), read from the
// store the first time. Operator commands are stamped with it when issued, in the Org's order: a command
// issued before a backfill can never carry that backfill's watermark.
func (o *Org) localWatermark(node string) *pb.HLC {
	if wm, ok := o.localWMs[node]; ok {
		return wm
	}
	if o.localWMs == nil {
		o.localWMs = map[string]*pb.HLC{}
	}
	wm, err := o.cfg.Store.LocalWatermark(node)
	if err != nil {
		o.log.Error("cannot read the node's local watermark; its commands go out without one (the node holds those local actions touch)",
			slog.String("node", node), slog.Any("err", err))
		return nil
	}
	o.localWMs[node] = wm
	return wm
}

// onLocalWatermark raises the watermark new commands are stamped with.
func (n *Node) onLocalWatermark(m *localWatermark) {
	if m.hlc == nil || !store.HLCAfter(m.hlc, n.localWM) {
		return
	}
	n.localWM = proto.Clone(m.hlc).(*pb.HLC)
}

// loadLocalWatermark reads the persisted watermark at start.
func (n *Node) loadLocalWatermark() {
	wm, err := n.cfg.Store.LocalWatermark(n.id)
	if err != nil {
		n.log.Error("cannot read the node's local watermark; commands go out without one (the node holds those local actions touch)",
			slog.Any("err", err))
		return
	}
	n.localWM = wm
}

// ConflictID is the id of the conflict of one held miner of one command on one node.
func ConflictID(node, commandID, minerID string) string {
	sum := sha256.Sum256([]byte(node + "\x00" + commandID + "\x00" + minerID))
	return "cf-" + hex.EncodeToString(sum[:10])
}

// recordConflicts records a conflict for every miner a node held (RESULT_CODE_CONFLICT) in a report.
func (n *Node) recordConflicts(q *queued, r *pb.CommandResultReport) {
	var held []*pb.MinerResult
	for _, res := range r.GetResults() {
		if res.GetCode() == pb.ResultCode_RESULT_CODE_CONFLICT {
			held = append(held, res)
		}
	}
	if len(held) == 0 {
		return
	}
	var cmd *pb.ControlCommand
	if q != nil {
		cmd = q.cmd
	} else if c, err := n.cfg.Store.SentCommand(n.id, r.GetMonotonicSeq()); err == nil && c.GetCommandId() == r.GetCommandId() {
		cmd = c
	}
	var p pb.CommandPayload
	if cmd != nil {
		_ = proto.Unmarshal(cmd.GetPayload(), &p)
	}
	now := n.cfg.Clock.Now()
	for _, res := range held {
		c := &pb.Conflict{ConflictId: ConflictID(n.id, r.GetCommandId(), res.GetMinerId()), NodeId: n.id, MinerId: res.GetMinerId(),
			CommandId: r.GetCommandId(), CommandActor: cmd.GetActor(), Spec: p.GetSpec(), Message: res.GetMessage(),
			CreatedAtUnixMs: now.UnixMilli(), Status: store.ConflictOpen, Field: fieldOf(p.GetSpec().GetAction())}
		created, err := n.cfg.Store.CreateConflict(c)
		if err != nil {
			n.log.Error("cannot record a conflict", slog.String("command", r.GetCommandId()), slog.String("miner", res.GetMinerId()), slog.Any("err", err))
			continue
		}
		if created {
			n.log.Warn("conflict: the node held a cloud command (local action while offline)", slog.String("conflict", c.GetConflictId()),
				slog.String("command", r.GetCommandId()), slog.String("miner", res.GetMinerId()))
		}
	}
}

func fieldOf(a pb.Action) string {
	switch a {
	case pb.Action_ACTION_START_MINING, pb.Action_ACTION_STOP_MINING, pb.Action_ACTION_REBOOT:
		return "mining"
	case pb.Action_ACTION_SET_POWER_TARGET:
		return "power"
	case pb.Action_ACTION_UPDATE_POOLS:
		return "pools"
	case pb.Action_ACTION_CURTAIL, pb.Action_ACTION_UNCURTAIL:
		return "curtailment"
	}
	return ""
}

// Conflicts lists the conflicts with the given status ("" for all; store.ConflictOpen, ...), ordered by id.
func (f *Fleet) Conflicts(status string) ([]*pb.Conflict, error) {
	return f.cfg.Store.Conflicts(status)
}

// resolveMu serialises resolutions: read, re-issue and mark happen as one step per process.
var resolveMu sync.Mutex

// ResolveConflict resolves an open conflict: ResolveApply issues the held command again for its miner (with
// the watermark the cloud has now, so the node runs it unless yet another local action happened), under an
// idempotency key of its own; ResolveDiscard closes it. Errors wrap ErrUnknownConflict, ErrConflictResolved,
// ErrInvalidResolution or IssueCommand's errors.
func (f *Fleet) ResolveConflict(ctx context.Context, id, resolution, actor string) (*pb.Conflict, error) {
	if resolution != ResolveApply && resolution != ResolveDiscard {
		return nil, fmt.Errorf("%w, not %q", ErrInvalidResolution, resolution)
	}
	resolveMu.Lock()
	defer resolveMu.Unlock()
	c, err := f.cfg.Store.Conflict(id)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalidKey):
		return nil, fmt.Errorf("%w: %s", ErrUnknownConflict, id)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrStore, err)
	case c.GetStatus() != store.ConflictOpen:
		return c, fmt.Errorf("%w: %s is %s", ErrConflictResolved, id, c.GetStatus())
	}
	reissued := ""
	if resolution == ResolveApply {
		spec := c.GetSpec()
		if spec == nil {
			return nil, fmt.Errorf("%w: conflict %s does not record the held command's action; issue it again by hand", ErrInvalidCommand, id)
		}
		if len(spec.GetSealed()) > 0 { // the cloud cannot re-seal what it cannot read
			return nil, fmt.Errorf("%w: conflict %s held a command with sealed secrets (pool passwords); issue it again with them", ErrInvalidCommand, id)
		}
		issued, err := f.IssueCommand(ctx, CommandRequest{MinerIDs: []string{c.GetMinerId()}, Action: spec.GetAction(),
			PowerTargetW: spec.GetPowerTargetW(), Pools: spec.GetPools(), IdempotencyKey: "conflict-apply/" + id, Actor: actor})
		if err != nil {
			return nil, fmt.Errorf("re-issue the held command of conflict %s: %w", id, err)
		}
		reissued = issued.CommandID
	}
	status := store.ConflictDiscarded
	if resolution == ResolveApply {
		status = store.ConflictApplied
	}
	now := f.cfg.Clock.Now()
	out, err := f.cfg.Store.ResolveConflict(id, func(c *pb.Conflict) error {
		c.Status, c.ResolvedBy, c.ResolvedAtUnixMs, c.ReissuedCommandId = status, actor, now.UnixMilli(), reissued
		return nil
	})
	switch {
	case errors.Is(err, store.ErrExists):
		return out, fmt.Errorf("%w: %s", ErrConflictResolved, id)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrStore, err)
	}
	f.cfg.Logger.Info("conflict resolved", slog.String("conflict", id), slog.String("resolution", resolution),
		slog.String("actor", actor), slog.String("reissued", reissued), slog.Time("at", now.Round(time.Millisecond)))
	return out, nil
}

// orgAuditScan bounds the records read per node for the org audit (the newest ones).
const orgAuditScan = 10_000

// OrgAudit returns the newest limit audit records of every node of the org, newest last: what each node's
// CommandGate decided and every local command nodes backfilled. origin filters them: "local" (local_origin
// only), "cloud" (the others) or "" (all).
func (f *Fleet) OrgAudit(ctx context.Context, origin string, limit int) ([]*pb.AuditRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	nodes := map[string]bool{}
	ids, err := f.cfg.Store.NodeIDs()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStore, err)
	}
	for _, id := range ids {
		nodes[id] = true
	}
	if page, err := f.Nodes(ctx); err == nil {
		for _, n := range page.Nodes {
			nodes[n.ID] = true
		}
	}
	var out []*pb.AuditRecord
	for id := range nodes {
		if store.ValidNodeID(id) != nil {
			continue
		}
		recs, err := f.cfg.Store.NodeAudit(id, orgAuditScan)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrStore, err)
		}
		for _, r := range recs {
			if origin == "" || (origin == "local") == r.GetLocalOrigin() {
				out = append(out, r)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b *pb.AuditRecord) int {
		if c := cmp.Compare(a.GetAtUnixMs(), b.GetAtUnixMs()); c != 0 {
			return c
		}
		return cmp.Compare(a.GetNodeId(), b.GetNodeId())
	})
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}
