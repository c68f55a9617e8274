package curtail

import (
	"errors"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/miner"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// actorHarness runs a CurtailActor against a simulated fleet on a fake clock. The Commander applies commands
// to the fleet and answers the actor with *miner.Result, as site.Dispatch does.
type actorHarness struct {
	t   *testing.T
	sys *actor.ActorSystem
	clk *clock.Fake
	f   *fleet
	cfg Config
	reg *prometheus.Registry
	pid *actor.PID

	mu       sync.Mutex
	commands []Command
	persists int
	inactive atomic.Bool // Env.Active says no (a pair's standby)
}

func newActorHarness(t *testing.T, f *fleet, cfg Config) *actorHarness {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	h := &actorHarness{t: t, sys: actors.NewSystem(log), clk: clock.NewFake(t0), f: f, cfg: cfg, reg: prometheus.NewRegistry()}
	env := Env{
		NodeID: "n1",
		Commander: CommanderFunc(func(c Command, replyTo *actor.PID) {
			h.mu.Lock()
			h.commands = append(h.commands, c)
			h.mu.Unlock()
			for _, r := range h.f.apply(h.clk.Now(), c) {
				h.sys.Root.Send(replyTo, &miner.Result{CommandID: r.CommandID, Result: &pb.MinerResult{MinerId: r.MinerID, Code: r.Code, Message: r.Message}})
			}
		}),
		Snapshots: SnapshotsFunc(func() []MinerSnapshot { return h.f.snapshots(h.clk.Now()) }),
		Clock:     h.clk,
		Persist:   func(State) { h.mu.Lock(); h.persists++; h.mu.Unlock() },
		Active:    func() bool { return !h.inactive.Load() },
		Metrics:   NewMetrics(h.reg),
		Logger:    log,
	}
	h.pid = h.sys.Root.Spawn(Props(cfg, env))
	t.Cleanup(func() {
		_ = h.sys.Root.StopFuture(h.pid).Wait()
		h.sys.Shutdown()
	})
	h.status() // started: its first tick is armed
	return h
}

func (h *actorHarness) status() Status {
	h.t.Helper()
	s, err := actors.Request[Status](h.sys.Root, h.pid, &StatusRequest{}, 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *actorHarness) start(ev Event) *EventReply {
	h.t.Helper()
	r, err := actors.Request[*EventReply](h.sys.Root, h.pid, &StartEvent{Event: ev}, 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *actorHarness) stop(id string) *EventReply {
	h.t.Helper()
	r, err := actors.Request[*EventReply](h.sys.Root, h.pid, &StopEvent{EventID: id, Reason: "operator"}, 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// tick moves the clock one tick and waits for the actor to have handled it (the status request queues
// behind the tick the clock just sent).
func (h *actorHarness) tick() Status {
	h.clk.Advance(h.cfg.TickInterval)
	return h.status()
}

func (h *actorHarness) until(d time.Duration, cond func(Status) bool) Status {
	h.t.Helper()
	end := h.clk.Now().Add(d)
	s := h.status()
	for !cond(s) {
		if !h.clk.Now().Before(end) {
			h.t.Fatalf("not reached within %s: %+v", d, s)
		}
		s = h.tick()
	}
	return s
}

func TestCurtailActor1000MinerSite(t *testing.T) {
	f := randomFleet(42, 1000)
	cfg := testConfig()
	h := newActorHarness(t, f, cfg)
	ev := Event{ID: "grid-7", Target: LimitKW(2200), Source: "cloud:user:alice"}
	plan := Plan(cfg, ev, f.snapshots(h.clk.Now()), h.clk.Now())
	deadline := h.clk.Now().Add(plan.RampTime() + cfg.SettleTime + 2*cfg.TickInterval)

	if r := h.start(ev); r.Err != nil || r.Status.Phase != PhaseCurtailing || r.Status.Steps != 1 {
		t.Fatalf("start: %+v", r)
	}
	s := h.until(30*time.Minute, func(s Status) bool { return s.Achieved && s.MinersPending == 0 })
	if s.AchievedAt.After(deadline) {
		t.Fatalf("achieved at %s, after the ramp deadline %s (ramp %s)", s.AchievedAt, deadline, plan.RampTime())
	}
	tol := cfg.siteTolerance(2200e3)
	if got := f.totalW(h.clk.Now()); got > 2200e3+tol || got < 2200e3-tol-3600 {
		t.Fatalf("site draws %.1f kW for 2200 ± %.1f", got/1000, tol/1000)
	}
	if s.MinersCurtailed != len(f.curtailedSet()) || len(s.Stragglers) != 0 || s.TargetKW != 2200 {
		t.Fatalf("status %+v, fleet %d curtailed", s, len(f.curtailedSet()))
	}
	// Least efficient first.
	cur := f.curtailedSet()
	minSlept, maxRunning := math.Inf(1), 0.0
	for id, m := range f.miners {
		if cur[id] && m.mode == "sleep" {
			minSlept = math.Min(minSlept, m.jth)
		} else if !cur[id] {
			maxRunning = math.Max(maxRunning, m.jth)
		}
	}
	if minSlept < maxRunning {
		t.Fatalf("slept a %.2f J/TH miner while a %.2f J/TH one runs", minSlept, maxRunning)
	}
	// Metrics.
	if v := promtest.ToFloat64(NewMetrics(h.reg).achieved); v != 1 {
		t.Fatalf("achieved gauge %v", v)
	}
	if v := promtest.ToFloat64(NewMetrics(h.reg).miners.WithLabelValues("curtailed")); int(v) != s.MinersCurtailed {
		t.Fatalf("curtailed gauge %v, status %d", v, s.MinersCurtailed)
	}
	if v := promtest.ToFloat64(NewMetrics(h.reg).target); v != 2200e3 {
		t.Fatalf("target gauge %v", v)
	}

	// A curtailed miner reboots mid-event and comes back uncurtailed: it is curtailed again.
	var victim string
	for id := range cur {
		if f.miner(id).mode == "sleep" {
			victim = id
			break
		}
	}
	f.reboot(victim, h.clk.Now(), 90*time.Second)
	h.until(time.Minute, func(s Status) bool { return s.MinersWaiting == 1 })
	h.until(10*time.Minute, func(s Status) bool {
		return s.MinersWaiting == 0 && s.MinersPending == 0 && f.miner(victim).mode == "sleep" && f.curtailCommands(victim) == 2
	})
	if got := len(f.curtailedSet()); got != len(cur) {
		t.Fatalf("%d curtailed after the reboot, %d before", got, len(cur))
	}

	// Uncurtail ramps back.
	if r := h.stop("grid-7"); r.Err != nil || r.Status.Phase != PhaseReleasing {
		t.Fatalf("stop: %+v", r)
	}
	s = h.until(time.Hour, func(s Status) bool { return s.Phase == PhaseIdle })
	if s.Last == nil || s.Last.Result != "completed" || s.Last.Released != len(cur) || len(f.curtailedSet()) != 0 {
		t.Fatalf("after release: %+v, %d curtailed", s.Last, len(f.curtailedSet()))
	}
	if v := promtest.ToFloat64(NewMetrics(h.reg).events.WithLabelValues("completed")); v != 1 {
		t.Fatalf("completed events %v", v)
	}
	// Commands carry the event as their actor, and a fresh idempotency key per step.
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.persists == 0 {
		t.Fatal("state never persisted")
	}
	for _, c := range h.commands {
		if c.Actor != "curtail:grid-7" || c.IdempotencyKey != c.CommandID || len(c.MinerIDs) == 0 {
			t.Fatalf("command %+v", c)
		}
	}
}

func TestCurtailActorRefusals(t *testing.T) {
	h := newActorHarness(t, randomFleet(1, 3), testConfig())
	if r := h.start(Event{ID: "", Target: Full()}); !errors.Is(r.Err, ErrInvalidEvent) {
		t.Fatalf("%+v", r)
	}
	if r := h.stop("nope"); !errors.Is(r.Err, ErrUnknownEvent) {
		t.Fatalf("%+v", r)
	}
	if r := h.start(Event{ID: "later", Target: Full(), Start: h.clk.Now().Add(time.Hour)}); r.Err != nil || r.Status.Phase != PhaseScheduled {
		t.Fatalf("%+v", r)
	}
	if r := h.stop("later"); r.Err != nil || r.Status.Phase != PhaseIdle || r.Status.Last.Result != "cancelled" {
		t.Fatalf("%+v", r)
	}
}
