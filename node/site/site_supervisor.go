package site

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/miner"
	"github.com/hashfleet/hashfleet/node/writelog"
	"google.golang.org/protobuf/proto"
)

// Env is what the SiteSupervisor and its miners are wired to.
type Env struct {
	NodeID string
	// Devices is the initial device set.
	Devices []*pb.Device
	Factory miner.DriverFactory
	// Limiter bounds driver I/O across the site; its owner (the node) waits on it at shutdown. Nil: the site
	// makes one of 256 slots and ends its workers when it stops.
	Limiter *miner.Limiter
	Clock   clock.Clock
	// Sink receives the miners' samples and events (the TelemetryBatcher).
	Sink *actor.PID
	// Guard and WriteLog are every miner's (miner.Env): the lease check at each write's start, and the log
	// of writes. Nil: writes always allowed, none logged.
	Guard        miner.WriteGuard
	WriteLog     writelog.Log
	Metrics      *Metrics
	MinerMetrics *miner.Metrics
	ActorMetrics *actors.Metrics
	Logger       *slog.Logger

	ownsLimiter bool // Limiter was made by Props
}

// Props returns the SiteSupervisor's props: kind "site", supervising its miners one-for-one with backoff.
func Props(cfg Config, env Env) *actor.Props {
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	if env.Clock == nil {
		env.Clock = clock.Real()
	}
	if env.Limiter == nil {
		env.Limiter = miner.NewLimiter(256, env.MinerMetrics.InFlightGauge())
		env.ownsLimiter = true
	}
	return actors.Props("site", env.ActorMetrics, func() actor.Actor { return newSupervisor(cfg, env) },
		actor.WithSupervisor(actors.NewSupervisor(cfg.Supervisor, env.Clock, env.ActorMetrics, "miner")))
}

// Supervisor is the SiteSupervisor actor.
type Supervisor struct {
	cfg      Config
	env      Env
	log      *slog.Logger
	miners   map[string]*slot
	byPID    map[string]string // child pid id → miner id
	ids      []string          // sorted
	stopping bool
}

type slot struct {
	device  *pb.Device
	pid     *actor.PID
	status  miner.Status
	counted bool // status.State is in the miners gauge
	stopped bool // the supervisor gave up on it
}

func newSupervisor(cfg Config, env Env) *Supervisor {
	return &Supervisor{cfg: cfg, env: env, miners: map[string]*slot{}, byPID: map[string]string{},
		log: env.Logger.With(slog.String("node", env.NodeID))}
}

// Receive dispatches each message to its handler.
func (s *Supervisor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.onSetDevices(ctx, s.env.Devices)
	case *miner.StatusUpdate:
		s.onStatusUpdate(msg)
	case *SetDevices:
		s.onSetDevices(ctx, msg.Devices)
	case *pb.HelloAck:
		s.onSetDevices(ctx, msg.GetDevices())
	case *Dispatch:
		s.onDispatch(ctx, msg)
	case *ListRequest:
		ctx.Respond(s.list())
	case *StatusRequest:
		s.onStatusRequest(ctx, msg)
	case *actor.Terminated:
		s.onTerminated(msg)
	case *actor.Stopping:
		s.stopping = true
		for _, sl := range s.miners {
			if sl.counted {
				s.env.Metrics.drop(sl.status.State)
				sl.counted = false
			}
		}
	case *actor.Stopped:
		if s.env.ownsLimiter { // the miners have stopped: their queued operations end at once
			go s.env.Limiter.Wait()
		}
	case *actor.Restarting:
	default:
		s.log.Warn("site: unexpected message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

func (s *Supervisor) onSetDevices(ctx actor.Context, devices []*pb.Device) {
	want := make(map[string]*pb.Device, len(devices))
	for _, d := range devices {
		id := d.GetMinerId()
		if id == "" {
			s.log.Warn("site: device without miner id ignored", slog.String("address", d.GetAddress()))
			continue
		}
		if _, dup := want[id]; dup {
			s.log.Warn("site: device listed twice; keeping the first", slog.String("miner", id), slog.Any("error", ErrDuplicateDevice))
			continue
		}
		want[id] = d
	}
	added, removed, changed := 0, 0, 0
	for id, sl := range s.miners {
		d, keep := want[id]
		if keep && proto.Equal(d, sl.device) {
			continue
		}
		s.stopMiner(ctx, id, sl)
		if keep {
			changed++
		} else {
			removed++
		}
	}
	for id, d := range want {
		if _, ok := s.miners[id]; ok {
			continue
		}
		s.spawnMiner(ctx, d)
		added++
	}
	s.ids = s.ids[:0]
	for id := range s.miners {
		s.ids = append(s.ids, id)
	}
	slices.Sort(s.ids)
	if added+removed+changed > 0 {
		s.log.Info("site device set changed", slog.Int("miners", len(s.miners)), slog.Int("added", added-changed),
			slog.Int("removed", removed), slog.Int("changed", changed))
	}
}

func (s *Supervisor) spawnMiner(ctx actor.Context, d *pb.Device) {
	env := miner.Env{
		NodeID: s.env.NodeID, Device: d, Factory: s.env.Factory, Limiter: s.env.Limiter, Clock: s.env.Clock,
		Sink: s.env.Sink, Metrics: s.env.MinerMetrics, Logger: s.env.Logger, Guard: s.env.Guard, WriteLog: s.env.WriteLog,
	}
	pid := ctx.SpawnPrefix(actors.Props("miner", s.env.ActorMetrics, miner.Producer(s.cfg.Miner, env)), "miner-")
	sl := &slot{device: d, pid: pid, status: miner.Status{MinerID: d.GetMinerId(), Device: d}}
	s.miners[d.GetMinerId()] = sl
	s.byPID[pid.Id] = d.GetMinerId()
	s.env.Metrics.move(0, sl.status.State, false)
	sl.counted = true
}

func (s *Supervisor) stopMiner(ctx actor.Context, id string, sl *slot) {
	if sl.pid != nil {
		ctx.Stop(sl.pid)
		delete(s.byPID, sl.pid.Id)
	}
	if sl.counted {
		s.env.Metrics.drop(sl.status.State)
	}
	delete(s.miners, id)
}

func (s *Supervisor) onStatusUpdate(u *miner.StatusUpdate) {
	sl, ok := s.miners[u.Status.MinerID]
	if !ok || sl.device != u.Status.Device { // from a miner since removed or replaced
		return
	}
	if sl.status.State != u.Status.State || !sl.counted {
		s.env.Metrics.move(sl.status.State, u.Status.State, sl.counted)
		sl.counted = true
	}
	sl.status = u.Status
}

// onTerminated hears of a child that stopped: expected when the site stops or removed it, otherwise the
// supervisor gave up on it after too many failures.
func (s *Supervisor) onTerminated(t *actor.Terminated) {
	if s.stopping {
		return
	}
	id, ok := s.byPID[t.Who.Id]
	if !ok {
		return
	}
	delete(s.byPID, t.Who.Id)
	sl := s.miners[id]
	s.log.Error("miner actor stopped by its supervisor; its miner is no longer polled", slog.String("miner", id))
	sl.stopped = true
	sl.pid = nil
	sl.status.LastError = ErrMinerStopped.Error()
}

func (s *Supervisor) onDispatch(ctx actor.Context, d *Dispatch) {
	for _, id := range d.MinerIDs {
		sl, ok := s.miners[id]
		switch {
		case !ok:
			s.answer(ctx, d, id, pb.ResultCode_RESULT_CODE_UNKNOWN_MINER, fmt.Sprintf("%s: %v", id, ErrUnknownMiner))
		case sl.pid == nil:
			s.answer(ctx, d, id, pb.ResultCode_RESULT_CODE_FAILED, fmt.Sprintf("%s: %v", id, ErrMinerStopped))
		default:
			ctx.RequestWithCustomSender(sl.pid, &miner.Execute{CommandID: d.CommandID, IdempotencyKey: d.IdempotencyKey, Spec: d.Spec}, ctx.Sender())
		}
	}
}

func (s *Supervisor) answer(ctx actor.Context, d *Dispatch, id string, code pb.ResultCode, msg string) {
	if ctx.Sender() == nil {
		return
	}
	now := s.env.Clock.Now().UnixMilli()
	ctx.Send(ctx.Sender(), &miner.Result{CommandID: d.CommandID, Result: &pb.MinerResult{
		MinerId: id, Code: code, Message: msg, StartedAtUnixMs: now, FinishedAtUnixMs: now}})
}

func (s *Supervisor) list() *List {
	out := make([]miner.Status, 0, len(s.ids))
	for _, id := range s.ids {
		out = append(out, s.miners[id].status)
	}
	return &List{Miners: out}
}

func (s *Supervisor) onStatusRequest(ctx actor.Context, r *StatusRequest) {
	sl, ok := s.miners[r.MinerID]
	if !ok {
		ctx.Respond(fmt.Errorf("miner %q: %w", r.MinerID, ErrUnknownMiner))
		return
	}
	st := sl.status
	if st.Sample != nil {
		st.Sample = proto.Clone(st.Sample).(*pb.Telemetry)
	}
	if st.LastGood != nil {
		st.LastGood = proto.Clone(st.LastGood).(*pb.Telemetry)
	}
	ctx.Respond(st)
}
