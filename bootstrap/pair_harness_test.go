package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/lease"
	"github.com/hashfleet/hashfleet/node/uplink"
	"github.com/hashfleet/hashfleet/node/writelog"
)

// pairSite is a warm-standby pair in split mode over real sockets: one cloud server (TLS gateway, API), two
// node processes (in this test process) enrolled through the API, each with its pair gossip on a loopback
// port, and simulated miners on loopback TCP registered by the first node and shared by the pair the test
// declares through the API. Default lease and gossip timings: these tests measure what operators get.
type pairSite struct {
	*splitSite // the server, the API helpers, node "a" as its node
	nodes      map[string]*pairNode
	pairID     string
	tune       func(name string, o *NodeRunOptions)
}

// pairNode is one member of the pair ("a": declared active, "b": standby).
type pairNode struct {
	name   string
	id     string
	dir    string
	gossip string
	proc   *NodeProcess
	mu     sync.Mutex
	runs   []*writelog.Memory // every run's write log, the current one last
}

func (n *pairNode) writes() *writelog.Memory {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.runs[len(n.runs)-1]
}

// freeGossipAddr returns a loopback host:port free for both UDP and TCP (memberlist binds both).
func freeGossipAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		_ = u.Close()
		return "127.0.0.1:" + strconv.Itoa(port)
	}
	t.Fatal("no free port for gossip")
	return ""
}

// startPair starts the server and both nodes, pairs the miners to node a, declares the pair through the API
// and waits until a holds the lease and b stands by, seeing a in gossip.
func startPair(t *testing.T, miners int) *pairSite {
	t.Helper()
	return startPairWith(t, miners, nil)
}

// startPairWith is startPair with tune applied to each node's run options (each start).
func startPairWith(t *testing.T, miners int, tune func(name string, o *NodeRunOptions)) *pairSite {
	t.Helper()
	cfg := sim.DefaultConfig()
	cfg.Count, cfg.Seed = miners, 9
	fleet, err := sim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Close() })
	s := &splitSite{t: t, fleet: fleet}
	s.srvOpts = ServerOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:0", GatewayListen: "127.0.0.1:0", AdminToken: testToken,
		DebugInject: true, DrainReconnectAfter: 100 * time.Millisecond, Logger: quietLogger()}
	s.startServer()
	p := &pairSite{splitSite: s, nodes: map[string]*pairNode{}, tune: tune}
	for _, name := range []string{"a", "b"} {
		n := &pairNode{name: name, dir: t.TempDir(), gossip: freeGossipAddr(t)}
		s.nodeDir = n.dir
		s.enroll()
		n.id = s.nodeID
		p.nodes[name] = n
	}
	s.nodeID, s.nodeDir = p.nodes["a"].id, p.nodes["a"].dir
	p.start("a")
	p.start("b")
	s.node = p.nodes["a"].proc
	s.pairAll() // the miners are a's
	ids := make([]string, 0, miners)
	for _, d := range fleet.Devices() {
		ids = append(ids, d.GetMinerId())
	}
	var out struct {
		ID string `json:"id"`
	}
	body := map[string]any{"site": "test-site", "members": []string{p.nodes["a"].id, p.nodes["b"].id},
		"standby": p.nodes["b"].id, "devices": ids}
	if st := s.do("POST", "/api/v1/pairs", body, &out); st != 201 {
		t.Fatalf("declare the pair: HTTP %d", st)
	}
	p.pairID = out.ID
	p.waitHolder("a", 30*time.Second)
	waitFor(t, 20*time.Second, "b standing by and seeing a in gossip", func() bool {
		st := p.status("b")
		if os.Getenv("HASHFLEET_TEST_LOG") != "" {
			t.Logf("b: %+v", st)
		}
		return st.Paired && st.PeerState == "alive" && st.Lease.Mode == lease.ModeStandby && st.Holder == p.nodes["a"].id
	})
	return p
}

// start runs (or runs again) node name with a fresh in-memory write log.
func (p *pairSite) start(name string) {
	p.t.Helper()
	n := p.nodes[name]
	w := writelog.NewMemory()
	n.mu.Lock()
	n.runs = append(n.runs, w)
	n.mu.Unlock()
	o := NodeRunOptions{DataDir: n.dir, PollInterval: 500 * time.Millisecond, StatusInterval: 200 * time.Millisecond,
		HeartbeatInterval: time.Second, Logger: quietLogger(), AdminListen: NodeAdminOff, LocalUI: "off",
		Backoff:      uplink.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Jitter: 0.2, StableAfter: time.Minute},
		GossipListen: n.gossip, WriteLog: w}
	if name == "a" {
		o.Devices = p.fleet.Devices()
	}
	if p.tune != nil {
		p.tune(name, &o)
	}
	proc, err := StartNode(context.Background(), o)
	if err != nil {
		p.t.Fatal(err)
	}
	n.proc = proc
	p.t.Cleanup(func() { p.stop(name, false) })
}

// stop stops node name: gracefully (gossip leaves, the lease is not released) or killed (gossip vanishes).
func (p *pairSite) stop(name string, kill bool) {
	n := p.nodes[name]
	if n.proc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if kill {
		if err := n.proc.Node.Kill(ctx); err != nil {
			p.t.Errorf("kill %s: %v", name, err)
		}
	}
	if err := n.proc.Stop(ctx); err != nil {
		p.t.Errorf("stop %s: %v", name, err)
	}
	n.proc = nil
	if p.splitSite.node != nil && name == "a" {
		p.splitSite.node = nil
	}
}

func (p *pairSite) status(name string) node.PairStatus {
	p.t.Helper()
	n := p.nodes[name]
	if n.proc == nil {
		return node.PairStatus{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := n.proc.Node.LeaseStatus(ctx)
	if err != nil {
		return node.PairStatus{}
	}
	return st
}

// cloudPair is the pair as GET /api/v1/pairs/{id} shows it.
type cloudPair struct {
	Holder string `json:"holder"`
	Epoch  uint64 `json:"epoch"`
	Live   bool   `json:"live"`
}

func (p *pairSite) cloud() cloudPair {
	p.t.Helper()
	var c cloudPair
	if st := p.do("GET", "/api/v1/pairs/"+p.pairID, nil, &c); st != 200 {
		p.t.Fatalf("GET pair: HTTP %d", st)
	}
	return c
}

// waitHolder waits until name holds a valid lease that the cloud agrees on; it returns the epoch.
func (p *pairSite) waitHolder(name string, within time.Duration) uint64 {
	p.t.Helper()
	var epoch uint64
	id := p.nodes[name].id
	waitFor(p.t, within, name+" holding the lease", func() bool {
		st := p.status(name)
		epoch = st.Lease.Epoch
		return st.Lease.Mode == lease.ModeLease && st.Lease.Holder == id && p.cloud().Holder == id
	})
	return epoch
}

// allWrites merges every run's write log of both nodes.
func (p *pairSite) allWrites() []writelog.Entry {
	var out []writelog.Entry
	for _, n := range p.nodes {
		n.mu.Lock()
		for _, w := range n.runs {
			out = append(out, w.Entries()...)
		}
		n.mu.Unlock()
	}
	return out
}

// firstWrite is the start of node name's first write (Wrote) at or after from.
func (p *pairSite) firstWrite(name string, from time.Time) (time.Time, bool) {
	id := p.nodes[name].id
	var first time.Time
	for _, e := range p.allWrites() {
		if e.Node == id && e.Wrote() && e.Code == "succeeded" && !e.Start.Before(from) && (first.IsZero() || e.Start.Before(first)) {
			first = e.Start
		}
	}
	return first, !first.IsZero()
}

// checkWrites fails when two nodes' writes to one miner overlap in the node logs, or when a write a
// simulated miner received (its own log, its own timestamps) lies in no node's logged write window, or in a
// window of a node other than the one whose epoch was current; it returns the number of miner writes.
func (p *pairSite) checkWrites() int {
	p.t.Helper()
	es := p.allWrites()
	if ov := writelog.Overlaps(es); len(ov) > 0 {
		p.t.Fatalf("overlapping writes by two nodes: %v", ov)
	}
	total := 0
	for _, d := range p.fleet.Devices() {
		for _, w := range p.fleet.Miner(d.GetMinerId()).WriteLog() {
			total++
			var in []string
			for _, e := range es {
				if e.Miner == d.GetMinerId() && e.Wrote() && !w.At.Before(e.Start) && !w.At.After(e.Finish) {
					in = append(in, fmt.Sprintf("%s@%d", e.Node, e.Epoch))
				}
			}
			if len(in) == 0 {
				p.t.Fatalf("miner %s received %s at %s, inside no node's logged write", d.GetMinerId(), w.Command, w.At.Format(time.RFC3339Nano))
			}
		}
	}
	return total
}

// commandStream posts a command every interval until stop is closed and returns every command the API
// accepted (202), in order.
func (p *pairSite) commandStream(interval time.Duration, stop <-chan struct{}, action string) <-chan []string {
	out := make(chan []string, 1)
	ids := make([]string, 0, 64)
	devs := p.fleet.Devices()
	go func() {
		defer func() { out <- ids }()
		t := time.NewTicker(interval)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			var res struct {
				CommandID string `json:"command_id"`
			}
			if st := p.doQuiet("POST", "/api/v1/commands", map[string]any{"miner_ids": []string{devs[i%len(devs)].GetMinerId()},
				"action": action}, &res); st == 202 {
				ids = append(ids, res.CommandID)
			}
		}
	}()
	return out
}

// doQuiet is do for goroutines: no t.Fatal; 0 on a transport error.
func (p *pairSite) doQuiet(method, path string, body any, out any) int {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.base+path, rd)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return 0
		}
	}
	return resp.StatusCode
}

// settle waits until every command is terminal (not pending or running) and returns them by id.
func (p *pairSite) settle(ids []string, within time.Duration) map[string]commandView {
	p.t.Helper()
	out := map[string]commandView{}
	waitFor(p.t, within, fmt.Sprintf("%d commands terminal", len(ids)), func() bool {
		for _, id := range ids {
			if v, ok := out[id]; ok && v.Status != "pending" && v.Status != "running" {
				continue
			}
			var v commandView
			if p.do("GET", "/api/v1/commands/"+id, nil, &v) != 200 || v.Status == "pending" || v.Status == "running" {
				return false
			}
			out[id] = v
		}
		return true
	})
	return out
}

// minerWrites returns every write the simulated miners received, attributed to the node whose logged
// write window holds it, in time order.
func (p *pairSite) minerWrites() []attributedWrite {
	es := p.allWrites()
	var out []attributedWrite
	for _, d := range p.fleet.Devices() {
		for _, w := range p.fleet.Miner(d.GetMinerId()).WriteLog() {
			a := attributedWrite{At: w.At, Miner: d.GetMinerId()}
			for _, e := range es {
				if e.Miner == a.Miner && e.Wrote() && !w.At.Before(e.Start) && !w.At.After(e.Finish) {
					a.Node, a.Epoch = e.Node, e.Epoch
				}
			}
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(x, y attributedWrite) int { return x.At.Compare(y.At) })
	return out
}

type attributedWrite struct {
	At    time.Time
	Miner string
	Node  string
	Epoch uint64
}
