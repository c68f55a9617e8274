package node_test

import (
	"runtime/debug"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/internal/drivertest"
)

// MemoryLimit is the runtime's soft limit while the node runs, and the former limit is back after Stop.
func TestMemoryLimitWhileRunning(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	fleet, devs := drivertest.NewFleet(2)
	cfg := node.DefaultConfig()
	cfg.NodeID, cfg.Devices, cfg.DriverFactory, cfg.Logger = "mem", devs, fleet.Factory, quietLogger()
	cfg.Clock = clock.NewFake(time.Unix(0, 0))
	cfg.MemoryLimit = 3 << 30
	n := start(t, cfg)
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Errorf("memory limit while running = %d, want %d", got, 3<<30)
	}
	stop(t, n)
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("memory limit after stop = %d, want the former %d", got, before)
	}
}
