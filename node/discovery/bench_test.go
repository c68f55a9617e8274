package discovery

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim/mixed"
)

// site500 starts 350 Antminers and 150 Proto rigs, each on its own loopback address, the way a 500-miner
// site looks from the node.
func site500(tb testing.TB) *mixed.Fleet {
	cfg, err := mixed.ParseMix("antminer=70,proto=30", 500)
	if err != nil {
		tb.Fatal(err)
	}
	if cfg.Antminer != 350 || cfg.Proto != 150 {
		tb.Fatalf("mix gave %d/%d", cfg.Antminer, cfg.Proto)
	}
	return startSite(tb, "127.43.0.1", cfg.Antminer, cfg.Proto, 0)
}

// checkAll500 checks every simulated miner was found with its protocol and identity.
func checkAll500(tb testing.TB, f *mixed.Fleet, res *Result) {
	tb.Helper()
	if len(res.Found) != 500 || len(res.Errors) != 0 || res.Canceled {
		tb.Fatalf("found %d, errors %d (%v), canceled %v", len(res.Found), len(res.Errors), res.Errors, res.Canceled)
	}
	got := byAddress(res.Devices())
	counts := map[pb.Protocol]int{}
	for _, w := range f.Devices() {
		d := got[netip.MustParseAddrPort(w.GetAddress()).Addr()]
		if d == nil || d.GetProtocol() != w.GetProtocol() || d.GetSerial() != w.GetSerial() || d.GetMac() != normalizeMAC(w.GetMac()) {
			tb.Fatalf("%s: found %v, want %v", w.GetMinerId(), d, w)
		}
		counts[d.GetProtocol()]++
	}
	if counts[pb.Protocol_PROTOCOL_ANTMINER] != 350 || counts[pb.Protocol_PROTOCOL_PROTO] != 150 {
		tb.Fatalf("counts %v", counts)
	}
}

// TestDiscovery500 finds all 500 miners of a 70/30 Antminer/Proto site, with Antminer credentials (so every
// Antminer also answers get_system_info.cgi through digest authentication), and logs how long it took.
func TestDiscovery500(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 500 simulated miners")
	}
	f := site500(t)
	cfg := testConfig()
	cfg.ProbeTimeout = DefaultProbeTimeout
	start := time.Now()
	res := scan(t, cfg, Request{ScanID: "500", Targets: []string{siteRange(f, 12)}, Antminer: antCreds})
	took := time.Since(start)
	checkAll500(t, f, res)
	t.Logf("discovered %d miners (350 Antminer + 150 Proto) among %d addresses in %v (concurrency %d)",
		len(res.Found), res.Total, took, DefaultConcurrency)
}

// BenchmarkDiscovery500 scans the 500-miner site once per iteration; s/scan is the wall time of one scan.
func BenchmarkDiscovery500(b *testing.B) {
	f := site500(b)
	cfg := testConfig()
	cfg.ProbeTimeout = DefaultProbeTimeout
	s, err := NewScanner(cfg)
	if err != nil {
		b.Fatal(err)
	}
	plan, err := s.Plan(Request{ScanID: "bench", Targets: []string{siteRange(f, 12)}, Antminer: antCreds})
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	n := 0
	for b.Loop() {
		start := time.Now()
		res := s.Run(context.Background(), plan, nil)
		total += time.Since(start)
		n++
		b.StopTimer()
		checkAll500(b, f, res)
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(n), "s/scan")
}
