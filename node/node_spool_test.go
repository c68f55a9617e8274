package node_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/gate"
	"github.com/hashfleet/hashfleet/node/internal/drivertest"
	"github.com/hashfleet/hashfleet/node/internal/gatewaytest"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/spool"
	"github.com/prometheus/client_golang/prometheus"
)

// With a data directory and a cloud link the outbox is the spool in <DataDir>/spool: while the cloud refuses
// the node, telemetry piles up there, survives a restart, and drains once the cloud is back; the live store
// and spool are readable through InspectStore meanwhile.
func TestNodeSpoolsWhileTheCloudIsAway(t *testing.T) {
	gw, err := gatewaytest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Stop()
	fleet, devs := drivertest.NewFleet(5)
	gw.SetDevices(devs)
	gw.Refuse(true)
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	dir := t.TempDir()

	cfg := node.DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.Clock, cfg.Logger = "n1", dir, clk, quietLogger()
	cfg.Devices, cfg.AcceptCloudOwnership = devs, false
	cfg.DriverFactory, cfg.Dial, cfg.Verifier = fleet.Factory, gw.Dial, gate.InProcessVerifier{}
	cfg.Registerer = prometheus.NewRegistry()
	cfg.Spool.MaxBytes = 8 << 20
	n := start(t, cfg)

	if _, err := os.Stat(filepath.Join(dir, spool.DirName, "MANIFEST")); err != nil {
		t.Fatalf("no spool in the data directory: %v", err)
	}
	poll := func() {
		clk.Advance(cfg.PollInterval + cfg.PollJitter)
		time.Sleep(10 * time.Millisecond)
		clk.Advance(cfg.BatchInterval)
	}
	testutil.Eventually(t, "samples spooled on disk", func() bool {
		poll()
		sp, ok := n.Spool()
		return ok && sp.Stats.Telemetry.Items >= 10 && sp.Stats.Bytes > 0 && !sp.Stats.Oldest.IsZero()
	})
	sp, _ := n.Spool()
	if sp.Dir != filepath.Join(dir, spool.DirName) || sp.Stats.MaxBytes != 8<<20 || sp.Progress.Done() {
		t.Fatalf("spool status %+v", sp)
	}
	dirs := n.StoreDirs()
	if dirs[node.StoreNode] != dir || dirs[node.StoreSpool] != sp.Dir {
		t.Fatalf("store dirs %v", dirs)
	}
	err = n.InspectStore(node.StoreSpool, nil, func(in *inspect.Inspector) error {
		s, err := in.Summary()
		if err == nil && (s.SpoolItems == nil || *s.SpoolItems < 10) {
			t.Errorf("live spool summary: %+v", s)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.InspectStore(node.StoreNode, nil, func(in *inspect.Inspector) error {
		_, err := in.Summary()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := n.InspectStore("nope", nil, func(*inspect.Inspector) error { return nil }); !errors.Is(err, node.ErrNoSuchStore) {
		t.Fatalf("unknown store: %v", err)
	}
	held := sp.Stats.Telemetry.Items
	stop(t, n)

	// Restarted, the backlog is still there; the cloud comes back and it drains in order.
	n = start(t, cfg)
	sp, ok := n.Spool()
	if !ok || sp.Stats.Telemetry.Items < held {
		t.Fatalf("after a restart the spool holds %d samples, had %d", sp.Stats.Telemetry.Items, held)
	}
	gw.Refuse(false)
	testutil.Eventually(t, "the backlog delivered", func() bool {
		clk.Advance(time.Second)
		sp, _ := n.Spool()
		return sp.Stats.Telemetry.Items == 0 && sp.Progress.Done()
	})
	samples := 0
	for _, b := range gw.Telemetry() {
		samples += len(b.GetSamples())
	}
	if samples < held {
		t.Fatalf("the cloud got %d samples, the spool held %d", samples, held)
	}
	stop(t, n)
	if err := n.InspectStore(node.StoreSpool, nil, func(*inspect.Inspector) error { return nil }); !errors.Is(err, node.ErrNotStarted) {
		t.Fatalf("inspect after stop: %v", err)
	}
}

// Without a cloud link (or without a data directory) the outbox stays in memory: nothing would ever leave a
// spool.
func TestNodeWithoutCloudLinkHasNoSpool(t *testing.T) {
	fleet, devs := drivertest.NewFleet(2)
	cfg := node.DefaultConfig()
	cfg.NodeID, cfg.Devices, cfg.DriverFactory, cfg.Logger = "solo", devs, fleet.Factory, quietLogger()
	cfg.Clock, cfg.DataDir = clock.NewFake(time.Unix(0, 0)), t.TempDir()
	n := start(t, cfg)
	defer stop(t, n)
	if _, ok := n.Spool(); ok {
		t.Fatal("a node without a cloud link opened a spool")
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, spool.DirName)); err == nil {
		t.Fatal("spool directory made without a cloud link")
	}
}
