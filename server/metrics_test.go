package server

import (
	"context"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsExposed(t *testing.T) {
	h := newHarness(t)
	h.upload("n1", 1, h.sample("m1", 1))
	c, _ := h.openControl("n1", 0)
	id := h.issue(`{"miner_ids":["m1"],"action":"reboot"}`)
	cmd := c.nextCommand()
	c.result(cmd, pb.ResultCode_RESULT_CODE_SUCCEEDED, true, "m1")
	h.waitCommand(id, "succeeded")
	ctx, cancel := context.WithTimeout(h.nodeCtx(context.Background(), "n1"), 5*time.Second)
	defer cancel()
	hb, err := h.gw.Heartbeat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = hb.Send(&pb.HeartbeatPing{NodeId: "n1"})
	if _, err := hb.Recv(); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(3 * time.Second)

	if problems, err := testutil.GatherAndLint(h.reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	fams, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range fams {
		have[f.GetName()] = true
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "miner" {
					t.Errorf("%s has a miner label", f.GetName())
				}
			}
		}
	}
	for _, name := range []string{
		"hashfleet_server_telemetry_samples_total", "hashfleet_server_ingest_batches_total",
		"hashfleet_server_commands_issued_total", "hashfleet_server_commands_total", "hashfleet_server_command_miner_results_total",
		"hashfleet_server_streams_connected", "hashfleet_server_node_heartbeat_age_seconds", "hashfleet_server_nodes_connected",
		"hashfleet_server_devices", "hashfleet_server_api_requests_total", "hashfleet_actors_alive",
	} {
		if !have[name] {
			t.Errorf("metric %s not exposed", name)
		}
	}
	if got := testutil.ToFloat64(h.srv.fleet.Metrics().BatchesCounter("telemetry", "applied")); got != 1 {
		t.Errorf("applied batches %v", got)
	}
}
