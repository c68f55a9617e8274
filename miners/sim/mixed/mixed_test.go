package mixed

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/antminer"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/proto"
	"github.com/hashfleet/hashfleet/miners/sim/protorig"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		in                  string
		total               int
		ant, proto, cgminer int
	}{
		{"antminer=70,proto=30", 200, 140, 60, 0},
		{"antminer=70,proto=30", 500, 350, 150, 0},
		{" Antminer = 70% , proto=30% ", 10, 7, 3, 0},
		{"antminer=33,proto=33,cgminer=34", 10, 3, 3, 4},
		{"antminer=50,proto=50", 3, 2, 1, 0}, // tie: the kind named first
		{"proto=50,antminer=50", 3, 1, 2, 0},
		{"cgminer=100", 7, 0, 0, 7},
		{"antminer=0,proto=100", 1, 0, 1, 0},
	} {
		cfg, err := ParseMix(tc.in, tc.total)
		if err != nil {
			t.Errorf("ParseMix(%q, %d): %v", tc.in, tc.total, err)
			continue
		}
		if cfg.Antminer != tc.ant || cfg.Proto != tc.proto || cfg.CGMiner != tc.cgminer {
			t.Errorf("ParseMix(%q, %d) = %d/%d/%d, want %d/%d/%d", tc.in, tc.total, cfg.Antminer, cfg.Proto, cfg.CGMiner, tc.ant, tc.proto, tc.cgminer)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("ParseMix(%q) config does not validate: %v", tc.in, err)
		}
	}
}

func TestParseMixSumsToTotal(t *testing.T) {
	for total := 1; total <= 257; total += 16 {
		for a := 0; a <= 100; a += 7 {
			for p := 0; p <= 100-a; p += 11 {
				s := "antminer=" + strconv.Itoa(a) + ",proto=" + strconv.Itoa(p) + ",cgminer=" + strconv.Itoa(100-a-p)
				cfg, err := ParseMix(s, total)
				if err != nil {
					t.Fatalf("ParseMix(%q, %d): %v", s, total, err)
				}
				if got := cfg.Antminer + cfg.Proto + cfg.CGMiner; got != total {
					t.Fatalf("ParseMix(%q, %d) sums to %d", s, total, got)
				}
			}
		}
	}
}

func TestParseMixErrors(t *testing.T) {
	for _, tc := range []struct {
		in    string
		total int
		want  string
	}{
		{"", 10, "empty"},
		{"antminer", 10, "not kind=percent"},
		{"=100", 10, "not kind=percent"},
		{"avalon=100", 10, "unknown kind"},
		{"antminer=50,antminer=50", 10, "given twice"},
		{"antminer=60,proto=30", 10, "add up to 90"},
		{"antminer=70,proto=40", 10, "add up to 110"},
		{"antminer=-10,proto=110", 10, "whole percentage"},
		{"antminer=x,proto=100", 10, "whole percentage"},
		{"antminer=50.5,proto=49.5", 10, "whole percentage"},
		{"antminer=100", 0, "total"},
		{"antminer=100", 30000, "at most 20000"},
	} {
		_, err := ParseMix(tc.in, tc.total)
		if !errors.Is(err, ErrBadMix) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseMix(%q, %d) = %v, want ErrBadMix mentioning %q", tc.in, tc.total, err, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	// PerMinerIP alone takes the default ports (a real site's shape), not zero.
	pm := DefaultConfig()
	pm.PerMinerIP = true
	if err := pm.Validate(); err != nil {
		t.Fatalf("PerMinerIP with default ports: %v", err)
	}
	if c := pm.withDefaults(); c.APIPort != DefaultAPIPort || c.WebPort != DefaultWebPort {
		t.Fatalf("PerMinerIP ports %d/%d, want %d/%d", c.APIPort, c.WebPort, DefaultAPIPort, DefaultWebPort)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no miners", func(c *Config) { c.Antminer, c.Proto = 0, 0 }, "at least one miner"},
		{"negative", func(c *Config) { c.Proto = -1 }, "between 0 and"},
		{"too many", func(c *Config) { c.Antminer = 20001 }, "between 0 and"},
		{"ports without PerMinerIP", func(c *Config) { c.APIPort = 4028 }, "need PerMinerIP"},
		{"base not loopback", func(c *Config) { c.PerMinerIP, c.BaseIP = true, "10.0.0.1" }, "127.0.0.0/8"},
		{"base garbage", func(c *Config) { c.PerMinerIP, c.BaseIP = true, "nope" }, "127.0.0.0/8"},
		{"no room", func(c *Config) { c.PerMinerIP, c.BaseIP = true, "127.255.255.100" }, "do not fit"},
		{"same ports", func(c *Config) { c.PerMinerIP, c.APIPort, c.WebPort = true, 9000, 9000 }, "must differ"},
		{"prefix collision", func(c *Config) { c.CGMinerBase.IDPrefix = "ant-" }, "could collide"},
	} {
		cfg := DefaultConfig()
		tc.mod(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

// TestMixedSitePerMinerIP starts all three kinds on consecutive loopback addresses (crossing a .255/.0
// boundary), checks each answers its own protocol with the identity Devices reports, and that writes land in
// the normalized write log.
func TestMixedSitePerMinerIP(t *testing.T) {
	clk := clock.NewFake(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	f, err := Start(Config{Antminer: 3, Proto: 3, CGMiner: 2, Seed: 7, Clock: clk, PerMinerIP: true,
		BaseIP: "127.41.0.252", APIPort: 24028, WebPort: 28080})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	devs := f.Devices()
	if len(devs) != 8 || f.Count() != 8 {
		t.Fatalf("got %d devices (Count %d), want 8", len(devs), f.Count())
	}
	first, last, ok := f.Range()
	if !ok || first != netip.MustParseAddr("127.41.0.252") {
		t.Fatalf("Range() = %v %v %v", first, last, ok)
	}
	serials, macs := map[string]bool{}, map[string]bool{}
	for _, d := range devs {
		if serials[d.GetSerial()] || macs[d.GetMac()] {
			t.Errorf("%s: serial %s or MAC %s shared with another miner of the site", d.GetMinerId(), d.GetSerial(), d.GetMac())
		}
		serials[d.GetSerial()], macs[d.GetMac()] = true, true
	}
	wantKinds := []Kind{KindAntminer, KindAntminer, KindAntminer, KindProto, KindProto, KindProto, KindCGMiner, KindCGMiner}
	wantProto := map[Kind]pb.Protocol{KindAntminer: pb.Protocol_PROTOCOL_ANTMINER, KindProto: pb.Protocol_PROTOCOL_PROTO, KindCGMiner: pb.Protocol_PROTOCOL_CGMINER}
	seenIP := map[netip.Addr]bool{}
	for i, d := range devs {
		k, ok := f.Kind(d.GetMinerId())
		if !ok || k != wantKinds[i] || d.GetProtocol() != wantProto[k] {
			t.Errorf("device %d %s: kind %v protocol %v, want %v", i, d.GetMinerId(), k, d.GetProtocol(), wantKinds[i])
		}
		ap := netip.MustParseAddrPort(d.GetAddress())
		if seenIP[ap.Addr()] {
			t.Errorf("address %s used twice", ap.Addr())
		}
		seenIP[ap.Addr()] = true
		if ap.Addr().Less(first) || last.Less(ap.Addr()) {
			t.Errorf("%s outside Range %s-%s", ap, first, last)
		}
		wantPort := uint16(24028)
		if k == KindProto {
			wantPort = 28080
		}
		if ap.Port() != wantPort {
			t.Errorf("%s: port %d, want %d", d.GetMinerId(), ap.Port(), wantPort)
		}
		if d.GetSerial() == "" || d.GetMac() == "" || d.GetModel() == "" {
			t.Errorf("%s: identity incomplete: %v", d.GetMinerId(), d)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stop := &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING}
	for _, d := range devs {
		var drv miners.Driver
		switch d.GetProtocol() {
		case pb.Protocol_PROTOCOL_ANTMINER:
			drv, err = antminer.New(d, antminer.Config{Clock: clk})
		case pb.Protocol_PROTOCOL_PROTO:
			drv, err = proto.New(d, proto.Config{Password: protorig.DefaultPassword, Clock: clk})
		default:
			drv = cgminer.New(d, cgminer.Config{Clock: clk})
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drv.Poll(ctx); err != nil {
			t.Errorf("poll %s over its own protocol: %v", d.GetMinerId(), err)
		}
		if _, err := drv.Execute(ctx, stop); err != nil {
			t.Errorf("stop %s: %v", d.GetMinerId(), err)
		}
		_ = drv.Close()
	}

	wantOp := map[Kind]string{KindAntminer: "POST /cgi-bin/set_miner_conf.cgi", KindProto: "POST /api/v1/mining/stop", KindCGMiner: "pause"}
	for _, d := range devs {
		log, err := f.WriteLog(d.GetMinerId())
		if err != nil {
			t.Fatal(err)
		}
		k, _ := f.Kind(d.GetMinerId())
		if len(log) != 1 {
			t.Errorf("%s: %d writes, want 1 (Antminers: the web write only, not its write-through): %+v", d.GetMinerId(), len(log), log)
			continue
		}
		w := log[0]
		if w.MinerID != d.GetMinerId() || w.Kind != k || w.Op != wantOp[k] || !w.Accepted || !w.At.Equal(clk.Now()) || w.Remote == "" {
			t.Errorf("%s: write %+v, want op %q accepted at %v", d.GetMinerId(), w, wantOp[k], clk.Now())
		}
	}
	if all := f.WriteLogs(); len(all) != 8 {
		t.Errorf("WriteLogs: %d writes, want 8", len(all))
	}
	if _, err := f.WriteLog("nope"); !errors.Is(err, ErrUnknownMiner) {
		t.Errorf("WriteLog(unknown) = %v, want ErrUnknownMiner", err)
	}
	if f.Antminers() == nil || f.Protos() == nil || f.CGMiners() == nil {
		t.Error("kind accessors returned nil")
	}
}

func TestMixedSiteSharedHost(t *testing.T) {
	f, err := Start(Config{Antminer: 2, Proto: 1})
	if err != nil {
		t.Fatal(err)
	}
	if f.CGMiners() != nil {
		t.Error("CGMiners() should be nil without CGMiner-only miners")
	}
	seen := map[string]bool{}
	for _, d := range f.Devices() {
		if !strings.HasPrefix(d.GetAddress(), "127.0.0.1:") || seen[d.GetAddress()] {
			t.Errorf("address %q: want a distinct port on 127.0.0.1", d.GetAddress())
		}
		seen[d.GetAddress()] = true
	}
	if _, _, ok := f.Range(); ok {
		t.Error("Range ok without PerMinerIP")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestStartFailureClosesWhatStarted(t *testing.T) {
	// The Proto rigs cannot start (password too short for the contract), after the Antminers did.
	_, err := Start(Config{Antminer: 2, Proto: 1, ProtoBase: protorig.Config{Password: "short"}})
	if err == nil || !strings.Contains(err.Error(), "Proto rigs") {
		t.Fatalf("Start = %v, want an error naming the Proto rigs", err)
	}
	// goleak in TestMain checks the Antminers were closed.
}
