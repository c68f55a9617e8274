package bootstrap

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/miners/sim/antweb"
	"github.com/hashfleet/hashfleet/node/identity"
	"github.com/hashfleet/hashfleet/node/localui"
	"github.com/hashfleet/hashfleet/node/uplink"
	"github.com/hashfleet/hashfleet/server/grains"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// splitSite is split mode over real sockets: a cloud server with its TLS gateway on loopback, a node process
// (in this test process) enrolled through the API and dialling the gateway over TLS with the pinned CA, and
// simulated miners on loopback TCP.
type splitSite struct {
	t       *testing.T
	fleet   *sim.Fleet
	srv     *ServerProcess
	srvOpts ServerOptions
	node    *NodeProcess
	nodeDir string
	nodeID  string
	base    string
	metrics bool // splitOpts.metrics
	// localUI: the node serves its local UI on 127.0.0.1:0 (local_degraded_test.go); localUITune adjusts it.
	localUI     bool
	localUITune func(*localui.Config)
	dialOpts    []grpc.DialOption // splitOpts.dialOpts
	nodeClock   clock.Clock       // splitOpts.nodeClock
	antweb      *antweb.Fleet     // splitOpts.antweb: the site's Antminers (web CGI + CGMiner API); fleet is their API side
}

// startSiteFleet starts the CGMiner-only fleet, or with Antminers returns their API side.
func startSiteFleet(cfg sim.Config, af *antweb.Fleet) (*sim.Fleet, error) {
	if af != nil {
		return af.API(), nil
	}
	return sim.Start(cfg)
}

// devices are the site's miners as the node is told about them.
func (s *splitSite) devices() []*pb.Device {
	if s.antweb != nil {
		return s.antweb.Devices()
	}
	return s.fleet.Devices()
}

type splitOpts struct {
	miners     int
	clock      clock.Clock // the server's business clock (default real)
	sessionTTL time.Duration
	mtls       bool // the server requires mTLS (--gateway-mtls)
	metrics    bool // both serve /metrics on loopback (a free port); the node forwards its process metrics
	localUI    bool // the node serves its local UI on loopback (a free port)
	// localUITune adjusts the local UI's config (refresh interval for the browser test).
	localUITune func(*localui.Config)
	// dialOpts are added to the node's gateway dial options (a partition to cut the link with).
	dialOpts []grpc.DialOption
	// nodeClock is the node's business clock (default real): polls, rules, schedules, ramps, reconnects.
	nodeClock clock.Clock
	// antweb: the site's miners are this many simulated Antminers (web CGI and CGMiner API) instead.
	antweb int
}

// safeBuffer is an io.Writer tests read while a goroutine writes it.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startSplit(t *testing.T, o splitOpts) *splitSite {
	t.Helper()
	if o.miners == 0 {
		o.miners = 3
	}
	cfg := sim.DefaultConfig()
	cfg.Count, cfg.Seed, cfg.RebootDuration = o.miners, 5, 2*time.Second
	var af *antweb.Fleet
	if o.antweb > 0 {
		ac := antweb.DefaultConfig()
		ac.Count, ac.Seed, ac.RebootDuration = o.antweb, 5, time.Second
		var err error
		if af, err = antweb.Start(ac); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = af.Close() })
	}
	fleet, err := startSiteFleet(cfg, af)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Close() })
	s := &splitSite{t: t, fleet: fleet, nodeDir: t.TempDir(), antweb: af}
	s.srvOpts = ServerOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:0", GatewayListen: "127.0.0.1:0", AdminToken: testToken,
		DebugInject: true, SessionTTL: o.sessionTTL, DrainReconnectAfter: 100 * time.Millisecond, Clock: o.clock, Logger: quietLogger(),
		GatewayMTLS: o.mtls}
	s.localUI, s.localUITune, s.dialOpts = o.localUI, o.localUITune, o.dialOpts
	s.nodeClock = o.nodeClock
	if s.metrics = o.metrics; o.metrics {
		m := loopbackConfig()
		s.srvOpts.Metrics = &m
	}
	s.startServer()
	s.enroll()
	s.startNode()
	s.pairAll()
	return s
}

func (s *splitSite) startServer() {
	s.t.Helper()
	p, err := StartServer(context.Background(), s.srvOpts)
	if err != nil {
		s.t.Fatal(err)
	}
	s.srv, s.base = p, "http://"+p.HTTPAddr
	// The next start reuses the addresses, as a restarted process would.
	s.srvOpts.Listen, s.srvOpts.GatewayListen = p.HTTPAddr, p.GatewayAddr
	s.t.Cleanup(func() { s.stopServer() })
}

func (s *splitSite) stopServer() {
	if s.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.srv.Stop(ctx); err != nil {
		s.t.Errorf("stop server: %v", err)
	}
	s.srv = nil
}

// enroll mints a code through the API, runs the node's enrollment against the TLS gateway (pinning the CA
// by the fingerprint the server reports), and confirms the fingerprint the node printed through the API.
func (s *splitSite) enroll() {
	s.t.Helper()
	var code struct {
		Code string `json:"code"`
	}
	if st := s.do("POST", "/api/v1/enrollment-codes", map[string]any{"site": "test-site"}, &code); st != 201 {
		s.t.Fatalf("mint code: HTTP %d", st)
	}
	out := &safeBuffer{}
	type result struct {
		nodeID string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		e, err := Enroll(context.Background(), EnrollOptions{Server: s.srv.GatewayAddr, Code: code.Code, DataDir: s.nodeDir,
			CAFingerprint: s.srv.CA.Fingerprint(), Name: "test-node", PollInterval: 20 * time.Millisecond, Logger: quietLogger()}, out)
		done <- result{e.NodeID, err}
	}()
	var printed string
	waitFor(s.t, 10*time.Second, "the node to print its fingerprint", func() bool {
		for _, l := range strings.Split(out.String(), "\n") {
			if f, ok := strings.CutPrefix(l, "node identity fingerprint: "); ok {
				printed = f
				return true
			}
		}
		return false
	})
	var pending struct {
		Nodes []struct {
			NodeID      string `json:"node_id"`
			Fingerprint string `json:"fingerprint"`
		} `json:"nodes"`
	}
	waitFor(s.t, 10*time.Second, "a pending node", func() bool {
		return s.do("GET", "/api/v1/nodes/pending", nil, &pending) == 200 && len(pending.Nodes) == 1
	})
	if pending.Nodes[0].Fingerprint != printed {
		s.t.Fatalf("the cloud shows fingerprint %s, the node printed %s", pending.Nodes[0].Fingerprint, printed)
	}
	if st := s.do("POST", "/api/v1/nodes/"+pending.Nodes[0].NodeID+"/confirm", map[string]string{"fingerprint": printed}, nil); st != 200 {
		s.t.Fatalf("confirm: HTTP %d", st)
	}
	select {
	case r := <-done:
		if r.err != nil {
			s.t.Fatalf("enroll: %v\n%s", r.err, out.String())
		}
		s.nodeID = r.nodeID
	case <-time.After(10 * time.Second):
		s.t.Fatalf("enroll did not finish after confirmation:\n%s", out.String())
	}
}

func (s *splitSite) startNode() {
	s.t.Helper()
	o := NodeRunOptions{DataDir: s.nodeDir, Devices: s.devices(), PollInterval: 300 * time.Millisecond,
		StatusInterval: 100 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond,
		Backoff: uplink.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Jitter: 0.2, StableAfter: time.Minute}, Logger: quietLogger()}
	if s.localUI {
		o.LocalUI, o.LocalUITune = "127.0.0.1:0", s.localUITune
	}
	o.GatewayDialOptions = s.dialOpts
	o.Clock = s.nodeClock
	if s.metrics {
		m := loopbackConfig()
		o.Metrics, o.ForwardMetrics, o.ForwardMetricsInterval = &m, true, 200*time.Millisecond
	}
	p, err := StartNode(context.Background(), o)
	if err != nil {
		s.t.Fatal(err)
	}
	s.node = p
	s.t.Cleanup(func() { s.stopNode() })
	s.waitLink(true)
}

func (s *splitSite) stopNode() {
	if s.node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.node.Stop(ctx); err != nil {
		s.t.Errorf("stop node: %v", err)
	}
	s.node = nil
}

func (s *splitSite) link() uplink.Status {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, _ := s.node.Node.LinkStatus(ctx)
	return st
}

func (s *splitSite) waitLink(up bool) {
	s.t.Helper()
	waitFor(s.t, 10*time.Second, fmt.Sprintf("node link up=%v", up), func() bool { return s.link().Up == up })
}

// pairAll pairs every device the node reported and waits until every miner is mining in the API.
func (s *splitSite) pairAll() {
	s.t.Helper()
	var pend struct {
		Devices []struct {
			MinerID string `json:"miner_id"`
		} `json:"devices"`
	}
	n := len(s.devices())
	waitFor(s.t, 10*time.Second, "the node's devices pending pairing", func() bool {
		return s.do("GET", "/api/v1/devices/pending?node="+s.nodeID, nil, &pend) == 200 && len(pend.Devices) == n
	})
	ids := make([]string, 0, n)
	for _, d := range pend.Devices {
		ids = append(ids, d.MinerID)
	}
	if st := s.do("POST", "/api/v1/nodes/"+s.nodeID+"/devices", map[string]any{"miner_ids": ids}, nil); st != 200 {
		s.t.Fatalf("pair: HTTP %d", st)
	}
	s.waitMining(n)
}

func (s *splitSite) waitMining(n int) {
	s.t.Helper()
	waitFor(s.t, 15*time.Second, fmt.Sprintf("%d miners mining in the API", n), func() bool {
		var page struct {
			Items []minerView `json:"items"`
		}
		if s.do("GET", "/api/v1/miners", nil, &page) != 200 || len(page.Items) != n {
			return false
		}
		for _, m := range page.Items {
			if m.State != "mining" || m.HashrateTHs <= 0 {
				return false
			}
		}
		return true
	})
}

func (s *splitSite) do(method, path string, body any, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

func (s *splitSite) command(action string, ids ...string) string {
	s.t.Helper()
	var res struct {
		CommandID string `json:"command_id"`
	}
	if st := s.do("POST", "/api/v1/commands", map[string]any{"miner_ids": ids, "action": action}, &res); st != 202 {
		s.t.Fatalf("POST command %s: HTTP %d", action, st)
	}
	return res.CommandID
}

func (s *splitSite) waitCommand(id, status string) commandView {
	s.t.Helper()
	var v commandView
	waitFor(s.t, 15*time.Second, "command "+id+" "+status, func() bool {
		return s.do("GET", "/api/v1/commands/"+id, nil, &v) == 200 && v.Status == status
	})
	return v
}

// writes counts every write any simulated miner received.
func (s *splitSite) writes() int {
	n := 0
	for _, m := range s.fleet.Miners() {
		n += len(m.WriteLog())
	}
	return n
}

// mark is the node's persisted seq high-water mark.
func (s *splitSite) mark() uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	g, err := s.node.Node.Gate(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return g.SeqMark
}

// audit waits for the node's audit record of seq with the given code, and returns it.
func (s *splitSite) audit(seq uint64, commandID string, code pb.ResultCode) *pb.AuditRecord {
	s.t.Helper()
	var found *pb.AuditRecord
	waitFor(s.t, 10*time.Second, fmt.Sprintf("audit record seq %d %s %s", seq, commandID, code), func() bool {
		recs, err := s.node.Node.Audit(0, 0)
		if err != nil {
			return false
		}
		for _, r := range recs {
			if r.GetMonotonicSeq() == seq && r.GetCommandId() == commandID && r.GetCode() == code {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// orgKey returns the private key of one of the org's command keys (index in creation order).
func (s *splitSite) orgKey(i int) (string, ed25519.PrivateKey) {
	s.t.Helper()
	recs := s.srv.Server.Keys().Export()
	if i >= len(recs) {
		s.t.Fatalf("org has %d keys", len(recs))
	}
	return recs[i].Key.GetKeyId(), ed25519.NewKeyFromSeed(recs[i].PrivateSeed)
}

// signed builds a command for this node, signed with the org's key i.
func (s *splitSite) signed(id string, seq uint64, keyIndex int, minerIDs ...string) *pb.ControlCommand {
	s.t.Helper()
	keyID, priv := s.orgKey(keyIndex)
	return signWith(s.t, keyID, priv, &pb.ControlCommand{CommandId: id, Actor: "user:test", NodeId: s.nodeID, MonotonicSeq: seq,
		IdempotencyKey: id, Payload: payload(s.t, pb.Action_ACTION_REBOOT, minerIDs...)})
}

func payload(t *testing.T, a pb.Action, ids ...string) []byte {
	t.Helper()
	b, err := proto.Marshal(&pb.CommandPayload{MinerIds: ids, Spec: &pb.CommandSpec{Action: a}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signWith(t *testing.T, keyID string, priv ed25519.PrivateKey, cmd *pb.ControlCommand) *pb.ControlCommand {
	t.Helper()
	cmd.KeyId = keyID
	if err := signing.Sign(priv, cmd); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func (s *splitSite) inject(cmd *pb.ControlCommand) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The node may be between streams (a session refresh, a reconnect after start-up): wait for it.
	for {
		err := s.srv.Server.Fleet().InjectCommand(ctx, s.nodeID, cmd)
		if err == nil {
			return
		}
		if !errors.Is(err, grains.ErrNotConnected) || ctx.Err() != nil {
			s.t.Fatalf("inject: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cloudAudit is the node's audit as the cloud received it (GET /api/v1/nodes/{id}/audit).
func (s *splitSite) cloudAudit() []map[string]any {
	var out struct {
		Records []map[string]any `json:"records"`
	}
	if st := s.do("GET", "/api/v1/nodes/"+s.nodeID+"/audit?limit=1000", nil, &out); st != 200 {
		s.t.Fatalf("node audit: HTTP %d", st)
	}
	return out.Records
}

func loadIdentity(dir string) (*identity.Identity, error) { return identity.Load(dir) }

// secondNode is another node enrolled with the same server (keys made in its own directory).
type secondNode struct {
	dir    string // its data directory
	nodeID string
	apiKey string
	id     *identity.Identity
}

func (s *splitSite) enrollSecondNode() *secondNode {
	s.t.Helper()
	var code struct {
		Code string `json:"code"`
	}
	if st := s.do("POST", "/api/v1/enrollment-codes", nil, &code); st != 201 {
		s.t.Fatalf("mint code: HTTP %d", st)
	}
	dir := s.t.TempDir()
	done := make(chan error, 1)
	var e identity.Enrollment
	go func() {
		var err error
		e, err = Enroll(context.Background(), EnrollOptions{Server: s.srv.GatewayAddr, Code: code.Code, DataDir: dir,
			CAFingerprint: s.srv.CA.Fingerprint(), PollInterval: 20 * time.Millisecond, Logger: quietLogger()}, io.Discard)
		done <- err
	}()
	id, err := identity.Load(dir + "/" + nodeIdentityDir)
	for i := 0; err != nil && i < 100; i++ {
		time.Sleep(20 * time.Millisecond)
		id, err = identity.Load(dir + "/" + nodeIdentityDir)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	var pending struct {
		Nodes []struct {
			NodeID      string `json:"node_id"`
			Fingerprint string `json:"fingerprint"`
		} `json:"nodes"`
	}
	waitFor(s.t, 10*time.Second, "the second node pending", func() bool {
		return s.do("GET", "/api/v1/nodes/pending", nil, &pending) == 200 && len(pending.Nodes) == 1
	})
	if st := s.do("POST", "/api/v1/nodes/"+pending.Nodes[0].NodeID+"/confirm", map[string]string{"fingerprint": id.Fingerprint()}, nil); st != 200 {
		s.t.Fatalf("confirm: HTTP %d", st)
	}
	if err := <-done; err != nil {
		s.t.Fatal(err)
	}
	return &secondNode{dir: dir, nodeID: e.NodeID, apiKey: e.APIKey, id: id}
}

func (n *secondNode) session(conn *grpc.ClientConn) (string, error) {
	gw := pb.NewGatewayClient(conn)
	ch, err := gw.Challenge(context.Background(), &pb.ChallengeRequest{NodeId: n.nodeID})
	if err != nil {
		return "", err
	}
	tok, err := gw.OpenSession(context.Background(), &pb.OpenSessionRequest{NodeId: n.nodeID, ApiKey: n.apiKey, Nonce: ch.GetNonce(),
		Signature: n.id.SignChallenge(ch.GetNonce(), n.nodeID)})
	if err != nil {
		return "", err
	}
	return tok.GetToken(), nil
}
