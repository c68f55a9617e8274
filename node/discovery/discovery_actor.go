package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// Env is what a DiscoveryActor is wired to.
type Env struct {
	// Scanner does the probing; its Config also sets MaxActiveScans and KeepScans.
	Scanner *Scanner
	// Listener, when not nil, receives *ScanProgress and *ScanFinished of every scan (the SiteSupervisor,
	// or whatever forwards discovered devices to the cloud for the operator to confirm).
	Listener *actor.PID
	// Logger defaults to the Scanner's.
	Logger *slog.Logger
}

// Producer returns the DiscoveryActor's producer.
func Producer(env Env) actor.Producer {
	if env.Logger == nil {
		env.Logger = env.Scanner.Config().Logger
	}
	return func() actor.Actor { return newDiscoveryActor(env) }
}

var discoveryIncarnations atomic.Uint64

// DiscoveryActor runs discovery scans off its own goroutine, one goroutine per scan, and keeps their
// progress and results for status requests. It only reports what it found; it never claims ownership.
type DiscoveryActor struct {
	env   Env
	cfg   Config
	log   *slog.Logger
	inc   uint64
	scans map[string]*scanState
	order []string // scan ids, oldest first
	seq   int
	wg    sync.WaitGroup // scan goroutines
}

// scanState is one scan as the actor knows it.
type scanState struct {
	status     ScanStatus
	cancel     context.CancelFunc // nil once finished
	subscriber *actor.PID
}

func newDiscoveryActor(env Env) *DiscoveryActor {
	return &DiscoveryActor{
		env: env, cfg: env.Scanner.Config(), log: env.Logger, inc: discoveryIncarnations.Add(1),
		scans: map[string]*scanState{},
	}
}

// Receive dispatches each message to its handler.
func (a *DiscoveryActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
	case *actor.Stopping:
		a.onStopping()
	case *actor.Restarting:
		a.onStopping()
	case *actor.Stopped:
	case *StartScan:
		a.onStartScan(ctx, msg)
	case *CancelScan:
		a.onCancelScan(ctx, msg)
	case *StatusRequest:
		a.onStatusRequest(ctx, msg)
	case *ListScans:
		a.onListScans(ctx)
	case *scanUpdate:
		a.onScanUpdate(ctx, msg)
	case *scanDone:
		a.onScanDone(ctx, msg)
	default:
		a.log.Warn("discovery actor: unexpected message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

// onStartScan validates and plans the scan here (cheap, no I/O) so a bad request is answered at once, then
// runs it in a goroutine that reports back by message.
func (a *DiscoveryActor) onStartScan(ctx actor.Context, msg *StartScan) {
	req := msg.Request
	if req.ScanID == "" {
		a.seq++
		req.ScanID = "scan-" + a.cfg.Clock.Now().UTC().Format("20060102T150405") + "-" + strconv.Itoa(a.seq)
	}
	if _, ok := a.scans[req.ScanID]; ok {
		ctx.Respond(fmt.Errorf("start scan %q: %w", req.ScanID, ErrScanExists))
		return
	}
	if n := a.running(); n >= a.cfg.MaxActiveScans {
		ctx.Respond(fmt.Errorf("start scan %q: %d running (at most %d): %w", req.ScanID, n, a.cfg.MaxActiveScans, ErrBusy))
		return
	}
	plan, err := a.env.Scanner.Plan(req)
	if err != nil {
		ctx.Respond(fmt.Errorf("start scan %q: %w", req.ScanID, err))
		return
	}
	runCtx, cancel := context.WithCancel(context.Background())
	st := &scanState{cancel: cancel, subscriber: msg.Subscriber, status: ScanStatus{
		ScanID: req.ScanID, State: ScanRunning, Targets: plan.Targets().String(), Started: a.cfg.Clock.Now(),
		Progress: Progress{ScanID: req.ScanID, Total: plan.Targets().Len()},
	}}
	a.scans[req.ScanID] = st
	a.order = append(a.order, req.ScanID)
	a.forget()

	sys, self, inc, id := ctx.ActorSystem(), ctx.Self(), a.inc, req.ScanID
	scanner := a.env.Scanner
	a.wg.Go(func() {
		var res *Result
		var err error
		func() {
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("%w: %v", ErrScanPanic, v)
				}
			}()
			res = scanner.Run(runCtx, plan, func(u Update) { sys.Root.Send(self, &scanUpdate{inc: inc, id: id, u: u}) })
		}()
		sys.Root.Send(self, &scanDone{inc: inc, id: id, res: res, err: err})
	})
	a.publishProgress()
	a.log.Info("discovery scan started", slog.String("scan", id), slog.Int("addresses", plan.Targets().Len()),
		slog.String("targets", st.status.Targets))
	ctx.Respond(&ScanStarted{ScanID: id, Total: plan.Targets().Len(), Targets: st.status.Targets})
}

func (a *DiscoveryActor) onCancelScan(ctx actor.Context, msg *CancelScan) {
	st, ok := a.scans[msg.ScanID]
	if !ok {
		ctx.Respond(fmt.Errorf("cancel scan %q: %w", msg.ScanID, ErrUnknownScan))
		return
	}
	if st.status.State == ScanRunning {
		st.cancel()
		st.status.State = ScanCanceling
		a.log.Info("discovery scan canceling", slog.String("scan", msg.ScanID))
	}
	ctx.Respond(snapshot(st, true))
}

func (a *DiscoveryActor) onStatusRequest(ctx actor.Context, msg *StatusRequest) {
	id := msg.ScanID
	if id == "" && len(a.order) > 0 {
		id = a.order[len(a.order)-1]
	}
	st, ok := a.scans[id]
	if !ok {
		ctx.Respond(fmt.Errorf("status of scan %q: %w", msg.ScanID, ErrUnknownScan))
		return
	}
	ctx.Respond(snapshot(st, true))
}

func (a *DiscoveryActor) onListScans(ctx actor.Context) {
	out := &ScanList{Scans: make([]ScanStatus, 0, len(a.order))}
	for _, id := range a.order {
		s := snapshot(a.scans[id], false)
		out.Scans = append(out.Scans, *s)
	}
	ctx.Respond(out)
}

func (a *DiscoveryActor) onScanUpdate(ctx actor.Context, msg *scanUpdate) {
	st, ok := a.scans[msg.id]
	if !ok || msg.inc != a.inc || st.status.State.Finished() {
		return
	}
	st.status.Progress = msg.u.Progress
	a.publishProgress()
	st.status.Found = append(st.status.Found, msg.u.Found...)
	st.status.Errors = append(st.status.Errors, msg.u.Errors...)
	a.notify(ctx, st, &ScanProgress{ScanID: msg.id, Progress: msg.u.Progress,
		Found: slices.Clone(msg.u.Found), Errors: slices.Clone(msg.u.Errors)})
}

func (a *DiscoveryActor) onScanDone(ctx actor.Context, msg *scanDone) {
	st, ok := a.scans[msg.id]
	if !ok || msg.inc != a.inc || st.status.State.Finished() {
		return
	}
	st.cancel()
	st.cancel = nil
	st.status.Finished = a.cfg.Clock.Now()
	switch {
	case msg.err != nil || msg.res == nil:
		st.status.State, st.status.Err = ScanFailed, fmt.Sprint(msg.err)
		a.log.Error("discovery scan failed", slog.String("scan", msg.id), slog.Any("error", msg.err))
	default:
		st.status.State = ScanDone
		if msg.res.Canceled {
			st.status.State = ScanCanceled
		}
		st.status.Progress = msg.res.Progress()
		st.status.Found, st.status.Errors = msg.res.Found, msg.res.Errors
		st.status.Finished = msg.res.Finished
	}
	a.notify(ctx, st, &ScanFinished{Status: *snapshot(st, true)})
	a.forget()
	a.publishProgress()
}

// publishProgress sets the progress gauges from the scans running now.
func (a *DiscoveryActor) publishProgress() {
	running, addresses, probed := 0, 0, 0
	for _, st := range a.scans {
		if !st.status.State.Finished() {
			running++
			addresses += st.status.Progress.Total
			probed += st.status.Progress.Probed
		}
	}
	a.cfg.Metrics.progress(running, addresses, probed)
}

// onStopping cancels every running scan and waits for their goroutines, which end promptly: every probe
// honours cancellation.
func (a *DiscoveryActor) onStopping() {
	for _, st := range a.scans {
		if st.cancel != nil {
			st.cancel()
		}
	}
	a.wg.Wait()
	a.cfg.Metrics.progress(0, 0, 0)
}

func (a *DiscoveryActor) running() int {
	n := 0
	for _, st := range a.scans {
		if !st.status.State.Finished() {
			n++
		}
	}
	return n
}

// forget drops the oldest finished scans beyond KeepScans.
func (a *DiscoveryActor) forget() {
	for i := 0; len(a.order) > a.cfg.KeepScans && i < len(a.order); {
		id := a.order[i]
		if a.scans[id].status.State.Finished() {
			delete(a.scans, id)
			a.order = slices.Delete(a.order, i, i+1)
			continue
		}
		i++
	}
}

// notify sends msg to the scan's subscriber and the actor's listener.
func (a *DiscoveryActor) notify(ctx actor.Context, st *scanState, msg any) {
	if st.subscriber != nil {
		ctx.Send(st.subscriber, msg)
	}
	if a.env.Listener != nil && !a.env.Listener.Equal(st.subscriber) {
		ctx.Send(a.env.Listener, msg)
	}
}

// snapshot copies a scan's status; details adds its devices and errors.
func snapshot(st *scanState, details bool) *ScanStatus {
	s := st.status
	s.Found, s.Errors = nil, nil
	if details {
		s.Found, s.Errors = slices.Clone(st.status.Found), slices.Clone(st.status.Errors)
	}
	return &s
}
