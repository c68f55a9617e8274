package bootstrap

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/miners/sim/antweb"
	nodeart "github.com/hashfleet/hashfleet/node/artifacts"
	"github.com/hashfleet/hashfleet/node/identity"
	"github.com/hashfleet/hashfleet/node/uplink"
	"github.com/hashfleet/hashfleet/server/api"
	srvart "github.com/hashfleet/hashfleet/server/artifacts"
)

// linkCutter forwards TCP to target; the first cuts connections are closed once limit bytes flowed from
// the server to the client: a dropped stream mid-transfer on a real socket.
type linkCutter struct {
	lis      net.Listener
	target   string
	limit    int64
	cuts     atomic.Int32
	toClient atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func startLinkCutter(t *testing.T, target string, limit int64, cuts int32) *linkCutter {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &linkCutter{lis: lis, target: target, limit: limit}
	p.cuts.Store(cuts)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = lis.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *linkCutter) accept() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		cut := p.cuts.Add(-1) >= 0
		var moved atomic.Int64
		pipe := func(dst, src net.Conn, down bool) {
			defer p.wg.Done()
			buf := make([]byte, 16<<10)
			for {
				n, err := src.Read(buf)
				if n > 0 {
					if down {
						p.toClient.Add(int64(n))
						if cut && moved.Add(int64(n)) > p.limit {
							_ = c.Close()
							_ = s.Close()
							return
						}
					}
					if _, werr := dst.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					_ = dst.Close()
					_ = src.Close()
					return
				}
			}
		}
		p.wg.Add(2)
		go pipe(s, c, false)
		go pipe(c, s, true)
	}
}

// postArtifact uploads raw bytes through the operator API.
func (s *splitSite) postArtifact(data []byte, sha string) (int, srvart.Meta) {
	s.t.Helper()
	req, err := http.NewRequest("POST", s.base+"/api/v1/artifacts", bytes.NewReader(data))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/octet-stream")
	if sha != "" {
		req.Header.Set(api.ArtifactSHAHeader, sha)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m srvart.Meta
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(raw, &m); err != nil {
			s.t.Fatalf("decode %q: %v", raw, err)
		}
	}
	return resp.StatusCode, m
}

func (s *splitSite) getArtifact(sha string) (int, []byte) {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.base+"/api/v1/artifacts/"+sha, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// artifactClientVia is the node's artifact client dialling the gateway through addr (a link cutter), with
// the node's own TLS pin and session proof.
func (s *splitSite) artifactClientVia(addr string) *nodeart.Client {
	s.t.Helper()
	idDir := filepath.Join(s.nodeDir, nodeIdentityDir)
	id, err := identity.Load(idDir)
	if err != nil {
		s.t.Fatal(err)
	}
	e := s.node.Enrollment
	u, err := url.Parse(e.ServerURL)
	if err != nil {
		s.t.Fatal(err)
	}
	u.Host = addr
	e.ServerURL = u.String()
	dial, err := gatewayDialer(e, false)
	if err != nil {
		s.t.Fatal(err)
	}
	c, err := newNodeArtifacts(s.t.TempDir(), e.NodeID, dial, uplink.ProofOfPossession(e.NodeID, e.APIKey, id.SignChallenge), nil, quietLogger())
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func randomBlob(t *testing.T, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// TestSplitArtifactsOverGateway: an operator uploads a firmware image through the API; the node fetches it
// over the TLS gateway with its session; a fetch cut twice mid-stream resumes from the bytes held; an image
// altered in the cloud's store is refused by the node's checksum; a log bundle goes the other way and is
// served by the API.
func TestSplitArtifactsOverGateway(t *testing.T) {
	s := startSplit(t, splitOpts{miners: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc := s.srv.Server.Artifacts()
	if svc == nil {
		t.Fatal("the split server has no artifact service")
	}

	fw, sha := randomBlob(t, 1<<20)
	if code, _ := s.postArtifact(fw, strings.Repeat("0", 64)); code != http.StatusUnprocessableEntity {
		t.Fatalf("upload with a wrong X-Artifact-Sha256: %d, want 422", code)
	}
	code, m := s.postArtifact(fw, sha)
	if code != http.StatusCreated || m.SHA256 != sha || m.Size != int64(len(fw)) {
		t.Fatalf("upload: %d %+v", code, m)
	}
	if code, b := s.getArtifact(sha); code != http.StatusOK || !bytes.Equal(b, fw) {
		t.Fatalf("GET artifact: %d, %d bytes", code, len(b))
	}
	if code, _ := s.getArtifact(strings.Repeat("a", 64)); code != http.StatusNotFound {
		t.Fatalf("GET unknown artifact: %d, want 404", code)
	}
	if code, _ := s.getArtifact("..%2f..%2fetc%2fpasswd"); code != http.StatusBadRequest && code != http.StatusNotFound {
		t.Fatalf("GET a path: %d, want 400 or 404", code)
	}
	ref := &pb.ArtifactRef{Sha256: sha, Size: int64(len(fw)), Name: "fw.bin"}

	// Not granted to this node's command: refused.
	if _, err := s.node.Artifacts.Download(ctx, "cmd-fw-1", ref); !errors.Is(err, nodeart.ErrRefused) {
		t.Fatalf("ungranted download: %v, want ErrRefused", err)
	}
	svc.Grant(s.nodeID, "cmd-fw-1", sha, srvart.ToNode)

	// The node's own client, straight over the gateway.
	path, err := s.node.Artifacts.Download(ctx, "cmd-fw-1", ref)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, fw) {
		t.Fatal("downloaded image differs")
	}

	// Through a link that drops twice mid-transfer: resumed, not restarted.
	cutter := startLinkCutter(t, s.srv.GatewayAddr, 350<<10, 2)
	path, err = s.artifactClientVia(cutter.lis.Addr().String()).Download(ctx, "cmd-fw-1", ref)
	if err != nil {
		t.Fatalf("download over a dropping link: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, fw) {
		t.Fatal("resumed image differs")
	}
	if n := cutter.toClient.Load(); n > int64(len(fw))*3/2 {
		t.Fatalf("%d bytes crossed the link for a %d-byte image: the transfer restarted instead of resuming", n, len(fw))
	}

	// The cloud's copy altered on disk: the node refuses it and keeps nothing.
	bad := bytes.Clone(fw)
	bad[len(bad)/2] ^= 0x55
	if err := os.WriteFile(filepath.Join(s.srvOpts.DataDir, "artifacts", "blobs", sha), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := s.artifactClientVia(s.srv.GatewayAddr)
	if _, err := fresh.Download(ctx, "cmd-fw-1", ref); !errors.Is(err, nodeart.ErrChecksum) {
		t.Fatalf("download of an altered image: %v, want ErrChecksum", err)
	}
	if _, err := os.Stat(fresh.Path(sha)); !os.IsNotExist(err) {
		t.Fatalf("the altered image was kept: %v", err)
	}

	// A log bundle node→cloud, then served by the API.
	bundle, bsha := randomBlob(t, 300<<10)
	file := filepath.Join(t.TempDir(), "logs.tar.gz")
	if err := os.WriteFile(file, bundle, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.node.Artifacts.Upload(ctx, "cmd-logs-1", file, "logs.tar.gz"); !errors.Is(err, nodeart.ErrRefused) {
		t.Fatalf("ungranted upload: %v, want ErrRefused", err)
	}
	svc.Grant(s.nodeID, "cmd-logs-1", "", srvart.FromNode)
	up, err := s.node.Artifacts.Upload(ctx, "cmd-logs-1", file, "logs.tar.gz")
	if err != nil || up.GetSha256() != bsha {
		t.Fatalf("upload: %v %v", up, err)
	}
	if code, b := s.getArtifact(bsha); code != http.StatusOK || !bytes.Equal(b, bundle) {
		t.Fatalf("GET uploaded bundle: %d, %d bytes", code, len(b))
	}
}

// TestSplitFirmwareRolloutStopsAtFailingHealthGate: 50 simulated Antminers behind one node over the TLS
// gateway. The operator uploads a firmware image and rolls it out in batches of 10 with a health gate. Each
// batch's node fetches the image over Artifacts (bound to the batch's command) and sends it to upgrade.cgi;
// the miners reboot into it. One miner of the third batch hashes at 40% after its update: the third batch
// fails its gate, the rollout stops and reports that miner, and the last two batches keep their firmware.
func TestSplitFirmwareRolloutStopsAtFailingHealthGate(t *testing.T) {
	if testing.Short() {
		t.Skip("50 miners")
	}
	s := startSplit(t, splitOpts{antweb: 50})
	var page struct {
		Items []minerView `json:"items"`
	}
	if s.do("GET", "/api/v1/miners?limit=100", nil, &page) != 200 || len(page.Items) != 50 {
		t.Fatalf("miners: %d", len(page.Items))
	}
	ids := make([]string, 0, 50)
	for _, m := range page.Items {
		ids = append(ids, m.ID)
	}
	stock := map[string]string{}
	for _, id := range ids {
		stock[id] = s.antweb.Miner(id).Snapshot().API.Firmware
	}
	bad := ids[25] // batch 2 (0-based) of 10
	s.antweb.Miner(bad).SetUpgradeFault(antweb.UpgradeDegrade)

	img := sim.FirmwareImage("2026.11.28-hf1", 48<<10)
	code, art := s.postArtifact(img, "")
	if code != http.StatusCreated {
		t.Fatalf("upload: %d", code)
	}
	// Hostile rollout requests are refused before anything runs.
	for name, body := range map[string]map[string]any{
		"unknown artifact": {"miner_ids": ids, "artifact": strings.Repeat("0", 64), "batch_size": 10, "health_gate": map[string]any{"min_hashrate_ratio": 0.8}},
		"ratio above 1":    {"miner_ids": ids, "artifact": art.SHA256, "batch_size": 10, "health_gate": map[string]any{"min_hashrate_ratio": 2}},
		"batch size 0":     {"miner_ids": ids, "artifact": art.SHA256, "batch_size": 0, "health_gate": map[string]any{"min_hashrate_ratio": 0.8}},
		"no miners":        {"artifact": art.SHA256, "batch_size": 10, "health_gate": map[string]any{"min_hashrate_ratio": 0.8}},
		"bad settle":       {"miner_ids": ids, "artifact": art.SHA256, "batch_size": 10, "health_gate": map[string]any{"min_hashrate_ratio": 0.8, "settle": "soon"}},
	} {
		if st := s.do("POST", "/api/v1/rollouts", body, nil); st != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", name, st)
		}
	}

	var ro struct {
		ID string `json:"id"`
	}
	if st := s.do("POST", "/api/v1/rollouts", map[string]any{"miner_ids": ids, "artifact": art.SHA256, "batch_size": 10,
		"health_gate": map[string]any{"min_hashrate_ratio": 0.8, "settle": "2500ms"}}, &ro); st != http.StatusAccepted {
		t.Fatalf("start rollout: HTTP %d", st)
	}
	type gateMiner struct {
		MinerID string  `json:"miner_id"`
		Ratio   float64 `json:"ratio"`
		Passed  bool    `json:"passed"`
	}
	var view struct {
		State   string `json:"state"`
		Reason  string `json:"reason"`
		Batches []struct {
			State     string `json:"state"`
			CommandID string `json:"command_id"`
			Gate      *struct {
				Passed bool        `json:"passed"`
				Miners []gateMiner `json:"miners"`
			} `json:"gate"`
		} `json:"batches"`
	}
	waitFor(t, 90*time.Second, "the rollout to end", func() bool {
		return s.do("GET", "/api/v1/rollouts/"+ro.ID, nil, &view) == 200 && view.State != "running"
	})
	if view.State != "stopped" || !strings.Contains(view.Reason, "batch 2 failed its health gate") || !strings.Contains(view.Reason, bad) {
		t.Fatalf("rollout %s: %q", view.State, view.Reason)
	}
	want := []string{"passed", "passed", "failed", "pending", "pending"}
	for i, b := range view.Batches {
		if b.State != want[i] {
			t.Fatalf("batch %d: %s, want %s (%+v)", i, b.State, want[i], view.Batches)
		}
	}
	for _, m := range view.Batches[2].Gate.Miners {
		if (m.MinerID == bad) == m.Passed {
			t.Fatalf("gate of %s: passed=%v ratio %.2f", m.MinerID, m.Passed, m.Ratio)
		}
	}
	for i, id := range ids {
		got := s.antweb.Miner(id).Snapshot().API.Firmware
		switch {
		case i < 30 && got != "2026.11.28-hf1":
			t.Errorf("miner %d (%s) runs %q after its batch, want the new image", i, id, got)
		case i >= 30 && got != stock[id]:
			t.Errorf("miner %d (%s) runs %q: a batch after the failed one ran", i, id, got)
		}
	}
	// The image went to each miner over upgrade.cgi, once.
	uploads := 0
	for _, w := range s.antweb.WriteLog() {
		if w.Path == "/cgi-bin/upgrade.cgi" {
			uploads++
		}
	}
	if uploads != 30 {
		t.Fatalf("%d upgrade.cgi calls, want 30", uploads)
	}
	// A node cannot fetch the image under a command that does not name it.
	if _, err := s.artifactClientVia(s.srv.GatewayAddr).Download(context.Background(), "cmd-not-issued", &pb.ArtifactRef{Sha256: art.SHA256, Size: art.Size}); !errors.Is(err, nodeart.ErrRefused) {
		t.Fatalf("fetch under a foreign command: %v, want ErrRefused", err)
	}
}

// TestSplitPasswordRotationKeepsRefusedMinersLogin: update_password over three simulated Antminers, one of
// which refuses the new password. The two that confirm run with the new login and the cloud's vault holds it
// for them; the refusing miner keeps its password and has no new envelope; the command shows the miner's
// reason. After a node restart every miner is polled again: the new envelopes reach the node and open.
func TestSplitPasswordRotationKeepsRefusedMinersLogin(t *testing.T) {
	s := startSplit(t, splitOpts{antweb: 3})
	var page struct {
		Items []minerView `json:"items"`
	}
	if s.do("GET", "/api/v1/miners", nil, &page) != 200 || len(page.Items) != 3 {
		t.Fatalf("miners: %d", len(page.Items))
	}
	ids := []string{page.Items[0].ID, page.Items[1].ID, page.Items[2].ID}
	refuser := ids[1]
	s.antweb.Miner(refuser).RefusePasswordChanges("password policy: no reuse of the last 5 passwords")
	vault := s.srv.Server.Vault()

	// Hostile requests: no password, a password on another action, an over-long password.
	for name, body := range map[string]map[string]any{
		"no password":       {"miner_ids": ids, "action": "update_password"},
		"password on blink": {"miner_ids": ids, "action": "blink", "password": "x"},
		"too long":          {"miner_ids": ids, "action": "update_password", "password": strings.Repeat("p", 65)},
	} {
		if st := s.do("POST", "/api/v1/commands", body, nil); st != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", name, st)
		}
	}

	var res struct {
		CommandID string `json:"command_id"`
	}
	if st := s.do("POST", "/api/v1/commands", map[string]any{"miner_ids": ids, "action": "update_password", "password": "Rot8ed-2026!"}, &res); st != http.StatusAccepted {
		t.Fatalf("update_password: HTTP %d", st)
	}
	v := s.waitCommand(res.CommandID, "failed")
	for _, r := range v.Results {
		switch {
		case r.MinerID == refuser && (r.Status != "failed" || !strings.Contains(r.Message, "no reuse of the last 5 passwords")):
			t.Errorf("refusing miner: %s %q, want failed with the miner's reason", r.Status, r.Message)
		case r.MinerID != refuser && r.Status != "succeeded":
			t.Errorf("miner %s: %s %q", r.MinerID, r.Status, r.Message)
		}
	}
	// The command record holds no plaintext.
	raw, _ := json.Marshal(v)
	if strings.Contains(string(raw), "Rot8ed-2026!") {
		t.Fatal("the command shows the password")
	}
	for _, id := range ids {
		pw := s.antweb.Miner(id).Password()
		_, err := vault.Envelope(s.nodeID, id, "miner-login")
		if id == refuser {
			if pw != "root" || err == nil {
				t.Errorf("refusing miner: password %q, vault login err %v: want the old login kept", pw, err)
			}
			continue
		}
		if pw != "Rot8ed-2026!" || err != nil {
			t.Errorf("miner %s: password %q, vault login err %v", id, pw, err)
		}
	}
	// A restarted node gets the rotated logins in its ownership map and polls every miner with them.
	s.stopNode()
	before := map[string]antweb.AuthStats{}
	for _, id := range ids {
		before[id] = s.antweb.Miner(id).AuthStats()
	}
	s.startNode()
	s.waitMining(3)
	// The node starts from the ownership map it stored, which may still hold the old login until the
	// cloud's map arrives (one refused attempt at most); from then on every poll logs in.
	waitFor(t, 10*time.Second, "every miner's web side polled with a login it accepts", func() bool {
		for _, id := range ids {
			if s.antweb.Miner(id).AuthStats().Accepted <= before[id].Accepted {
				return false
			}
		}
		return true
	})
	settled := map[string]antweb.AuthStats{}
	for _, id := range ids {
		settled[id] = s.antweb.Miner(id).AuthStats()
		if n := settled[id].Failed - before[id].Failed; n > 1 {
			t.Errorf("miner %s: %d failed logins after the restart", id, n)
		}
	}
	waitFor(t, 10*time.Second, "more authenticated polls", func() bool {
		for _, id := range ids {
			if s.antweb.Miner(id).AuthStats().Accepted < settled[id].Accepted+2 {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		if st := s.antweb.Miner(id).AuthStats(); st.Failed != settled[id].Failed {
			t.Errorf("miner %s: logins still failing after the ownership map arrived", id)
		}
	}
}

// TestSplitCoolingAndLogs: set_cooling and get_cooling change and read the Antminers' fan control through
// the gateway; download_logs has the node fetch a miner's log, bundle it and put the bundle to the cloud,
// where the API serves it by the sha256 the result names.
func TestSplitCoolingAndLogs(t *testing.T) {
	s := startSplit(t, splitOpts{antweb: 2})
	var page struct {
		Items []minerView `json:"items"`
	}
	if s.do("GET", "/api/v1/miners", nil, &page) != 200 || len(page.Items) != 2 {
		t.Fatalf("miners: %d", len(page.Items))
	}
	id := page.Items[0].ID
	for name, body := range map[string]map[string]any{
		"unknown mode":       {"miner_ids": []string{id}, "action": "set_cooling", "cooling_mode": "freon"},
		"manual without pwm": {"miner_ids": []string{id}, "action": "set_cooling", "cooling_mode": "manual"},
		"mode on reboot":     {"miner_ids": []string{id}, "action": "reboot", "cooling_mode": "auto"},
	} {
		if st := s.do("POST", "/api/v1/commands", body, nil); st != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", name, st)
		}
	}
	var res struct {
		CommandID string `json:"command_id"`
	}
	if st := s.do("POST", "/api/v1/commands", map[string]any{"miner_ids": []string{id}, "action": "set_cooling", "cooling_mode": "immersion"}, &res); st != http.StatusAccepted {
		t.Fatalf("set_cooling: HTTP %d", st)
	}
	s.waitCommand(res.CommandID, "succeeded")
	if st := s.antweb.Miner(id).Snapshot(); !st.FanCtrl || st.FanPWM != 0 {
		t.Fatalf("after immersion: fan ctrl %v pwm %d", st.FanCtrl, st.FanPWM)
	}
	v := s.waitCommand(s.command("get_cooling", id), "succeeded")
	if len(v.Results) != 1 || v.Results[0].Message != "cooling immersion" {
		t.Fatalf("get_cooling: %+v", v.Results)
	}

	v = s.waitCommand(s.command("download_logs", id), "succeeded")
	msg := v.Results[0].Message
	_, after, ok := strings.Cut(msg, "artifact ")
	if !ok || len(after) < 64 {
		t.Fatalf("download_logs result %q names no artifact", msg)
	}
	code, bundle := s.getArtifact(after[:64])
	if code != http.StatusOK {
		t.Fatalf("GET bundle: %d", code)
	}
	zr, err := gzip.NewReader(bytes.NewReader(bundle))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != id+"/kernel.log" {
		t.Fatalf("bundle entry %v %v", hdr, err)
	}
	log, _ := io.ReadAll(tr)
	if !strings.Contains(string(log), "Booting Linux") || !strings.Contains(string(log), "fan control manual, pwm 0") {
		t.Fatalf("bundled log %q", log)
	}
	// A node may not put under a command that asks for no upload.
	file := filepath.Join(t.TempDir(), "x")
	_ = os.WriteFile(file, []byte("not asked for"), 0o600)
	if _, err := s.node.Artifacts.Upload(context.Background(), res.CommandID, file, "x"); !errors.Is(err, nodeart.ErrRefused) {
		t.Fatalf("put under set_cooling: %v, want ErrRefused", err)
	}
}
