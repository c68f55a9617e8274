package site

import (
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/node/internal/drivertest"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
)

// Without a Limiter the site makes its own, and its workers end when the site stops.
func TestSiteOwnLimiterWorkersEndAtStop(t *testing.T) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	fleet, devs := drivertest.NewFleet(20)
	sys := actors.NewSystem(log)
	defer sys.Shutdown()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	cfg := DefaultConfig()
	pid := sys.Root.Spawn(Props(cfg, Env{NodeID: "n1", Devices: devs, Factory: fleet.Factory, Clock: clk,
		Metrics: NewMetrics(prometheus.NewRegistry()), Logger: log}))
	testutil.Eventually(t, "first ticks armed", func() bool { return clk.Pending() >= len(devs) })
	clk.Advance(cfg.Miner.PollInterval + cfg.Miner.PollJitter)
	testutil.WaitFor(t, 10*time.Second, "every miner polled", func() bool {
		l, err := actors.Request[*List](sys.Root, pid, &ListRequest{}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range l.Miners {
			if s.Polls == 0 {
				return false
			}
		}
		return len(l.Miners) == len(devs)
	})
	if err := sys.Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	// goleak (TestMain) finds any worker left; wait for them here so the failure names this test.
	testutil.Eventually(t, "limiter workers gone", func() bool {
		return goroutinesIn("miner.(*Limiter).worker") == 0
	})
}

func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), fn)
}
