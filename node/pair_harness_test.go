package node_test

import (
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/gate"
	"github.com/hashfleet/hashfleet/node/internal/gatewaytest"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/lease"
	"github.com/hashfleet/hashfleet/node/writelog"
	cloud "github.com/hashfleet/hashfleet/server/lease"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// pairCloud is a cloud for two pair members made of the pieces the node talks to: one fake gateway per node
// (real gRPC on loopback) and the cloud's real lease decision (server/lease.Decide on the wall clock), with
// the pair key sealed to each node's credential key as the cloud does. Faults: a node's WAN (its gateway
// refuses and drops it, its heartbeats stop counting).
type pairCloud struct {
	t    *testing.T
	cfg  cloud.Config
	pair string

	mu       sync.Mutex
	state    cloud.State
	gws      map[string]*gatewaytest.Server
	keys     map[string]hpke.PrivateKey
	pubs     map[string]*ecdh.PublicKey
	envs     map[string][]byte
	gossip   map[string]string // gossip_addr from each node's latest hello
	standby  string
	seq      map[string]uint64
	wanDown  map[string]bool
	withPair bool
}

// pairMember is one running node of the pair.
type pairMember struct {
	id     string
	dir    string
	gossip string
	n      *node.Node
	writes *writelog.Memory   // this run's
	runs   []*writelog.Memory // every run's, this one included
	cfg    node.Config
	reg    *prometheus.Registry
}

type pairHarness struct {
	t     *testing.T
	cloud *pairCloud
	fleet *sim.Fleet
	devs  []*pb.Device
	nodes map[string]*pairMember
}

// fastLease are lease timings four times shorter than the defaults (node and cloud alike), so node-level
// scenarios run in seconds; bootstrap's pair tests use the defaults.
func fastLease() (lease.Config, cloud.Config) {
	l := lease.DefaultConfig()
	l.RenewInterval, l.Margin, l.DefaultTTL, l.RetryInterval = 500*time.Millisecond, 250*time.Millisecond, 1500*time.Millisecond, 100*time.Millisecond
	l.PromoteGrace, l.RequestTimeout, l.TickInterval, l.Drain = 1500*time.Millisecond, 500*time.Millisecond, 20*time.Millisecond, 250*time.Millisecond
	c := cloud.Config{TTL: 1500 * time.Millisecond, RenewInterval: 500 * time.Millisecond, Margin: 250 * time.Millisecond,
		HeartbeatTimeout: 1500 * time.Millisecond}
	return l, c
}

func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	t.Fatal("no free port for gossip")
	return 0
}

func newPairHarness(t *testing.T) *pairHarness {
	t.Helper()
	_, ccfg := fastLease()
	pc := &pairCloud{t: t, cfg: ccfg, pair: "p1", state: cloud.NewState("p1", [2]string{"a", "b"}), gws: map[string]*gatewaytest.Server{},
		keys: map[string]hpke.PrivateKey{}, pubs: map[string]*ecdh.PublicKey{}, envs: map[string][]byte{}, gossip: map[string]string{}, standby: "b", seq: map[string]uint64{},
		wanDown: map[string]bool{}, withPair: true}
	fleet, err := sim.Start(sim.Config{Count: 3, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Close() })
	h := &pairHarness{t: t, cloud: pc, fleet: fleet, devs: fleet.Devices(), nodes: map[string]*pairMember{}}
	for _, id := range []string{"a", "b"} {
		gw, err := gatewaytest.Start()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(gw.Stop)
		gw.SetDevices(h.devs)
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, err := hpke.NewDHKEMPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		pc.gws[id], pc.keys[id], pc.pubs[id] = gw, priv, k.PublicKey()
		gw.OnHello(func(hello *pb.ControlHello, ack *pb.HelloAck) { pc.onHello(id, hello, ack) })
		gw.OnLease(func(r *pb.LeaseRequest) []*pb.CloudToNode { return pc.onLease(id, r) })
		gw.OnPing(func(*pb.HeartbeatPing) { pc.heard(id) })
		h.nodes[id] = &pairMember{id: id, dir: t.TempDir(), gossip: "127.0.0.1:" + strconv.Itoa(freePort(t))}
	}
	return h
}

func (c *pairCloud) peerOf(id string) string {
	if id == "a" {
		return "b"
	}
	return "a"
}

func (c *pairCloud) onHello(id string, hello *pb.ControlHello, ack *pb.HelloAck) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gossip[id] = hello.GetGossipAddr()
	if !c.withPair {
		return
	}
	b := c.envs[id]
	if b == nil { // sealed once and kept, as the cloud stores only the envelopes
		key := []byte("0123456789abcdef0123456789abcdef")
		env, err := sealing.Seal(c.pubs[id], id, c.pair, node.PairPurpose, key)
		if err != nil {
			c.t.Errorf("seal pair key: %v", err)
			return
		}
		b, _ = env.MarshalBinary()
		c.envs[id] = b
	}
	peer := c.peerOf(id)
	ack.Pair = &pb.PairInfo{PairId: c.pair, Members: []string{"a", "b"}, PeerNodeId: peer, PeerGossipAddr: c.gossip[peer],
		PairKeyEnvelope: b, Standby: id == c.standby, Epoch: c.state.Epoch, Holder: c.state.Holder}
}

func (c *pairCloud) heard(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.wanDown[id] {
		c.state.LastHeartbeat[id] = time.Now()
	}
}

func (c *pairCloud) onLease(id string, r *pb.LeaseRequest) []*pb.CloudToNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wanDown[id] {
		return nil
	}
	next, reply, _ := cloud.Decide(c.cfg, c.state, r, time.Now())
	c.state = next
	if reply.Denied != nil {
		return []*pb.CloudToNode{{Msg: &pb.CloudToNode_LeaseDenied{LeaseDenied: reply.Denied}}}
	}
	if r.GetOp() == pb.LeaseOp_LEASE_OP_TRANSFER && reply.HolderChanged() && reply.Grant.GetHolder() != "" {
		fwd := proto.Clone(reply.Grant).(*pb.LeaseGrant)
		fwd.RequestId = ""
		c.gws[reply.Grant.GetHolder()].Send(&pb.CloudToNode{Msg: &pb.CloudToNode_LeaseGrant{LeaseGrant: fwd}})
	}
	return []*pb.CloudToNode{{Msg: &pb.CloudToNode_LeaseGrant{LeaseGrant: reply.Grant}}}
}

func (c *pairCloud) lease() cloud.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Clone()
}

// setWAN cuts or restores a node's link to the cloud.
func (c *pairCloud) setWAN(id string, up bool) {
	c.mu.Lock()
	c.wanDown[id] = !up
	gw := c.gws[id]
	c.mu.Unlock()
	gw.Refuse(!up)
	if !up {
		gw.DropAll()
	}
}

// command sends a signed-looking command for the miners to node id under the epoch given.
func (c *pairCloud) command(id, cmdID string, epoch uint64, action pb.Action, miners ...string) {
	c.mu.Lock()
	c.seq[id]++
	seq := c.seq[id]
	gw := c.gws[id]
	c.mu.Unlock()
	p, _ := proto.Marshal(&pb.CommandPayload{MinerIds: miners, Spec: &pb.CommandSpec{Action: action}})
	gw.SendCommand(&pb.ControlCommand{CommandId: cmdID, Actor: "user:test", NodeId: id, MonotonicSeq: seq,
		Signature: []byte("sig-" + cmdID), IdempotencyKey: "idem-" + cmdID, Payload: p, LeaseEpoch: epoch})
}

func (h *pairHarness) start(id string) *pairMember {
	h.t.Helper()
	m := h.nodes[id]
	lcfg, _ := fastLease()
	cfg := node.DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.Logger = id, m.dir, quietLogger()
	cfg.DriverFactory = node.DefaultDriverFactory(cgminer.Config{ReadTimeout: 2 * time.Second})
	cfg.Dial, cfg.Verifier = h.cloud.gws[id].Dial, gate.InProcessVerifier{}
	cfg.PollInterval, cfg.PollJitter = 200*time.Millisecond, 20*time.Millisecond
	cfg.HeartbeatInterval = 300 * time.Millisecond
	cfg.CredentialKey = h.cloud.keys[id]
	cfg.Pair.GossipListen = m.gossip
	cfg.Pair.Lease = lcfg
	m.writes = writelog.NewMemory()
	m.reg = prometheus.NewRegistry()
	cfg.Registerer = m.reg
	m.runs = append(m.runs, m.writes)
	cfg.WriteLog = m.writes
	m.cfg = cfg
	m.n = start(h.t, cfg)
	return m
}

func (h *pairHarness) stop(id string, kill bool) {
	h.t.Helper()
	m := h.nodes[id]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var err error
	if kill {
		err = m.n.Kill(ctx)
	} else {
		err = m.n.Stop(ctx)
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *pairHarness) status(id string) node.PairStatus {
	h.t.Helper()
	st, err := h.nodes[id].n.LeaseStatus(context.Background())
	if err != nil {
		h.t.Fatalf("lease status of %s: %v", id, err)
	}
	return st
}

// waitHolder waits until id holds a valid lease (mode lease) and the cloud agrees; it returns the epoch.
func (h *pairHarness) waitHolder(id string) uint64 {
	h.t.Helper()
	var epoch uint64
	testutil.Eventually(h.t, id+" holds the lease", func() bool {
		st := h.status(id)
		epoch = st.Lease.Epoch
		return st.Lease.Mode == lease.ModeLease && st.Lease.Holder == id && h.cloud.lease().Holder == id
	})
	return epoch
}

// result waits for the final result of cmdID on node id's gateway.
func (h *pairHarness) result(id, cmdID string) *pb.CommandResultReport {
	h.t.Helper()
	var out *pb.CommandResultReport
	testutil.Eventually(h.t, "result of "+cmdID, func() bool {
		for _, r := range h.cloud.gws[id].Results() {
			if r.GetCommandId() == cmdID && r.GetDone() {
				out = r
				return true
			}
		}
		return false
	})
	return out
}

func (h *pairHarness) ack(id, cmdID string) *pb.CommandAck {
	h.t.Helper()
	var out *pb.CommandAck
	testutil.Eventually(h.t, "ack of "+cmdID, func() bool {
		for _, a := range h.cloud.gws[id].Acks() {
			if a.GetCommandId() == cmdID {
				out = a
				return true
			}
		}
		return false
	})
	return out
}

// allWrites merges both nodes' write logs.
func (h *pairHarness) allWrites() []writelog.Entry {
	var out []writelog.Entry
	for _, m := range h.nodes {
		for _, w := range m.runs {
			out = append(out, w.Entries()...)
		}
	}
	return out
}

// checkNoOverlap fails on two nodes' writes to one miner that overlap, in the node logs, and on a miner
// write (the simulator's own log) that falls inside no node's logged write.
func (h *pairHarness) checkNoOverlap() {
	h.t.Helper()
	es := h.allWrites()
	if ov := writelog.Overlaps(es); len(ov) > 0 {
		h.t.Fatalf("overlapping writes: %v", ov)
	}
	for _, d := range h.devs {
		for _, w := range h.fleet.Miner(d.GetMinerId()).WriteLog() {
			found := false
			for _, e := range es {
				if e.Miner == d.GetMinerId() && e.Wrote() && !w.At.Before(e.Start.Add(-time.Millisecond)) && !w.At.After(e.Finish.Add(time.Millisecond)) {
					found = true
					break
				}
			}
			if !found {
				h.t.Fatalf("miner %s write %+v at %s is in no node's write log", d.GetMinerId(), w, w.At.Format(time.RFC3339Nano))
			}
		}
	}
}

// metric reads one gauge or counter of node id's registry (0 when absent).
func (h *pairHarness) metric(id, name string, labels map[string]string) float64 {
	h.t.Helper()
	mfs, err := h.nodes[id].reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func minerResult(r *pb.CommandResultReport) string {
	s := ""
	for _, m := range r.GetResults() {
		s += fmt.Sprintf("%s=%s ", m.GetMinerId(), m.GetCode())
	}
	return s
}
