package miner

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/node/internal/drivertest"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/writelog"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// recorder is an actor that keeps what miners send: samples, events, status updates, command results.
type recorder struct {
	mu      sync.Mutex
	samples map[string][]*pb.Telemetry
	events  []*pb.Event
	status  map[string]Status
	results []*Result
}

func newRecorder() *recorder {
	return &recorder{samples: map[string][]*pb.Telemetry{}, status: map[string]Status{}}
}

func (r *recorder) Receive(ctx actor.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch m := ctx.Message().(type) {
	case *pb.Telemetry:
		r.samples[m.GetMinerId()] = append(r.samples[m.GetMinerId()], m)
	case *pb.Event:
		r.events = append(r.events, m)
	case *StatusUpdate:
		r.status[m.Status.MinerID] = m.Status
	case *Result:
		r.results = append(r.results, m)
	}
}

func (r *recorder) sampleCount(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.samples[id])
}

func (r *recorder) lastSample(id string) *pb.Telemetry {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.samples[id]
	if len(s) == 0 {
		return nil
	}
	return s[len(s)-1]
}

func (r *recorder) state(id string) pb.MinerState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status[id].State
}

func (r *recorder) stateChanges(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.GetMinerId() == id && e.GetKind() == pb.EventKind_EVENT_KIND_STATE_CHANGE {
			out = append(out, e.GetFromState().String()+">"+e.GetToState().String())
		}
	}
	return out
}

func (r *recorder) resultsFor(cmd string) []*Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Result
	for _, x := range r.results {
		if x.CommandID == cmd {
			out = append(out, x)
		}
	}
	return out
}

// parent supervises miners like the SiteSupervisor does and forwards their status updates to the recorder.
type parent struct {
	h *harness
}

type spawnMiner struct{ dev *pb.Device }

func (p *parent) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case spawnMiner:
		env := Env{NodeID: "n1", Device: m.dev, Factory: p.h.factory, Limiter: p.h.limiter, Clock: p.h.clock,
			Sink: p.h.sinkPID, Metrics: p.h.metrics, Logger: p.h.log, Guard: p.h.guard, WriteLog: p.h.writes}
		ctx.Respond(ctx.Spawn(actors.Props("miner", p.h.actorMetrics, Producer(p.h.cfg, env))))
	case *StatusUpdate:
		ctx.Send(p.h.sinkPID, m)
	}
}

// harness runs miners against fake drivers on a fake clock.
type harness struct {
	t            *testing.T
	sys          *actor.ActorSystem
	clk          *clock.Fake // nil with a real clock
	clock        clock.Clock
	fleet        *drivertest.Fleet
	drivers      DriverFactory
	devices      []*pb.Device
	rec          *recorder
	sinkPID      *actor.PID
	parentPID    *actor.PID
	limiter      *Limiter
	cfg          Config
	metrics      *Metrics
	actorMetrics *actors.Metrics
	reg          *prometheus.Registry
	log          *slog.Logger
	pids         map[string]*actor.PID
	guard        WriteGuard   // set before startHarness's spawns (guardHarness)
	writes       writelog.Log // idem

	mu        sync.Mutex
	factories map[string]int // driver factory calls per miner: 1 + restarts
}

func newHarness(t *testing.T, n int, cfg Config) *harness {
	t.Helper()
	fleet, devs := drivertest.NewFleet(n)
	fake := clock.NewFake(time.Unix(1_700_000_000, 0))
	h := startHarness(t, cfg, devs, fleet.Factory, fake)
	h.fleet = fleet
	return h
}

// startHarness spawns one miner per device under a supervising parent. With a fake clock it waits until every
// miner armed its first tick.
func startHarness(t *testing.T, cfg Config, devs []*pb.Device, drivers DriverFactory, clk clock.Clock, opts ...func(*harness)) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	h := &harness{t: t, sys: actors.NewSystem(log), clock: clk, drivers: drivers, fleet: &drivertest.Fleet{},
		devices: devs, rec: newRecorder(), cfg: cfg, metrics: NewMetrics(reg), actorMetrics: actors.NewMetrics(reg),
		reg: reg, log: log, pids: map[string]*actor.PID{}, factories: map[string]int{}}
	if f, ok := clk.(*clock.Fake); ok {
		h.clk = f
	}
	for _, o := range opts {
		o(h)
	}
	if h.limiter == nil { // an option may set its own
		h.limiter = NewLimiter(16, h.metrics.InFlightGauge())
	}
	h.sinkPID = h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return h.rec }))
	sup := actors.SupervisorConfig{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, MaxRestarts: 5, Window: time.Minute}
	h.parentPID = h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &parent{h: h} },
		actor.WithSupervisor(actors.NewSupervisor(sup, clk, h.actorMetrics, "miner"))))
	for _, d := range devs {
		pid, err := actors.Request[*actor.PID](h.sys.Root, h.parentPID, spawnMiner{dev: d}, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		h.pids[d.GetMinerId()] = pid
	}
	if h.clk != nil {
		// Every miner armed its first tick: advancing the clock from here reaches all of them.
		testutil.Eventually(t, "first ticks armed", func() bool { return h.clk.Pending() >= len(devs) })
	}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if err := h.sys.Root.StopFuture(h.parentPID).Wait(); err != nil {
		h.t.Errorf("stop parent: %v", err)
	}
	h.limiter.Wait()
	_ = h.sys.Root.StopFuture(h.sinkPID).Wait()
	h.sys.Shutdown()
	if v := h.fleet.Violations(); v != 0 {
		h.t.Errorf("driver contract broken %d times (overlapping calls on one driver)", v)
	}
}

// advance moves the fake clock by d in steps of step, letting the actors react between steps.
func (h *harness) advance(d, step time.Duration) {
	for moved := time.Duration(0); moved < d; moved += step {
		h.clk.Advance(step)
		h.settle()
	}
}

// settle waits until no driver operation is in flight and the recorder stopped receiving: the actors have
// reacted to the last clock move.
func (h *harness) settle() {
	h.t.Helper()
	progress := func() int {
		h.rec.mu.Lock()
		defer h.rec.mu.Unlock()
		n := len(h.rec.events) + len(h.rec.results)
		for _, s := range h.rec.samples {
			n += len(s)
		}
		return n
	}
	testutil.WaitFor(h.t, 5*time.Second, "actors to settle", func() bool {
		before := progress()
		time.Sleep(3 * time.Millisecond)
		return h.limiter.InFlight() == 0 && progress() == before
	})
}

// pollAll advances one full interval (plus jitter) at a time, k times, waiting until every listed miner
// produced a new sample each time.
func (h *harness) pollRounds(k int, ids ...string) {
	h.t.Helper()
	for range k {
		before := map[string]int{}
		for _, id := range ids {
			before[id] = h.rec.sampleCount(id)
		}
		h.clk.Advance(h.cfg.PollInterval + h.cfg.PollJitter)
		testutil.Eventually(h.t, fmt.Sprintf("a poll round of %d miners", len(ids)), func() bool {
			for _, id := range ids {
				if h.rec.sampleCount(id) <= before[id] {
					return false
				}
			}
			return true
		})
	}
}

func (h *harness) ids() []string {
	out := make([]string, 0, len(h.devices))
	for _, d := range h.devices {
		out = append(out, d.GetMinerId())
	}
	return out
}

func (h *harness) status(id string) Status {
	h.t.Helper()
	s, err := actors.Request[Status](h.sys.Root, h.pids[id], &StatusRequest{}, time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) execute(id, cmdID, key string, action pb.Action) {
	h.sys.Root.RequestWithCustomSender(h.pids[id], &Execute{CommandID: cmdID, IdempotencyKey: key,
		Spec: &pb.CommandSpec{Action: action, Params: map[string]string{"key": cmdID}}}, h.sinkPID)
}

func (h *harness) factory(dev *pb.Device) (miners.Driver, error) {
	h.mu.Lock()
	h.factories[dev.GetMinerId()]++
	h.mu.Unlock()
	return h.drivers(dev)
}

// incarnations is how many times the miner's actor started (1 + restarts).
func (h *harness) incarnations(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.factories[id]
}

// metric returns the value of the series name{labels} in the harness registry (0 when absent).
func (h *harness) metric(name string, labels map[string]string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}
