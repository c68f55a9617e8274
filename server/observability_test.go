package server

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	dto "github.com/prometheus/client_model/go"
)

// metric returns the value (a histogram's count) of name's series with the given labels.
func (h *harness) metric(name string, labels map[string]string) (float64, bool) {
	h.t.Helper()
	fams, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				if !hasLabel(m, k, v) {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

// TestHeartbeatAgeFromAttach: a node's heartbeat age starts when its control stream attaches, before its
// first heartbeat.
func TestHeartbeatAgeFromAttach(t *testing.T) {
	h := newHarness(t)
	if _, ok := h.metric("hashfleet_server_node_heartbeat_age_seconds", map[string]string{"node": "n1"}); ok {
		t.Fatal("a heartbeat age before the node ever connected")
	}
	c, _ := h.openControl("n1", 0)
	defer c.close()
	h.waitConnected("n1", true)
	h.clk.Advance(4 * time.Second)
	if age, ok := h.metric("hashfleet_server_node_heartbeat_age_seconds", map[string]string{"node": "n1"}); !ok || age != 4 {
		t.Fatalf("heartbeat age %v (present %v) 4 s after attach, without any heartbeat: want 4", age, ok)
	}
}

// TestCommandLatencyAndRefusals: the cloud's command latency histogram (issue to final result, fake clock)
// and refusals by the code the node reports, including for a command the cloud no longer has queued.
func TestCommandLatencyAndRefusals(t *testing.T) {
	h := newHarness(t)
	h.upload("n1", 1, h.sample("m1", 1), h.sample("m2", 1))
	c, _ := h.openControl("n1", 0)
	defer c.close()

	ok := h.issue(`{"miner_ids":["m1"],"action":"reboot"}`)
	cmd := c.nextCommand()
	h.clk.Advance(1500 * time.Millisecond)
	c.result(cmd, pb.ResultCode_RESULT_CODE_SUCCEEDED, true, "m1")
	h.waitCommand(ok, "succeeded")

	refused := h.issue(`{"miner_ids":["m2"],"action":"reboot"}`)
	cmd2 := c.nextCommand()
	c.ack(cmd2, pb.ResultCode_RESULT_CODE_REFUSED_OWNERSHIP)
	h.waitCommand(refused, "failed")
	c.ack(cmd2, pb.ResultCode_RESULT_CODE_REFUSED_SEQ) // a replay the gate caught: not queued here any more
	waitFor(t, func() bool {
		v, _ := h.metric("hashfleet_server_commands_refused_total", map[string]string{"reason": "refused_seq"})
		return v == 1
	}, "the refusal of an unqueued command counted")

	if v, _ := h.metric("hashfleet_server_commands_refused_total", map[string]string{"reason": "refused_ownership"}); v != 1 {
		t.Errorf("refused_ownership %v, want 1", v)
	}
	if v, _ := h.metric("hashfleet_server_command_duration_seconds", map[string]string{"result": "succeeded"}); v != 1 {
		t.Errorf("succeeded commands in the latency histogram: %v, want 1", v)
	}
	if v, _ := h.metric("hashfleet_server_command_duration_seconds", map[string]string{"result": "failed"}); v != 1 {
		t.Errorf("failed commands in the latency histogram: %v, want 1", v)
	}
	fams, _ := h.reg.Gather()
	for _, f := range fams {
		if f.GetName() != "hashfleet_server_command_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabel(m, "result", "succeeded") && m.GetHistogram().GetSampleSum() != 1.5 {
				t.Errorf("succeeded command latency %v s, want 1.5 (the fake clock's advance)", m.GetHistogram().GetSampleSum())
			}
		}
	}
	if v, _ := h.metric("hashfleet_server_node_telemetry_samples_total", map[string]string{"node": "n1"}); v != 2 {
		t.Errorf("samples from n1: %v, want 2", v)
	}
}

// TestNodeProcessSnapshot: a NODE_METRICS event's snapshot is the node's in GET /api/v1/nodes and in the
// per-node series; only known miner states become label values.
func TestNodeProcessSnapshot(t *testing.T) {
	h := newHarness(t)
	c, _ := h.openControl("n1", 0)
	defer c.close()
	ctx, cancel := context.WithTimeout(h.nodeCtx(context.Background(), "n1"), 10*time.Second)
	defer cancel()
	st, err := h.gw.UploadEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap := &pb.NodeMetrics{AtUnixMs: h.clk.Now().UnixMilli(), CpuSeconds: 12.5, ResidentMemoryBytes: 80 << 20, Goroutines: 321,
		OpenFds: 40, GcPauseP99Seconds: 0.0003, MinersByState: map[string]uint32{"mining": 9, "unreachable": 1, "bogus-state": 5},
		SpoolItems: 77, UptimeSeconds: 3600, SoftwareVersion: "9.9"}
	if err := st.Send(&pb.EventBatch{NodeId: "n1", BatchSeq: 1, Events: []*pb.Event{{EventId: "e1",
		Kind: pb.EventKind_EVENT_KIND_NODE_METRICS, AtUnixMs: snap.GetAtUnixMs(), NodeMetrics: snap}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseSend()
	var process map[string]any
	waitFor(t, func() bool {
		var raw struct {
			Nodes []struct {
				Node    string         `json:"node"`
				Process map[string]any `json:"process"`
			} `json:"nodes"`
		}
		_, b := h.do("GET", "/api/v1/nodes", "", nil)
		_ = json.Unmarshal(b, &raw)
		for _, n := range raw.Nodes {
			if n.Node == "n1" && n.Process != nil {
				process = n.Process
				return true
			}
		}
		return false
	}, "the snapshot in GET /api/v1/nodes")
	if process["goroutines"] != 321.0 || process["resident_memory_bytes"] != float64(80<<20) || process["software_version"] != "9.9" ||
		process["miners_by_state"].(map[string]any)["mining"] != 9.0 {
		t.Errorf("process %v", process)
	}
	h.clk.Advance(2 * time.Second)
	for name, want := range map[string]float64{"hashfleet_server_node_goroutines": 321, "hashfleet_server_node_process_cpu_seconds_total": 12.5,
		"hashfleet_server_node_spool_items": 77, "hashfleet_server_node_process_snapshot_age_seconds": 2} {
		if v, ok := h.metric(name, map[string]string{"node": "n1"}); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if v, _ := h.metric("hashfleet_server_node_reported_miners", map[string]string{"node": "n1", "state": "mining"}); v != 9 {
		t.Errorf("reported mining %v", v)
	}
	if _, ok := h.metric("hashfleet_server_node_reported_miners", map[string]string{"state": "bogus-state"}); ok {
		t.Error("a state the node made up became a label value")
	}
}

// TestReadinessChecks: the server's checks pass while it runs; the gateway's fails once it drains.
func TestReadinessChecks(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for name, check := range map[string]func(context.Context) error{"store": h.srv.CheckStore, "actors": h.srv.CheckActors, "gateway": h.srv.CheckGateway} {
		if err := check(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := h.srv.Drain(dctx); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.CheckGateway(ctx); err == nil {
		t.Error("a draining gateway is ready")
	}
	h.close()
	if err := h.srv.CheckStore(ctx); err == nil {
		t.Error("a closed store is ready")
	}
	if err := h.srv.CheckActors(ctx); err == nil {
		t.Error("a stopped server's actors are ready")
	}
}
