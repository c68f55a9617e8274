package procmetrics

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func registry(t *testing.T, spool bool) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	miners := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hashfleet_node_miners", Help: "h"}, []string{"state"})
	miners.WithLabelValues("mining").Set(3)
	miners.WithLabelValues("unreachable").Set(1)
	miners.WithLabelValues("rebooting").Set(0)
	outbox := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hashfleet_node_outbox_items", Help: "h"}, []string{"kind"})
	outbox.WithLabelValues("telemetry").Set(40)
	outbox.WithLabelValues("events").Set(2)
	reg.MustRegister(miners, outbox)
	if spool {
		items := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hashfleet_node_spool_items", Help: "h"}, []string{"kind"})
		items.WithLabelValues("telemetry").Set(500)
		items.WithLabelValues("events").Set(7)
		bytes := prometheus.NewGauge(prometheus.GaugeOpts{Name: "hashfleet_node_spool_bytes", Help: "h"})
		bytes.Set(1 << 20)
		reg.MustRegister(items, bytes)
	}
	return reg
}

func TestSnapshot(t *testing.T) {
	runtime.GC() // at least one pause to measure
	now := time.Now()
	m := Snapshot(registry(t, true), now, "1.2.3")
	if m.GetAtUnixMs() != now.UnixMilli() || m.GetSoftwareVersion() != "1.2.3" || m.GetUptimeSeconds() <= 0 {
		t.Errorf("stamp: %v", m)
	}
	if m.GetGoroutines() == 0 || m.GetGcPauseP99Seconds() <= 0 || m.GetGcPauseP99Seconds() > 1 {
		t.Errorf("runtime figures: goroutines %d, gc p99 %v", m.GetGoroutines(), m.GetGcPauseP99Seconds())
	}
	// (CPU seconds can still read 0 this early: the kernel counts in clock ticks.)
	if runtime.GOOS == "linux" && (m.GetResidentMemoryBytes() == 0 || m.GetOpenFds() == 0 || m.GetCpuSeconds() < 0) {
		t.Errorf("process figures on linux: %v", m)
	}
	if len(m.GetMinersByState()) != 2 || m.GetMinersByState()["mining"] != 3 || m.GetMinersByState()["unreachable"] != 1 {
		t.Errorf("miners by state %v (states with no miner are left out)", m.GetMinersByState())
	}
	if m.GetSpoolItems() != 507 || m.GetSpoolBytes() != 1<<20 {
		t.Errorf("spool %d items %d bytes", m.GetSpoolItems(), m.GetSpoolBytes())
	}
	// Without a spool the in-memory outbox is what waits for the cloud.
	if m := Snapshot(registry(t, false), now, ""); m.GetSpoolItems() != 42 || m.GetSpoolBytes() != 0 {
		t.Errorf("outbox: %v", m)
	}
}

func TestForwarderSendsEveryInterval(t *testing.T) {
	sys := actors.NewSystem(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer sys.Shutdown()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	got := make(chan *pb.Event, 16)
	sink := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if e, ok := c.Message().(*pb.Event); ok {
			got <- e
		}
	}))
	pid := sys.Root.Spawn(Props(Config{NodeID: "n1", Interval: 10 * time.Second, Version: "v"},
		Env{Gatherer: registry(t, false), Sink: sink, Clock: clk}, nil))
	defer func() { _ = sys.Root.StopFuture(pid).Wait() }()
	for i := range 2 {
		waitTimers(t, clk)
		clk.Advance(10 * time.Second)
		select {
		case e := <-got:
			if e.GetKind() != pb.EventKind_EVENT_KIND_NODE_METRICS || e.GetNodeMetrics().GetAtUnixMs() != clk.Now().UnixMilli() ||
				e.GetEventId() == "" || e.GetNodeMetrics().GetSoftwareVersion() != "v" {
				t.Fatalf("event %d: %v", i, e)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event %d", i)
		}
	}
	select {
	case e := <-got:
		t.Fatalf("an event before the interval passed: %v", e)
	case <-time.After(50 * time.Millisecond):
	}
}

// waitTimers waits until the forwarder armed its next tick on the fake clock.
func waitTimers(t *testing.T, clk *clock.Fake) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for clk.Pending() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the forwarder armed no timer")
		}
		time.Sleep(time.Millisecond)
	}
}
