package node_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim/mixed"
	"github.com/hashfleet/hashfleet/node"
)

// TestDriversDialFromSourceIP: with Drivers.SourceIP every protocol's driver dials its miner from that
// address, so the simulated miners' own write logs name it (the chaos simulations tell nodes apart by it).
func TestDriversDialFromSourceIP(t *testing.T) {
	f, err := mixed.Start(mixed.Config{Antminer: 1, CGMiner: 1, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const ip = "127.0.0.23"
	d := &node.Drivers{SourceIP: ip}
	spec := &pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS, Pools: []*pb.Pool{{Url: "stratum+tcp://p.example:3333", User: "u"}}}
	for _, dev := range f.Devices() {
		drv, err := d.New(dev)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := drv.Execute(ctx, spec); err != nil {
			t.Fatalf("%s: %v", dev.GetMinerId(), err)
		}
		cancel()
		_ = drv.Close()
		ws, err := f.WriteLog(dev.GetMinerId())
		if err != nil || len(ws) == 0 {
			t.Fatalf("%s: no writes logged (%v)", dev.GetMinerId(), err)
		}
		for _, w := range ws {
			if h, _, _ := net.SplitHostPort(w.Remote); h != ip {
				t.Errorf("%s: write %s from %s, want %s", dev.GetMinerId(), w.Op, w.Remote, ip)
			}
		}
	}
	if _, err := (&node.Drivers{SourceIP: "not-an-ip"}).New(f.Devices()[0]); err != nil {
		t.Fatalf("an unparsable source address must fall back to any: %v", err)
	}
}
