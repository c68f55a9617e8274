package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/bootstrap"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/miners/sim/antweb"
	"github.com/hashfleet/hashfleet/miners/sim/mixed"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/telemetry"
	"github.com/hashfleet/hashfleet/node/uplink"
	"github.com/hashfleet/hashfleet/node/writelog"
	"github.com/hashfleet/hashfleet/simulations/faults"
	"google.golang.org/protobuf/proto"
)

// site is one site: its simulated miners, the proxy in front of its hang miner, and its node or pair.
type site struct {
	index   int
	name    string
	fleet   *mixed.Fleet
	hang    *faults.Proxy // in front of the hang miner
	devices []*pb.Device  // as the nodes see them (the hang miner at the proxy)
	nodes   []*siteNode   // one, or a pair: nodes[0] registers the devices and starts active
	pairID  string        // "" without a pair
}

// siteNode is one node with everything the faults act on.
type siteNode struct {
	name     string
	sourceIP string
	dir      string
	nodeID   string
	wan      *faults.Proxy // node → cloud gateway
	shim     *faults.Shim
	clk      *faults.SkewedClock
	disk     *faults.Disk
	writes   *writelog.Memory // every miner write the node made, with its epoch, across restarts
	opts     bootstrap.NodeRunOptions

	mu   sync.Mutex
	proc *bootstrap.NodeProcess
}

func startSite(i int, dir string, cfg Config, c *cloud, seed int64) (*site, error) {
	s := &site{index: i, name: siteName(i)}
	mc := mixed.Config{Antminer: cfg.Antminers, CGMiner: cfg.CGMiners, Seed: seed,
		AntminerBase: antweb.Config{IDPrefix: minerPrefix(i) + "ant-"},
		CGMinerBase:  sim.Config{IDPrefix: minerPrefix(i) + "cgm-", RebootDuration: time.Second}}
	f, err := mixed.Start(mc)
	if err != nil {
		return nil, fmt.Errorf("site %s: %w", s.name, err)
	}
	s.fleet = f
	for _, d := range f.Devices() {
		d = proto.Clone(d).(*pb.Device)
		if d.GetMinerId() == hangMinerID(i) {
			s.hang = &faults.Proxy{Upstream: d.GetAddress(), Seed: seed, PreserveSourceIP: true, Match: faults.CGMinerWrite,
				Logger: cfg.Logger}
			if err := s.hang.Start(); err != nil {
				s.close()
				return nil, fmt.Errorf("site %s: hang proxy: %w", s.name, err)
			}
			d.Address = s.hang.Addr()
		}
		s.devices = append(s.devices, d)
	}
	names := cfg.nodeNames(i)
	for j, name := range names {
		n, err := newSiteNode(name, cfg.nodeSourceIP(i, j), dir, c, s.name, cfg, seed+int64(j))
		if err != nil {
			s.close()
			return nil, err
		}
		s.nodes = append(s.nodes, n)
		if j == 0 {
			n.opts.Devices = s.devices
		}
		if err := n.start(); err != nil {
			s.close()
			return nil, err
		}
	}
	if err := s.pair(c); err != nil {
		s.close()
		return nil, err
	}
	if len(s.nodes) == 2 {
		if err := s.declarePair(c); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// newSiteNode enrolls one node through its WAN proxy; it is not started.
func newSiteNode(name, ip, dir string, c *cloud, siteName string, cfg Config, seed int64) (*siteNode, error) {
	n := &siteNode{name: name, sourceIP: ip, dir: filepath.Join(dir, name), shim: faults.NewShim(seed),
		clk: faults.NewSkewedClock(clock.Real()), disk: faults.NewDisk(), writes: writelog.NewMemory()}
	n.wan = &faults.Proxy{Upstream: c.gateway, Seed: seed, Logger: cfg.Logger}
	if err := n.wan.Start(); err != nil {
		return nil, fmt.Errorf("%s: WAN proxy: %w", name, err)
	}
	if err := n.enroll(c, siteName, cfg); err != nil {
		_ = n.wan.Close()
		return nil, err
	}
	gossipAddr, err := freeGossipAddr(ip)
	if err != nil {
		_ = n.wan.Close()
		return nil, err
	}
	disk := n.disk
	n.opts = bootstrap.NodeRunOptions{DataDir: n.dir, PollInterval: cfg.PollInterval,
		StatusInterval: time.Second, HeartbeatInterval: 200 * time.Millisecond, AdminListen: "127.0.0.1:0",
		Backoff: uplink.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Jitter: 0.2, StableAfter: time.Minute},
		Clock:   n.clk, Logger: cfg.Logger, MinerSourceIP: ip, GatewayDialOptions: n.shim.DialOptions(),
		WrapOutbox:   func(o telemetry.Outbox) telemetry.Outbox { return faults.DiskFullOutbox{Outbox: o, Disk: disk} },
		GossipListen: gossipAddr, GossipAdvertise: gossipAddr, WriteLog: n.writes}
	if cfg.UnsafeNoSelfFence {
		n.opts.PairTune = func(pc *node.PairConfig) { pc.Lease.UnsafeTestNoSelfFence = true }
	}
	return n, nil
}

// freeGossipAddr finds a port free for both TCP and UDP on ip (memberlist binds both).
func freeGossipAddr(ip string) (string, error) {
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return "", fmt.Errorf("gossip port: %w", err)
		}
		addr := l.Addr().String()
		u, uerr := net.ListenPacket("udp", addr)
		_ = l.Close()
		if uerr == nil {
			_ = u.Close()
			return addr, nil
		}
	}
	return "", errors.New("gossip port: no port free for both TCP and UDP")
}

// enroll enrolls the node through its WAN proxy, confirming the fingerprint it printed.
func (n *siteNode) enroll(c *cloud, siteName string, cfg Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var code struct {
		Code string `json:"code"`
	}
	if _, err := c.do(ctx, "POST", "/api/v1/enrollment-codes", map[string]any{"site": siteName}, &code); err != nil {
		return fmt.Errorf("enroll %s: %w", n.name, err)
	}
	out := &lockedBuffer{}
	type result struct {
		nodeID string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		e, err := bootstrap.Enroll(ctx, bootstrap.EnrollOptions{Server: n.wan.Addr(), Code: code.Code, DataDir: n.dir,
			CAFingerprint: c.caFP, Name: n.name, Site: siteName, PollInterval: 20 * time.Millisecond, Logger: cfg.Logger}, out)
		done <- result{e.NodeID, err}
	}()
	var fp string
	if err := waitUntil(ctx, 20*time.Second, "the node's fingerprint", func() bool {
		for _, l := range strings.Split(out.String(), "\n") {
			if f, ok := strings.CutPrefix(l, "node identity fingerprint: "); ok {
				fp = f
				return true
			}
		}
		return false
	}); err != nil {
		cancel()
		<-done
		return fmt.Errorf("enroll %s: %w", n.name, err)
	}
	var pending struct {
		Nodes []struct {
			NodeID      string `json:"node_id"`
			Fingerprint string `json:"fingerprint"`
		} `json:"nodes"`
	}
	var id string
	if err := waitUntil(ctx, 20*time.Second, "the node pending", func() bool {
		if _, err := c.do(ctx, "GET", "/api/v1/nodes/pending", nil, &pending); err != nil {
			return false
		}
		for _, p := range pending.Nodes {
			if p.Fingerprint == fp {
				id = p.NodeID
				return true
			}
		}
		return false
	}); err != nil {
		return fmt.Errorf("enroll %s: %w", n.name, err)
	}
	if _, err := c.do(ctx, "POST", "/api/v1/nodes/"+id+"/confirm", map[string]string{"fingerprint": fp}, nil); err != nil {
		return fmt.Errorf("enroll %s: confirm: %w", n.name, err)
	}
	r := <-done
	if r.err != nil {
		return fmt.Errorf("enroll %s: %w", n.name, r.err)
	}
	n.nodeID = r.nodeID
	return nil
}

func (n *siteNode) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil {
		return nil
	}
	var err error
	for range 50 { // Badger's lock of a just-stopped node may linger a moment
		var p *bootstrap.NodeProcess
		if p, err = bootstrap.StartNode(context.Background(), n.opts); err == nil {
			n.proc = p
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("start %s: %w", n.name, err)
}

func (n *siteNode) stop() error {
	n.mu.Lock()
	p := n.proc
	n.proc = nil
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		return fmt.Errorf("stop %s: %w", n.name, err)
	}
	return nil
}

func (n *siteNode) process() *bootstrap.NodeProcess {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// linkUp reports whether the node runs and its uplink is up.
func (n *siteNode) linkUp() bool {
	p := n.process()
	if p == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := p.Node.LinkStatus(ctx)
	return err == nil && st.Up
}

// pair pairs every device the node offered and waits until the cloud shows them all.
func (s *site) pair(c *cloud) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var pend struct {
		Devices []struct {
			MinerID string `json:"miner_id"`
		} `json:"devices"`
	}
	want := len(s.devices)
	if err := waitUntil(ctx, 20*time.Second, "devices pending pairing", func() bool {
		_, err := c.do(ctx, "GET", "/api/v1/devices/pending?node="+s.nodes[0].nodeID, nil, &pend)
		return err == nil && len(pend.Devices) == want
	}); err != nil {
		return fmt.Errorf("site %s: %w", s.name, err)
	}
	ids := make([]string, 0, want)
	for _, d := range pend.Devices {
		ids = append(ids, d.MinerID)
	}
	if _, err := c.do(ctx, "POST", "/api/v1/nodes/"+s.nodes[0].nodeID+"/devices", map[string]any{"miner_ids": ids}, nil); err != nil {
		return fmt.Errorf("site %s: pair: %w", s.name, err)
	}
	return waitUntil(ctx, 20*time.Second, "the site's miners mining", func() bool {
		var page struct {
			Items []struct {
				ID    string `json:"id"`
				Node  string `json:"node"`
				State string `json:"state"`
			} `json:"items"`
		}
		if _, err := c.do(ctx, "GET", "/api/v1/miners?limit=1000", nil, &page); err != nil {
			return false
		}
		n := 0
		for _, m := range page.Items {
			if m.Node == s.nodes[0].nodeID && m.State == "mining" {
				n++
			}
		}
		return n == want
	})
}

// minerIDs are the site's miners.
func (s *site) minerIDs() []string {
	out := make([]string, 0, len(s.devices))
	for _, d := range s.devices {
		out = append(out, d.GetMinerId())
	}
	return out
}

func (s *site) close() {
	for _, n := range s.nodes {
		_ = n.stop()
		_ = n.wan.Close()
		n.shim.Wait()
	}
	if s.hang != nil {
		_ = s.hang.Close()
	}
	if s.fleet != nil {
		_ = s.fleet.Close()
	}
}

// node returns the site's node called name, nil for none.
func (s *site) node(name string) *siteNode {
	for _, n := range s.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// ipOf is the host of a host:port.
func ipOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// lockedBuffer is an io.Writer read while another goroutine writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
