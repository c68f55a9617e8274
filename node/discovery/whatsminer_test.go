package discovery

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	wmsim "github.com/hashfleet/hashfleet/miners/sim/whatsminer"
)

// TestDiscoverWhatsminers: btminer's API v2 on the CGMiner port is told apart from a CGMiner API by its
// reply shape and identified through its clear-text reads (model, serial, MAC, firmware); a scan that does
// not ask for WHATSMINER reports it as such instead of taking it for a CGMiner.
func TestDiscoverWhatsminers(t *testing.T) {
	f, err := wmsim.Start(wmsim.Config{Count: 2, Seed: 5, Clock: clock.NewFake(time.Now()), PerMinerIP: true,
		BaseIP: "127.42.8.1", PortV2: testAPIPort, PortV3: 34433, StatePort: 44028})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := NewScanner(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Scan(context.Background(), Request{ScanID: "wm", Targets: []string{"127.42.8.0-127.42.8.3"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Found) != 2 || len(res.Errors) != 0 {
		t.Fatalf("found %v, errors %v", res.Devices(), res.Errors)
	}
	got := byAddress(res.Devices())
	for i, w := range f.Devices(2) {
		snap := f.Miners()[i].Snapshot()
		d := got[netip.MustParseAddrPort(w.GetAddress()).Addr()]
		if d == nil || d.GetProtocol() != pb.Protocol_PROTOCOL_WHATSMINER || d.GetAddress() != w.GetAddress() ||
			d.GetModel() != w.GetModel() || d.GetSerial() != snap.API.Serial || d.GetMac() != normalizeMAC(snap.API.MAC) ||
			d.GetMinerId() != "m-"+strings.ReplaceAll(normalizeMAC(snap.API.MAC), ":", "") {
			t.Fatalf("%s: got %v, want %v (serial %s, mac %s)", w.GetMinerId(), d, w, snap.API.Serial, snap.API.MAC)
		}
	}
	if res.Found[0].Firmware == "" {
		t.Fatal("no firmware")
	}

	res, err = s.Scan(context.Background(), Request{ScanID: "cg", Targets: []string{"127.42.8.1"},
		Protocols: []pb.Protocol{pb.Protocol_PROTOCOL_CGMINER}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Found) != 0 || len(res.Errors) != 1 || !errors.Is(res.Errors[0].Err, ErrNotMiner) ||
		!strings.Contains(res.Errors[0].Err.Error(), "Whatsminer API") {
		t.Fatalf("CGMINER-only scan: found %v, errors %v", res.Devices(), res.Errors)
	}
}
