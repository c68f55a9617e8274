package miner

import (
	"fmt"
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
	"github.com/hashfleet/hashfleet/node/internal/drivertest"
)

// BenchmarkCommandWave is one bulk command to 5,000 MinerActors whose miners take 20 ms to answer a command
// (a real miner's controller, not the node's CPU: the drivers sleep), while the miners keep polling every 5s,
// for command bounds of 256, 512 and 1,024 connections (polls: 256). One op is one wave: the command to
// every miner until every result is back. It shows the bound on a site whose miners, not the node, are the
// slow side; the fanout suite's simulators share the node's cores, so there the wave is CPU-bound instead.
func BenchmarkCommandWave(b *testing.B) {
	const miners, answer = 5_000, 20 * time.Millisecond
	for _, maxCmd := range []int{256, 512, 1024} {
		b.Run(fmt.Sprintf("commands=%d", maxCmd), func(b *testing.B) {
			benchWave(b, miners, answer, NewLimiterFor(256, maxCmd, nil))
		})
	}
}

func benchWave(b *testing.B, n int, answer time.Duration, lim *Limiter) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	sys := actors.NewSystem(log)
	defer sys.Shutdown()
	var results atomic.Int64
	done := make(chan struct{}, 1)
	target := atomic.Int64{}
	sink := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*Result); ok && results.Add(1) == target.Load() {
			done <- struct{}{}
		}
	}))
	cfg := DefaultConfig()
	pids := make([]*actor.PID, n)
	for i := range pids {
		d := drivertest.New(fmt.Sprintf("m-%d", i))
		d.OnExecute(func(*pb.CommandSpec) (string, error) { time.Sleep(answer); return "ok", nil })
		env := Env{NodeID: "bench", Device: &pb.Device{MinerId: d.ID}, Limiter: lim, Clock: clock.Real(), Logger: log,
			Factory: func(*pb.Device) (miners.Driver, error) { return d, nil }}
		pids[i] = sys.Root.Spawn(actors.Props("miner", nil, Producer(cfg, env)))
	}
	b.ResetTimer()
	for i := range b.N {
		target.Store(int64(n * (i + 1)))
		id := fmt.Sprintf("wave-%d", i)
		for _, pid := range pids {
			sys.Root.RequestWithCustomSender(pid, &Execute{CommandID: id, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING}}, sink)
		}
		<-done
	}
	b.StopTimer()
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "results/s")
	for _, pid := range pids {
		_ = sys.Root.StopFuture(pid).Wait()
	}
	lim.Wait()
}
