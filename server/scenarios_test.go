package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestHelloGetsHelloAck(t *testing.T) {
	h := newHarness(t)
	h.upload("n1", 1, h.sample("m1", 100)) // registers m1 to n1 (combined mode)
	_, ack := h.openControl("n1", 0)
	if ack.GetNodeId() != "n1" || ack.GetNextSeq() != 1 {
		t.Fatalf("hello_ack %v, want node n1 next_seq 1", ack)
	}
	if len(ack.GetDevices()) != 1 || ack.GetDevices()[0].GetMinerId() != "m1" {
		t.Fatalf("hello_ack devices %v, want [m1]", ack.GetDevices())
	}
	h.waitConnected("n1", true)
}

func TestTelemetryAckedOnceAppliedAndVisible(t *testing.T) {
	h := newHarness(t)
	c, _ := h.openControl("n1", 0)
	ack := h.upload("n1", 1, h.sample("m1", 101.5), h.sample("m2", 99))
	if ack.GetBatchSeq() != 1 || ack.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("ack %v", ack)
	}
	// Acked means applied: the very next read sees it, no waiting.
	got := h.miners("")
	if got.Total != 2 || got.Items[0].ID != "m1" || got.Items[1].ID != "m2" {
		t.Fatalf("miners after ack: %+v", got)
	}
	m1 := got.Items[0]
	if m1.Node != "n1" || m1.State != "mining" || m1.Stale || m1.HashrateThs != 101.5 || m1.TempMaxC != 70 ||
		m1.Pool != "stratum+tcp://pool.example:3333" || m1.AgeS == nil || *m1.AgeS != 0 {
		t.Fatalf("m1 row %+v", m1)
	}
	if code, body := h.do("GET", "/api/v1/miners/m1", "", nil); code != 200 || strings.Contains(string(body), "secret") {
		t.Fatalf("GET m1: %d %s (the pool password must never appear)", code, body)
	}
	if code, _ := h.do("GET", "/api/v1/miners/nope", "", nil); code != 404 {
		t.Fatalf("GET unknown miner: %d, want 404", code)
	}
	// Filters.
	if l := h.miners("?q=M2"); l.Total != 1 || l.Items[0].ID != "m2" {
		t.Fatalf("search: %+v", l)
	}
	if l := h.miners("?state=stopped"); l.Total != 0 {
		t.Fatalf("state filter: %+v", l)
	}
	if l := h.miners("?limit=1&offset=1"); l.Total != 2 || len(l.Items) != 1 || l.Items[0].ID != "m2" {
		t.Fatalf("paging: %+v", l)
	}
	if code, _ := h.do("GET", "/api/v1/miners?state=bogus", "", nil); code != 400 {
		t.Fatalf("bad state: %d", code)
	}
	// Old sample: stale by age.
	h.clk.Advance(31 * time.Second)
	if l := h.miners(""); !l.Items[0].Stale || *l.Items[0].AgeS != 31 {
		t.Fatalf("after 31s: %+v", l.Items[0])
	}
	h.upload("n1", 2, h.sample("m1", 100), h.sample("m2", 100))
	if l := h.miners("?state=stale"); l.Total != 0 {
		t.Fatalf("fresh samples still stale: %+v", l)
	}
	// Node's stream down: every miner behind it is stale.
	c.close()
	h.waitConnected("n1", false)
	if l := h.miners("?state=stale"); l.Total != 2 || l.Counts["stale"] != 2 {
		t.Fatalf("stream down, want both stale: %+v", l)
	}
}

func TestDuplicateBatchAppliedOnce(t *testing.T) {
	h := newHarness(t)
	if a := h.upload("n1", 7, h.sample("m1", 10)); a.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("first ack %v", a)
	}
	h.clk.Advance(time.Second)
	a := h.upload("n1", 7, h.sample("m1", 99)) // same batch_seq, re-sent: acked again, not applied
	if a.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED || a.GetBatchSeq() != 7 {
		t.Fatalf("duplicate ack %v", a)
	}
	if a := h.upload("n1", 6, h.sample("m1", 98)); a.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("older batch ack %v", a)
	}
	if got := h.miners("").Items[0].HashrateThs; got != 10 {
		t.Fatalf("hashrate %v: duplicate batch applied", got)
	}
	if n := testutil.ToFloat64(h.srv.fleet.Metrics().BatchesCounter("telemetry", "duplicate")); n != 2 {
		t.Fatalf("duplicate batches counted %v, want 2", n)
	}
	// Another node's batch_seq 7 is its own.
	if a := h.upload("n2", 7, h.sample("m9", 5)); a.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("n2 ack %v", a)
	}
	if l := h.miners(""); l.Total != 2 {
		t.Fatalf("n2's batch 7 treated as duplicate: %+v", l)
	}
}

func TestCommandRoundTrip(t *testing.T) {
	h := newHarness(t)
	h.upload("n1", 1, h.sample("m1", 100), h.sample("m2", 100))
	c, _ := h.openControl("n1", 0)

	id1 := h.issue(`{"miner_ids":["m1","m2"],"action":"reboot"}`)
	cmd1 := c.nextCommand()
	if cmd1.GetMonotonicSeq() != 1 || cmd1.GetCommandId() != id1 || cmd1.GetNodeId() != "n1" || cmd1.GetActor() != "user:admin" {
		t.Fatalf("command 1: %v", cmd1)
	}
	p := payloadOf(t, cmd1)
	if p.GetSpec().GetAction() != pb.Action_ACTION_REBOOT || strings.Join(p.GetMinerIds(), ",") != "m1,m2" {
		t.Fatalf("payload %v", p)
	}
	id2 := h.issue(`{"miner_ids":["m2"],"action":"set_power_target","power_target_w":3000}`)
	cmd2 := c.nextCommand()
	if cmd2.GetMonotonicSeq() != 2 || cmd2.GetCommandId() != id2 || payloadOf(t, cmd2).GetSpec().GetPowerTargetW() != 3000 {
		t.Fatalf("command 2: %v", cmd2)
	}
	if v := h.command(id1); v.Status != "pending" || v.Summary["pending"] != 2 {
		t.Fatalf("before ack: %+v", v)
	}
	c.ack(cmd1, pb.ResultCode_RESULT_CODE_RUNNING)
	waitFor(t, func() bool { return h.command(id1).Status == "running" }, "running after ack")
	c.result(cmd1, pb.ResultCode_RESULT_CODE_SUCCEEDED, false, "m1")
	c.result(cmd1, pb.ResultCode_RESULT_CODE_SUCCEEDED, true, "m2")
	v := h.waitCommand(id1, "succeeded")
	if len(v.Results) != 2 || v.Results[0].Status != "succeeded" || v.Results[1].Status != "succeeded" || v.NodeSeqs["n1"] != 1 {
		t.Fatalf("command 1 record %+v", v)
	}
	c.ack(cmd2, pb.ResultCode_RESULT_CODE_REFUSED_POLICY)
	v = h.waitCommand(id2, "failed")
	if v.Results[0].Code != "refused_policy" {
		t.Fatalf("refused command %+v", v)
	}
	waitFor(t, func() bool { return h.nodes().Nodes[0].QueuedCommands == 0 }, "queue empty")
	// Desired state follows commands.
	var m2 struct {
		Desired struct {
			PowerTargetW float64 `json:"power_target_w"`
		} `json:"desired"`
	}
	waitFor(t, func() bool { h.do("GET", "/api/v1/miners/m2", "", &m2); return m2.Desired.PowerTargetW == 3000 }, "desired power")
	// Commands reach their owning node only.
	h.upload("n2", 1, h.sample("m3", 1))
	c2, _ := h.openControl("n2", 0)
	id3 := h.issue(`{"miner_ids":["m1","m3"],"action":"stop"}`)
	a, b := c.nextCommand(), c2.nextCommand()
	if a.GetMonotonicSeq() != 3 || strings.Join(payloadOf(t, a).GetMinerIds(), ",") != "m1" ||
		b.GetMonotonicSeq() != 1 || strings.Join(payloadOf(t, b).GetMinerIds(), ",") != "m3" {
		t.Fatalf("split command: n1 %v / n2 %v", a, b)
	}
	c.result(a, pb.ResultCode_RESULT_CODE_SUCCEEDED, true, "m1")
	c2.result(b, pb.ResultCode_RESULT_CODE_FAILED, true)
	v = h.waitCommand(id3, "failed")
	if v.Summary["succeeded"] != 1 || v.Summary["failed"] != 1 {
		t.Fatalf("split command record %+v", v)
	}
}

func TestIdempotencyKey(t *testing.T) {
	h := newHarness(t)
	h.upload("n1", 1, h.sample("m1", 1), h.sample("m2", 1))
	id := h.issue(`{"miner_ids":["m1","m2"],"action":"blink","idempotency_key":"k-1"}`)
	var again struct {
		CommandID string `json:"command_id"`
		Existing  bool   `json:"existing"`
	}
	if code, b := h.do("POST", "/api/v1/commands", `{"miner_ids":["m2","m1"],"action":"blink","idempotency_key":"k-1"}`, &again); code != 202 || again.CommandID != id || !again.Existing {
		t.Fatalf("retry: %d %s", code, b)
	}
	if code, b := h.do("POST", "/api/v1/commands", `{"miner_ids":["m1"],"action":"reboot","idempotency_key":"k-1"}`, nil); code != 409 {
		t.Fatalf("reused key: %d %s", code, b)
	}
	recs, err := h.srv.Store().Commands()
	if err != nil || len(recs) != 1 {
		t.Fatalf("records %d, %v", len(recs), err)
	}
}

func TestStreamDroppedMidCommandIsResent(t *testing.T) {
	h := newHarness(t)
	h.upload("n1", 1, h.sample("m1", 1))
	a, _ := h.openControl("n1", 0)
	id1 := h.issue(`{"miner_ids":["m1"],"action":"reboot"}`)
	if cmd := a.nextCommand(); cmd.GetMonotonicSeq() != 1 {
		t.Fatalf("first send %v", cmd)
	}
	a.close() // dropped before the node accepted it: its mark stays 0
	h.waitConnected("n1", false)
	id2 := h.issue(`{"miner_ids":["m1"],"action":"stop"}`) // queued while the node is away

	b, ack := h.openControl("n1", 0)
	if ack.GetNextSeq() != 3 {
		t.Fatalf("hello_ack next_seq %d, want 3", ack.GetNextSeq())
	}
	r1, r2 := b.nextCommand(), b.nextCommand()
	if r1.GetMonotonicSeq() != 1 || r1.GetCommandId() != id1 || r2.GetMonotonicSeq() != 2 || r2.GetCommandId() != id2 {
		t.Fatalf("re-sent %v then %v, want seq 1 then 2", r1, r2)
	}
	b.close()
	h.waitConnected("n1", false)

	// The node executed seq 1 and persisted its mark: only seq 2 comes again.
	c, _ := h.openControl("n1", 1)
	if r := c.nextCommand(); r.GetMonotonicSeq() != 2 {
		t.Fatalf("after last_seq 1 got seq %d, want 2", r.GetMonotonicSeq())
	}
	c.quiet(100 * time.Millisecond)
	c.result(r1, pb.ResultCode_RESULT_CODE_SUCCEEDED, true, "m1")
	c.result(r2, pb.ResultCode_RESULT_CODE_SUCCEEDED, true, "m1")
	h.waitCommand(id1, "succeeded")
	h.waitCommand(id2, "succeeded")
}

func TestNewestStreamWins(t *testing.T) {
	h := newHarness(t)
	h.upload("n1", 1, h.sample("m1", 1))
	old, _ := h.openControl("n1", 0)
	newer, _ := h.openControl("n1", 0)
	g := old.next().GetGoaway()
	if g == nil || !strings.Contains(g.GetReason(), "newer") || g.GetReconnectAfterMs() <= 0 {
		t.Fatalf("older stream got %v, want goaway", g)
	}
	if err := old.ended(); !isEOF(err) {
		t.Fatalf("older stream ended with %v, want a clean end", err)
	}
	h.issue(`{"miner_ids":["m1"],"action":"reboot"}`)
	if cmd := newer.nextCommand(); cmd.GetMonotonicSeq() != 1 {
		t.Fatalf("newer stream got %v", cmd)
	}
	h.waitConnected("n1", true)
}

func TestDrainSendsGoaway(t *testing.T) {
	h := newHarness(t)
	a, _ := h.openControl("n1", 0)
	b, _ := h.openControl("n2", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.srv.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*control{a, b} {
		g := c.next().GetGoaway()
		if g == nil || g.GetReconnectAfterMs() != 2000 {
			t.Fatalf("got %v, want goaway with reconnect_after_ms 2000", g)
		}
		if err := c.ended(); !isEOF(err) {
			t.Fatalf("stream ended with %v", err)
		}
	}
	// Nothing new is accepted while draining.
	st, err := h.gw.ControlStream(h.nodeCtx(context.Background(), "n3"))
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("stream after drain: %v, want Unavailable", err)
	}
}

func TestCommandTimesOut(t *testing.T) {
	h := newHarness(t)
	h.upload("n1", 1, h.sample("m1", 1), h.sample("m2", 1))
	c, _ := h.openControl("n1", 0)
	id := h.issue(`{"miner_ids":["m1","m2"],"action":"reboot"}`)
	cmd := c.nextCommand()
	c.ack(cmd, pb.ResultCode_RESULT_CODE_RUNNING)
	c.result(cmd, pb.ResultCode_RESULT_CODE_SUCCEEDED, false, "m1") // m2 never answers
	waitFor(t, func() bool { return h.command(id).Summary["succeeded"] == 1 }, "m1 succeeded")
	h.clk.Advance(59 * time.Second)
	if v := h.command(id); v.Status != "running" {
		t.Fatalf("at 59s: %+v", v)
	}
	h.clk.Advance(time.Second)
	v := h.waitCommand(id, "timeout")
	if v.Results[0].Status != "succeeded" || v.Results[1].Status != "timeout" || !strings.Contains(v.Results[1].Message, "1m0s") {
		t.Fatalf("timed-out record %+v", v)
	}
	waitFor(t, func() bool { return h.nodes().Nodes[0].QueuedCommands == 0 }, "queue dropped after timeout")
	// A late result changes nothing, and the dropped command is not re-sent on reconnect.
	c.result(cmd, pb.ResultCode_RESULT_CODE_SUCCEEDED, true, "m2")
	c.close()
	h.waitConnected("n1", false)
	c2, _ := h.openControl("n1", 0)
	c2.quiet(100 * time.Millisecond)
	if v := h.command(id); v.Results[1].Status != "timeout" {
		t.Fatalf("late result applied: %+v", v)
	}
}

func TestHeartbeat(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(h.nodeCtx(context.Background(), "n1"), 5*time.Second)
	defer cancel()
	st, err := h.gw.Heartbeat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.HeartbeatPing{NodeId: "n1", SentAtUnixMs: 1}); err != nil {
		t.Fatal(err)
	}
	pong, err := st.Recv()
	if err != nil || pong.GetServerTimeUnixMs() != h.clk.Now().UnixMilli() {
		t.Fatalf("pong %v, %v", pong, err)
	}
	h.clk.Advance(4 * time.Second)
	waitFor(t, func() bool {
		n := h.nodes().Nodes
		return len(n) == 1 && n[0].HeartbeatAge != nil && *n[0].HeartbeatAge == 4
	}, "heartbeat age 4s")
	if err := st.Send(&pb.HeartbeatPing{NodeId: "other"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("ping for another node: %v, want PermissionDenied", err)
	}
}

func TestEventsRegisterDevicesAndStates(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(h.nodeCtx(context.Background(), "n1"), 5*time.Second)
	defer cancel()
	st, err := h.gw.UploadEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := func(seq uint64, evs ...*pb.Event) {
		t.Helper()
		if err := st.Send(&pb.EventBatch{NodeId: "n1", BatchSeq: seq, Events: evs}); err != nil {
			t.Fatal(err)
		}
		if a, err := st.Recv(); err != nil || a.GetBatchSeq() != seq || a.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
			t.Fatalf("ack %v, %v", a, err)
		}
	}
	send(1, &pb.Event{Kind: pb.EventKind_EVENT_KIND_DISCOVERED, Device: &pb.Device{MinerId: "m1", Address: "10.0.0.9:4028",
		Protocol: pb.Protocol_PROTOCOL_CGMINER, Model: "S19j"}})
	send(2, &pb.Event{Kind: pb.EventKind_EVENT_KIND_STATE_CHANGE, MinerId: "m1", ToState: pb.MinerState_MINER_STATE_STOPPED,
		AtUnixMs: h.clk.Now().UnixMilli()})
	var m struct {
		State    string `json:"state"`
		Address  string `json:"address"`
		Model    string `json:"model"`
		Protocol string `json:"protocol"`
	}
	if code, b := h.do("GET", "/api/v1/miners/m1", "", &m); code != 200 || m.State != "stopped" || m.Address != "10.0.0.9:4028" || m.Model != "S19j" || m.Protocol != "cgminer" {
		t.Fatalf("discovered miner: %d %s", code, b)
	}
}

func TestSplitModeRefusesNodes(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Combined = false })
	st, err := h.gw.ControlStream(h.nodeCtx(context.Background(), "n1"))
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "session token") {
		t.Fatalf("split mode stream: %v, want Unauthenticated naming the session token", err)
	}
	if _, err := h.gw.Enroll(context.Background(), &pb.EnrollRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Enroll without keys: %v, want InvalidArgument", err)
	}
}

func TestMalformedAndOutOfProtocolFrames(t *testing.T) {
	h := newHarness(t)
	open := func(ctx context.Context, first *pb.NodeToCloud) error {
		st, err := h.gw.ControlStream(ctx)
		if err != nil {
			return err
		}
		if first != nil {
			_ = st.Send(first) // io.EOF when the server already ended the stream; Recv has the status
		}
		for {
			if _, err := st.Recv(); err != nil {
				return err
			}
		}
	}
	bg := context.Background()
	if err := open(bg, &pb.NodeToCloud{Msg: &pb.NodeToCloud_Hello{Hello: &pb.ControlHello{}}}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no metadata: %v", err)
	}
	if err := open(h.nodeCtx(bg, "bad/node"), nil); status.Code(err) != codes.Unauthenticated {
		t.Errorf("invalid node id: %v", err)
	}
	err := open(h.nodeCtx(bg, "n1"), &pb.NodeToCloud{Msg: &pb.NodeToCloud_Ack{Ack: &pb.CommandAck{}}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "first control frame must be hello") {
		t.Errorf("ack first: %v", err)
	}
	err = open(h.nodeCtx(bg, "n1"), &pb.NodeToCloud{Msg: &pb.NodeToCloud_Hello{Hello: &pb.ControlHello{NodeId: "n2"}}})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("hello for another node: %v", err)
	}
	c, _ := h.openControl("n1", 0)
	c.send(&pb.NodeToCloud{})
	if err := c.ended(); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "empty control frame") {
		t.Errorf("empty frame: %v", err)
	}
	// A frame over 4 MiB.
	ctx, cancel := context.WithTimeout(h.nodeCtx(bg, "n1"), 5*time.Second)
	defer cancel()
	st, err := h.gw.UploadTelemetry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	big := &pb.TelemetryBatch{NodeId: "n1", BatchSeq: 1, Samples: []*pb.Telemetry{{MinerId: "m1", Firmware: strings.Repeat("x", 5<<20)}}}
	_ = st.Send(big)
	if _, err := st.Recv(); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("oversized frame: %v, want ResourceExhausted", err)
	}
	if l := h.miners(""); l.Total != 0 {
		t.Errorf("oversized batch applied: %+v", l)
	}
	// A batch for another node.
	st, err = h.gw.UploadTelemetry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(&pb.TelemetryBatch{NodeId: "n2", BatchSeq: 1})
	if _, err := st.Recv(); status.Code(err) != codes.PermissionDenied {
		t.Errorf("batch for another node: %v", err)
	}
	// Unowned samples are refused but the batch is acked.
	h.upload("n1", 1, h.sample("m1", 1))
	a := h.upload("n2", 1, h.sample("m1", 50))
	if a.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED || !strings.Contains(a.GetMessage(), "refused 1") {
		t.Errorf("unowned sample ack %v", a)
	}
	if l := h.miners(""); l.Items[0].HashrateThs != 1 || l.Items[0].Node != "n1" {
		t.Errorf("n2 overwrote n1's miner: %+v", l.Items[0])
	}
}

func TestFleetListOf20000Miners(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	h := newHarness(t)
	const n, per = 20000, 1000
	for b := 0; b < n/per; b++ {
		var ss []*pb.Telemetry
		for i := 0; i < per; i++ {
			ss = append(ss, h.sample(fmt.Sprintf("m%05d", b*per+i), float64(i)))
		}
		if a := h.upload("n1", uint64(b+1), ss...); a.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
			t.Fatalf("batch %d: %v", b, a)
		}
	}
	start := time.Now()
	code, body := h.do("GET", "/api/v1/miners?limit=20000", "", nil)
	took := time.Since(start)
	if code != 200 {
		t.Fatalf("GET: %d", code)
	}
	var l minerList
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatal(err)
	}
	if l.Total != n || len(l.Items) != n || l.Items[n-1].ID != "m19999" {
		t.Fatalf("listed %d of %d", len(l.Items), l.Total)
	}
	t.Logf("listed %d miners in one request (%d KiB) in %s", n, len(body)>>10, took)
	if took > 3*time.Second {
		t.Fatalf("listing 20,000 miners took %s", took)
	}
}

func TestSignedCommands(t *testing.T) {
	var keys *signing.OrgKeys
	h := newHarness(t, func(c *Config) {
		var err error
		if keys, err = signing.NewOrgKeys("default", c.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		c.Signer = grains.OrgKeysSigner{Org: keys, Clock: c.Clock}
	})
	h.upload("n1", 1, h.sample("m1", 1))
	c, ack := h.openControl("n1", 0)
	if len(ack.GetCommandKeys()) != 1 {
		t.Fatalf("hello_ack command keys %v", ack.GetCommandKeys())
	}
	h.issue(`{"miner_ids":["m1"],"action":"reboot"}`)
	cmd := c.nextCommand()
	if cmd.GetKeyId() != ack.GetCommandKeys()[0].GetKeyId() {
		t.Fatalf("key id %q", cmd.GetKeyId())
	}
	if err := signing.Verify(ack.GetCommandKeys()[0].GetPublicKey(), cmd); err != nil {
		t.Fatalf("command does not verify with the announced key: %v", err)
	}
}
