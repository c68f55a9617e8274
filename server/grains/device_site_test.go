package grains

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
)

// TestDevicesGetTheirNodesSite: devices persisted without a site (paired before sites flowed to devices)
// get their node's enrollment site at start, persisted; a device registered later gets it before it is
// written; a device that names its own site keeps it; a node without a record, or whose record cannot be
// read, leaves its devices without a site and nothing fails.
func TestDevicesGetTheirNodesSite(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dev := func(id, node, site string) *pb.Device {
		return &pb.Device{MinerId: id, NodeId: node, Site: site, Address: "10.0.0.1:4028", Protocol: pb.Protocol_PROTOCOL_CGMINER}
	}
	if err := st.Apply(store.Batch{Devices: []*pb.Device{dev("m1", "n1", ""), dev("m2", "n1", "custom"), dev("m3", "n2", ""), dev("m4", "n3", "")}}); err != nil {
		t.Fatal(err)
	}
	records := map[string]*pb.NodeRecord{"n1": {NodeId: "n1", Site: "north"}}
	sys := actors.NewSystem(slog.New(slog.NewTextHandler(io.Discard, nil)))
	cfg := DefaultConfig()
	cfg.Store, cfg.Clock, cfg.Logger = st, clock.NewFake(t0), slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.NodeRecord = func(id string) (*pb.NodeRecord, error) {
		if id == "n3" {
			return nil, errors.New("disk on fire")
		}
		if r, ok := records[id]; ok {
			return r, nil
		}
		return nil, fmt.Errorf("node %s: %w", id, store.ErrNotFound)
	}
	f, err := New(cfg, sys)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		sys.Shutdown()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.RegisterDevices(ctx, []*pb.Device{dev("m5", "n1", ""), dev("m6", "n2", "")}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"m1": "north", "m2": "custom", "m3": "", "m4": "", "m5": "north", "m6": ""}
	devs, err := st.Devices()
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != len(want) {
		t.Fatalf("%d devices, want %d", len(devs), len(want))
	}
	for _, d := range devs {
		if d.GetSite() != want[d.GetMinerId()] {
			t.Errorf("stored %s at site %q, want %q", d.GetMinerId(), d.GetSite(), want[d.GetMinerId()])
		}
	}
	for id, site := range want {
		row, err := f.Miner(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if row.Device.GetSite() != site {
			t.Errorf("read model %s at site %q, want %q", id, row.Device.GetSite(), site)
		}
	}
}
