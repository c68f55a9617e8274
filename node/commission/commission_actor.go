package commission

import (
	"context"
	"crypto/hpke"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/node/discovery"
	"github.com/hashfleet/hashfleet/node/gate"
	"github.com/hashfleet/hashfleet/node/miner"
)

// PairFunc tries to pair one device (node.Drivers.Pair): it must honour ctx and never panic.
type PairFunc func(ctx context.Context, dev *pb.Device) (pb.ResultCode, string)

// Env is what the CommissionActor is wired to.
type Env struct {
	NodeID string
	// Discovery is the node's DiscoveryActor (scans are started with this actor as their subscriber). Nil: scans FAIL.
	Discovery *actor.PID
	// Sink receives EVENT_KIND_SCAN events (the TelemetryBatcher); nil drops them.
	Sink *actor.PID
	// Pair pairs one device; nil: pairings FAIL.
	Pair PairFunc
	// CredentialKey opens a scan's sealed Antminer login; nil: a scan with one FAILS.
	CredentialKey hpke.PrivateKey
	Clock         clock.Clock
	ActorMetrics  *actors.Metrics
	Logger        *slog.Logger
}

// Props returns the CommissionActor's props (kind "commission").
func Props(cfg Config, env Env) *actor.Props {
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	if env.Clock == nil {
		env.Clock = clock.Real()
	}
	return actors.Props("commission", env.ActorMetrics, func() actor.Actor { return newCommission(cfg, env) })
}

// CommissionActor runs discovery scans and pairings for the CommandGate and reports scan progress.
type CommissionActor struct {
	cfg Config
	env Env
	log *slog.Logger

	scans map[string]*scan // by scan id, while running

	cancel context.CancelFunc // pairing goroutines
	ctx    context.Context
	wg     sync.WaitGroup
	slots  chan struct{}
}

type scan struct {
	startedMs int64
	seq       uint32
}

func newCommission(cfg Config, env Env) *CommissionActor {
	return &CommissionActor{cfg: cfg, env: env, log: env.Logger.With(slog.String("node", env.NodeID)), scans: map[string]*scan{}}
}

// pairDone is one device's pairing outcome, posted back by its goroutine.
type pairDone struct {
	to        *actor.PID
	commandID string
	result    *pb.MinerResult
}

// Receive dispatches each message to its handler.
func (a *CommissionActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.ctx, a.cancel = context.WithCancel(context.Background())
		a.slots = make(chan struct{}, a.cfg.PairConcurrency)
	case *actor.Stopping, *actor.Restarting:
		a.cancel()
		a.wg.Wait()
	case *actor.Stopped:
	case *gate.ControlDispatch:
		a.onDispatch(ctx, msg)
	case *pairDone:
		ctx.Send(msg.to, &miner.Result{CommandID: msg.commandID, Result: msg.result})
	case *discovery.ScanProgress:
		a.onProgress(ctx, msg)
	case *discovery.ScanFinished:
		a.onFinished(ctx, msg)
	default:
		a.log.Warn("commission: unexpected message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

func (a *CommissionActor) onDispatch(ctx actor.Context, d *gate.ControlDispatch) {
	switch {
	case d.Payload.GetDiscovery() != nil:
		a.startScan(ctx, d)
	case d.Payload.GetPairing() != nil:
		a.startPairing(ctx, d)
	default:
		for _, id := range d.IDs {
			a.answer(ctx, ctx.Sender(), d.CommandID, id, pb.ResultCode_RESULT_CODE_FAILED, "not a node-control command")
		}
	}
}

func (a *CommissionActor) answer(ctx actor.Context, to *actor.PID, commandID, id string, code pb.ResultCode, msg string) {
	if to == nil {
		return
	}
	now := a.env.Clock.Now().UnixMilli()
	ctx.Send(to, &miner.Result{CommandID: commandID, Result: &pb.MinerResult{MinerId: id, Code: code, Message: msg,
		StartedAtUnixMs: now, FinishedAtUnixMs: now}})
}

// startScan opens the scan's Antminer login (if any), asks the DiscoveryActor to start, and answers the gate
// when it has: SUCCEEDED means started (progress follows as events), FAILED means refused.
func (a *CommissionActor) startScan(ctx actor.Context, d *gate.ControlDispatch) {
	req := d.Payload.GetDiscovery()
	gateID, to := gate.ScanResultID(req.GetScanId()), ctx.Sender()
	if a.env.Discovery == nil {
		a.answer(ctx, to, d.CommandID, gateID, pb.ResultCode_RESULT_CODE_UNSUPPORTED, "this node runs no discovery")
		return
	}
	sr, err := a.scanRequest(req)
	if err != nil {
		a.answer(ctx, to, d.CommandID, gateID, pb.ResultCode_RESULT_CODE_FAILED, err.Error())
		return
	}
	f := ctx.RequestFuture(a.env.Discovery, &discovery.StartScan{Request: sr, Subscriber: ctx.Self()}, 30*time.Second)
	ctx.ReenterAfter(f, func(res any, err error) {
		if err == nil {
			if e, ok := res.(error); ok {
				err = e
			}
		}
		started, ok := res.(*discovery.ScanStarted)
		if err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("unexpected reply %T", res)
			}
			a.log.Warn("discovery scan refused", slog.String("scan", req.GetScanId()), slog.Any("error", err))
			a.answer(ctx, to, d.CommandID, gateID, pb.ResultCode_RESULT_CODE_FAILED, "scan not started: "+err.Error())
			return
		}
		if _, seen := a.scans[started.ScanID]; !seen {
			a.scans[started.ScanID] = &scan{startedMs: a.env.Clock.Now().UnixMilli()}
		}
		a.answer(ctx, to, d.CommandID, gateID, pb.ResultCode_RESULT_CODE_SUCCEEDED,
			fmt.Sprintf("scan started: %d addresses (%s)", started.Total, started.Targets))
	})
}

// scanRequest translates the wire request, opening its sealed login.
func (a *CommissionActor) scanRequest(req *pb.DiscoveryRequest) (discovery.Request, error) {
	ports := func(ps []int32) []int {
		out := make([]int, 0, len(ps))
		for _, p := range ps {
			out = append(out, int(p))
		}
		return out
	}
	sr := discovery.Request{ScanID: req.GetScanId(), Targets: req.GetTargets(), Protocols: req.GetProtocols(),
		Ports: discovery.Ports{CGMiner: ports(req.GetCgminerPorts()), AntminerWeb: ports(req.GetAntminerWebPorts()),
			Proto: ports(req.GetProtoPorts()), TLS: ports(req.GetTlsPorts())}}
	if raw := req.GetAntminerEnvelope(); len(raw) > 0 {
		if a.env.CredentialKey == nil {
			return sr, fmt.Errorf("the scan carries a sealed login but this node has no credential key")
		}
		env, err := sealing.Parse(raw)
		if err != nil {
			return sr, fmt.Errorf("scan login: %w", err)
		}
		pw, err := sealing.Open(a.env.CredentialKey, env, a.env.NodeID, ScanDeviceID(req.GetScanId()), sealing.PurposeMinerLogin)
		if err != nil {
			return sr, fmt.Errorf("scan login: %w", err)
		}
		sr.Antminer = discovery.Credentials{Username: req.GetAntminerUser(), Password: string(pw)}
		sealing.Wipe(pw)
		if sr.Antminer.Username == "" {
			sr.Antminer.Username = "root"
		}
	}
	return sr, nil
}

// ScanDeviceID is the device id a scan's Antminer login is sealed for: "scan/<scan id>".
func ScanDeviceID(scanID string) string { return "scan/" + scanID }

// startPairing tries every device in a goroutine of its own, at most PairConcurrency at once; each answers
// the gate when done.
func (a *CommissionActor) startPairing(ctx actor.Context, d *gate.ControlDispatch) {
	to := ctx.Sender()
	devs := d.Payload.GetPairing().GetDevices()
	if a.env.Pair == nil {
		for _, dev := range devs {
			a.answer(ctx, to, d.CommandID, dev.GetMinerId(), pb.ResultCode_RESULT_CODE_UNSUPPORTED, "this node cannot pair devices")
		}
		return
	}
	a.log.Info("pairing devices", slog.String("command", d.CommandID), slog.Int("devices", len(devs)))
	sys, self, clk, pair, timeout := ctx.ActorSystem(), ctx.Self(), a.env.Clock, a.env.Pair, a.cfg.PairTimeout
	runCtx, slots := a.ctx, a.slots
	for _, dev := range devs {
		a.wg.Go(func() {
			select {
			case slots <- struct{}{}:
			case <-runCtx.Done():
				return
			}
			defer func() { <-slots }()
			started := clk.Now()
			code, msg := safePair(runCtx, pair, dev, timeout)
			if runCtx.Err() != nil {
				return // stopping: the gate records the command as interrupted
			}
			sys.Root.Send(self, &pairDone{to: to, commandID: d.CommandID, result: &pb.MinerResult{MinerId: dev.GetMinerId(),
				Code: code, Message: msg, StartedAtUnixMs: started.UnixMilli(), FinishedAtUnixMs: clk.Now().UnixMilli()}})
		})
	}
}

// safePair runs pair with a deadline; a panic is that device's FAILED result.
func safePair(ctx context.Context, pair PairFunc, dev *pb.Device, timeout time.Duration) (code pb.ResultCode, msg string) {
	defer func() {
		if v := recover(); v != nil {
			code, msg = pb.ResultCode_RESULT_CODE_FAILED, fmt.Sprintf("internal error while pairing: %v", v)
		}
	}()
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return pair(pctx, dev)
}

func (a *CommissionActor) onProgress(ctx actor.Context, p *discovery.ScanProgress) {
	st := a.scans[p.ScanID]
	if st == nil {
		st = &scan{startedMs: a.env.Clock.Now().UnixMilli()}
		a.scans[p.ScanID] = st
	}
	a.emit(ctx, st, progressReports(p, st.startedMs, a.cfg.MaxDevicesPerEvent, a.cfg.MaxErrorsPerEvent))
}

func (a *CommissionActor) onFinished(ctx actor.Context, f *discovery.ScanFinished) {
	st := a.scans[f.Status.ScanID]
	if st == nil {
		st = &scan{}
	}
	delete(a.scans, f.Status.ScanID)
	a.emit(ctx, st, finalReports(&f.Status, a.cfg.MaxDevicesPerEvent, a.cfg.MaxErrorsPerEvent))
	a.log.Info("discovery scan reported", slog.String("scan", f.Status.ScanID), slog.String("state", f.Status.State.String()),
		slog.Int("found", len(f.Status.Found)), slog.Int("errors", f.Status.Progress.Errors))
}

func (a *CommissionActor) emit(ctx actor.Context, st *scan, reports []*pb.ScanReport) {
	if a.env.Sink == nil {
		return
	}
	now := a.env.Clock.Now().UnixMilli()
	for _, r := range reports {
		st.seq++
		r.ReportSeq = st.seq
		ctx.Send(a.env.Sink, &pb.Event{EventId: fmt.Sprintf("scan/%s/%s/%d", a.env.NodeID, r.GetScanId(), r.GetReportSeq()),
			Kind: pb.EventKind_EVENT_KIND_SCAN, AtUnixMs: now, Scan: r,
			Message: fmt.Sprintf("scan %s %s: %d/%d probed, %d found", r.GetScanId(), r.GetState(), r.GetProbed(), r.GetTotal(), r.GetFoundCount())})
	}
}

func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
