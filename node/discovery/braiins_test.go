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
	bossim "github.com/hashfleet/hashfleet/miners/sim/braiins"
)

// TestDiscoverBraiinsOS: bosminer's CGMiner API names itself (BOSminer in VERSION), so a Braiins OS miner is
// found as BRAIINS, addressed at the API it answered on (its driver reaches the gRPC API on that host); a
// scan that asks for CGMINER only still finds it through the compatible API, and one that asks for neither
// says what it is
// (an ANTMINER-only scan probes the CGMiner port too, and finds no Antminer web CGI there).
func TestDiscoverBraiinsOS(t *testing.T) {
	f, err := bossim.Start(bossim.Config{Count: 2, Seed: 3, Clock: clock.NewFake(time.Now()), PerMinerIP: true,
		BaseIP: "127.42.9.1", APIPort: testAPIPort, GRPCPort: 35051})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := NewScanner(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Scan(context.Background(), Request{ScanID: "bos", Targets: []string{"127.42.9.0-127.42.9.3"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Found) != 2 || len(res.Errors) != 0 {
		t.Fatalf("found %v, errors %v", res.Devices(), res.Errors)
	}
	got := byAddress(res.Devices())
	for _, want := range f.Devices() {
		d := got[netip.MustParseAddrPort(want.GetAddress()).Addr()]
		if d == nil || d.GetProtocol() != pb.Protocol_PROTOCOL_BRAIINS || d.GetAddress() != want.GetAddress() || d.GetModel() == "" {
			t.Fatalf("got %v, want BRAIINS at %s", d, want.GetAddress())
		}
	}
	if fw := res.Found[0].Firmware; fw == "" {
		t.Fatalf("firmware %q", fw)
	}

	res, err = s.Scan(context.Background(), Request{ScanID: "cg", Targets: []string{"127.42.9.1"},
		Protocols: []pb.Protocol{pb.Protocol_PROTOCOL_CGMINER}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Found) != 1 || res.Devices()[0].GetProtocol() != pb.Protocol_PROTOCOL_CGMINER {
		t.Fatalf("CGMINER-only scan: found %v, errors %v", res.Devices(), res.Errors)
	}

	res, err = s.Scan(context.Background(), Request{ScanID: "ant", Targets: []string{"127.42.9.1"},
		Protocols: []pb.Protocol{pb.Protocol_PROTOCOL_ANTMINER}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Found) != 0 || len(res.Errors) != 1 || !errors.Is(res.Errors[0].Err, ErrNotMiner) ||
		!strings.Contains(res.Errors[0].Err.Error(), "Braiins OS") {
		t.Fatalf("ANTMINER-only scan: found %v, errors %v", res.Devices(), res.Errors)
	}
}

// TestBraiinsOSEvidence: the marker is read from VERSION or STATS, in any key case; a stock CGMiner reply
// has none.
func TestBraiinsOSEvidence(t *testing.T) {
	for _, c := range []struct {
		version, stats map[string]any
		want           bool
	}{
		{map[string]any{"VERSION": []any{map[string]any{"BOSminer": "0.9.0"}}}, nil, true},
		{nil, map[string]any{"STATS": []any{map[string]any{"boser": "24.03"}}}, true},
		{map[string]any{"VERSION": []any{map[string]any{"BMMiner": "4.11.1", "Type": "Antminer S19"}}}, nil, false},
		{map[string]any{"VERSION": []any{map[string]any{"BOSminer": ""}}}, nil, false},
		{map[string]any{"VERSION": "not a list"}, nil, false},
		{nil, nil, false},
	} {
		if got := braiinsOS(c.version, c.stats); got != c.want {
			t.Errorf("%v %v: %v, want %v", c.version, c.stats, got, c.want)
		}
	}
}
