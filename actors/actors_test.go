package actors

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBackoffDoublesAndStops(t *testing.T) {
	c := SupervisorConfig{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, MaxRestarts: 5, Window: time.Minute}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second}
	for i, w := range want {
		ok, d := c.Backoff(i + 1)
		if !ok || d != w {
			t.Fatalf("failure %d: restart=%v delay=%s, want true %s", i+1, ok, d, w)
		}
	}
	if ok, _ := c.Backoff(6); ok {
		t.Fatal("sixth failure in the window must stop the child")
	}
}

func TestSupervisorConfigValidate(t *testing.T) {
	if err := DefaultSupervisorConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := DefaultSupervisorConfig()
	bad.MaxRestarts = 0
	if err := bad.Validate(); err == nil {
		t.Fatal("MaxRestarts 0 accepted")
	}
	bad = DefaultSupervisorConfig()
	bad.MaxBackoff = time.Millisecond
	if err := bad.Validate(); err == nil {
		t.Fatal("MaxBackoff below InitialBackoff accepted")
	}
}

type panicky struct{ starts *atomic.Int32 }

type boom struct{}
type ping struct{}

func (p *panicky) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		p.starts.Add(1)
	case boom:
		panic("boom")
	case ping:
		ctx.Respond("pong")
	}
}

type parent struct {
	strategy actor.SupervisorStrategy
	child    *actor.PID
	starts   *atomic.Int32
	m        *Metrics
}

func (p *parent) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		p.child = ctx.Spawn(Props("test-child", p.m, func() actor.Actor { return &panicky{starts: p.starts} }))
	case string:
		ctx.Respond(p.child)
	}
}

func TestSupervisorRestartsAfterBackoffOnClock(t *testing.T) {
	sys := NewSystem(nil)
	defer sys.Shutdown()
	fake := clock.NewFake(time.Unix(0, 0))
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	cfg := SupervisorConfig{InitialBackoff: time.Second, MaxBackoff: 4 * time.Second, MaxRestarts: 2, Window: time.Hour}
	starts := &atomic.Int32{}
	par := &parent{starts: starts, m: m}
	pid := sys.Root.Spawn(Props("test-parent", m, func() actor.Actor { return par },
		actor.WithSupervisor(NewSupervisor(cfg, fake, m, "test-child"))))
	child, err := Request[*actor.PID](sys.Root, pid, "child?", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return starts.Load() == 1 })

	sys.Root.Send(child, boom{})
	waitFor(t, func() bool { return fake.Pending() == 1 })
	if starts.Load() != 1 {
		t.Fatal("restarted before the backoff elapsed")
	}
	fake.Advance(time.Second)
	waitFor(t, func() bool { return starts.Load() == 2 })
	if got, err := Request[string](sys.Root, child, ping{}, time.Second); err != nil || got != "pong" {
		t.Fatalf("restarted child answered %q, %v", got, err)
	}

	sys.Root.Send(child, boom{})
	waitFor(t, func() bool { return fake.Pending() == 1 })
	fake.Advance(time.Second) // second failure waits 2s
	time.Sleep(20 * time.Millisecond)
	if starts.Load() != 2 {
		t.Fatal("second restart ignored the doubled backoff")
	}
	fake.Advance(time.Second)
	waitFor(t, func() bool { return starts.Load() == 3 })

	sys.Root.Send(child, boom{}) // third failure in the window: stopped
	waitFor(t, func() bool {
		return testutil.ToFloat64(m.restarts.WithLabelValues("test-child", "stopped")) == 1
	})
	_, err = Request[string](sys.Root, child, ping{}, 200*time.Millisecond)
	if !errors.Is(err, ErrDeadActor) && !errors.Is(err, ErrTimeout) {
		t.Fatalf("stopped child still answers: %v", err)
	}
	if got := testutil.ToFloat64(m.restarts.WithLabelValues("test-child", "restarted")); got != 2 {
		t.Fatalf("restarts counted %v, want 2", got)
	}
}

func TestRequestErrors(t *testing.T) {
	sys := NewSystem(nil)
	defer sys.Shutdown()
	silent := sys.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	if _, err := Request[string](sys.Root, silent, ping{}, 50*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("silent actor: %v, want ErrTimeout", err)
	}
	echo := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(ping); ok {
			c.Respond(42)
		}
	}))
	if _, err := Request[string](sys.Root, echo, ping{}, time.Second); !errors.Is(err, ErrUnexpectedReply) {
		t.Fatalf("wrong reply type: %v, want ErrUnexpectedReply", err)
	}
	if _, err := Request[string](sys.Root, nil, ping{}, time.Second); !errors.Is(err, ErrDeadActor) {
		t.Fatalf("nil pid: %v, want ErrDeadActor", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 3s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
