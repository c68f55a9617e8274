package miner

import (
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/node/internal/drivertest"
)

// BenchmarkPollPath measures the whole poll path of one MinerActor against one simulated CGMiner over
// loopback TCP, with the poll interval at 0 (polls back to back): tick → Limiter → goroutine → cgminer
// driver (connect, summary+stats+pools, parse) → pollDone → state machine → sample to the sink → next tick.
// One op is one poll. allocs/op counts the whole process, so it includes the simulator's side of the socket.
func BenchmarkPollPath(b *testing.B) {
	fleet, err := sim.Start(sim.Config{Count: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer fleet.Close()
	benchPoll(b, fleet.Devices()[0], func(d *pb.Device) (miners.Driver, error) { return cgminer.New(d, cgminer.Config{}), nil })
}

// BenchmarkPollPathFakeDriver is BenchmarkPollPath with the in-memory driver: the node's own cost per poll
// (actor messages, Limiter goroutine, state machine, sample hand-off), without TCP, parsing or the simulator.
func BenchmarkPollPathFakeDriver(b *testing.B) {
	fake := drivertest.New("fake-0")
	benchPoll(b, &pb.Device{MinerId: "fake-0", Protocol: pb.Protocol_PROTOCOL_CGMINER},
		func(*pb.Device) (miners.Driver, error) { return fake, nil })
}

func benchPoll(b *testing.B, dev *pb.Device, factory DriverFactory) {

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	sys := actors.NewSystem(log)
	defer sys.Shutdown()

	var polls, errs atomic.Int64
	target := atomic.Int64{}
	target.Store(1 << 62)
	done := make(chan struct{}, 1)
	sink := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if s, ok := c.Message().(*pb.Telemetry); ok {
			if s.GetPollError() != "" {
				errs.Add(1)
			}
			if polls.Add(1) == target.Load() {
				done <- struct{}{}
			}
		}
	}))

	cfg := DefaultConfig()
	cfg.PollInterval, cfg.PollJitter = 0, 0
	lim := NewLimiter(256, nil)
	env := Env{NodeID: "bench", Device: dev, Limiter: lim, Clock: clock.Real(), Sink: sink, Logger: log, Factory: factory}

	// Warm up: the first polls open the path (pools, parser arena, interned strings).
	target.Store(100)
	pid := sys.Root.Spawn(actors.Props("miner", nil, Producer(cfg, env)))
	<-done

	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	base := polls.Load()
	target.Store(base + int64(b.N))
	<-done
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	b.StopTimer()

	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "polls/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	if e := errs.Load(); e > 0 {
		b.Fatalf("%d polls failed", e)
	}
	_ = sys.Root.StopFuture(pid).Wait()
	lim.Wait()
}
