package miner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	mrand "math/rand/v2"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/node/writelog"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// DriverFactory makes the driver of one device.
type DriverFactory func(*pb.Device) (miners.Driver, error)

// Env is what a MinerActor is wired to.
type Env struct {
	NodeID  string
	Device  *pb.Device
	Factory DriverFactory
	// Limiter is shared by every miner of the site.
	Limiter *Limiter
	Clock   clock.Clock
	// Sink receives *pb.Telemetry samples and *pb.Event events (the TelemetryBatcher); nil drops them.
	Sink *actor.PID
	// Guard is asked at the start of every write (command) whether it may run; nil allows every write (a
	// node outside a warm-standby pair).
	Guard WriteGuard
	// WriteLog records every write with its lease epoch; nil records nothing.
	WriteLog writelog.Log
	Metrics  *Metrics
	Logger   *slog.Logger
}

// Producer returns the producer of one miner's actor. State that must outlive a restart (the idempotency
// memory) is created here, once per miner slot.
func Producer(cfg Config, env Env) actor.Producer {
	mem := newMemory(cfg.IdempotencyKeys)
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	if env.Clock == nil {
		env.Clock = clock.Real()
	}
	return func() actor.Actor { return newActor(cfg, env, mem) }
}

var incarnations atomic.Uint64

// Actor is the MinerActor.
type Actor struct {
	cfg   Config
	env   Env
	rules Rules
	mem   *memory
	inc   uint64
	id    string
	log   minerLog
	rnd   *mrand.Rand

	driverLabel string
	pollObs     prometheus.Observer

	drv *driverHandle

	m          Machine
	sample     *pb.Telemetry
	lastGood   *pb.Telemetry
	lastErr    string
	lastPollAt time.Time
	polls      uint64
	pollErrors uint64

	timer         clock.Timer
	tickGen       uint64
	pollWanted    bool
	lastOpWasCmd  bool
	lastPollStart time.Time

	opSeq uint64
	op    *operation
	queue []*pending
	done  bool
}

type operation struct {
	id    uint64
	start time.Time
	cmd   *pending // nil for a poll

	// The operation's one context is made when a Limiter worker starts it (begin), so its timeout bounds the
	// I/O and not the wait for a slot; stop, from the actor, cancels it or keeps it from starting.
	mu      sync.Mutex
	cancel  context.CancelFunc
	begun   bool
	stopped bool
}

// begin makes the operation's context, bounded by timeout; ok is false once the actor stopped it.
func (op *operation) begin(timeout time.Duration) (ctx context.Context, cancel context.CancelFunc, ok bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.stopped {
		return nil, nil, false
	}
	op.begun = true
	ctx, op.cancel = context.WithTimeout(context.Background(), timeout)
	return ctx, op.cancel, true
}

// withdraw stops the operation if no worker has begun it yet, and reports whether it did: its queue entry
// then ends without I/O and without a message back.
func (op *operation) withdraw() bool {
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.begun || op.stopped {
		return false
	}
	op.stopped = true
	return true
}

// live reports whether the actor still wants the operation's result.
func (op *operation) live() bool {
	op.mu.Lock()
	defer op.mu.Unlock()
	return !op.stopped
}

// stop cancels the operation's I/O, or keeps it from starting, and drops its result.
func (op *operation) stop() {
	op.mu.Lock()
	op.stopped = true
	cancel := op.cancel
	op.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

type waiter struct {
	pid       *actor.PID
	commandID string
}

type pending struct {
	key     string
	spec    *pb.CommandSpec
	waiters []waiter
}

func newActor(cfg Config, env Env, mem *memory) *Actor {
	id := env.Device.GetMinerId()
	h := fnv.New64a()
	h.Write([]byte(env.NodeID))
	h.Write([]byte{0})
	h.Write([]byte(id))
	seed := h.Sum64()
	inc := incarnations.Add(1)
	a := &Actor{
		cfg: cfg, env: env, rules: cfg.Rules(), mem: mem, inc: inc, id: id,
		log:         minerLog{l: env.Logger, node: env.NodeID, miner: id},
		rnd:         mrand.New(mrand.NewPCG(seed, inc)),
		driverLabel: driverLabel(env.Device.GetProtocol()),
	}
	if env.Metrics != nil {
		a.pollObs = env.Metrics.pollLatency.WithLabelValues(a.driverLabel)
	}
	return a
}

func driverLabel(p pb.Protocol) string {
	return strings.ToLower(strings.TrimPrefix(p.String(), "PROTOCOL_"))
}

// Receive dispatches each message to its handler.
func (a *Actor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.onStarted(ctx)
	case pollTick:
		a.onPollTick(ctx, msg)
	case *pollDone:
		a.onPollDone(ctx, msg)
	case *cmdDone:
		a.onCmdDone(ctx, msg)
	case *driverPanic:
		a.onDriverPanic(ctx, msg)
	case *Execute:
		a.onExecute(ctx, msg)
	case *StatusRequest:
		ctx.Respond(a.status(true))
	case *actor.Restarting:
		a.shutdown(ctx, "actor restarting")
	case *actor.Stopping:
		a.shutdown(ctx, "actor stopping")
	case *actor.Stopped, *actor.Terminated:
	default:
		a.log.Warn("miner actor: unexpected message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

func (a *Actor) onStarted(ctx actor.Context) {
	if err := a.openDriver(); err != nil {
		a.log.Warn("no driver yet; every poll retries", slog.Any("error", err))
	}
	a.schedulePoll(ctx, firstPollDelay(a.cfg.PollInterval, a.rnd.Float64()))
}

// openDriver makes the driver when there is none; a failure is reported by the next poll.
func (a *Actor) openDriver() error {
	if a.drv != nil {
		return nil
	}
	if a.env.Factory == nil {
		return fmt.Errorf("%w %s: no driver factory", ErrDriver, a.id)
	}
	d, err := a.env.Factory(a.env.Device)
	if err != nil {
		return fmt.Errorf("%w %s (%s at %s): %w", ErrDriver, a.id, a.env.Device.GetProtocol(), a.env.Device.GetAddress(), err)
	}
	a.drv = &driverHandle{d: d}
	return nil
}

func (a *Actor) schedulePoll(ctx actor.Context, d time.Duration) {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	a.tickGen++
	tick := pollTick{inc: a.inc, gen: a.tickGen}
	if d <= 0 {
		ctx.Send(ctx.Self(), tick)
		return
	}
	a.timer = actors.SendAfter(a.env.Clock, ctx.ActorSystem(), ctx.Self(), d, tick)
}

func (a *Actor) onPollTick(ctx actor.Context, t pollTick) {
	if t.inc != a.inc || t.gen != a.tickGen || a.done {
		return
	}
	a.timer = nil
	a.pollWanted = true
	a.pump(ctx)
}

// pump starts the next driver operation when none is in flight: a queued command, or a due poll. When both
// wait, they alternate, so a command never waits behind more than one poll and polls are not starved.
func (a *Actor) pump(ctx actor.Context) {
	if a.op != nil || a.done {
		return
	}
	switch {
	case len(a.queue) > 0 && !(a.pollWanted && a.lastOpWasCmd):
		p := a.queue[0]
		a.queue = a.queue[1:]
		a.startCommand(ctx, p)
	case a.pollWanted:
		a.startPoll(ctx)
	}
}

func (a *Actor) newOp() *operation {
	a.opSeq++
	op := &operation{id: a.opSeq, start: a.env.Clock.Now()}
	a.op = op
	return op
}

// run executes do on a Limiter worker (a command ahead of the site's polls), with a context that ends timeout
// after the worker starts it, and posts its message back; a panic in the driver comes back as a driverPanic.
// Nothing runs or is posted once the operation was stopped (the actor stopped or restarted, or withdrew a
// poll for a command).
func (a *Actor) run(ctx actor.Context, op *operation, timeout time.Duration, do func(context.Context) any) {
	sys, self, inc, h := ctx.ActorSystem(), ctx.Self(), a.inc, a.drv
	h.acquire()
	submit := a.env.Limiter.Go
	if op.cmd != nil {
		submit = a.env.Limiter.GoCommand
	}
	submit(context.Background(), func() {
		opCtx, cancel, ok := op.begin(timeout)
		if !ok {
			h.release()
			return
		}
		var msg any
		func() {
			defer func() {
				if r := recover(); r != nil {
					msg = &driverPanic{inc: inc, op: op.id, value: r, stack: debug.Stack()}
				}
			}()
			msg = do(opCtx)
		}()
		cancel()
		h.release()
		if op.live() {
			sys.Root.Send(self, msg)
		}
	}, h.release)
}

func (a *Actor) startPoll(ctx actor.Context) {
	a.pollWanted = false
	a.lastOpWasCmd = false
	op := a.newOp()
	a.lastPollStart = op.start
	if err := a.openDriver(); err != nil {
		op.stop()
		a.op = nil
		a.finishPoll(ctx, op, nil, err, 0, "no_driver")
		return
	}
	drv, clk, timeout, inc := a.drv.d, a.env.Clock, a.cfg.PollTimeout, a.inc
	a.run(ctx, op, timeout, func(pctx context.Context) any {
		start := clk.Now()
		s, err := drv.Poll(pctx)
		lat := clk.Since(start)
		if err == nil && s == nil {
			err = fmt.Errorf("driver returned no sample: %w", miners.ErrMalformed)
		}
		if err != nil && errors.Is(pctx.Err(), context.DeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (%w after %s)", err, context.DeadlineExceeded, timeout)
		}
		return &pollDone{inc: inc, op: op.id, sample: s, err: err, latency: lat}
	})
}

func (a *Actor) onPollDone(ctx actor.Context, d *pollDone) {
	if d.inc != a.inc || a.op == nil || d.op != a.op.id || a.op.cmd != nil {
		return
	}
	op := a.op
	a.op = nil
	op.stop()
	a.finishPoll(ctx, op, d.sample, d.err, d.latency, "")
}

// pollResult classifies a poll error for metrics and the sample's poll_error.
func pollResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrDriver):
		return "no_driver"
	case errors.Is(err, miners.ErrMalformed):
		return "malformed"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, miners.ErrUnreachable):
		return "unreachable"
	}
	return "error"
}

func (a *Actor) finishPoll(ctx actor.Context, op *operation, s *pb.Telemetry, err error, lat time.Duration, result string) {
	now := a.env.Clock.Now()
	if result == "" {
		result = pollResult(err)
	}
	a.polls++
	a.lastPollAt = now
	a.observePoll(result, lat)

	var obs Observation
	if err == nil {
		s.MinerId = a.id
		obs = Observation{Kind: PollSucceeded, Reported: s.GetState(), UptimeS: s.GetUptimeS()}
		s.PollError = ""
	} else {
		a.pollErrors++
		msg := fmt.Sprintf("%s: %v", result, err)
		s = &pb.Telemetry{MinerId: a.id, PollError: msg}
		obs = Observation{Kind: PollFailed, Err: errors.New(msg)}
	}
	s.ObservedAtUnixMs = now.UnixMilli()
	s.PollLatencyUs = lat.Microseconds()

	a.apply(ctx, obs, now)
	s.State = a.m.State
	a.sample = s
	if err == nil {
		a.lastGood = s
		a.lastErr = ""
	} else {
		if s.PollError != a.lastErr { // a new kind of trouble: one event line, not one per poll
			a.log.Warn("poll failed", slog.String("error", s.PollError), slog.Int("failures", a.m.Failures))
			a.emit(ctx, &pb.Event{Kind: pb.EventKind_EVENT_KIND_POLL_ERROR, MinerId: a.id, Message: s.PollError,
				FromState: a.m.State, ToState: a.m.State, AtUnixMs: now.UnixMilli()})
		}
		a.lastErr = s.PollError
	}
	// The next tick is armed before the sample leaves, so whoever sees the sample knows the miner is waiting
	// for its next tick (tests on a fake clock rely on it).
	spent := now.Sub(op.start)
	a.schedulePoll(ctx, nextPollDelay(a.cfg.PollInterval, a.cfg.PollJitter, spent, a.rnd.Float64()))
	if a.env.Sink != nil {
		ctx.Send(a.env.Sink, s)
	}
	a.pushStatus(ctx)
	a.pump(ctx)
}

func (a *Actor) observePoll(result string, lat time.Duration) {
	m := a.env.Metrics
	if m == nil {
		return
	}
	m.polls.WithLabelValues(a.driverLabel, result).Inc()
	if result != "no_driver" && result != "panic" && a.pollObs != nil {
		a.pollObs.Observe(lat.Seconds())
	}
}

// apply runs the state machine and reports a transition.
func (a *Actor) apply(ctx actor.Context, o Observation, now time.Time) {
	next, tr := a.rules.Next(a.m, o, now)
	a.m = next
	if !tr.Changed() {
		return
	}
	a.env.Metrics.transition(strings.ToLower(strings.TrimPrefix(tr.To.String(), "MINER_STATE_")))
	a.log.Info("miner state changed", slog.String("from", tr.From.String()), slog.String("to", tr.To.String()), slog.String("reason", tr.Reason))
	a.emit(ctx, &pb.Event{Kind: pb.EventKind_EVENT_KIND_STATE_CHANGE, MinerId: a.id, FromState: tr.From, ToState: tr.To,
		Message: tr.Reason, AtUnixMs: now.UnixMilli()})
}

func (a *Actor) emit(ctx actor.Context, e *pb.Event) {
	if a.env.Sink == nil {
		return
	}
	e.EventId = newEventID()
	ctx.Send(a.env.Sink, e)
}

func (a *Actor) onDriverPanic(ctx actor.Context, p *driverPanic) {
	if p.inc != a.inc || a.op == nil || p.op != a.op.id {
		return
	}
	a.observePoll("panic", 0)
	a.log.Error("driver panicked; restarting this miner's actor", slog.Any("panic", p.value), slog.String("stack", string(p.stack)))
	// Re-raised here, inside Receive, so protoactor hands the failure to the SiteSupervisor.
	panic(fmt.Errorf("%w: miner %s: %v", ErrDriverPanic, a.id, p.value))
}

func (a *Actor) onExecute(ctx actor.Context, e *Execute) {
	w := waiter{pid: ctx.Sender(), commandID: e.CommandID}
	if e.Spec == nil {
		a.reply(ctx, w, &pb.MinerResult{MinerId: a.id, Code: pb.ResultCode_RESULT_CODE_FAILED, Message: ErrNoSpec.Error()})
		return
	}
	key := e.IdempotencyKey
	if key == "" {
		key = e.CommandID
	}
	if r, ok := a.mem.get(key); ok {
		a.log.Info("command already ran; returning its recorded result", slog.String("command", e.CommandID), slog.String("key", key))
		a.reply(ctx, w, r)
		return
	}
	if a.op != nil && a.op.cmd != nil && a.op.cmd.key == key {
		a.op.cmd.waiters = append(a.op.cmd.waiters, w)
		return
	}
	for _, p := range a.queue {
		if p.key == key {
			p.waiters = append(p.waiters, w)
			return
		}
	}
	a.queue = append(a.queue, &pending{key: key, spec: e.Spec, waiters: []waiter{w}})
	a.withdrawPoll()
	a.pump(ctx)
}

// withdrawPoll takes back a poll still waiting for a Limiter slot, so the command just queued runs first
// instead of waiting behind a poll that itself waits behind the site's other commands. The poll stays due and
// runs after the command.
func (a *Actor) withdrawPoll() {
	if a.op == nil || a.op.cmd != nil || !a.op.withdraw() {
		return
	}
	a.op = nil
	a.pollWanted = true
	a.lastOpWasCmd = false
}

func (a *Actor) startCommand(ctx actor.Context, p *pending) {
	a.lastOpWasCmd = true
	op := a.newOp()
	op.cmd = p
	if err := a.openDriver(); err != nil {
		op.stop()
		a.op = nil
		now := a.env.Clock.Now()
		a.finishCommand(ctx, p, &cmdDone{err: err, started: now, finished: now})
		return
	}
	drv, clk, timeout, inc, spec := a.drv.d, a.env.Clock, a.cfg.CommandTimeout, a.inc, p.spec
	commandID := p.waiters[0].commandID
	wg := writeGate{guard: a.env.Guard, log: a.env.WriteLog, node: a.env.NodeID, miner: a.id}
	a.log.Info("running command", slog.String("command", commandID), slog.String("action", spec.GetAction().String()))
	a.run(ctx, op, timeout, func(cctx context.Context) any {
		// The lease is checked when the write really starts (after any wait for a Limiter slot), and its
		// deadline bounds the I/O: a fenced node's write never begins, a lapsing lease cuts it short.
		started := clk.Now()
		wctx, cancel, epoch, err := wg.begin(cctx)
		if err != nil {
			wg.record(commandID, spec, epoch, started, started, err)
			return &cmdDone{inc: inc, op: op.id, err: err, started: started, finished: started}
		}
		defer cancel()
		msg, err := drv.Execute(miners.WithCommandID(wctx, commandID), spec)
		if err != nil && wctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (%w after %s)", err, context.DeadlineExceeded, timeout)
		}
		finished := clk.Now()
		wg.record(commandID, spec, epoch, started, finished, err)
		return &cmdDone{inc: inc, op: op.id, message: msg, err: err, started: started, finished: finished}
	})
}

func (a *Actor) onCmdDone(ctx actor.Context, d *cmdDone) {
	if d.inc != a.inc || a.op == nil || d.op != a.op.id || a.op.cmd == nil {
		return
	}
	p := a.op.cmd
	a.op.stop()
	a.op = nil
	a.finishCommand(ctx, p, d)
	a.pump(ctx)
}

// resultCode maps a driver error to the per-miner result code.
func resultCode(err error) pb.ResultCode {
	switch {
	case err == nil:
		return pb.ResultCode_RESULT_CODE_SUCCEEDED
	case errors.Is(err, ErrFenced):
		return pb.ResultCode_RESULT_CODE_FENCED
	case errors.Is(err, miners.ErrUnsupported):
		return pb.ResultCode_RESULT_CODE_UNSUPPORTED
	case errors.Is(err, context.DeadlineExceeded):
		return pb.ResultCode_RESULT_CODE_TIMEOUT
	}
	return pb.ResultCode_RESULT_CODE_FAILED
}

func (a *Actor) finishCommand(ctx actor.Context, p *pending, d *cmdDone) {
	code := resultCode(d.err)
	r := &pb.MinerResult{MinerId: a.id, Code: code, Message: d.message,
		StartedAtUnixMs: d.started.UnixMilli(), FinishedAtUnixMs: d.finished.UnixMilli()}
	if d.err != nil {
		r.Message = d.err.Error()
		a.lastErr = r.Message
		a.log.Warn("command failed", slog.String("command", p.waiters[0].commandID), slog.String("code", code.String()), slog.String("error", r.Message))
	} else {
		a.apply(ctx, Observation{Kind: CommandSucceeded, Action: p.spec.GetAction()}, d.finished)
	}
	a.env.Metrics.command(strings.ToLower(strings.TrimPrefix(p.spec.GetAction().String(), "ACTION_")), strings.ToLower(strings.TrimPrefix(code.String(), "RESULT_CODE_")))
	if code != pb.ResultCode_RESULT_CODE_FENCED { // never reached the miner: a retry under a lease must run it
		a.mem.put(p.key, r)
	}
	for _, w := range p.waiters {
		a.reply(ctx, w, r)
	}
	a.pushStatus(ctx)
}

func (a *Actor) reply(ctx actor.Context, w waiter, r *pb.MinerResult) {
	if w.pid == nil {
		return
	}
	ctx.Send(w.pid, &Result{CommandID: w.commandID, Result: r})
}

// shutdown ends this incarnation: timer stopped, I/O cancelled, waiting commands answered FAILED (a running
// one's effect on the miner is unknown, so it is not remembered as done), driver released.
func (a *Actor) shutdown(ctx actor.Context, reason string) {
	if a.done {
		return
	}
	a.done = true
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	waiting := a.queue
	a.queue = nil
	if a.op != nil {
		a.op.stop()
		if a.op.cmd != nil {
			waiting = append([]*pending{a.op.cmd}, waiting...)
		}
		a.op = nil
	}
	for _, p := range waiting {
		r := &pb.MinerResult{MinerId: a.id, Code: pb.ResultCode_RESULT_CODE_FAILED, Message: fmt.Sprintf("%s: %v", reason, ErrActorStopped)}
		for _, w := range p.waiters {
			a.reply(ctx, w, r)
		}
	}
	if a.drv != nil {
		a.drv.retire()
		a.drv = nil
	}
}

// status snapshots the actor; clone copies the samples (for callers outside the node).
func (a *Actor) status(clone bool) Status {
	s := Status{
		MinerID: a.id, Device: a.env.Device, State: a.m.State, StateSince: a.m.Since,
		Sample: a.sample, LastGood: a.lastGood, LastError: a.lastErr, LastPollAt: a.lastPollAt,
		ConsecutiveFailures: a.m.Failures, Polls: a.polls, PollErrors: a.pollErrors, QueuedCommands: len(a.queue),
	}
	if clone {
		if s.Sample != nil {
			s.Sample = proto.Clone(s.Sample).(*pb.Telemetry)
		}
		if s.LastGood != nil {
			s.LastGood = proto.Clone(s.LastGood).(*pb.Telemetry)
		}
	}
	return s
}

func (a *Actor) pushStatus(ctx actor.Context) {
	if p := ctx.Parent(); p != nil {
		ctx.Send(p, &StatusUpdate{Status: a.status(false)})
	}
}

// driverHandle closes a driver once it is both retired (its incarnation ended) and idle (no goroutine using
// it), whichever comes last.
type driverHandle struct {
	d       miners.Driver
	mu      sync.Mutex
	inUse   int // operations holding it: the one running, and a withdrawn poll whose queue entry has not ended
	retired bool
	closed  bool
}

func (h *driverHandle) acquire() {
	h.mu.Lock()
	h.inUse++
	h.mu.Unlock()
}

func (h *driverHandle) release() {
	h.mu.Lock()
	h.inUse--
	closeNow := h.retired && h.inUse == 0 && !h.closed
	h.closed = h.closed || closeNow
	h.mu.Unlock()
	if closeNow {
		_ = h.d.Close()
	}
}

func (h *driverHandle) retire() {
	h.mu.Lock()
	h.retired = true
	closeNow := h.inUse == 0 && !h.closed
	h.closed = h.closed || closeNow
	h.mu.Unlock()
	if closeNow {
		_ = h.d.Close()
	}
}

func newEventID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
