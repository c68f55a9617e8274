package server

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/lease"
)

// pairHarness is a split-mode server (node records, signed commands) whose gateway trusts the node header,
// with enrolled nodes written straight into its store and devices registered to them.
type pairHarness struct {
	*harness
	keys map[string]hpke.PrivateKey // node → credential private key
}

func newPairHarness(t *testing.T, mod ...func(*Config)) *pairHarness {
	t.Helper()
	h := newHarness(t, append([]func(*Config){func(c *Config) {
		c.Combined = false
		c.Authenticator = CombinedAuthenticator()
	}}, mod...)...)
	ph := &pairHarness{harness: h, keys: map[string]hpke.PrivateKey{}}
	ph.enroll("na", "s1", true, false)
	ph.enroll("nb", "s1", true, false)
	ph.enroll("nc", "s2", true, false)
	ph.enroll("np", "s1", false, false) // pending: fingerprint never confirmed
	ph.enroll("nr", "s1", true, true)   // revoked
	ph.enroll("nd", "s1", true, false)
	devs := []*pb.Device{
		{MinerId: "m1", NodeId: "na", Address: "10.0.0.1:4028"}, {MinerId: "m2", NodeId: "na", Address: "10.0.0.2:4028"},
		{MinerId: "m3", NodeId: "nb", Address: "10.0.0.3:4028"}, {MinerId: "m9", NodeId: "nc", Address: "10.0.0.9:4028"},
		{MinerId: "m5", NodeId: "nd", Address: "10.0.0.5:4028"},
	}
	if err := h.srv.fleet.RegisterDevices(context.Background(), devs); err != nil {
		t.Fatal(err)
	}
	return ph
}

func (h *pairHarness) enroll(node, site string, confirmed, revoked bool) {
	h.t.Helper()
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		h.t.Fatal(err)
	}
	priv, err := hpke.NewDHKEMPrivateKey(k)
	if err != nil {
		h.t.Fatal(err)
	}
	h.keys[node] = priv
	rec := &pb.NodeRecord{NodeId: node, OrgId: h.srv.cfg.OrgID, Name: node, Site: site, CredentialPublicKey: k.PublicKey().Bytes(),
		Confirmed: confirmed, Revoked: revoked}
	if err := h.srv.store.PutNodeRecord(rec); err != nil {
		h.t.Fatal(err)
	}
}

type pairView struct {
	ID      string `json:"id"`
	Site    string `json:"site"`
	Standby string `json:"standby"`
	Members []struct {
		Node    string   `json:"node"`
		Standby bool     `json:"standby"`
		Holder  bool     `json:"holder"`
		HeardS  *float64 `json:"last_heard_age_s"`
		Gossip  string   `json:"gossip_addr"`
	} `json:"members"`
	Devices    []string   `json:"devices"`
	Holder     string     `json:"holder"`
	Epoch      uint64     `json:"epoch"`
	ExpiresAt  *time.Time `json:"expires_at"`
	ExpiresInS *float64   `json:"expires_in_s"`
	Live       bool       `json:"live"`
	Transfer   *struct {
		To string `json:"to"`
	} `json:"transfer_requested"`
	Failovers int `json:"failovers"`
	History   []struct {
		From  string `json:"from"`
		To    string `json:"to"`
		Epoch uint64 `json:"epoch"`
		Kind  string `json:"kind"`
	} `json:"history"`
}

func (h *pairHarness) declare(body string) pairView {
	h.t.Helper()
	var p pairView
	if code, b := h.do("POST", "/api/v1/pairs", body, &p); code != http.StatusCreated {
		h.t.Fatalf("declare pair: %d %s", code, b)
	}
	return p
}

func (h *pairHarness) pair(id string) pairView {
	h.t.Helper()
	var p pairView
	if code, b := h.do("GET", "/api/v1/pairs/"+id, "", &p); code != 200 {
		h.t.Fatalf("GET pair: %d %s", code, b)
	}
	return p
}

// member is a fake pair member's control stream; HelloAcks may arrive at any time (pair changes), so the
// readers below keep the latest and skip them.
type member struct {
	*control
	node   string
	helloC chan *pb.HelloAck
	others chan *pb.CloudToNode
}

func (h *pairHarness) connect(node, gossip string, lastSeq, epoch uint64) (*member, *pb.HelloAck) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.nodeCtx(context.Background(), node))
	st, err := h.gw.ControlStream(ctx)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	c := &control{t: h.t, stream: st, cancel: cancel, frames: make(chan *pb.CloudToNode, 64), errc: make(chan error, 1)}
	m := &member{control: c, node: node, helloC: make(chan *pb.HelloAck, 64), others: make(chan *pb.CloudToNode, 64)}
	go func() {
		defer close(c.frames)
		for {
			f, err := st.Recv()
			if err != nil {
				c.errc <- err
				return
			}
			if a := f.GetHelloAck(); a != nil {
				m.helloC <- a
				continue
			}
			m.others <- f
		}
	}()
	h.t.Cleanup(c.close)
	c.send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Hello{Hello: &pb.ControlHello{NodeId: node, LastSeq: lastSeq, LeaseEpoch: epoch,
		GossipAddr: gossip, SoftwareVersion: "test"}}})
	return m, m.hello(func(*pb.HelloAck) bool { return true })
}

// hello waits for a HelloAck that satisfies ok.
func (m *member) hello(ok func(*pb.HelloAck) bool) *pb.HelloAck {
	m.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case a := <-m.helloC:
			if ok(a) {
				return a
			}
		case <-deadline:
			m.t.Fatalf("%s: no matching hello_ack within 5s", m.node)
			return nil
		}
	}
}

func (m *member) frame() *pb.CloudToNode {
	m.t.Helper()
	select {
	case f := <-m.others:
		return f
	case <-time.After(5 * time.Second):
		m.t.Fatalf("%s: no frame within 5s", m.node)
	}
	return nil
}

func (m *member) none(d time.Duration) {
	m.t.Helper()
	select {
	case f := <-m.others:
		m.t.Fatalf("%s: unexpected frame %v", m.node, f)
	case <-time.After(d):
	}
}

func (m *member) command() *pb.ControlCommand {
	m.t.Helper()
	f := m.frame()
	if f.GetCommand() == nil {
		m.t.Fatalf("%s: frame %v, want a command", m.node, f)
	}
	return f.GetCommand()
}

var reqN int

// ask sends a lease request and returns the answer on the same stream.
func (m *member) ask(pair string, op pb.LeaseOp, epoch uint64, transferTo string) (*pb.LeaseGrant, *pb.LeaseDenied) {
	m.t.Helper()
	reqN++
	id := fmt.Sprintf("r%d", reqN)
	m.send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_LeaseRequest{LeaseRequest: &pb.LeaseRequest{PairId: pair, NodeId: m.node, Op: op,
		Epoch: epoch, TransferTo: transferTo, RequestId: id}}})
	f := m.frame()
	g, d := f.GetLeaseGrant(), f.GetLeaseDenied()
	if g == nil && d == nil {
		m.t.Fatalf("%s: frame %v, want a lease answer", m.node, f)
	}
	if got := g.GetRequestId() + d.GetRequestId(); got != id {
		m.t.Fatalf("%s: answer for request %q, want %q", m.node, got, id)
	}
	return g, d
}

func (m *member) granted(pair string, op pb.LeaseOp, epoch uint64, transferTo string) *pb.LeaseGrant {
	m.t.Helper()
	g, d := m.ask(pair, op, epoch, transferTo)
	if g == nil {
		m.t.Fatalf("%s %s: denied: %v", m.node, op, d)
	}
	return g
}

func (m *member) denied(pair string, op pb.LeaseOp, epoch uint64) *pb.LeaseDenied {
	m.t.Helper()
	g, d := m.ask(pair, op, epoch, "")
	if d == nil {
		m.t.Fatalf("%s %s: granted %v, want a denial", m.node, op, g)
	}
	return d
}

// heartbeat sends one ping on a Heartbeat stream and waits until the pair's lease counts it.
func (h *pairHarness) heartbeat(node, pair string) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.nodeCtx(context.Background(), node))
	defer cancel()
	st, err := h.gw.Heartbeat(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := st.Send(&pb.HeartbeatPing{NodeId: node, SentAtUnixMs: h.clk.Now().UnixMilli()}); err != nil {
		h.t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		h.t.Fatal(err)
	}
	waitFor(h.t, func() bool {
		age, ok := h.metric("hashfleet_server_lease_heartbeat_age_seconds", map[string]string{"pair": pair, "node": node})
		return ok && age == 0
	}, "heartbeat of "+node+" counted by the lease")
	_ = st.CloseSend()
}

func verifier(t *testing.T, ack *pb.HelloAck, org string) *signing.Keyring {
	t.Helper()
	kr, err := signing.NewKeyring(org, ack.GetCommandKeys())
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func deviceIDs(ds []*pb.Device) string {
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.GetMinerId())
	}
	return strings.Join(ids, ",")
}

// TestPairDeclarationAPI declares pairs over real HTTP: every refusal with its status, then a pair whose
// key reaches both members sealed to each, the list, the transfer request and the deletion.
func TestPairDeclarationAPI(t *testing.T) {
	h := newPairHarness(t)
	for _, c := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"one member", `{"site":"s1","members":["na"],"standby":"na","devices":["m1"]}`, 400, "exactly two"},
		{"three members", `{"site":"s1","members":["na","nb","nd"],"standby":"nb","devices":["m1"]}`, 400, "exactly two"},
		{"same node twice", `{"site":"s1","members":["na","na"],"standby":"na","devices":["m1"]}`, 400, "twice"},
		{"standby not a member", `{"site":"s1","members":["na","nb"],"standby":"nc","devices":["m1"]}`, 400, "standby"},
		{"no site", `{"members":["na","nb"],"standby":"nb","devices":["m1"]}`, 400, "site"},
		{"no devices", `{"site":"s1","members":["na","nb"],"standby":"nb","devices":[]}`, 400, "devices"},
		{"device twice", `{"site":"s1","members":["na","nb"],"standby":"nb","devices":["m1","m1"]}`, 400, "twice"},
		{"bad node id", `{"site":"s1","members":["na","n/b"],"standby":"na","devices":["m1"]}`, 400, "member"},
		{"unknown field", `{"site":"s1","members":["na","nb"],"standby":"nb","devices":["m1"],"force":true}`, 400, "unknown field"},
		{"malformed json", `{"site":"s1","members":`, 400, ""},
		{"unknown node", `{"site":"s1","members":["na","nx"],"standby":"nx","devices":["m1"]}`, 404, "nx"},
		{"unknown device", `{"site":"s1","members":["na","nb"],"standby":"nb","devices":["m1","m404"]}`, 404, "m404"},
		{"pending node", `{"site":"s1","members":["na","np"],"standby":"np","devices":["m1"]}`, 409, "not confirmed"},
		{"revoked node", `{"site":"s1","members":["na","nr"],"standby":"nr","devices":["m1"]}`, 409, "revoked"},
		{"other site", `{"site":"s1","members":["na","nc"],"standby":"nc","devices":["m1"]}`, 409, "site"},
		{"device of a third node", `{"site":"s1","members":["na","nb"],"standby":"nb","devices":["m1","m9"]}`, 409, "owned by node nc"},
	} {
		code, b := h.do("POST", "/api/v1/pairs", c.body, nil)
		if code != c.code || !strings.Contains(string(b), c.want) {
			t.Errorf("%s: %d %s, want %d naming %q", c.name, code, b, c.code, c.want)
		}
	}
	if code, b := h.do("GET", "/api/v1/pairs", "", nil); code != 200 || !strings.Contains(string(b), `"items":[]`) {
		t.Fatalf("refusals stored a pair: %d %s", code, b)
	}

	// Members connected before the declaration get the pair on their live stream.
	a, ackA := h.connect("na", "10.1.0.1:7946", 0, 0)
	if ackA.GetPair() != nil || deviceIDs(ackA.GetDevices()) != "m1,m2" {
		t.Fatalf("hello_ack before the pair: %v", ackA)
	}
	p := h.declare(`{"site":"s1","members":["na","nb"],"standby":"nb","devices":["m1","m2","m3"]}`)
	if !strings.HasPrefix(p.ID, "p") || len(p.ID) != 17 || p.Standby != "nb" || p.Holder != "" || p.Epoch != 0 || len(p.Members) != 2 {
		t.Fatalf("declared: %+v", p)
	}
	pa := a.hello(func(a *pb.HelloAck) bool { return a.GetPair() != nil }).GetPair()
	if pa.GetPairId() != p.ID || pa.GetPeerNodeId() != "nb" || pa.GetStandby() || pa.GetPeerGossipAddr() != "" {
		t.Fatalf("na's pair info: %v", pa)
	}
	b, ackB := h.connect("nb", "10.1.0.2:7946", 0, 0)
	pb_ := ackB.GetPair()
	if pb_.GetPeerNodeId() != "na" || !pb_.GetStandby() || pb_.GetPeerGossipAddr() != "10.1.0.1:7946" || deviceIDs(ackB.GetDevices()) != "m1,m2,m3" {
		t.Fatalf("nb's hello_ack: %v", ackB)
	}
	// nb connecting told na where nb's gossip listens, with the devices both own.
	ackA = a.hello(func(a *pb.HelloAck) bool { return a.GetPair().GetPeerGossipAddr() == "10.1.0.2:7946" })
	if deviceIDs(ackA.GetDevices()) != "m1,m2,m3" {
		t.Fatalf("na's devices in the pair: %s", deviceIDs(ackA.GetDevices()))
	}

	// The standby's read-only telemetry of its partner's pair devices is accepted; of other devices not.
	h.upload("nb", 1, h.sample("m1", 77), h.sample("m9", 5))
	l := h.miners("?q=m")
	for _, it := range l.Items {
		switch {
		case it.ID == "m1" && (it.HashrateThs != 77 || it.Node != "na"):
			t.Fatalf("m1 after the standby's sample: %+v", it)
		case it.ID == "m9" && it.HashrateThs != 0:
			t.Fatalf("a non-member's device took the standby's sample: %+v", it)
		}
	}

	// The pair key: one key, sealed to each member for (node, pair, "pair-key"); neither envelope opens as
	// the other node or for another pair.
	keyOf := func(node string, env []byte, pair string) ([]byte, error) {
		e, err := sealing.Parse(env)
		if err != nil {
			return nil, err
		}
		return sealing.Open(h.keys[node], e, node, pair, grains.PairKeyPurpose)
	}
	ka, err := keyOf("na", ackA.GetPair().GetPairKeyEnvelope(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := keyOf("nb", ackB.GetPair().GetPairKeyEnvelope(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ka) != 32 || !bytes.Equal(ka, kb) {
		t.Fatalf("pair keys differ or are not 32 bytes: %d %d", len(ka), len(kb))
	}
	if _, err := keyOf("nb", ackA.GetPair().GetPairKeyEnvelope(), p.ID); err == nil {
		t.Fatal("nb opened na's envelope")
	}
	if _, err := keyOf("na", ackA.GetPair().GetPairKeyEnvelope(), "p0000000000000000"); err == nil {
		t.Fatal("na's envelope opened for another pair")
	}

	for _, c := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"node already paired", `{"site":"s1","members":["na","nd"],"standby":"nd","devices":["m5"]}`, 409, "already in pair"},
	} {
		if code, b := h.do("POST", "/api/v1/pairs", c.body, nil); code != c.code || !strings.Contains(string(b), c.want) {
			t.Errorf("%s: %d %s", c.name, code, b)
		}
	}
	var list struct {
		Items []pairView `json:"items"`
	}
	if code, body := h.do("GET", "/api/v1/pairs", "", &list); code != 200 || len(list.Items) != 1 || list.Items[0].ID != p.ID {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, _ := h.do("GET", "/api/v1/pairs/p404", "", nil); code != 404 {
		t.Fatalf("unknown pair: %d", code)
	}
	if code, body := h.do("POST", "/api/v1/pairs/"+p.ID+"/transfer", `{"to":"nc"}`, nil); code != 400 || !strings.Contains(string(body), "not a member") {
		t.Fatalf("transfer to a non-member: %d %s", code, body)
	}
	if code, body := h.do("POST", "/api/v1/pairs/"+p.ID+"/transfer", `{}`, nil); code != 400 {
		t.Fatalf("transfer to nobody: %d %s", code, body)
	}
	if code, body := h.do("POST", "/api/v1/pairs/p404/transfer", `{"to":"na"}`, nil); code != 404 {
		t.Fatalf("transfer on an unknown pair: %d %s", code, body)
	}
	var tp pairView
	if code, body := h.do("POST", "/api/v1/pairs/"+p.ID+"/transfer", `{"to":"nb"}`, &tp); code != 202 || tp.Transfer == nil || tp.Transfer.To != "nb" {
		t.Fatalf("transfer request: %d %s", code, body)
	}
	// Deleting the pair: each member is told it is in none, and na's devices no longer list nb's.
	if code, body := h.do("DELETE", "/api/v1/pairs/"+p.ID, "", nil); code != 204 {
		t.Fatalf("delete: %d %s", code, body)
	}
	if code, _ := h.do("DELETE", "/api/v1/pairs/"+p.ID, "", nil); code != 404 {
		t.Fatalf("delete twice: %d", code)
	}
	if a := a.hello(func(a *pb.HelloAck) bool { return a.GetPair() == nil }); deviceIDs(a.GetDevices()) != "m1,m2" {
		t.Fatalf("na after delete: %v", a)
	}
	b.hello(func(a *pb.HelloAck) bool { return a.GetPair() == nil })
	// The nodes are free again.
	h.declare(`{"site":"s1","members":["na","nd"],"standby":"nd","devices":["m5","m1"]}`)
}

// TestPairsRefusedInCombinedMode: without node records there is nothing to check a pair against.
func TestPairsRefusedInCombinedMode(t *testing.T) {
	h := newHarness(t)
	if code, b := h.do("POST", "/api/v1/pairs", `{"site":"s1","members":["na","nb"],"standby":"nb","devices":["m1"]}`, nil); code != 503 {
		t.Fatalf("combined mode: %d %s", code, b)
	}
}

// TestPairLeaseOverGateway runs two fake members over real gRPC: grants, a denial for a live holder, no
// promotion while the cloud hears the holder, promotion after expiry and heartbeat lapse, commands routed
// to the holder with its epoch (signed), the move-vs-interrupted rule, a stale holder refused, a TRANSFER
// forwarded unasked to the new holder, and a command waiting while nobody holds the lease.
func TestPairLeaseOverGateway(t *testing.T) {
	h := newPairHarness(t)
	p := h.declare(`{"site":"s1","members":["na","nb"],"standby":"nb","devices":["m1","m2","m3"]}`)
	a, ackA := h.connect("na", "10.1.0.1:7946", 0, 0)
	b, _ := h.connect("nb", "10.1.0.2:7946", 0, 0)
	kr := verifier(t, ackA, h.srv.cfg.OrgID)
	verify := func(cmd *pb.ControlCommand) {
		t.Helper()
		if err := kr.Verify(cmd, h.clk.Now()); err != nil {
			t.Fatalf("command %s epoch %d does not verify: %v", cmd.GetCommandId(), cmd.GetLeaseEpoch(), err)
		}
	}

	// Hostile and misaddressed requests are denied on the requester's own stream.
	if d := a.denied("p0000000000000000", pb.LeaseOp_LEASE_OP_ACQUIRE, 0); !strings.Contains(d.GetReason(), "not a member") {
		t.Fatalf("other pair: %v", d)
	}
	a.send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_LeaseRequest{LeaseRequest: &pb.LeaseRequest{PairId: p.ID, NodeId: "nb",
		Op: pb.LeaseOp_LEASE_OP_ACQUIRE, RequestId: "spoof"}}})
	if d := a.frame().GetLeaseDenied(); d == nil || d.GetRequestId() != "spoof" || !strings.Contains(d.GetReason(), "not this stream's node") {
		t.Fatalf("request naming the partner: %v", d)
	}
	if d := a.denied(p.ID, pb.LeaseOp_LEASE_OP_UNSPECIFIED, 0); !strings.Contains(d.GetReason(), "invalid") {
		t.Fatalf("no op: %v", d)
	}
	if d := a.denied(p.ID, pb.LeaseOp_LEASE_OP_RENEW, 7); !strings.Contains(d.GetReason(), "never issued") {
		t.Fatalf("future epoch: %v", d)
	}

	// A command for pair devices before anyone holds the lease waits.
	waiting := h.issue(`{"miner_ids":["m1"],"action":"reboot"}`)
	a.none(100 * time.Millisecond)
	b.none(0)
	if v := h.command(waiting); v.Status != "pending" {
		t.Fatalf("waiting command: %+v", v)
	}

	// na acquires epoch 1; the waiting command goes to it with that epoch.
	if g := a.granted(p.ID, pb.LeaseOp_LEASE_OP_ACQUIRE, 0, ""); g.GetHolder() != "na" || g.GetEpoch() != 1 || g.GetTtlMs() != 6000 {
		t.Fatalf("acquire: %v", g)
	}
	c0 := a.command()
	if c0.GetCommandId() != waiting || c0.GetLeaseEpoch() != 1 {
		t.Fatalf("waiting command delivered as %v", c0)
	}
	verify(c0)
	a.ack(c0, pb.ResultCode_RESULT_CODE_RUNNING)
	a.result(c0, pb.ResultCode_RESULT_CODE_SUCCEEDED, true, "m1")
	h.waitCommand(waiting, "succeeded")
	// A holder that refuses a command as fenced keeps it pending; its next grant brings it again.
	fenced := h.issue(`{"miner_ids":["m2"],"action":"blink"}`)
	cf := a.command()
	a.send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Ack{Ack: &pb.CommandAck{CommandId: cf.GetCommandId(), MonotonicSeq: cf.GetMonotonicSeq(),
		Code: pb.ResultCode_RESULT_CODE_FENCED, Message: "self-fenced"}}})
	a.none(100 * time.Millisecond)
	if v := h.command(fenced); v.Status != "pending" {
		t.Fatalf("fenced command: %+v", v)
	}
	a.granted(p.ID, pb.LeaseOp_LEASE_OP_RENEW, 1, "")
	again := a.command()
	if again.GetCommandId() != cf.GetCommandId() || again.GetMonotonicSeq() <= cf.GetMonotonicSeq() || again.GetLeaseEpoch() != 1 {
		t.Fatalf("fenced command sent again as %v (first %v): want the same command under a fresh seq", again, cf)
	}
	verify(again)
	a.ack(again, pb.ResultCode_RESULT_CODE_RUNNING)
	a.result(again, pb.ResultCode_RESULT_CODE_SUCCEEDED, true, "m2")
	h.waitCommand(fenced, "succeeded")
	// The standby cannot take a live lease.
	if d := b.denied(p.ID, pb.LeaseOp_LEASE_OP_PROMOTE, 1); d.GetHolder() != "na" || d.GetEpoch() != 1 || !strings.Contains(d.GetReason(), "held") {
		t.Fatalf("promote over a live lease: %v", d)
	}

	// Two commands on na: one it acks RUNNING, one it never acks.
	running := h.issue(`{"miner_ids":["m1","m3"],"action":"stop"}`)
	c1 := a.command()
	if c1.GetLeaseEpoch() != 1 || len(payloadOf(t, c1).GetMinerIds()) != 2 {
		t.Fatalf("running command: %v", c1)
	}
	verify(c1)
	a.ack(c1, pb.ResultCode_RESULT_CODE_RUNNING)
	h.waitCommand(running, "running")
	unacked := h.issue(`{"miner_ids":["m2"],"action":"set_power_target","power_target_w":3000,"idempotency_key":"pt-1"}`)
	c2 := a.command()
	if c2.GetCommandId() != unacked || c2.GetLeaseEpoch() != 1 {
		t.Fatalf("second command: %v", c2)
	}

	// na's lease expires but the cloud still hears it: no promotion.
	h.clk.Advance(7500 * time.Millisecond)
	h.heartbeat("na", p.ID)
	if d := b.denied(p.ID, pb.LeaseOp_LEASE_OP_PROMOTE, 1); !strings.Contains(d.GetReason(), "still heard") || d.GetHolder() != "na" {
		t.Fatalf("promote while the holder is heard: %v", d)
	}
	// Silence for the heartbeat timeout: nb is promoted to epoch 2.
	h.clk.Advance(6 * time.Second)
	g := b.granted(p.ID, pb.LeaseOp_LEASE_OP_PROMOTE, 1, "")
	if g.GetHolder() != "nb" || g.GetEpoch() != 2 {
		t.Fatalf("promotion: %v", g)
	}
	// The never-acked command moved to nb: same id and idempotency key, nb's first seq, epoch 2, signed.
	m := b.command()
	if m.GetCommandId() != unacked || m.GetIdempotencyKey() != c2.GetIdempotencyKey() || m.GetNodeId() != "nb" ||
		m.GetMonotonicSeq() != 1 || m.GetLeaseEpoch() != 2 || payloadOf(t, m).GetSpec().GetPowerTargetW() != 3000 {
		t.Fatalf("moved command: %v", m)
	}
	verify(m)
	// The started one is reported interrupted, never re-run.
	v := h.waitCommand(running, "failed")
	for _, r := range v.Results {
		if r.Code != "interrupted" || !strings.Contains(r.Message, "failover from na to nb at epoch 2") {
			t.Fatalf("interrupted command result: %+v", r)
		}
	}
	b.none(100 * time.Millisecond)
	b.ack(m, pb.ResultCode_RESULT_CODE_RUNNING)
	b.result(m, pb.ResultCode_RESULT_CODE_SUCCEEDED, true, "m2")
	h.waitCommand(unacked, "succeeded")
	// na's late ack of the moved command changes nothing.
	a.ack(c2, pb.ResultCode_RESULT_CODE_RUNNING)
	a.result(c2, pb.ResultCode_RESULT_CODE_FAILED, true, "m2")

	// na comes back with its old epoch: refused, told the new holder and epoch.
	if d := a.denied(p.ID, pb.LeaseOp_LEASE_OP_RENEW, 1); d.GetHolder() != "nb" || d.GetEpoch() != 2 || !strings.Contains(d.GetReason(), "stale") {
		t.Fatalf("stale renew: %v", d)
	}
	if v := h.command(unacked); v.Status != "succeeded" {
		t.Fatalf("late ack from the old holder changed the record: %+v", v)
	}

	// New commands go to nb with epoch 2; one it does not ack before a TRANSFER moves to na.
	pending := h.issue(`{"miner_ids":["m3"],"action":"blink"}`)
	c3 := b.command()
	if c3.GetLeaseEpoch() != 2 || c3.GetMonotonicSeq() != 2 {
		t.Fatalf("command to the new holder: %v", c3)
	}
	tg := b.granted(p.ID, pb.LeaseOp_LEASE_OP_TRANSFER, 2, "na")
	if tg.GetHolder() != "na" || tg.GetEpoch() != 3 {
		t.Fatalf("transfer answer to the old holder: %v", tg)
	}
	// na receives the grant unasked (request_id ""), then the moved command with epoch 3.
	f := a.frame()
	if ug := f.GetLeaseGrant(); ug == nil || ug.GetRequestId() != "" || ug.GetHolder() != "na" || ug.GetEpoch() != 3 {
		t.Fatalf("forwarded grant: %v", f)
	}
	mc := a.command()
	if mc.GetCommandId() != pending || mc.GetLeaseEpoch() != 3 || mc.GetNodeId() != "na" {
		t.Fatalf("command moved by the transfer: %v", mc)
	}
	verify(mc)
	a.granted(p.ID, pb.LeaseOp_LEASE_OP_RENEW, 3, "")
	a.ack(mc, pb.ResultCode_RESULT_CODE_RUNNING)
	a.result(mc, pb.ResultCode_RESULT_CODE_SUCCEEDED, true, "m3")
	h.waitCommand(pending, "succeeded")

	// A release leaves nobody holding: commands wait until nb acquires epoch 4.
	if g := a.granted(p.ID, pb.LeaseOp_LEASE_OP_RELEASE, 3, ""); g.GetHolder() != "" || g.GetEpoch() != 3 {
		t.Fatalf("release: %v", g)
	}
	later := h.issue(`{"miner_ids":["m2"],"action":"start"}`)
	a.none(100 * time.Millisecond)
	b.none(0)
	b.granted(p.ID, pb.LeaseOp_LEASE_OP_ACQUIRE, 3, "")
	if c := b.command(); c.GetCommandId() != later || c.GetLeaseEpoch() != 4 {
		t.Fatalf("command after the release: %v", c)
	}

	// Status and metrics.
	st := h.pair(p.ID)
	kinds := []string{}
	for _, e := range st.History {
		kinds = append(kinds, fmt.Sprintf("%s:%s>%s@%d", e.Kind, e.From, e.To, e.Epoch))
	}
	if st.Holder != "nb" || st.Epoch != 4 || !st.Live || st.Failovers != 1 || st.ExpiresInS == nil || *st.ExpiresInS != 6 ||
		strings.Join(kinds, " ") != "acquire:>na@1 failover:na>nb@2 transfer:nb>na@3 release:na>@3 acquire:>nb@4" {
		t.Fatalf("pair status: %+v history %v", st, kinds)
	}
	for _, mem := range st.Members {
		if mem.HeardS == nil || mem.Gossip == "" {
			t.Fatalf("member status: %+v", mem)
		}
	}
	for name, want := range map[string]float64{"hashfleet_server_lease_epoch": 4, "hashfleet_server_lease_failovers_total": 1,
		"hashfleet_server_lease_expires_in_seconds": 6} {
		if got, ok := h.metric(name, map[string]string{"pair": p.ID}); !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", name, got, ok, want)
		}
	}
	if got, ok := h.metric("hashfleet_server_lease_holder", map[string]string{"pair": p.ID, "holder": "nb"}); !ok || got != 1 {
		t.Errorf("holder series: %v %v", got, ok)
	}
	if _, ok := h.metric("hashfleet_server_lease_holder", map[string]string{"pair": p.ID, "holder": "na"}); ok {
		t.Error("the old holder still has a holder series")
	}
}

// TestPairCommandMixingRefused: a command may not mix a pair's devices with other devices of a member.
func TestPairCommandMixingRefused(t *testing.T) {
	h := newPairHarness(t)
	h.enroll("ne", "s1", true, false)
	if err := h.srv.fleet.RegisterDevices(context.Background(), []*pb.Device{{MinerId: "m6", NodeId: "na"}}); err != nil {
		t.Fatal(err)
	}
	h.declare(`{"site":"s1","members":["na","nb"],"standby":"nb","devices":["m1","m3"]}`)
	if code, b := h.do("POST", "/api/v1/commands", `{"miner_ids":["m1","m6"],"action":"reboot"}`, nil); code != 400 || !strings.Contains(string(b), "separately") {
		t.Fatalf("mixed command: %d %s", code, b)
	}
	// A pair device with another node's device is fine: two parts.
	h.issue(`{"miner_ids":["m1","m9"],"action":"reboot"}`)
}

// TestPairSurvivesRestart: declarations, the lease epoch, the holder history and the commands waiting for a
// holder live in the store; a new server spawns the lease from it and routes to the next holder.
func TestPairSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	onDisk := func(c *Config) { c.DataDir = dir }
	h := newPairHarness(t, onDisk)
	p := h.declare(`{"site":"s1","members":["na","nb"],"standby":"nb","devices":["m1","m3"]}`)
	a, _ := h.connect("na", "10.1.0.1:7946", 0, 0)
	a.granted(p.ID, pb.LeaseOp_LEASE_OP_ACQUIRE, 0, "")
	a.granted(p.ID, pb.LeaseOp_LEASE_OP_RELEASE, 1, "")
	waiting := h.issue(`{"miner_ids":["m3"],"action":"reboot"}`)
	waitFor(t, func() bool { return len(h.pair(p.ID).History) == 2 }, "holder history recorded")
	a.none(100 * time.Millisecond)
	a.close()
	h.close()

	h2 := &pairHarness{harness: newHarness(t, onDisk, func(c *Config) {
		c.Combined = false
		c.Authenticator = CombinedAuthenticator()
	})}
	st := h2.pair(p.ID)
	if st.Holder != "" || st.Epoch != 1 || len(st.History) != 2 {
		t.Fatalf("after restart: %+v", st)
	}
	a2, ack := h2.connect("na", "10.1.0.1:7946", 0, 1)
	if ack.GetPair().GetPairId() != p.ID || len(ack.GetPair().GetPairKeyEnvelope()) == 0 {
		t.Fatalf("hello_ack after restart: %v", ack)
	}
	if g := a2.granted(p.ID, pb.LeaseOp_LEASE_OP_ACQUIRE, 1, ""); g.GetEpoch() != 2 {
		t.Fatalf("epoch after restart: %v", g)
	}
	if c := a2.command(); c.GetCommandId() != waiting || c.GetLeaseEpoch() != 2 {
		t.Fatalf("waiting command after restart: %v", c)
	}
	id := h2.issue(`{"miner_ids":["m1"],"action":"reboot"}`)
	if c := a2.command(); c.GetCommandId() != id || c.GetLeaseEpoch() != 2 {
		t.Fatalf("command after restart: %v", c)
	}
}

// TestPairLeaseRandomOps drives both members with a seeded random mix of lease requests, heartbeats and
// clock jumps over the real gateway, and checks what the nodes were told: one answer per request, each
// epoch granted to one node only, epochs never going back, and a takeover only after the old holder's
// lease expired by the margin and the cloud stopped hearing it.
func TestPairLeaseRandomOps(t *testing.T) {
	h := newPairHarness(t)
	p := h.declare(`{"site":"s1","members":["na","nb"],"standby":"nb","devices":["m1","m3"]}`)
	a, _ := h.connect("na", "10.1.0.1:7946", 0, 0)
	b, _ := h.connect("nb", "10.1.0.2:7946", 0, 0)
	members := map[string]*member{"na": a, "nb": b}
	names := []string{"na", "nb"}
	rng := newRand(t)
	believed := map[string]uint64{}
	holderOf := map[uint64]string{}
	var (
		maxEpoch uint64
		holder   string
		expires  time.Time
		heard    = map[string]time.Time{"na": h.clk.Now(), "nb": h.clk.Now()}
	)
	cfg := h.srv.cfg.Lease
	if cfg == (lease.Config{}) {
		cfg = lease.DefaultConfig()
	}
	ops := []pb.LeaseOp{pb.LeaseOp_LEASE_OP_ACQUIRE, pb.LeaseOp_LEASE_OP_RENEW, pb.LeaseOp_LEASE_OP_PROMOTE,
		pb.LeaseOp_LEASE_OP_TRANSFER, pb.LeaseOp_LEASE_OP_RELEASE}
	for i := 0; i < 150; i++ {
		switch r := rng.IntN(10); {
		case r < 2:
			h.clk.Advance(time.Duration(rng.IntN(4000)) * time.Millisecond)
			continue
		case r < 3:
			n := names[rng.IntN(2)]
			h.heartbeat(n, p.ID)
			heard[n] = h.clk.Now()
			continue
		}
		n := names[rng.IntN(2)]
		other := names[0]
		if n == other {
			other = names[1]
		}
		op := ops[rng.IntN(len(ops))]
		epoch := believed[n]
		if rng.IntN(8) == 0 && epoch > 0 {
			epoch-- // a stale view now and then
		}
		to := ""
		if op == pb.LeaseOp_LEASE_OP_TRANSFER {
			to = other
		}
		now := h.clk.Now()
		g, d := members[n].ask(p.ID, op, epoch, to)
		heard[n] = now
		if d != nil {
			if d.GetEpoch() < maxEpoch {
				t.Fatalf("op %d: denial names epoch %d below %d", i, d.GetEpoch(), maxEpoch)
			}
			believed[n] = max(believed[n], d.GetEpoch())
			continue
		}
		if g.GetEpoch() < maxEpoch {
			t.Fatalf("op %d: grant epoch %d went back from %d", i, g.GetEpoch(), maxEpoch)
		}
		if prev, ok := holderOf[g.GetEpoch()]; ok && g.GetHolder() != "" && prev != g.GetHolder() {
			t.Fatalf("op %d: epoch %d granted to %s and to %s", i, g.GetEpoch(), prev, g.GetHolder())
		}
		if g.GetHolder() != "" && g.GetHolder() != holder && holder != "" && (op == pb.LeaseOp_LEASE_OP_ACQUIRE || op == pb.LeaseOp_LEASE_OP_PROMOTE) {
			if now.Before(expires.Add(cfg.Margin)) || now.Sub(heard[holder]) < cfg.HeartbeatTimeout {
				t.Fatalf("op %d: %s took the lease from %s at %s (expired %s, heard %s ago)", i, g.GetHolder(), holder, now, expires, now.Sub(heard[holder]))
			}
		}
		if g.GetHolder() != "" {
			holderOf[g.GetEpoch()] = g.GetHolder()
			expires = time.UnixMilli(g.GetExpiresAtUnixMs())
		}
		if op == pb.LeaseOp_LEASE_OP_TRANSFER {
			// The new holder got the grant unasked.
			f := members[other].frame()
			if ug := f.GetLeaseGrant(); ug == nil || ug.GetRequestId() != "" || ug.GetEpoch() != g.GetEpoch() {
				t.Fatalf("op %d: forwarded grant %v", i, f)
			}
			believed[other] = g.GetEpoch()
		}
		holder, maxEpoch = g.GetHolder(), g.GetEpoch()
		believed[n] = g.GetEpoch()
	}
	if maxEpoch == 0 {
		t.Fatal("no grant in the whole run")
	}
	t.Logf("epochs issued: %d", maxEpoch)
}

// newRand is seeded from HASHFLEET_SEED when set, otherwise from the clock; the seed is logged so a failure
// can be replayed.
func newRand(t *testing.T) *mrand.Rand {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("HASHFLEET_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("HASHFLEET_SEED: %v", err)
		}
		seed = n
	}
	t.Logf("seed %d (HASHFLEET_SEED=%d replays it)", seed, seed)
	return mrand.New(mrand.NewPCG(seed, seed))
}

// TestPairLeaseLatency measures lease answers over the real gateway on a real Badger directory (every renewal
// and transfer is an fsynced compare-and-set): RENEW round trips, and TRANSFER round trips until the new
// holder has its forwarded grant. Run with HASHFLEET_PAIR_BENCH=1 (figures in docs/BENCHMARKS.md).
func TestPairLeaseLatency(t *testing.T) {
	if os.Getenv("HASHFLEET_PAIR_BENCH") == "" {
		t.Skip("set HASHFLEET_PAIR_BENCH=1 to measure")
	}
	dir := t.TempDir()
	// The wall clock: each renewal moves the expiry, so each one is a durable write.
	h := newPairHarness(t, func(c *Config) { c.DataDir, c.Clock = dir, clock.Real() })
	p := h.declare(`{"site":"s1","members":["na","nb"],"standby":"nb","devices":["m1","m3"]}`)
	a, _ := h.connect("na", "10.1.0.1:7946", 0, 0)
	b, _ := h.connect("nb", "10.1.0.2:7946", 0, 0)
	g := a.granted(p.ID, pb.LeaseOp_LEASE_OP_ACQUIRE, 0, "")
	const renews, transfers = 1000, 200
	var rt, tt []time.Duration
	for range renews {
		start := time.Now()
		a.granted(p.ID, pb.LeaseOp_LEASE_OP_RENEW, g.GetEpoch(), "")
		rt = append(rt, time.Since(start))
	}
	from, to := a, b
	epoch := g.GetEpoch()
	for range transfers {
		start := time.Now()
		tg := from.granted(p.ID, pb.LeaseOp_LEASE_OP_TRANSFER, epoch, to.node)
		if f := to.frame(); f.GetLeaseGrant().GetEpoch() != tg.GetEpoch() {
			t.Fatalf("forwarded %v", f)
		}
		tt = append(tt, time.Since(start))
		epoch, from, to = tg.GetEpoch(), to, from
	}
	pct := func(d []time.Duration, q float64) time.Duration {
		s := append([]time.Duration(nil), d...)
		slices.Sort(s)
		return s[int(q*float64(len(s)-1))]
	}
	t.Logf("RENEW round trip (%d): p50 %s p99 %s max %s", renews, pct(rt, .5), pct(rt, .99), pct(rt, 1))
	t.Logf("TRANSFER until the new holder has its grant (%d): p50 %s p99 %s max %s", transfers, pct(tt, .5), pct(tt, .99), pct(tt, 1))
}

// TestPairFencedWritesMoveToTheHolder: a holder that accepted a pair command but lost the lease before some
// of its writes started reports those miners FENCED. They never reached the miner, so they are not results:
// the cloud moves them to the holder (same command id, the holder's seq and epoch) and the command ends
// succeeded once the holder ran them; the miners the old holder did run keep their results.
func TestPairFencedWritesMoveToTheHolder(t *testing.T) {
	h := newPairHarness(t)
	p := h.declare(`{"site":"s1","members":["na","nb"],"standby":"nb","devices":["m1","m2","m3"]}`)
	a, _ := h.connect("na", "10.1.0.1:7946", 0, 0)
	b, _ := h.connect("nb", "10.1.0.2:7946", 0, 0)
	a.granted(p.ID, pb.LeaseOp_LEASE_OP_ACQUIRE, 0, "")

	// Still the holder: the fenced miner comes back to na itself, with a new seq.
	id := h.issue(`{"miner_ids":["m1","m2"],"action":"stop"}`)
	c := a.command()
	a.ack(c, pb.ResultCode_RESULT_CODE_RUNNING)
	a.result(c, pb.ResultCode_RESULT_CODE_SUCCEEDED, false, "m1")
	a.result(c, pb.ResultCode_RESULT_CODE_FENCED, true, "m2")
	again := a.command()
	if again.GetCommandId() != id || again.GetMonotonicSeq() <= c.GetMonotonicSeq() || strings.Join(payloadOf(t, again).GetMinerIds(), ",") != "m2" {
		t.Fatalf("fenced miner sent again as %v (first %v)", again, c)
	}
	if v := h.command(id); v.Status == "failed" || v.Status == "succeeded" {
		t.Fatalf("a fenced miner ended the command: %+v", v)
	}
	a.ack(again, pb.ResultCode_RESULT_CODE_RUNNING)
	a.result(again, pb.ResultCode_RESULT_CODE_SUCCEEDED, true, "m2")
	h.waitCommand(id, "succeeded")

	// A transfer: na fences itself, reports the write it had not started FENCED while it drains (the
	// cloud sends it back to na, whose gate bounces it: not its lease any more), then hands the lease to nb,
	// and the command runs there.
	id2 := h.issue(`{"miner_ids":["m3"],"action":"start"}`)
	c2 := a.command()
	a.ack(c2, pb.ResultCode_RESULT_CODE_RUNNING)
	a.result(c2, pb.ResultCode_RESULT_CODE_FENCED, true, "m3")
	back := a.command()
	if back.GetCommandId() != id2 || back.GetMonotonicSeq() <= c2.GetMonotonicSeq() {
		t.Fatalf("fenced miner during the drain sent back as %v", back)
	}
	a.send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Ack{Ack: &pb.CommandAck{CommandId: back.GetCommandId(), MonotonicSeq: back.GetMonotonicSeq(),
		Code: pb.ResultCode_RESULT_CODE_FENCED, Message: "handing over"}}})
	g := a.granted(p.ID, pb.LeaseOp_LEASE_OP_TRANSFER, 1, "nb")
	if g.GetHolder() != "nb" || g.GetEpoch() != 2 {
		t.Fatalf("transfer: %v", g)
	}
	if fwd := b.frame().GetLeaseGrant(); fwd == nil || fwd.GetEpoch() != 2 {
		t.Fatalf("nb's unasked grant: %v", fwd)
	}
	moved := b.command()
	if moved.GetCommandId() != id2 || moved.GetNodeId() != "nb" || moved.GetLeaseEpoch() != 2 || strings.Join(payloadOf(t, moved).GetMinerIds(), ",") != "m3" {
		t.Fatalf("moved to nb as %v", moved)
	}
	b.ack(moved, pb.ResultCode_RESULT_CODE_RUNNING)
	b.result(moved, pb.ResultCode_RESULT_CODE_SUCCEEDED, true, "m3")
	h.waitCommand(id2, "succeeded")
}
