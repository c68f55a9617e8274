package mixed

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/braiins"
	"github.com/hashfleet/hashfleet/miners/whatsminer"
)

func TestParseMixNewKinds(t *testing.T) {
	cfg, err := ParseMix("antminer=40,proto=20,cgminer=10,whatsminer=20,braiins=10", 100)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Antminer != 40 || cfg.Proto != 20 || cfg.CGMiner != 10 || cfg.Whatsminer != 20 || cfg.Braiins != 10 {
		t.Fatalf("counts %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestWhatsminerAndBraiinsInASite runs the two newer kinds after the others on consecutive loopback
// addresses, each answering its own protocol with the stock credentials the drivers default to, and their
// writes in the normalized write log.
func TestWhatsminerAndBraiinsInASite(t *testing.T) {
	clk := clock.NewFake(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	f, err := Start(Config{CGMiner: 1, Whatsminer: 2, Braiins: 2, Seed: 9, Clock: clk, PerMinerIP: true,
		BaseIP: "127.47.9.1", APIPort: 24028, WebPort: 28080})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	devs := f.Devices()
	if len(devs) != 5 || f.Count() != 5 {
		t.Fatalf("%d devices", len(devs))
	}
	first, last, ok := f.Range()
	if !ok || first != netip.MustParseAddr("127.47.9.1") || last != netip.MustParseAddr("127.47.9.5") {
		t.Fatalf("range %v-%v", first, last)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, d := range devs[1:] {
		var drv miners.Driver
		switch d.GetProtocol() {
		case pb.Protocol_PROTOCOL_WHATSMINER:
			drv, err = whatsminer.New(d, whatsminer.Config{Clock: clk})
		case pb.Protocol_PROTOCOL_BRAIINS:
			drv, err = braiins.New(d, braiins.Config{Clock: clk})
		default:
			t.Fatalf("device %d protocol %v", i+1, d.GetProtocol())
		}
		if err != nil {
			t.Fatal(err)
		}
		defer drv.Close()
		tel, err := drv.Poll(ctx)
		if err != nil || tel.GetState() != pb.MinerState_MINER_STATE_MINING {
			t.Fatalf("%s: poll %v %v", d.GetMinerId(), tel.GetState(), err)
		}
		if _, err := drv.Execute(ctx, &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING}); err != nil {
			t.Fatalf("%s: %v", d.GetMinerId(), err)
		}
		log, err := f.WriteLog(d.GetMinerId())
		if err != nil || len(log) != 1 || !log[0].Accepted || log[0].Remote == "" {
			t.Fatalf("%s: write log %+v %v", d.GetMinerId(), log, err)
		}
		if k, _ := f.Kind(d.GetMinerId()); k.String() != map[pb.Protocol]string{pb.Protocol_PROTOCOL_WHATSMINER: "whatsminer", pb.Protocol_PROTOCOL_BRAIINS: "braiins"}[d.GetProtocol()] {
			t.Fatalf("kind %v", k)
		}
	}
	if n := len(f.WriteLogs()); n != 4 {
		t.Fatalf("%d writes in the site log", n)
	}
}
