package gate

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/miner"
	"github.com/hashfleet/hashfleet/node/site"
	"github.com/hashfleet/hashfleet/node/store"
	"google.golang.org/protobuf/proto"
)

// Store is what the gate persists (store.Badger implements it).
type Store interface {
	SeqMark() (uint64, error)
	CommitCommand(rec *pb.AuditRecord) error
	// CommitKeyCommand is CommitCommand plus the new keyring snapshot, in one transaction.
	CommitKeyCommand(rec *pb.AuditRecord, orgID string, keys []*pb.CommandKey) error
	AppendAudit(rec *pb.AuditRecord) error
	Command(seq uint64) (*pb.AuditRecord, error)
	PutResult(r *pb.CommandResultReport) error
	Result(seq uint64) (*pb.CommandResultReport, error)
	SetOwnership(devices []*pb.Device) error
}

// Env is what the gate is wired to.
type Env struct {
	Store Store
	// Site receives Dispatch; miners answer the gate directly.
	Site *actor.PID
	// Sink receives every audit record as an EVENT_KIND_COMMAND_AUDIT event (the TelemetryBatcher); nil drops.
	Sink *actor.PID
	// Owned is the initial set of owned miner ids.
	Owned []string
	// Ownership, when set, is kept equal to the gate's owned set for readers outside the actor.
	Ownership *Ownership
	// Control receives node-control commands (discovery scans, device pairing) as *ControlDispatch and
	// answers one *miner.Result per ControlDispatch.IDs to the gate. Nil: such commands are UNSUPPORTED.
	Control *actor.PID
	// SiteControl receives the site's node-control commands (a signed site policy, a curtailment start or
	// stop) as *ControlDispatch and answers one *miner.Result per id (see SiteControlProps). Nil: such
	// commands are UNSUPPORTED.
	SiteControl *actor.PID
	// PoolGuard, when set, refuses (REFUSED_POLICY, audited) a pool change naming a pool the installed site
	// policy does not trust, however validly signed.
	PoolGuard PoolGuard
	// Local wires the local command path (local.go): the site's own commands, stamped, persisted and run
	// here, and the log cloud commands are reconciled with. Nil: no local commands.
	Local        *LocalEnv
	Clock        clock.Clock
	Metrics      *Metrics
	ActorMetrics *actors.Metrics
	Logger       *slog.Logger
}

// Props returns the CommandGate's props (kind "command-gate").
func Props(cfg Config, env Env) *actor.Props {
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	if env.Clock == nil {
		env.Clock = clock.Real()
	}
	return actors.Props("command-gate", env.ActorMetrics, func() actor.Actor { return newGate(cfg, env) })
}

// Gate is the CommandGate actor.
type Gate struct {
	cfg   Config
	env   Env
	log   *slog.Logger
	owned map[string]struct{}

	running   map[uint64]*running // by seq
	byID      map[string]uint64   // command id → seq
	tick      clock.Timer
	tickGen   uint64
	local     *localState // local.go
	leaseWait leaseHold   // epoch.go: commands waiting for a lease being confirmed
}

type running struct {
	cmd       *pb.ControlCommand
	replyTo   *actor.PID
	started   time.Time
	results   map[string]*pb.MinerResult // nil value: no result yet
	order     []string
	remaining int
	unsent    []*pb.MinerResult
	timeout   clock.Timer
}

func newGate(cfg Config, env Env) *Gate {
	g := &Gate{cfg: cfg, env: env, log: env.Logger.With(slog.String("node", cfg.NodeID)),
		owned: map[string]struct{}{}, running: map[uint64]*running{}, byID: map[string]uint64{}}
	g.setOwned(env.Owned)
	return g
}

// Receive dispatches each message to its handler.
func (g *Gate) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		if mark, err := g.env.Store.SeqMark(); err == nil {
			g.env.Metrics.setMark(mark)
		}
		g.onLocalStarted(ctx)
	case localMessage:
		g.onLocal(ctx, msg)
	case *pb.ControlCommand:
		if !g.holdForLease(ctx, msg, ctx.Sender()) {
			g.onCommand(ctx, msg, ctx.Sender())
		}
	case leaseRetry:
		g.onLeaseRetry(ctx, msg)
	case *miner.Result:
		g.onResult(ctx, msg)
	case commandTimeout:
		g.onTimeout(ctx, msg)
	case reportTick:
		g.onReportTick(ctx, msg)
	case *pb.HelloAck:
		g.onHelloAck(msg)
	case *SetOwnership:
		g.setOwned(msg.MinerIDs)
	case *StatusRequest:
		mark, _ := g.env.Store.SeqMark()
		ctx.Respond(Status{SeqMark: mark, Running: len(g.running), Owned: len(g.owned)})
	case *actor.Stopping, *actor.Restarting:
		g.leaseWait.stop()
		g.onStopping()
		g.onLocalStopping()
	case *actor.Stopped:
	default:
		g.log.Warn("command gate: unexpected message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

func (g *Gate) setOwned(ids []string) {
	g.owned = make(map[string]struct{}, len(ids))
	for _, id := range ids {
		g.owned[id] = struct{}{}
	}
	if g.env.Ownership != nil {
		g.env.Ownership.Replace(ids)
	}
}

func (g *Gate) onHelloAck(a *pb.HelloAck) {
	ids := make([]string, 0, len(a.GetDevices()))
	for _, d := range a.GetDevices() {
		ids = append(ids, d.GetMinerId())
	}
	g.setOwned(ids)
	if err := g.env.Store.SetOwnership(a.GetDevices()); err != nil {
		g.log.Error("cannot save the ownership map", slog.Any("error", err))
	}
	if kv, ok := g.cfg.Verifier.(*KeyringVerifier); ok {
		if ids := kv.Untrusted(a.GetCommandKeys()); len(ids) > 0 {
			g.log.Warn("the cloud lists command keys this node does not trust; commands signed by them are refused until their signed announcement arrives",
				slog.Any("keys", ids))
		}
	}
}

func (g *Gate) onCommand(ctx actor.Context, cmd *pb.ControlCommand, replyTo *actor.PID) {
	now := g.env.Clock.Now()
	log := g.log.With(slog.String("command", cmd.GetCommandId()), slog.Uint64("seq", cmd.GetMonotonicSeq()),
		slog.Uint64("epoch", cmd.GetLeaseEpoch()), slog.String("actor", cmd.GetActor()))

	in := input{nodeID: g.cfg.NodeID, cmd: cmd, payload: &pb.CommandPayload{},
		owned: func(id string) bool { _, ok := g.owned[id]; return ok }}
	in.payloadErr = proto.Unmarshal(cmd.GetPayload(), in.payload)
	applier, _ := g.cfg.Verifier.(KeyApplier)
	in.keysSupported = applier != nil
	in.controlSupported = g.controlTarget(in.payload) != nil
	in.pools = g.env.PoolGuard
	if g.cfg.Verifier == nil {
		in.verifyErr = fmt.Errorf("%w: %w", ErrBadSignature, ErrNoVerifier)
	} else {
		in.verifyErr = g.cfg.Verifier.Verify(cmd)
	}
	if g.cfg.EpochCheck != nil && epochChecked(in.payload, in.payloadErr) {
		in.epochErr = g.cfg.EpochCheck(cmd.GetLeaseEpoch())
	}
	mark, err := g.env.Store.SeqMark()
	if err != nil {
		log.Error("cannot read the seq high-water mark; refusing the command", slog.Any("error", err))
		g.ack(ctx, replyTo, cmd, pb.ResultCode_RESULT_CODE_FAILED, "node store unavailable: "+err.Error())
		return
	}
	in.mark = mark
	stale := unsafeSkipSeqCheck.Load() && cmd.GetMonotonicSeq() <= mark // test-only: see UnsafeTestSkipSeqCheck
	if stale {
		in.mark = 0
	}
	if seq := cmd.GetMonotonicSeq(); seq != 0 && seq <= in.mark {
		if rec, err := g.env.Store.Command(seq); err == nil {
			in.executed = rec
		}
	}

	v := decide(in)
	held := g.holdForLocal(cmd, in.payload, &v, now)
	rec := &pb.AuditRecord{
		CommandId: cmd.GetCommandId(), Actor: cmd.GetActor(), MonotonicSeq: cmd.GetMonotonicSeq(), KeyId: cmd.GetKeyId(),
		Signature: cmd.GetSignature(), MinerIds: in.payload.GetMinerIds(), Code: v.code, Message: v.msg,
		AtUnixMs: now.UnixMilli(), LeaseEpoch: cmd.GetLeaseEpoch(), NodeId: g.cfg.NodeID,
	}
	if v.keys {
		g.onKeyCommand(ctx, replyTo, cmd, rec, applier, log)
		return
	}
	if v.consume && !stale {
		// The mark is on disk before anything runs: a crash after this line never runs the seq twice.
		if err := g.env.Store.CommitCommand(rec); err != nil {
			code := pb.ResultCode_RESULT_CODE_FAILED
			if errors.Is(err, store.ErrSeqNotAbove) {
				code = pb.ResultCode_RESULT_CODE_REFUSED_SEQ
			}
			log.Error("cannot persist the seq mark; command not run", slog.Any("error", err))
			g.ack(ctx, replyTo, cmd, code, "cannot persist the seq mark: "+err.Error())
			return
		}
		g.env.Metrics.setMark(cmd.GetMonotonicSeq())
	} else if err := g.env.Store.AppendAudit(rec); err != nil {
		log.Error("cannot write the audit record", slog.Any("error", err))
	}
	g.env.Metrics.decision(v.code)
	g.audit(ctx, rec)
	if v.code == pb.ResultCode_RESULT_CODE_RUNNING {
		log.Info("command accepted", slog.Int("miners", len(v.miners)), slog.String("action", actionOf(in.payload)))
	} else {
		log.Warn("command not run", slog.String("code", v.code.String()), slog.String("reason", v.msg))
	}
	g.ack(ctx, replyTo, cmd, v.code, v.msg)

	switch {
	case v.dispatch:
		g.dispatch(ctx, cmd, in.payload, v.miners, replyTo, now)
		g.addHeld(cmd.GetMonotonicSeq(), held)
	case v.code == pb.ResultCode_RESULT_CODE_DUPLICATE:
		seq := cmd.GetMonotonicSeq()
		if r, ok := g.running[seq]; ok {
			r.replyTo = replyTo // still running: the final report follows
		} else if r, err := g.env.Store.Result(seq); err == nil {
			g.send(ctx, replyTo, r)
		} else {
			// Accepted before a stop or crash that lost its results: close it rather than leave it open forever.
			report := g.lostReport(cmd, in.payload, now)
			if err := g.env.Store.PutResult(report); err != nil {
				log.Error("cannot record the command outcome", slog.Any("error", err))
			}
			g.send(ctx, replyTo, report)
		}
	case v.consume:
		// Authentic but not run (ownership, payload): the outcome is this seq's recorded result.
		report := &pb.CommandResultReport{CommandId: cmd.GetCommandId(), MonotonicSeq: cmd.GetMonotonicSeq(), Done: true}
		for _, id := range resultIDs(in.payload) {
			report.Results = append(report.Results, &pb.MinerResult{MinerId: id, Code: v.code, Message: v.msg,
				StartedAtUnixMs: now.UnixMilli(), FinishedAtUnixMs: now.UnixMilli()})
		}
		if len(held) > 0 {
			report.Results = held
		}
		if err := g.env.Store.PutResult(report); err != nil {
			log.Error("cannot record the command outcome", slog.Any("error", err))
		}
		if len(held) > 0 {
			g.send(ctx, replyTo, report) // the cloud records a conflict per held miner
		}
	}
}

// onKeyCommand applies an authentic, fresh key announcement or revocation: the change is prepared on a copy
// of the trust store, persisted with the seq mark and the audit record in one transaction, and only then
// installed. A change the keyring refuses (e.g. announcing a revoked key) consumes the seq as FAILED.
func (g *Gate) onKeyCommand(ctx actor.Context, replyTo *actor.PID, cmd *pb.ControlCommand, rec *pb.AuditRecord, applier KeyApplier, log *slog.Logger) {
	change, err := applier.PrepareKeyCommand(cmd)
	if err != nil {
		rec.Code, rec.Message = pb.ResultCode_RESULT_CODE_FAILED, "key command not applied: "+err.Error()
		err = g.env.Store.CommitCommand(rec)
	} else {
		rec.Code, rec.Message = pb.ResultCode_RESULT_CODE_SUCCEEDED, change.Summary
		err = g.env.Store.CommitKeyCommand(rec, change.OrgID, change.Keys)
	}
	if err != nil {
		code := pb.ResultCode_RESULT_CODE_FAILED
		if errors.Is(err, store.ErrSeqNotAbove) {
			code = pb.ResultCode_RESULT_CODE_REFUSED_SEQ
		}
		log.Error("cannot persist the key command; trust store unchanged", slog.Any("error", err))
		g.ack(ctx, replyTo, cmd, code, "cannot persist the seq mark: "+err.Error())
		return
	}
	if change != nil {
		change.Install()
	}
	g.env.Metrics.setMark(cmd.GetMonotonicSeq())
	g.env.Metrics.decision(rec.Code)
	g.audit(ctx, rec)
	if rec.Code == pb.ResultCode_RESULT_CODE_SUCCEEDED {
		log.Info("key command applied", slog.String("change", rec.Message), slog.String("key", cmd.GetKeyId()))
	} else {
		log.Warn("key command refused", slog.String("reason", rec.Message))
	}
	g.ack(ctx, replyTo, cmd, rec.Code, rec.Message)
	report := &pb.CommandResultReport{CommandId: cmd.GetCommandId(), MonotonicSeq: cmd.GetMonotonicSeq(), Done: true}
	if err := g.env.Store.PutResult(report); err != nil {
		log.Error("cannot record the key command outcome", slog.Any("error", err))
	}
	g.send(ctx, replyTo, report)
}

func (g *Gate) ack(ctx actor.Context, to *actor.PID, cmd *pb.ControlCommand, code pb.ResultCode, msg string) {
	g.send(ctx, to, &pb.CommandAck{CommandId: cmd.GetCommandId(), MonotonicSeq: cmd.GetMonotonicSeq(), Code: code, Message: msg})
}

func (g *Gate) send(ctx actor.Context, to *actor.PID, m any) {
	if to != nil {
		ctx.Send(to, m)
	}
}

func (g *Gate) audit(ctx actor.Context, rec *pb.AuditRecord) {
	if g.env.Sink == nil {
		return
	}
	ctx.Send(g.env.Sink, &pb.Event{
		EventId:  fmt.Sprintf("audit/%s/%d/%s/%d", g.cfg.NodeID, rec.GetMonotonicSeq(), rec.GetCommandId(), rec.GetAtUnixMs()),
		Kind:     pb.EventKind_EVENT_KIND_COMMAND_AUDIT,
		Message:  rec.GetCode().String() + ": " + rec.GetMessage(),
		AtUnixMs: rec.GetAtUnixMs(),
		Audit:    rec,
	})
}

func (g *Gate) dispatch(ctx actor.Context, cmd *pb.ControlCommand, p *pb.CommandPayload, ids []string, replyTo *actor.PID, now time.Time) {
	seq := cmd.GetMonotonicSeq()
	r := &running{cmd: cmd, replyTo: replyTo, started: now, results: make(map[string]*pb.MinerResult, len(ids)),
		order: ids, remaining: len(ids)}
	for _, id := range ids {
		r.results[id] = nil
	}
	r.timeout = actors.SendAfter(g.env.Clock, ctx.ActorSystem(), ctx.Self(), g.cfg.CommandTimeout, commandTimeout{seq: seq})
	g.running[seq] = r
	g.byID[cmd.GetCommandId()] = seq
	g.armReport(ctx)
	if isControl(p) {
		ctx.Request(g.controlTarget(p), &ControlDispatch{CommandID: cmd.GetCommandId(), Payload: p, IDs: ids})
		return
	}
	ctx.Request(g.env.Site, &site.Dispatch{CommandID: cmd.GetCommandId(), IdempotencyKey: cmd.GetIdempotencyKey(), MinerIDs: ids, Spec: p.GetSpec()})
}

func (g *Gate) armReport(ctx actor.Context) {
	if g.tick != nil {
		return
	}
	g.tickGen++
	g.tick = actors.SendAfter(g.env.Clock, ctx.ActorSystem(), ctx.Self(), g.cfg.ReportInterval, reportTick{gen: g.tickGen})
}

func (g *Gate) onResult(ctx actor.Context, res *miner.Result) {
	if g.onLocalResult(ctx, res) {
		return
	}
	seq, ok := g.byID[res.CommandID]
	if !ok {
		return // after the command's timeout, or a stale incarnation's
	}
	r := g.running[seq]
	id := res.Result.GetMinerId()
	if prev, named := r.results[id]; !named || prev != nil {
		return
	}
	r.results[id] = res.Result
	r.unsent = append(r.unsent, res.Result)
	r.remaining--
	g.env.Metrics.result(res.Result.GetCode())
	if r.remaining == 0 {
		g.finish(ctx, seq, r)
	}
}

func (g *Gate) onTimeout(ctx actor.Context, t commandTimeout) {
	r, ok := g.running[t.seq]
	if !ok {
		return
	}
	now := g.env.Clock.Now().UnixMilli()
	for _, id := range r.order {
		if r.results[id] == nil {
			mr := &pb.MinerResult{MinerId: id, Code: pb.ResultCode_RESULT_CODE_TIMEOUT,
				Message: fmt.Sprintf("no result within %s", g.cfg.CommandTimeout), StartedAtUnixMs: r.started.UnixMilli(), FinishedAtUnixMs: now}
			r.results[id] = mr
			g.env.Metrics.result(mr.Code)
		}
	}
	g.log.Warn("command timed out on some miners", slog.String("command", r.cmd.GetCommandId()), slog.Uint64("seq", t.seq))
	r.timeout = nil
	g.finish(ctx, t.seq, r)
}

// finish records the final report under the seq and sends it.
func (g *Gate) finish(ctx actor.Context, seq uint64, r *running) {
	if r.timeout != nil {
		r.timeout.Stop()
	}
	report := &pb.CommandResultReport{CommandId: r.cmd.GetCommandId(), MonotonicSeq: seq, Done: true,
		Results: make([]*pb.MinerResult, 0, len(r.order))}
	for _, id := range r.order {
		report.Results = append(report.Results, r.results[id])
	}
	if err := g.env.Store.PutResult(report); err != nil {
		g.log.Error("cannot record the command result", slog.String("command", r.cmd.GetCommandId()), slog.Any("error", err))
	}
	g.env.Metrics.finished(g.env.Clock.Since(r.started).Seconds())
	g.send(ctx, r.replyTo, report)
	delete(g.running, seq)
	delete(g.byID, r.cmd.GetCommandId())
}

func (g *Gate) onReportTick(ctx actor.Context, t reportTick) {
	if t.gen != g.tickGen {
		return
	}
	g.tick = nil
	for seq, r := range g.running {
		if len(r.unsent) == 0 {
			continue
		}
		g.send(ctx, r.replyTo, &pb.CommandResultReport{CommandId: r.cmd.GetCommandId(), MonotonicSeq: seq, Results: r.unsent})
		r.unsent = nil
	}
	if len(g.running) > 0 {
		g.armReport(ctx)
	}
}

// lostReport closes a command whose results were lost: every miner FAILED with an explanation.
func (g *Gate) lostReport(cmd *pb.ControlCommand, p *pb.CommandPayload, now time.Time) *pb.CommandResultReport {
	report := &pb.CommandResultReport{CommandId: cmd.GetCommandId(), MonotonicSeq: cmd.GetMonotonicSeq(), Done: true}
	for _, id := range resultIDs(p) {
		report.Results = append(report.Results, &pb.MinerResult{MinerId: id, Code: pb.ResultCode_RESULT_CODE_FAILED,
			Message: "result lost: the node stopped while the command ran; check the miner", FinishedAtUnixMs: now.UnixMilli()})
	}
	return report
}

// onStopping records what running commands have so far, the rest FAILED, so a re-send after restart gets a
// final DUPLICATE answer instead of nothing.
func (g *Gate) onStopping() {
	if g.tick != nil {
		g.tick.Stop()
		g.tick = nil
	}
	now := g.env.Clock.Now().UnixMilli()
	for seq, r := range g.running {
		if r.timeout != nil {
			r.timeout.Stop()
		}
		report := &pb.CommandResultReport{CommandId: r.cmd.GetCommandId(), MonotonicSeq: seq, Done: true}
		for _, id := range r.order {
			mr := r.results[id]
			if mr == nil {
				mr = &pb.MinerResult{MinerId: id, Code: pb.ResultCode_RESULT_CODE_FAILED,
					Message: "node stopped before the miner answered; check the miner", FinishedAtUnixMs: now}
			}
			report.Results = append(report.Results, mr)
		}
		if err := g.env.Store.PutResult(report); err != nil {
			g.log.Error("cannot record an interrupted command", slog.String("command", r.cmd.GetCommandId()), slog.Any("error", err))
		}
	}
	g.running, g.byID = map[uint64]*running{}, map[string]uint64{}
}
