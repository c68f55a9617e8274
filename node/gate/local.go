package gate

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/hlc"
	"github.com/hashfleet/hashfleet/node/miner"
	"github.com/hashfleet/hashfleet/node/site"
	"github.com/hashfleet/hashfleet/node/store"
	"google.golang.org/protobuf/proto"
)

// The local command path. Every command issued at the site (the local UI) passes the gate too, so the gate
// is the one place that knows both the cloud's commands and the site's:
//
//	LocalSubmit ──▶ gate: resolve miners (All → every owned miner), check ownership and the lease
//	                 │ stamp: command id, local_origin, HLC (node/hlc), lease epoch, actor
//	                 │ LocalLog.CreateLocal (synced; the idempotency key is unique) BEFORE it runs
//	                 │ index: newest local action per miner and field (Reconcile reads it)
//	                 ▼
//	         site.Dispatch ──▶ MinerActors ──*miner.Result──▶ gate ──final──▶ LocalLog.UpdateLocal
//	                                                          └──▶ Sink: EVENT_KIND_LOCAL_COMMAND (spooled, to the cloud)
//
// At start the gate reads the log: it restores the HLC above the newest entry, rebuilds the index, closes
// entries a stop interrupted (their missing miners FAILED) and reports every entry not yet reported.

// Local command errors.
var (
	// ErrLocalUnsupported: the gate has no local command log (Env.Local nil).
	ErrLocalUnsupported = errors.New("this node takes no local commands")
	// ErrIdempotencyKeyReused: the idempotency key names an earlier, different local command.
	ErrIdempotencyKeyReused = errors.New("idempotency key already used for a different command")
	// ErrLocalRefused: the node refuses the local command as a whole (not its lease, unknown miners).
	ErrLocalRefused = errors.New("local command refused")
)

// LocalLog persists the local command log (store.Badger implements it).
type LocalLog interface {
	// CreateLocal persists a new entry; when its idempotency key is taken it returns the entry recorded
	// under it and an error wrapping store.ErrLocalExists.
	CreateLocal(e *pb.LocalLogEntry) (*pb.LocalLogEntry, error)
	UpdateLocal(e *pb.LocalLogEntry) error
	LocalCommands(newestFirst bool, fn func(*pb.LocalLogEntry) bool) error
	// DeleteLocal removes finished, reported entries with their indexes (retention, local_prune.go).
	DeleteLocal(ids ...string) (int, error)
}

// LocalEnv wires the local command path (Env.Local).
type LocalEnv struct {
	Log LocalLog
	// HLC stamps every local command. Required.
	HLC *hlc.Clock
	// Epoch is the node's current lease epoch (0 outside a warm-standby pair). Nil: 0.
	Epoch func() uint64
	// Retention: finished local commands older than this are deleted (local_prune.go). 0: 30 days
	// (DefaultLocalRetention); negative: kept forever.
	Retention time.Duration
	// PruneEvery is the interval between retention sweeps (the first runs at start). 0: 1h.
	PruneEvery time.Duration
}

// LocalSubmit asks the gate to run a local command. The gate answers *LocalSubmitted, or an error wrapping
// ErrIdempotencyKeyReused, ErrLocalRefused or ErrLocalUnsupported.
type LocalSubmit struct {
	IdempotencyKey string
	// Actor is who asked ("local:<user>").
	Actor string
	// MinerIDs to act on; empty with All.
	MinerIDs []string
	All      bool
	Spec     *pb.CommandSpec
}

// LocalSubmitted answers LocalSubmit.
type LocalSubmitted struct {
	CommandID string
	// Existing: the idempotency key named an earlier, identical command; nothing new ran.
	Existing bool
}

// LocalRunningRequest asks for the local commands still running, with their results so far (answered with
// []*pb.LocalLogEntry, copies).
type LocalRunningRequest struct{}

type localTimeout struct{ commandID string }

// localMessage marks the messages the local path handles.
type localMessage interface{ localMessage() }

func (*LocalSubmit) localMessage()         {}
func (*LocalRunningRequest) localMessage() {}
func (localTimeout) localMessage()         {}

type localRun struct {
	entry     *pb.LocalLogEntry
	results   map[string]*pb.MinerResult
	started   time.Time
	remaining int
	timeout   clock.Timer
}

// localResendWindow: at start, local commands reported within this long before the newest reported one
// are sent to the cloud again (far above the outbox's batch interval; the cloud deduplicates by command id).
const localResendWindow = time.Minute

// localState is the gate's local-path state.
type localState struct {
	newest  map[string]map[Field]LocalAction
	running map[string]*localRun // by command id
	prune   clock.Timer          // the next retention sweep
}

func (g *Gate) localEnabled() bool {
	return g.env.Local != nil && g.env.Local.Log != nil && g.env.Local.HLC != nil
}

func (g *Gate) localS() *localState {
	if g.local == nil {
		g.local = &localState{newest: map[string]map[Field]LocalAction{}, running: map[string]*localRun{}}
	}
	return g.local
}

func (g *Gate) onLocal(ctx actor.Context, m localMessage) {
	switch m := m.(type) {
	case *LocalSubmit:
		g.onLocalSubmit(ctx, m)
	case *LocalRunningRequest:
		out := make([]*pb.LocalLogEntry, 0, len(g.localS().running))
		for _, r := range g.localS().running {
			out = append(out, r.snapshot())
		}
		ctx.Respond(out)
	case localTimeout:
		g.onLocalTimeout(ctx, m)
	case localPrune:
		g.onLocalPrune(ctx)
	}
}

// index records c as the newest local action on each of its miners' field.
func (g *Gate) index(c *pb.LocalCommand) {
	f, ok := FieldOf(c.GetSpec().GetAction())
	if !ok {
		return
	}
	st := g.localS()
	la := LocalAction{CommandID: c.GetCommandId(), Actor: c.GetActor(), Spec: c.GetSpec(), HLC: c.GetHlc()}
	for _, id := range c.GetMinerIds() {
		byField := st.newest[id]
		if byField == nil {
			byField = map[Field]LocalAction{}
			st.newest[id] = byField
		}
		if cur, ok := byField[f]; !ok || hlc.Compare(la.HLC, cur.HLC) > 0 {
			byField[f] = la
		}
	}
}

func (g *Gate) newestLocal(minerID string, f Field) (LocalAction, bool) {
	la, ok := g.localS().newest[minerID][f]
	return la, ok
}

// onLocalStarted loads the local command log.
func (g *Gate) onLocalStarted(ctx actor.Context) {
	if !g.localEnabled() {
		return
	}
	var unfinished, unreported, reported []*pb.LocalLogEntry
	var newest int64
	err := g.env.Local.Log.LocalCommands(false, func(e *pb.LocalLogEntry) bool {
		g.env.Local.HLC.Restore(e.GetCommand().GetHlc())
		g.index(e.GetCommand())
		switch {
		case !e.GetDone():
			unfinished = append(unfinished, e)
		case !e.GetReported():
			unreported = append(unreported, e)
		default:
			reported = append(reported, e)
			newest = max(newest, e.GetFinishedAtUnixMs())
		}
		return true
	})
	if err != nil {
		g.log.Error("cannot read the local command log; local actions before this start do not hold cloud commands", slog.Any("error", err))
		return
	}
	now := g.env.Clock.Now()
	for _, e := range unfinished {
		c := e.GetCommand()
		have := map[string]bool{}
		for _, r := range c.GetResults() {
			have[r.GetMinerId()] = true
		}
		for _, id := range c.GetMinerIds() {
			if !have[id] {
				c.Results = append(c.Results, &pb.MinerResult{MinerId: id, Code: pb.ResultCode_RESULT_CODE_FAILED,
					Message: "result lost: the node stopped while the command ran; check the miner", FinishedAtUnixMs: now.UnixMilli()})
			}
		}
		e.Done, e.FinishedAtUnixMs = true, now.UnixMilli()
		if err := g.env.Local.Log.UpdateLocal(e); err != nil {
			g.log.Error("cannot close an interrupted local command", slog.String("command", c.GetCommandId()), slog.Any("error", err))
			continue
		}
		unreported = append(unreported, e)
	}
	// Reported means handed to the outbox, which holds an event in memory until its batch closes: the last
	// commands reported before a crash may not have reached the spool. Send those again; the cloud keeps each
	// command id once.
	for _, e := range reported {
		if e.GetFinishedAtUnixMs() >= newest-localResendWindow.Milliseconds() {
			unreported = append(unreported, e)
		}
	}
	for _, e := range unreported {
		g.reportLocal(ctx, e)
	}
	if n := len(unreported); n > 0 {
		g.log.Info("local commands queued for the cloud", slog.Int("commands", n), slog.Int("interrupted", len(unfinished)))
	}
	g.onLocalPrune(ctx)
}

func (g *Gate) onLocalSubmit(ctx actor.Context, m *LocalSubmit) {
	if !g.localEnabled() {
		ctx.Respond(ErrLocalUnsupported)
		return
	}
	ids := m.MinerIDs
	if m.All {
		ids = make([]string, 0, len(g.owned))
		for id := range g.owned {
			ids = append(ids, id)
		}
		slices.Sort(ids)
	}
	ids = dedupe(ids)
	var foreign []string
	for _, id := range ids {
		if _, ok := g.owned[id]; !ok {
			foreign = append(foreign, id)
		}
	}
	switch {
	case m.IdempotencyKey == "" || m.Spec == nil || m.Spec.GetAction() == pb.Action_ACTION_UNSPECIFIED:
		ctx.Respond(fmt.Errorf("%w: an idempotency key and an action are required", ErrLocalRefused))
		return
	case len(ids) == 0:
		ctx.Respond(fmt.Errorf("%w: no miners to act on", ErrLocalRefused))
		return
	case len(foreign) > 0:
		ctx.Respond(fmt.Errorf("%w: not owned by this node: %s", ErrLocalRefused, strings.Join(foreign[:min(len(foreign), 5)], ", ")))
		return
	}
	var epoch uint64
	if g.env.Local.Epoch != nil {
		epoch = g.env.Local.Epoch()
	}
	if g.cfg.EpochCheck != nil {
		if err := g.cfg.EpochCheck(epoch); err != nil {
			ctx.Respond(fmt.Errorf("%w: %w", ErrLocalRefused, err))
			return
		}
	}
	now := g.env.Clock.Now()
	ts := g.env.Local.HLC.Now()
	c := &pb.LocalCommand{
		CommandId:      fmt.Sprintf("local-%s-%d-%d", g.cfg.NodeID, ts.GetWallMs(), ts.GetLogical()),
		IdempotencyKey: m.IdempotencyKey, Hlc: ts, LeaseEpoch: epoch, Actor: m.Actor, MinerIds: ids,
		Spec: proto.Clone(m.Spec).(*pb.CommandSpec), LocalOrigin: true,
	}
	e := &pb.LocalLogEntry{Command: c, CreatedAtUnixMs: now.UnixMilli()}
	log := g.log.With(slog.String("command", c.GetCommandId()), slog.String("actor", m.Actor), slog.Uint64("epoch", epoch))
	// Persisted before anything runs: a crash after this line finds the command in the log at start.
	existing, err := g.env.Local.Log.CreateLocal(e)
	switch {
	case errors.Is(err, store.ErrLocalExists) && existing != nil:
		if !sameLocal(existing.GetCommand(), m, ids) {
			ctx.Respond(fmt.Errorf("%w: key %q is command %s", ErrIdempotencyKeyReused, m.IdempotencyKey, existing.GetCommand().GetCommandId()))
			return
		}
		log.Info("local command re-submitted with the same idempotency key; not run again",
			slog.String("existing", existing.GetCommand().GetCommandId()))
		ctx.Respond(&LocalSubmitted{CommandID: existing.GetCommand().GetCommandId(), Existing: true})
		return
	case err != nil:
		log.Error("cannot persist the local command; not run", slog.Any("error", err))
		ctx.Respond(fmt.Errorf("persist local command: %w", err))
		return
	}
	g.index(c)
	r := &localRun{entry: e, results: make(map[string]*pb.MinerResult, len(ids)), started: now, remaining: len(ids)}
	r.timeout = actors.SendAfter(g.env.Clock, ctx.ActorSystem(), ctx.Self(), g.cfg.CommandTimeout, localTimeout{commandID: c.GetCommandId()})
	g.localS().running[c.GetCommandId()] = r
	log.Info("local command accepted", slog.String("action", c.GetSpec().GetAction().String()), slog.Int("miners", len(ids)),
		slog.String("hlc", hlc.Format(ts)))
	ctx.Respond(&LocalSubmitted{CommandID: c.GetCommandId()})
	ctx.Request(g.env.Site, &site.Dispatch{CommandID: c.GetCommandId(), IdempotencyKey: "local/" + m.IdempotencyKey,
		MinerIDs: ids, Spec: c.GetSpec()})
}

// sameLocal reports whether an earlier command asks what m asks (for an idempotent re-submit).
func sameLocal(c *pb.LocalCommand, m *LocalSubmit, ids []string) bool {
	return proto.Equal(c.GetSpec(), m.Spec) && (m.All || slices.Equal(c.GetMinerIds(), ids))
}

// onLocalResult takes a miner's result of a local command; false when res is not one.
func (g *Gate) onLocalResult(ctx actor.Context, res *miner.Result) bool {
	if g.local == nil {
		return false
	}
	r, ok := g.local.running[res.CommandID]
	if !ok {
		return false
	}
	id := res.Result.GetMinerId()
	if _, done := r.results[id]; done || !slices.Contains(r.entry.GetCommand().GetMinerIds(), id) {
		return true
	}
	r.results[id] = res.Result
	r.remaining--
	if r.remaining == 0 {
		g.finishLocal(ctx, r)
	}
	return true
}

func (g *Gate) onLocalTimeout(ctx actor.Context, t localTimeout) {
	r, ok := g.localS().running[t.commandID]
	if !ok {
		return
	}
	now := g.env.Clock.Now().UnixMilli()
	for _, id := range r.entry.GetCommand().GetMinerIds() {
		if r.results[id] == nil {
			r.results[id] = &pb.MinerResult{MinerId: id, Code: pb.ResultCode_RESULT_CODE_TIMEOUT,
				Message: fmt.Sprintf("no result within %s", g.cfg.CommandTimeout), StartedAtUnixMs: r.started.UnixMilli(), FinishedAtUnixMs: now}
		}
	}
	r.timeout = nil
	g.finishLocal(ctx, r)
}

func (r *localRun) snapshot() *pb.LocalLogEntry {
	e := proto.Clone(r.entry).(*pb.LocalLogEntry)
	c := e.GetCommand()
	c.Results = c.Results[:0]
	for _, id := range c.GetMinerIds() {
		if res := r.results[id]; res != nil {
			c.Results = append(c.Results, res)
		}
	}
	return e
}

// finishLocal records a local command's results and hands it to the outbox for the cloud.
func (g *Gate) finishLocal(ctx actor.Context, r *localRun) {
	if r.timeout != nil {
		r.timeout.Stop()
	}
	e := r.snapshot()
	e.Done, e.FinishedAtUnixMs = true, g.env.Clock.Now().UnixMilli()
	delete(g.localS().running, e.GetCommand().GetCommandId())
	if err := g.env.Local.Log.UpdateLocal(e); err != nil {
		g.log.Error("cannot record the local command's results; they are sent from memory", slog.String("command", e.GetCommand().GetCommandId()), slog.Any("error", err))
	}
	ok, failed := countResults(e.GetCommand().GetResults())
	g.log.Info("local command finished", slog.String("command", e.GetCommand().GetCommandId()), slog.Int("succeeded", ok), slog.Int("failed", failed))
	g.reportLocal(ctx, e)
}

// reportLocal sends a finished local command to the cloud (through the spooled outbox: it is retried until
// the cloud acks it, and the cloud keeps each command id once) and marks it reported.
func (g *Gate) reportLocal(ctx actor.Context, e *pb.LocalLogEntry) {
	if g.env.Sink == nil {
		return
	}
	c := e.GetCommand()
	ok, failed := countResults(c.GetResults())
	ctx.Send(g.env.Sink, &pb.Event{
		EventId:      "local/" + g.cfg.NodeID + "/" + c.GetCommandId(),
		Kind:         pb.EventKind_EVENT_KIND_LOCAL_COMMAND,
		AtUnixMs:     c.GetHlc().GetWallMs(),
		LocalCommand: c,
		Message: fmt.Sprintf("local %s by %s on %d miner(s): %d succeeded, %d failed", actionName(c.GetSpec().GetAction()),
			c.GetActor(), len(c.GetMinerIds()), ok, failed),
	})
	if e.GetReported() {
		return
	}
	e.Reported = true
	if err := g.env.Local.Log.UpdateLocal(e); err != nil {
		g.log.Warn("cannot mark the local command reported; it is sent again at the next start (the cloud keeps it once)",
			slog.String("command", c.GetCommandId()), slog.Any("error", err))
	}
}

func countResults(rs []*pb.MinerResult) (ok, failed int) {
	for _, r := range rs {
		switch r.GetCode() {
		case pb.ResultCode_RESULT_CODE_SUCCEEDED, pb.ResultCode_RESULT_CODE_DUPLICATE:
			ok++
		default:
			failed++
		}
	}
	return ok, failed
}

// onLocalStopping closes the running local commands (missing miners FAILED) so the log never keeps an
// entry open; they are reported at the next start.
func (g *Gate) onLocalStopping() {
	if g.local == nil || !g.localEnabled() {
		return
	}
	if g.local.prune != nil {
		g.local.prune.Stop()
	}
	now := g.env.Clock.Now().UnixMilli()
	for id, r := range g.local.running {
		if r.timeout != nil {
			r.timeout.Stop()
		}
		for _, m := range r.entry.GetCommand().GetMinerIds() {
			if r.results[m] == nil {
				r.results[m] = &pb.MinerResult{MinerId: m, Code: pb.ResultCode_RESULT_CODE_FAILED,
					Message: "node stopped before the miner answered; check the miner", FinishedAtUnixMs: now}
			}
		}
		e := r.snapshot()
		e.Done, e.FinishedAtUnixMs = true, now
		if err := g.env.Local.Log.UpdateLocal(e); err != nil {
			g.log.Error("cannot record an interrupted local command", slog.String("command", id), slog.Any("error", err))
		}
	}
	g.local.running = map[string]*localRun{}
}

// holdForLocal applies Reconcile to a cloud command the gate decided to dispatch: held miners leave v.miners
// and get a CONFLICT result; when every miner is held the command is not dispatched and its code is CONFLICT.
func (g *Gate) holdForLocal(cmd *pb.ControlCommand, p *pb.CommandPayload, v *verdict, now time.Time) []*pb.MinerResult {
	if !v.dispatch || g.local == nil || isControl(p) || p.GetSpec() == nil {
		return nil
	}
	wm := cmd.GetLocalWatermark()
	run, held, overridden := Reconcile(p.GetSpec(), wm, v.miners, g.newestLocal)
	for _, o := range overridden {
		g.log.Warn("cloud safety action applied over a newer local action", slog.String("command", cmd.GetCommandId()),
			slog.String("miner", o.MinerID), slog.String("local_command", o.Local.CommandID), slog.String("field", string(o.Field)))
	}
	if len(held) == 0 {
		return nil
	}
	out := make([]*pb.MinerResult, 0, len(held))
	for _, h := range held {
		out = append(out, &pb.MinerResult{MinerId: h.MinerID, Code: pb.ResultCode_RESULT_CODE_CONFLICT, Message: HeldMessage(h, wm),
			StartedAtUnixMs: now.UnixMilli(), FinishedAtUnixMs: now.UnixMilli()})
	}
	v.miners = run
	if len(run) == 0 {
		v.dispatch, v.code = false, pb.ResultCode_RESULT_CODE_CONFLICT
		v.msg = fmt.Sprintf("held on all %d miner(s): %s", len(held), out[0].GetMessage())
	} else {
		v.msg = fmt.Sprintf("held on %d of %d miner(s) (local action while offline)", len(held), len(held)+len(run))
	}
	g.log.Warn("cloud command held: local action while offline", slog.String("command", cmd.GetCommandId()),
		slog.Int("held", len(held)), slog.Int("run", len(run)))
	return out
}

// addHeld adds the held miners' CONFLICT results to a dispatched cloud command: they are part of its final
// report (and the first partial one) while the others run.
func (g *Gate) addHeld(seq uint64, held []*pb.MinerResult) {
	r, ok := g.running[seq]
	if !ok || len(held) == 0 {
		return
	}
	for _, h := range held {
		r.order = append(r.order, h.GetMinerId())
		r.results[h.GetMinerId()] = h
		r.unsent = append(r.unsent, h)
	}
}
