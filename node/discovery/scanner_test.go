package discovery

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/miners/sim/antweb"
	"github.com/hashfleet/hashfleet/miners/sim/protorig"
)

var antCreds = Credentials{Username: antweb.DefaultUsername, Password: antweb.DefaultPassword}

// TestDiscoverAllThreeKinds scans a loopback range holding Antminers, Proto rigs and CGMiner-only miners
// (crossing a .255/.0 boundary, with empty addresses around) and expects each with its protocol and identity.
func TestDiscoverAllThreeKinds(t *testing.T) {
	f := startSite(t, "127.42.0.250", 4, 3, 3)
	var calls, inCall atomic.Int32
	var updates []Update
	s, err := NewScanner(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Scan(context.Background(), Request{ScanID: "all", Targets: []string{siteRange(f, 3)}, Antminer: antCreds},
		func(u Update) {
			if inCall.Add(1) != 1 {
				t.Error("progress callbacks overlap")
			}
			calls.Add(1)
			updates = append(updates, u)
			inCall.Add(-1)
		})
	if err != nil {
		t.Fatal(err)
	}
	if res.Canceled || res.Probed != res.Total || len(res.Errors) != 0 {
		t.Fatalf("result: canceled %v, probed %d/%d, errors %v", res.Canceled, res.Probed, res.Total, res.Errors)
	}
	want := f.Devices()
	if len(res.Found) != len(want) {
		t.Fatalf("found %d devices, want %d: %v", len(res.Found), len(want), res.Devices())
	}
	got := byAddress(res.Devices())
	for _, w := range want {
		d := got[netip.MustParseAddrPort(w.GetAddress()).Addr()]
		if d == nil {
			t.Errorf("%s (%s) not found", w.GetMinerId(), w.GetAddress())
			continue
		}
		wantMAC := normalizeMAC(w.GetMac())
		wantID := "m-" + strings.ReplaceAll(wantMAC, ":", "")
		if w.GetProtocol() == pb.Protocol_PROTOCOL_CGMINER {
			wantMAC, wantID = "", "s-"+strings.ToLower(w.GetSerial()) // the CGMiner API reports no MAC
		}
		if d.GetProtocol() != w.GetProtocol() || d.GetAddress() != w.GetAddress() || d.GetWebAddress() != w.GetWebAddress() ||
			d.GetModel() != w.GetModel() || d.GetSerial() != w.GetSerial() || d.GetMac() != wantMAC || d.GetMinerId() != wantID {
			t.Errorf("%s:\n got %v\nwant %v (mac %s, id %s)", w.GetMinerId(), d, w, wantMAC, wantID)
		}
	}
	for _, fd := range res.Found {
		if fd.Firmware == "" || len(fd.Notes) != 0 {
			t.Errorf("%s: firmware %q, notes %q", fd.Device.GetMinerId(), fd.Firmware, fd.Notes)
		}
	}

	// Progress: first report at once, counters monotonic, the last one complete, deltas add up.
	if len(updates) < 2 || updates[0].Progress.Probed != 0 || updates[len(updates)-1].Progress.Probed != res.Total {
		t.Fatalf("updates: %d, first %+v, last %+v", len(updates), updates[0].Progress, updates[len(updates)-1].Progress)
	}
	sum := 0
	for i, u := range updates {
		sum += len(u.Found)
		if i > 0 && (u.Progress.Probed < updates[i-1].Progress.Probed || u.Progress.Found != sum) {
			t.Fatalf("update %d not monotonic: %+v after %+v (deltas %d)", i, u.Progress, updates[i-1].Progress, sum)
		}
	}
	if sum != len(res.Found) {
		t.Fatalf("updates carried %d devices, result %d", sum, len(res.Found))
	}
}

func TestDiscoverAntminersWithoutCredentials(t *testing.T) {
	f := startSite(t, "127.42.1.1", 2, 0, 0)
	res := scan(t, testConfig(), Request{Targets: []string{siteRange(f, 0)}})
	if len(res.Found) != 2 || len(res.Errors) != 0 {
		t.Fatalf("found %v, errors %v", res.Devices(), res.Errors)
	}
	for i, w := range f.Devices() {
		fd := res.Found[i]
		d := fd.Device
		if d.GetProtocol() != pb.Protocol_PROTOCOL_ANTMINER || d.GetMac() != "" || d.GetSerial() != w.GetSerial() ||
			d.GetModel() != w.GetModel() || d.GetMinerId() != "s-"+strings.ToLower(w.GetSerial()) {
			t.Errorf("got %v, want %v without MAC", d, w)
		}
		if len(fd.Notes) != 1 || !strings.Contains(fd.Notes[0], "credentials") {
			t.Errorf("notes %q, want one about credentials", fd.Notes)
		}
	}

	// Wrong credentials: still an Antminer, with a note saying why there is no MAC.
	res = scan(t, testConfig(), Request{Targets: []string{siteRange(f, 0)}, Antminer: Credentials{"root", "wrong"}})
	if len(res.Found) != 2 || res.Found[0].Device.GetProtocol() != pb.Protocol_PROTOCOL_ANTMINER ||
		len(res.Found[0].Notes) != 1 || !strings.Contains(res.Found[0].Notes[0], "refused") {
		t.Fatalf("wrong credentials: %+v", res.Found)
	}
}

func TestDiscoverOnlyRequestedProtocols(t *testing.T) {
	f := startSite(t, "127.42.1.20", 2, 2, 2)
	res := scan(t, testConfig(), Request{Targets: []string{siteRange(f, 0)}, Protocols: []pb.Protocol{pb.Protocol_PROTOCOL_PROTO}})
	if len(res.Found) != 2 {
		t.Fatalf("found %v, want the 2 Proto rigs", res.Devices())
	}
	for _, d := range res.Devices() {
		if d.GetProtocol() != pb.Protocol_PROTOCOL_PROTO {
			t.Errorf("found %v", d)
		}
	}
	// The Antminers' web servers answer, but not as Proto rigs; the CGMiner-only miners are not probed.
	if len(res.Errors) != 2 || !res.Errors[0].Unknown() || !res.Errors[1].Unknown() {
		t.Fatalf("errors %v, want the 2 Antminer web servers as not-miners", res.Errors)
	}

	res = scan(t, testConfig(), Request{Targets: []string{siteRange(f, 0)}, Protocols: []pb.Protocol{pb.Protocol_PROTOCOL_CGMINER}})
	if len(res.Found) != 4 {
		t.Fatalf("CGMINER only: found %v, want the 2 Antminers and 2 CGMiner-only as CGMINER", res.Devices())
	}
	for _, d := range res.Devices() {
		if d.GetProtocol() != pb.Protocol_PROTOCOL_CGMINER {
			t.Errorf("found %v", d)
		}
	}
}

// TestDiscoverSimulatorFaults: faulty miners become errors (or, when only one side of an Antminer is faulty,
// a device with a note), never a crash, and the healthy ones are found as usual.
func TestDiscoverSimulatorFaults(t *testing.T) {
	f := startSite(t, "127.42.1.100", 4, 6, 3)
	pf := map[string]protorig.Fault{"proto-0000": protorig.FaultMalformedJSON, "proto-0001": protorig.FaultHugeBody,
		"proto-0002": protorig.FaultRedirect, "proto-0003": protorig.FaultSlow, "proto-0004": protorig.FaultHang}
	for id, fault := range pf {
		if err := f.Protos().SetFault(id, fault); err != nil {
			t.Fatal(err)
		}
	}
	must(t, f.Antminers().SetFault("ant-0", antweb.FaultHugeBody))
	f.Antminers().API().Miner("ant-1").SetFault(sim.FaultMalformed)
	must(t, f.Antminers().SetFault("ant-3", antweb.FaultRedirect))
	f.CGMiners().Miner("cgm-0").SetFault(sim.FaultHang)
	f.CGMiners().Miner("cgm-1").SetFault(sim.FaultMalformed)

	start := time.Now()
	res := scan(t, testConfig(), Request{Targets: []string{siteRange(f, 0)}, Antminer: antCreds})
	took := time.Since(start)
	t.Logf("scan of %d addresses with faults took %v", res.Total, took)
	if took > 10*time.Second {
		t.Errorf("scan took %v: stalled replies must be cut at the probe deadline", took)
	}

	ids := map[netip.Addr]string{}
	for _, d := range f.Devices() {
		ids[netip.MustParseAddrPort(d.GetAddress()).Addr()] = d.GetMinerId()
	}
	found := map[string]Found{}
	for _, fd := range res.Found {
		found[ids[netip.MustParseAddrPort(fd.Device.GetAddress()).Addr()]] = fd
	}
	failed := map[string]TargetError{}
	for _, e := range res.Errors {
		failed[ids[e.Addr]] = e
	}
	for _, tc := range []struct {
		id    string
		proto pb.Protocol // unspecified: an error, hostile
		note  string
	}{
		{"proto-0000", 0, ""}, {"proto-0001", 0, ""}, {"proto-0002", 0, ""}, {"proto-0003", 0, ""}, {"proto-0004", 0, ""},
		{"proto-0005", pb.Protocol_PROTOCOL_PROTO, ""},
		{"ant-0", pb.Protocol_PROTOCOL_CGMINER, "exceeds"},       // web hostile: reads still work over the API
		{"ant-1", pb.Protocol_PROTOCOL_ANTMINER, "invalid JSON"}, // API hostile: the web CGI identifies it
		{"ant-2", pb.Protocol_PROTOCOL_ANTMINER, ""},
		{"ant-3", pb.Protocol_PROTOCOL_CGMINER, "redirect"},
		{"cgm-0", 0, ""}, {"cgm-1", 0, ""},
		{"cgm-2", pb.Protocol_PROTOCOL_CGMINER, ""},
	} {
		fd, isFound := found[tc.id]
		e, isErr := failed[tc.id]
		switch {
		case tc.proto == 0 && (isFound || !isErr || !errors.Is(e, ErrHostile)):
			t.Errorf("%s: found %v, error %v; want a hostile error", tc.id, isFound, e)
		case tc.proto != 0 && (!isFound || isErr || fd.Device.GetProtocol() != tc.proto):
			t.Errorf("%s: found %v (%v), error %v; want %v", tc.id, isFound, fd.Device, e, tc.proto)
		case tc.proto != 0 && tc.note == "" && len(fd.Notes) != 0:
			t.Errorf("%s: unexpected notes %q", tc.id, fd.Notes)
		case tc.proto != 0 && tc.note != "" && !strings.Contains(strings.Join(fd.Notes, "|"), tc.note):
			t.Errorf("%s: notes %q, want one mentioning %q", tc.id, fd.Notes, tc.note)
		}
		if isErr {
			t.Logf("%s: %v", tc.id, e)
		}
	}
	if len(res.Found) != 6 || len(res.Errors) != 7 {
		t.Errorf("found %d and %d errors, want 6 and 7", len(res.Found), len(res.Errors))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDiscoverHostileServers points discovery at servers that misbehave in ways the simulators do not, next to
// a healthy Proto rig that must still be found.
func TestDiscoverHostileServers(t *testing.T) {
	h := newHostile(t)
	cg, web := testAPIPort, testWebPort
	const net2 = "127.42.2."
	type want struct {
		found bool
		kind  error // for errors: ErrHostile or ErrNotMiner
		text  string
	}
	cases := map[string]want{}
	add := func(last int, w want) string {
		a := fmt.Sprintf("%s%d", net2, last)
		cases[a] = w
		return a
	}

	h.tcp(add(1, want{kind: ErrNotMiner, text: "not a CGMiner API reply"}), cg, func(c net.Conn) {
		readRequest(c)
		_, _ = c.Write([]byte("\xff\xfe garbage \x00\x01"))
	})
	h.tcp(add(2, want{kind: ErrHostile, text: "exceeds"}), cg, func(c net.Conn) {
		chunk := bytes.Repeat([]byte(`{"STATUS":`), 1000)
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	h.tcp(add(3, want{kind: ErrHostile, text: "no reply"}), cg, holdOpen)
	h.tcp(add(4, want{kind: ErrHostile, text: "invalid JSON"}), cg, func(c net.Conn) {
		readRequest(c)
		_, _ = c.Write([]byte(`{"STATUS":` + strings.Repeat("[", 60000)))
	})
	h.tcp(add(5, want{kind: ErrHostile, text: "cut off"}), cg, func(c net.Conn) {
		readRequest(c) // a reset before the client's connect returns would look like no connection at all
		_, _ = c.Write([]byte(`{"STATUS":[{"STATUS":"S"`))
		_ = c.(*net.TCPConn).SetLinger(0) // reset, not a clean close
	})
	h.http(add(10, want{kind: ErrNotMiner, text: "neither a Proto rig nor an Antminer"}), web, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>router login</html>"))
	})
	h.http(add(11, want{kind: ErrHostile, text: "headers exceeded"}), web, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Junk", strings.Repeat("j", 20<<10))
	})
	h.http(add(12, want{kind: ErrNotMiner, text: "NETGEAR"}), web, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Digest realm="NETGEAR", nonce="1", qop="auth"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	// A gzip bomb: 8 MiB of zeros in a few KiB; discovery never inflates it.
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(make([]byte, 8<<20))
	_ = zw.Close()
	h.http(add(13, want{kind: ErrNotMiner, text: "not JSON"}), web, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(bomb.Bytes())
	})
	idPR := add(14, want{found: true, text: "not a usable MAC"})
	h.http(idPR, web, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathPairingInfo {
			_, _ = w.Write([]byte(`{"mac":"zz:zz","cb_sn":"PR\u0007X-1"}`))
			return
		}
		_, _ = w.Write([]byte(`{"system-info":{"model":"Rig","os":{"version":"1.2.3"}}}`))
	})
	h.http(add(15, want{kind: ErrNotMiner, text: "redirect"}), web, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/login", http.StatusFound)
	})
	h.http(add(16, want{found: true, text: "no model"}), web, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathPairingInfo {
			_, _ = w.Write([]byte(`{"mac":"02:50:52:aa:bb:cc","cb_sn":"PR16"}`))
			return
		}
		_, _ = w.Write([]byte(`{"system-info":{"model":`))
	})
	h.http(add(17, want{kind: ErrHostile, text: "exceeds"}), web, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"mac":"`))
		chunk := bytes.Repeat([]byte("a"), 32<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	h.http(add(18, want{kind: ErrHostile, text: "invalid JSON"}), web, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat(`{"a":`, 12000)))
	})
	h.http(add(19, want{kind: ErrHostile, text: "exceeds"}), web, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10000000000")
		_, _ = w.Write([]byte(`{"mac":"`))
	})
	h.http(add(20, want{kind: ErrHostile, text: "another host"}), web, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusTemporaryRedirect)
	})
	h.http(add(21, want{kind: ErrHostile, text: "no reply"}), web, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	good := startSite(t, net2+"30", 0, 1, 0)
	goodAddr := netip.MustParseAddrPort(good.Devices()[0].GetAddress()).Addr()

	cfg := testConfig()
	cfg.ProbeTimeout = 700 * time.Millisecond
	start := time.Now()
	res := scan(t, cfg, Request{Targets: []string{net2 + "1-" + net2 + "40"}})
	t.Logf("hostile scan took %v", time.Since(start))

	found := byAddress(res.Devices())
	if d := found[goodAddr]; d == nil || d.GetProtocol() != pb.Protocol_PROTOCOL_PROTO || d.GetMac() == "" {
		t.Errorf("the healthy rig beside them: %v", d)
	}
	errs := map[netip.Addr]TargetError{}
	for _, e := range res.Errors {
		if _, dup := errs[e.Addr]; dup {
			t.Errorf("%s: two errors; the second %v", e.Addr, e)
		}
		errs[e.Addr] = e
	}
	for a, w := range cases {
		addr := netip.MustParseAddr(a)
		if w.found {
			var fd *Found
			for i := range res.Found {
				if strings.HasPrefix(res.Found[i].Device.GetAddress(), a+":") {
					fd = &res.Found[i]
				}
			}
			if fd == nil || !strings.Contains(strings.Join(fd.Notes, "|"), w.text) {
				t.Errorf("%s: found %+v, want a device with a note about %q", a, fd, w.text)
			}
			continue
		}
		e, ok := errs[addr]
		if !ok || !errors.Is(e, w.kind) || !strings.Contains(e.Error(), w.text) || found[addr] != nil {
			t.Errorf("%s: error %v, want %v mentioning %q", a, e, w.kind, w.text)
		}
	}
	if d := found[netip.MustParseAddr(idPR)]; d == nil || d.GetMinerId() != "s-prx-1" || d.GetModel() != "Rig" || d.GetSerial() != "PRX-1" {
		t.Errorf("rig with a bad MAC: %v", d)
	}
	if n := len(res.Found) + len(res.Errors); n != len(cases)+1 {
		t.Errorf("%d outcomes for %d answering addresses: %v %v", n, len(cases)+1, res.Devices(), res.Errors)
	}
}

func TestScanCancel(t *testing.T) {
	h := newHostile(t)
	for i := 1; i <= 64; i++ {
		h.tcp(fmt.Sprintf("127.42.3.%d", i), testAPIPort, holdOpen)
	}
	cfg := testConfig()
	cfg.Concurrency, cfg.ProbeTimeout = 4, 5*time.Second
	s, err := NewScanner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := s.Plan(Request{ScanID: "c", Targets: []string{"127.42.3.1-64"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *Result)
	go func() { done <- s.Run(ctx, plan, nil) }()
	time.Sleep(200 * time.Millisecond)
	cancelled := time.Now()
	cancel()
	select {
	case res := <-done:
		if !res.Canceled || res.Probed >= res.Total || res.Total != 64 {
			t.Fatalf("result after cancel: %+v", res.Progress())
		}
		if d := time.Since(cancelled); d > time.Second {
			t.Fatalf("Run returned %v after cancel", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestScanRefusesBadRequests(t *testing.T) {
	s, err := NewScanner(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  Request
		want error
	}{
		{"no targets", Request{}, ErrNoTargets},
		{"bad target", Request{Targets: []string{"10.0.0.1/7"}}, ErrTooManyAddresses},
		{"public", Request{Targets: []string{"1.1.1.1"}}, ErrRefusedAddress},
		{"bad protocol", Request{Targets: []string{"10.0.0.1"}, Protocols: []pb.Protocol{pb.Protocol(42)}}, ErrBadRequest},
		{"bad port", Request{Targets: []string{"10.0.0.1"}, Ports: Ports{Proto: []int{70000}}}, ErrBadRequest},
		{"half credentials", Request{Targets: []string{"10.0.0.1"}, Antminer: Credentials{Username: "root"}}, ErrBadRequest},
	} {
		if _, err := s.Scan(context.Background(), tc.req, nil); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	cfg := testConfig()
	cfg.AllowPublic = true
	s, _ = NewScanner(cfg)
	if _, err := s.Plan(Request{Targets: []string{"1.1.1.1"}}); err != nil {
		t.Errorf("AllowPublic: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Concurrency: -1}, "Concurrency"},
		{Config{Concurrency: 1 << 20}, "Concurrency"},
		{Config{ProbeTimeout: -time.Second}, "ProbeTimeout"},
		{Config{MaxAddresses: 1 << 30}, "MaxAddresses"},
		{Config{MaxReplyBytes: 10}, "MaxReplyBytes"},
		{Config{Ports: Ports{CGMiner: []int{0}}}, "CGMiner port 0"},
		{Config{Ports: Ports{Proto: []int{1, 2, 3, 4, 5, 6, 7, 8, 9}}}, "at most 8 Proto ports"},
		{Config{MaxActiveScans: 4, KeepScans: 2}, "KeepScans"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error about %s", tc.cfg, err, tc.want)
		}
	}
	d := Config{}.withDefaults()
	if d.Concurrency != 256 || d.ProbeTimeout != 1500*time.Millisecond || d.MaxAddresses != 65536 ||
		fmt.Sprint(d.Ports) != "{[4028] [80] [80 443] [443]}" {
		t.Errorf("defaults: %+v", d)
	}
}
