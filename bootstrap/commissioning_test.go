package bootstrap

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/proto"
	"github.com/hashfleet/hashfleet/miners/sim/antweb"
	"github.com/hashfleet/hashfleet/miners/sim/mixed"
)

// mixedSite is combined mode over real sockets against a mixed simulated site (Antminers, Proto rigs,
// CGMiner-only miners), through the node: the same harness as startSite.
type mixedSite struct {
	*site
	mix     *mixed.Fleet
	dataDir string
	logs    *syncBuffer
}

// startMixedSite starts the simulators of cfg and combined mode; configured says whether the node starts
// with the site's devices (true) or with none, to find them by discovery (false).
func startMixedSite(t *testing.T, cfg mixed.Config, poll time.Duration, configured bool) *mixedSite {
	t.Helper()
	fleet, err := mixed.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Close() })
	var devs []*pb.Device
	if configured {
		devs = fleet.Devices()
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testLogSink()), &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	c, err := StartCombined(context.Background(), CombinedOptions{
		DataDir: dir, Listen: "127.0.0.1:0", AdminToken: testToken, Devices: devs, PollInterval: poll, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ms := &mixedSite{site: &site{t: t, c: c, base: "http://" + c.HTTPAddr}, mix: fleet, dataDir: dir, logs: logs}
	t.Cleanup(func() { ms.stop() })
	return ms
}

func (s *mixedSite) stop() {
	if s.c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.c.Stop(ctx); err != nil {
		s.t.Errorf("stop combined: %v", err)
	}
	s.c = nil
}

func testLogSink() io.Writer {
	if os.Getenv("HASHFLEET_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// ids returns the site's miner ids of kind k.
func (s *mixedSite) ids(k mixed.Kind) []string {
	var out []string
	for _, d := range s.mix.Devices() {
		if kk, _ := s.mix.Kind(d.GetMinerId()); kk == k {
			out = append(out, d.GetMinerId())
		}
	}
	return out
}

type minerDetail struct {
	minerView
	Model    string    `json:"model"`
	Serial   string    `json:"serial"`
	MAC      string    `json:"mac"`
	Protocol string    `json:"protocol"`
	FansRPM  []int32   `json:"fans_rpm"`
	Boards   []any     `json:"boards"`
	UptimeS  int64     `json:"uptime_s"`
	Pool     string    `json:"pool"`
	Temps    []float64 `json:"board_temps_c"`
}

func (s *mixedSite) detail(id string) minerDetail {
	var v minerDetail
	if code := s.do("GET", "/api/v1/miners/"+id, nil, &v); code != 200 {
		s.t.Fatalf("GET miner %s: HTTP %d", id, code)
	}
	return v
}

// run issues a command and waits for its final per-miner result.
func (s *mixedSite) run(body map[string]any) (status, message string) {
	s.t.Helper()
	var res struct {
		CommandID string `json:"command_id"`
	}
	if code := s.do("POST", "/api/v1/commands", body, &res); code != 202 {
		s.t.Fatalf("POST command %v: HTTP %d", body, code)
	}
	var cv commandView
	waitFor(s.t, 20*time.Second, fmt.Sprintf("command %v final", body["action"]), func() bool {
		cv = s.commandStatus(res.CommandID)
		return len(cv.Results) == 1 && cv.Results[0].Status != "pending" && cv.Results[0].Status != "running"
	})
	return cv.Results[0].Status, cv.Results[0].Message
}

// wrote reports whether miner id's write log holds an accepted write op (its protocol's name for it).
func (s *mixedSite) wrote(id, op string) bool {
	w, err := s.mix.WriteLog(id)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, x := range w {
		if x.Op == op && x.Accepted {
			return true
		}
	}
	return false
}

func near(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(math.Abs(want), 1e-9)
}

// TestMixedSiteThroughNode runs every driver against its simulator through the node of combined mode: the
// API's telemetry is the simulator's state, and every command changes the simulator's state and lands in its
// write log, or reports "unsupported by this model" for that miner.
func TestMixedSiteThroughNode(t *testing.T) {
	cfg := mixed.DefaultConfig()
	cfg.Antminer, cfg.Proto, cfg.CGMiner, cfg.Seed = 2, 2, 2, 11
	cfg.AntminerBase.RebootDuration, cfg.ProtoBase.RebootDuration, cfg.CGMinerBase.RebootDuration = 2*time.Second, 2*time.Second, 2*time.Second
	s := startMixedSite(t, cfg, 300*time.Millisecond, true)

	waitFor(t, 15*time.Second, "all 6 miners mining", func() bool {
		ms := s.miners()
		if len(ms) != 6 {
			return false
		}
		for _, m := range ms {
			if m.State != "mining" || m.HashrateTHs <= 0 {
				return false
			}
		}
		return true
	})

	t.Run("telemetry", func(t *testing.T) {
		for _, id := range s.ids(mixed.KindCGMiner) {
			snap, v := s.mix.CGMiners().Miner(id).Snapshot(), s.detail(id)
			checkTelemetry(t, id, v, snap.HashrateTHs, snap.PowerW, snap.Model, snap.Serial, snap.MAC, len(snap.Fans), "cgminer")
		}
		for _, id := range s.ids(mixed.KindAntminer) {
			snap, v := s.mix.Antminers().Miner(id).Snapshot(), s.detail(id)
			checkTelemetry(t, id, v, snap.API.HashrateTHs, snap.API.PowerW, snap.API.Model, snap.API.Serial, snap.API.MAC, len(snap.API.Fans), "antminer")
		}
		for _, id := range s.ids(mixed.KindProto) {
			snap, v := s.mix.Protos().Miner(id).Snapshot(), s.detail(id)
			checkTelemetry(t, id, v, snap.HashrateTHs, snap.PowerW, snap.Model, snap.Serial, snap.MAC, len(snap.Fans), "proto")
			if snap.AuthKey == nil {
				t.Errorf("%s: the rig was never paired with the node's key", id)
			}
		}
	})

	pools := []map[string]any{{"url": "stratum+tcp://pool-a.example:3333", "user": "fleet.w1", "password": "x", "priority": 0},
		{"url": "stratum+tcp://pool-b.example:3333", "user": "fleet.w1", "priority": 1}}

	t.Run("cgminer", func(t *testing.T) {
		id := s.ids(mixed.KindCGMiner)[0]
		m := s.mix.CGMiners().Miner(id)
		s.expectUnsupported(t, id, map[string]any{"action": "blink"})
		s.expectUnsupported(t, id, map[string]any{"action": "set_power_target", "power_target_w": 2500})
		s.expectDone(t, id, map[string]any{"action": "update_pools", "pools": pools}, "addpool", func() bool {
			p := m.Snapshot().Pools
			return len(p) == 2 && p[0].URL == "stratum+tcp://pool-a.example:3333" && p[1].URL == "stratum+tcp://pool-b.example:3333"
		})
		s.expectDone(t, id, map[string]any{"action": "stop"}, "pause", func() bool { return m.Snapshot().Paused })
		s.expectState(t, id, "stopped")
		s.expectDone(t, id, map[string]any{"action": "start"}, "resume", func() bool { return !m.Snapshot().Paused })
		s.expectState(t, id, "mining")
		s.expectDone(t, id, map[string]any{"action": "curtail"}, "curtail", func() bool { return m.Snapshot().Sleeping })
		s.expectState(t, id, "curtailed")
		s.expectDone(t, id, map[string]any{"action": "uncurtail"}, "curtail", func() bool { return !m.Snapshot().Sleeping })
		s.expectState(t, id, "mining")
		s.expectDone(t, id, map[string]any{"action": "reboot"}, "restart", func() bool { return true })
		s.expectState(t, id, "mining")
	})

	t.Run("antminer", func(t *testing.T) {
		id := s.ids(mixed.KindAntminer)[0]
		m := s.mix.Antminers().Miner(id)
		const setConf = "POST /cgi-bin/set_miner_conf.cgi"
		s.expectDone(t, id, map[string]any{"action": "blink"}, "POST /cgi-bin/blink.cgi", func() bool { return m.Snapshot().Blinking })
		s.expectUnsupported(t, id, map[string]any{"action": "set_power_target", "power_target_w": 2500})
		s.expectDone(t, id, map[string]any{"action": "update_pools", "pools": pools}, setConf, func() bool {
			p := m.Snapshot().Pools
			return len(p) >= 2 && p[0].URL == "stratum+tcp://pool-a.example:3333" && p[1].URL == "stratum+tcp://pool-b.example:3333"
		})
		s.expectDone(t, id, map[string]any{"action": "stop"}, setConf, func() bool { return m.Snapshot().WorkMode == "1" })
		s.expectState(t, id, "stopped")
		s.expectDone(t, id, map[string]any{"action": "start"}, setConf, func() bool { return m.Snapshot().WorkMode == "0" })
		s.expectState(t, id, "mining")
		s.expectDone(t, id, map[string]any{"action": "curtail"}, setConf, func() bool { return m.Snapshot().WorkMode == "1" })
		s.expectState(t, id, "curtailed")
		s.expectDone(t, id, map[string]any{"action": "uncurtail"}, setConf, func() bool { return m.Snapshot().WorkMode == "0" })
		s.expectState(t, id, "mining")
		rebootsBefore := m.Snapshot().Reboots
		s.expectDone(t, id, map[string]any{"action": "reboot"}, "", func() bool { return m.Snapshot().Reboots > rebootsBefore })
		if !s.wroteSuffix(id, "/cgi-bin/reboot.cgi") {
			t.Errorf("%s: reboot.cgi not in the write log: %+v", id, mustLog(s, id))
		}
		s.expectState(t, id, "mining")
	})

	t.Run("proto", func(t *testing.T) {
		id := s.ids(mixed.KindProto)[0]
		m := s.mix.Protos().Miner(id)
		snap := m.Snapshot()
		target := (snap.PowerTargetMinW + snap.PowerTargetMaxW) / 2
		s.expectDone(t, id, map[string]any{"action": "blink"}, "POST /api/v1/system/locate", func() bool { return m.Snapshot().Locating })
		s.expectDone(t, id, map[string]any{"action": "set_power_target", "power_target_w": target}, "PUT /api/v1/mining/target",
			func() bool { return m.Snapshot().PowerTargetW == target })
		s.expectDone(t, id, map[string]any{"action": "update_pools", "pools": pools}, "POST /api/v1/pools", func() bool {
			p := m.Snapshot().Pools
			return len(p) == 2 && p[0].URL == "stratum+tcp://pool-a.example:3333" && p[1].URL == "stratum+tcp://pool-b.example:3333"
		})
		s.expectDone(t, id, map[string]any{"action": "stop"}, "POST /api/v1/mining/stop", func() bool { return m.Snapshot().Stopped })
		s.expectState(t, id, "stopped")
		s.expectDone(t, id, map[string]any{"action": "start"}, "POST /api/v1/mining/start", func() bool { return !m.Snapshot().Stopped })
		s.expectState(t, id, "mining")
		s.expectDone(t, id, map[string]any{"action": "curtail"}, "POST /api/v1/mining/stop", func() bool { return m.Snapshot().Stopped })
		s.expectState(t, id, "curtailed")
		s.expectDone(t, id, map[string]any{"action": "uncurtail"}, "POST /api/v1/mining/start", func() bool { return !m.Snapshot().Stopped })
		s.expectState(t, id, "mining")
		s.expectDone(t, id, map[string]any{"action": "reboot"}, "POST /api/v1/system/reboot", func() bool { return true })
		s.expectState(t, id, "mining")
		// Every write was made with the node's JWT: the rig was paired with its miner-signing key.
		w := s.mix.Protos().Miner(id).WriteLog()
		for _, r := range w {
			if r.Path != "/api/v1/pairing/auth-key" && r.Accepted && !strings.HasPrefix(r.Principal, "jwt:") {
				t.Errorf("%s: %s %s authenticated as %q, want the node's JWT", id, r.Method, r.Path, r.Principal)
			}
		}
	})

	t.Run("reads", func(t *testing.T) {
		for _, id := range []string{s.ids(mixed.KindCGMiner)[1], s.ids(mixed.KindAntminer)[1], s.ids(mixed.KindProto)[1]} {
			for _, action := range []string{"get_pools", "get_errors"} {
				st, msg := s.run(map[string]any{"miner_ids": []string{id}, "action": action})
				if st != "succeeded" && !strings.Contains(msg, "unsupported by this model") {
					t.Errorf("%s %s: %s %q", id, action, st, msg)
				}
			}
		}
	})
}

func mustLog(s *mixedSite, id string) []mixed.Write {
	w, _ := s.mix.WriteLog(id)
	return w
}

func (s *mixedSite) wroteSuffix(id, path string) bool {
	for _, w := range mustLog(s, id) {
		if strings.HasSuffix(w.Op, path) && w.Accepted {
			return true
		}
	}
	return false
}

func checkTelemetry(t *testing.T, id string, v minerDetail, hashrate, power float64, model, serial, mac string, fans int, protocol string) {
	t.Helper()
	if !near(v.HashrateTHs, hashrate, 0.2) {
		t.Errorf("%s: hashrate %.2f TH/s in the API, simulator %.2f", id, v.HashrateTHs, hashrate)
	}
	if !near(v.PowerW, power, 0.15) {
		t.Errorf("%s: power %.0f W in the API, simulator %.0f", id, v.PowerW, power)
	}
	// A Proto rig's model is its product name ("Proto Rig"), which contains the model field ("Rig").
	if !strings.Contains(v.Model, model) || v.Serial != serial || !strings.EqualFold(v.MAC, mac) {
		t.Errorf("%s: identity model %q serial %q mac %q in the API, simulator %q %q %q", id, v.Model, v.Serial, v.MAC, model, serial, mac)
	}
	if len(v.FansRPM) != fans || v.TempMaxC <= 0 || len(v.Temps) == 0 {
		t.Errorf("%s: %d fans, max temp %.1f, board temps %v in the API; simulator has %d fans", id, len(v.FansRPM), v.TempMaxC, v.Temps, fans)
	}
	if v.Protocol != protocol {
		t.Errorf("%s: protocol %q, want %q", id, v.Protocol, protocol)
	}
}

// expectDone runs body on id, wants it to succeed, the simulator's state to satisfy changed and (when op is
// not "") an accepted op in the miner's write log.
func (s *mixedSite) expectDone(t *testing.T, id string, body map[string]any, op string, changed func() bool) {
	t.Helper()
	body["miner_ids"] = []string{id}
	st, msg := s.run(body)
	if st != "succeeded" {
		t.Fatalf("%s %v: %s %q, want succeeded", id, body["action"], st, msg)
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("%s %v changes the simulator", id, body["action"]), changed)
	if op != "" && !s.wrote(id, op) {
		t.Fatalf("%s %v: %q not in the write log %+v", id, body["action"], op, mustLog(s, id))
	}
}

// expectUnsupported runs body on id and wants that miner's result to be unsupported by its model, with no
// write reaching it.
func (s *mixedSite) expectUnsupported(t *testing.T, id string, body map[string]any) {
	t.Helper()
	before := len(mustLog(s, id))
	body["miner_ids"] = []string{id}
	st, msg := s.run(body)
	if st != "failed" || !strings.Contains(msg, "unsupported by this model") {
		t.Fatalf("%s %v: %s %q, want failed with \"unsupported by this model\"", id, body["action"], st, msg)
	}
	if after := len(mustLog(s, id)); after != before {
		t.Fatalf("%s %v: unsupported, yet %d writes reached the miner", id, body["action"], after-before)
	}
}

func (s *mixedSite) expectState(t *testing.T, id, state string) {
	t.Helper()
	waitFor(t, 15*time.Second, id+" "+state, func() bool { return s.miner(id).State == state })
}

// --- discovery and pairing ---

type discoveryView struct {
	ScanID   string `json:"scan_id"`
	State    string `json:"state"`
	Message  string `json:"message"`
	Progress struct {
		Total, Probed, Found, Errors int
	} `json:"progress"`
	Devices []deviceView `json:"devices"`
}

type deviceView struct {
	DeviceID string `json:"device_id"`
	Node     string `json:"node"`
	Status   string `json:"status"`
	Protocol string `json:"protocol"`
	Address  string `json:"address"`
	Serial   string `json:"serial"`
	MAC      string `json:"mac"`
	Pairing  *struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	} `json:"pairing"`
}

type pairingView struct {
	PairingID string `json:"pairing_id"`
	Status    string `json:"status"`
	Devices   []struct {
		DeviceID string `json:"device_id"`
		Status   string `json:"status"`
		Message  string `json:"message"`
	} `json:"devices"`
}

func (s *mixedSite) pair(t *testing.T, ids []string, creds map[string]string) pairingView {
	t.Helper()
	body := map[string]any{"device_ids": ids}
	if creds != nil {
		body["credentials"] = creds
	}
	var pv pairingView
	if code := s.do("POST", "/api/v1/pairings", body, &pv); code != 200 {
		t.Fatalf("POST /pairings %v: HTTP %d", ids, code)
	}
	if pv.Status != "done" || len(pv.Devices) != len(ids) {
		t.Fatalf("pairing %v: %+v", ids, pv)
	}
	return pv
}

func pairStatus(pv pairingView, id string) (string, string) {
	for _, d := range pv.Devices {
		if d.DeviceID == id {
			return d.Status, d.Message
		}
	}
	return "", ""
}

// TestDiscoveryAndPairingEndToEnd is `hashfleet combined` with no configured miners managing a mixed site
// it finds: a scan through the API finds every miner with its protocol and identity and claims none; pairing
// reports paired, needs credentials and wrong credentials as the miners answer; paired miners join the node
// (Proto rigs with the node's key, Antminers with logins sealed to it) and answer commands; the passwords
// given never reach the cloud's store or the logs in clear.
func TestDiscoveryAndPairingEndToEnd(t *testing.T) {
	const (
		antPassword   = "s3cret-ant-Password-7731"
		protoPassword = "proto-rig-Password-9922"
	)
	cfg := mixed.DefaultConfig()
	cfg.Antminer, cfg.Proto, cfg.CGMiner, cfg.Seed = 6, 4, 2, 5
	cfg.PerMinerIP, cfg.BaseIP = true, "127.77.0.1"
	cfg.ProtoBase.Password = protoPassword
	s := startMixedSite(t, cfg, 300*time.Millisecond, false)
	first, last, _ := s.mix.Range()

	// One Antminer has its own web login; one Proto rig is paired to another controller's key.
	antIDs, protoIDs, cgmIDs := s.ids(mixed.KindAntminer), s.ids(mixed.KindProto), s.ids(mixed.KindCGMiner)
	locked := s.mix.Antminers().Miner(antIDs[0])
	locked.SetCredentials("root", antPassword)
	taken := s.mix.Protos().Miner(protoIDs[0])
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	other, err := proto.New(&pb.Device{MinerId: protoIDs[0], Address: taken.Addr()}, proto.Config{SigningKey: otherKey, Password: protoPassword})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Pair(context.Background()); err != nil {
		t.Fatalf("pair the rig with another key: %v", err)
	}
	_ = other.Close()

	// Discovery through the API.
	var started struct {
		ScanID string `json:"scan_id"`
		Node   string `json:"node"`
	}
	target := first.String() + "-" + last.Next().Next().String() // two empty addresses past the site
	if code := s.do("POST", "/api/v1/discovery", map[string]any{
		"targets": []string{target}, "ports": map[string]any{"cgminer": []int{4028}, "antminer_web": []int{8080}, "proto": []int{8080}},
	}, &started); code != 202 || started.ScanID == "" || started.Node != LocalNodeID {
		t.Fatalf("POST /discovery: HTTP %d %+v", code, started)
	}
	var scan discoveryView
	begin := time.Now()
	waitFor(t, 30*time.Second, "scan done", func() bool {
		if code := s.do("GET", "/api/v1/discovery/"+started.ScanID, nil, &scan); code != 200 {
			t.Fatalf("GET scan: HTTP %d", code)
		}
		return scan.State == "done"
	})
	t.Logf("scan of %d addresses: %d found in %s (API round trip included)", scan.Progress.Total, scan.Progress.Found, time.Since(begin).Round(time.Millisecond))
	if scan.Progress.Found != 12 || len(scan.Devices) != 12 || scan.Progress.Probed != scan.Progress.Total {
		t.Fatalf("scan found %d (%d devices), probed %d of %d; want all 12: %+v", scan.Progress.Found, len(scan.Devices),
			scan.Progress.Probed, scan.Progress.Total, scan)
	}
	byAddr := map[string]deviceView{}
	for _, d := range scan.Devices {
		byAddr[strings.Split(d.Address, ":")[0]] = d
		if d.Status != "discovered" {
			t.Errorf("%s: status %q right after the scan, want discovered", d.DeviceID, d.Status)
		}
	}
	idOf := map[string]string{} // simulator id → discovered device id
	for _, d := range s.mix.Devices() {
		host := strings.Split(d.GetAddress(), ":")[0]
		found, ok := byAddr[host]
		k, _ := s.mix.Kind(d.GetMinerId())
		want := map[mixed.Kind]string{mixed.KindAntminer: "antminer", mixed.KindProto: "proto", mixed.KindCGMiner: "cgminer"}[k]
		if !ok || found.Protocol != want {
			t.Fatalf("%s at %s: discovered as %+v, want protocol %s", d.GetMinerId(), host, found, want)
		}
		if found.Serial != d.GetSerial() {
			t.Errorf("%s: discovered serial %q, simulator %q", d.GetMinerId(), found.Serial, d.GetSerial())
		}
		idOf[d.GetMinerId()] = found.DeviceID
	}
	// Discovery claims nothing: no miner runs, the device list shows them all as discovered.
	if ms := s.miners(); len(ms) != 0 {
		t.Fatalf("after discovery the API lists %d miners; discovery must not claim ownership", len(ms))
	}
	if st, err := s.c.Node.Miners(context.Background()); err != nil || len(st) != 0 {
		t.Fatalf("after discovery the node runs %d miners (%v)", len(st), err)
	}
	var list struct {
		Devices []deviceView `json:"devices"`
	}
	if code := s.do("GET", "/api/v1/devices?status=discovered", nil, &list); code != 200 || len(list.Devices) != 12 {
		t.Fatalf("GET /devices?status=discovered: HTTP %d, %d devices", code, len(list.Devices))
	}

	// Pairing: stock logins work; the locked Antminer needs credentials, refuses wrong ones, takes the right.
	var plain []string
	for _, id := range append(append(slices.Clone(antIDs[1:]), cgmIDs...), protoIDs[1:]...) {
		plain = append(plain, idOf[id])
	}
	pv := s.pair(t, plain, nil)
	for _, id := range plain {
		if st, msg := pairStatus(pv, id); st != "paired" {
			t.Errorf("%s: %s %q, want paired", id, st, msg)
		}
	}
	lockedID := idOf[antIDs[0]]
	if st, msg := pairStatus(s.pair(t, []string{lockedID}, nil), lockedID); st != "needs_credentials" {
		t.Fatalf("locked Antminer without credentials: %s %q, want needs_credentials", st, msg)
	}
	if st, msg := pairStatus(s.pair(t, []string{lockedID}, map[string]string{"username": "root", "password": "root-but-wrong"}), lockedID); st != "wrong_credentials" {
		t.Fatalf("locked Antminer with wrong credentials: %s %q, want wrong_credentials", st, msg)
	}
	if code := s.do("GET", "/api/v1/devices?status=discovered", nil, &list); code != 200 {
		t.Fatal(code)
	}
	for _, d := range list.Devices {
		if d.DeviceID == lockedID && (d.Pairing == nil || d.Pairing.Status != "wrong_credentials") {
			t.Errorf("device list: %s pairing %+v, want wrong_credentials", lockedID, d.Pairing)
		}
	}
	if st, msg := pairStatus(s.pair(t, []string{lockedID}, map[string]string{"username": "root", "password": antPassword}), lockedID); st != "paired" {
		t.Fatalf("locked Antminer with its credentials: %s %q, want paired", st, msg)
	}
	// The Proto rig paired to another key: needs its password, refuses a wrong one, then pairs with this node.
	takenID := idOf[protoIDs[0]]
	if st, msg := pairStatus(s.pair(t, []string{takenID}, nil), takenID); st != "needs_credentials" {
		t.Fatalf("rig paired elsewhere, no password: %s %q, want needs_credentials", st, msg)
	}
	if st, msg := pairStatus(s.pair(t, []string{takenID}, map[string]string{"password": "not-the-rig-password"}), takenID); st != "wrong_credentials" {
		t.Fatalf("rig paired elsewhere, wrong password: %s %q, want wrong_credentials", st, msg)
	}
	if st, msg := pairStatus(s.pair(t, []string{takenID}, map[string]string{"password": protoPassword}), takenID); st != "paired" {
		t.Fatalf("rig paired elsewhere, its password: %s %q, want paired", st, msg)
	}
	if k := taken.Snapshot().AuthKey; k == nil || k.Equal(otherKey.Public()) {
		t.Fatal("the rig still trusts the other controller's key")
	}

	// Paired devices join the node and report telemetry; the locked Antminer is driven with its sealed login.
	waitFor(t, 20*time.Second, "12 paired miners mining", func() bool {
		ms := s.miners()
		if len(ms) != 12 {
			return false
		}
		for _, m := range ms {
			if m.State != "mining" {
				return false
			}
		}
		return true
	})
	if code := s.do("GET", "/api/v1/devices?status=paired", nil, &list); code != 200 || len(list.Devices) != 12 {
		t.Fatalf("GET /devices?status=paired: HTTP %d, %d devices", code, len(list.Devices))
	}
	st, msg := s.run(map[string]any{"miner_ids": []string{lockedID}, "action": "blink"})
	if st != "succeeded" || !locked.Snapshot().Blinking {
		t.Fatalf("blink the locked Antminer with its sealed login: %s %q", st, msg)
	}
	// A device belongs to one node: pairing it again to another node is refused.
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if code := s.do("POST", "/api/v1/pairings", map[string]any{"device_ids": []string{lockedID}, "node": "n-elsewhere"}, &e); code != 400 {
		t.Fatalf("pair to an unknown node: HTTP %d", code)
	}

	// No plaintext password in the cloud's store (its Badger files, the vault included) or in the logs.
	s.stop()
	if grepDir(t, filepath.Join(s.dataDir, "cloud"), started.ScanID) == "" {
		t.Fatal("the scan id is not found in the cloud store's files either: the search cannot see stored values")
	}
	for _, secret := range []string{antPassword, protoPassword} {
		if strings.Contains(s.logs.String(), secret) {
			t.Errorf("a password given at pairing appears in the logs")
		}
		for _, dir := range []string{filepath.Join(s.dataDir, "cloud"), filepath.Join(s.dataDir, "node")} {
			if f := grepDir(t, dir, secret); f != "" {
				t.Errorf("a password given at pairing is in plain text in %s", f)
			}
		}
	}
}

// grepDir returns the first file under dir that contains s, "" when none does.
func grepDir(t *testing.T, dir, s string) string {
	t.Helper()
	found := ""
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			found = path
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	return found
}

// TestDemoMix runs `hashfleet demo --mix`: a mixed site end to end.
func TestDemoMix(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- RunDemo(ctx, DemoOptions{Miners: 10, Mix: "antminer=60,proto=30,cgminer=10", Listen: "127.0.0.1:0",
			AdminToken: testToken, PollInterval: 300 * time.Millisecond, Seed: 3, Logger: quietLogger(), DataDir: t.TempDir()}, out)
	}()
	var base string
	waitFor(t, 20*time.Second, "demo prints its URL", func() bool {
		for _, l := range strings.Split(out.String(), "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "operator" && f[1] == "UI" {
				base = strings.TrimSuffix(f[2], "/")
			}
		}
		return base != ""
	})
	if !strings.Contains(out.String(), "6 Antminers, 3 Proto rigs, 1 CGMiner-only miners") {
		t.Errorf("demo output does not describe the mix:\n%s", out.String())
	}
	s := &site{t: t, base: base}
	kinds := map[string]int{}
	waitFor(t, 20*time.Second, "10 mixed miners mining", func() bool {
		ms := s.miners()
		clear(kinds)
		for id, m := range ms {
			if m.State != "mining" {
				return false
			}
			kinds[strings.SplitN(id, "-", 2)[0]]++
		}
		return len(ms) == 10
	})
	if kinds["ant"] != 6 || kinds["proto"] != 3 || kinds["cgm"] != 1 {
		t.Fatalf("miners by kind %v, want 6 ant, 3 proto, 1 cgm", kinds)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v", err)
	}
}

// TestSplitDiscoveryAndPairing: the same flow in split mode, over the TLS gateway: the scan's Antminer login
// and the pairing's are sealed to the enrolled node's credential key (from its enrollment record), and the
// paired Antminer is driven with the login the node opens from its ownership map.
func TestSplitDiscoveryAndPairing(t *testing.T) {
	s := startSplit(t, splitOpts{})
	cfg := antweb.DefaultConfig()
	cfg.Count, cfg.Seed = 1, 9
	ant, err := antweb.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ant.Close() })
	const password = "split-Secret-4411"
	ant.Miners()[0].SetCredentials("admin", password)
	dev := ant.Devices()[0]
	port := func(addr string) int {
		_, p, _ := strings.Cut(addr, ":")
		n, _ := strconv.Atoi(p)
		return n
	}
	var started struct {
		ScanID string `json:"scan_id"`
	}
	if code := s.do("POST", "/api/v1/discovery", map[string]any{"node": s.nodeID, "targets": []string{"127.0.0.1"},
		"protocols": []string{"antminer"}, "ports": map[string]any{"cgminer": []int{port(dev.GetAddress())}, "antminer_web": []int{port(dev.GetWebAddress())}},
		"credentials": map[string]string{"username": "admin", "password": password}}, &started); code != 202 {
		t.Fatalf("POST /discovery: HTTP %d", code)
	}
	var scan discoveryView
	waitFor(t, 20*time.Second, "split scan done", func() bool {
		return s.do("GET", "/api/v1/discovery/"+started.ScanID, nil, &scan) == 200 && scan.State == "done"
	})
	if len(scan.Devices) != 1 || scan.Devices[0].Protocol != "antminer" || !strings.EqualFold(scan.Devices[0].MAC, dev.GetMac()) {
		t.Fatalf("scan with the Antminer login: %+v (want its MAC %s)", scan, dev.GetMac())
	}
	id := scan.Devices[0].DeviceID
	var pv pairingView
	if code := s.do("POST", "/api/v1/pairings", map[string]any{"device_ids": []string{id},
		"credentials": map[string]string{"username": "admin", "password": password}}, &pv); code != 200 || len(pv.Devices) != 1 || pv.Devices[0].Status != "paired" {
		t.Fatalf("pair over split mode: HTTP %d %+v", code, pv)
	}
	s.waitMining(len(s.fleet.Devices()) + 1)
	cid := s.command("blink", id)
	s.waitCommand(cid, "succeeded")
	if !ant.Miners()[0].Snapshot().Blinking {
		t.Fatal("the paired Antminer is not blinking")
	}
	st, err := s.srv.Server.Vault().Status(id)
	if err != nil || len(st.Owners) != 1 || st.Owners[0] != s.nodeID {
		t.Fatalf("vault status of %s: %+v %v, want sealed to %s only", id, st, err, s.nodeID)
	}
}
