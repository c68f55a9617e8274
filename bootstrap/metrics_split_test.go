package bootstrap

// Split mode scraped like Prometheus would: `hashfleet server` and `hashfleet node run` (in this test
// process, over real TLS and real sockets) each serve their own /metrics. Activity from outside (polls, two
// commands, a replayed command the node's gate refuses, the server going away and coming back) and then each
// process's named series and values asserted, readiness checked (a node without its cloud stays ready), and
// both expositions linted by promtool.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func TestMetricsSplitMode(t *testing.T) {
	promtool := requireTool(t, "promtool", "prometheus")
	const n = 3
	s := startSplit(t, splitOpts{miners: n, metrics: true})
	srvBase, nodeBase := "http://"+s.srv.MetricsAddr(), "http://"+s.node.MetricsAddr()
	if s.srv.MetricsAddr() == "" || s.node.MetricsAddr() == "" || srvBase == nodeBase {
		t.Fatalf("metrics addresses: server %q, node %q", s.srv.MetricsAddr(), s.node.MetricsAddr())
	}
	wantChecks(t, readiness(t, srvBase+"/readyz", "", ""), "ready", map[string]bool{"cloud_store": true, "cloud_actors": true, "gateway": true})
	wantChecks(t, readiness(t, nodeBase+"/readyz", "", ""), "ready", map[string]bool{"node_store": true, "node_actors": true, "cloud_link": true})
	for _, base := range []string{srvBase, nodeBase} {
		if r := metricsGet(t, metricsClient(), base+"/status/ha", "", ""); r.code != 200 || strings.TrimSpace(r.body) != `{"pair":null}` {
			t.Errorf("%s/status/ha: HTTP %d %s", base, r.code, r.body)
		}
	}

	// Two commands, then a replay of seq 1 (validly signed, but at the node's mark): the gate refuses it and
	// reports the refusal to the cloud.
	s.waitCommand(s.command("stop", "sim-1"), "succeeded")
	s.waitCommand(s.command("start", "sim-1"), "succeeded")
	s.inject(s.signed("replayed", 1, 0, "sim-0"))
	s.audit(1, "replayed", pb.ResultCode_RESULT_CODE_REFUSED_SEQ)
	nodeID := s.nodeID

	waitFor(t, 15*time.Second, "the activity in both scrapes", func() bool {
		_, nf := scrape(t, nodeBase+"/metrics", "", "")
		_, sf := scrape(t, srvBase+"/metrics", "", "")
		mining, _ := nf.value("hashfleet_node_miners", map[string]string{"state": "mining"})
		refused, _ := sf.value("hashfleet_server_commands_refused_total", map[string]string{"reason": "refused_seq"})
		fwd, _ := sf.value("hashfleet_server_node_reported_miners", map[string]string{"node": nodeID, "state": "mining"})
		return mining == n && refused == 1 && fwd == n
	})
	nodeBody, nf := scrape(t, nodeBase+"/metrics", "", "")
	srvBody, sf := scrape(t, srvBase+"/metrics", "", "")
	assertSplitNode(t, nf, n)
	checkLabelCase(t, nf)
	assertCloudSeries(t, sf, nodeID, n, 1)
	assertForwarded(t, sf, nodeID, n)
	checkLabelCase(t, sf)
	eqSeries(t, sf, "hashfleet_server_commands_refused_total", map[string]string{"reason": "refused_seq"}, 1)
	eqSeries(t, sf, "hashfleet_server_commands_issued_total", nil, 2)
	eqSeries(t, sf, "hashfleet_server_commands_total", map[string]string{"result": "succeeded"}, 2)
	eqSeries(t, sf, "hashfleet_server_nodes_connected", nil, 1)
	eqSeries(t, sf, "hashfleet_server_devices", nil, n)
	for _, kind := range []string{"control", "telemetry", "events", "heartbeat"} {
		eqSeries(t, sf, "hashfleet_server_streams_connected", map[string]string{"kind": kind}, 1)
	}
	// Each process exposes its own half: no node series on the server, no server series on the node.
	for name := range sf {
		if strings.HasPrefix(name, "hashfleet_node_") {
			t.Errorf("the server exposes %s", name)
		}
	}
	for name := range nf {
		if strings.HasPrefix(name, "hashfleet_server_") {
			t.Errorf("the node exposes %s", name)
		}
	}

	// A stream drop: the server stops (goaway to the node). The node keeps running its site and stays ready;
	// its cloud link is reported down.
	s.stopServer()
	s.waitLink(false)
	_, nf2 := scrape(t, nodeBase+"/metrics", "", "")
	for _, st := range []string{"control", "telemetry", "events", "heartbeat"} {
		eqSeries(t, nf2, "hashfleet_node_stream_up", map[string]string{"stream": st}, 0)
	}
	eqSeries(t, nf2, "hashfleet_node_stream_disconnects_total", map[string]string{"reason": "goaway"}, 1)
	if r := metricsGet(t, metricsClient(), nodeBase+"/readyz", "", ""); r.code != 200 {
		t.Errorf("node /readyz without its cloud: HTTP %d %s, want 200 (ready for local operation)", r.code, r.body)
	}
	wantChecks(t, readiness(t, nodeBase+"/readyz", "", ""), "ready", map[string]bool{"node_store": true, "node_actors": true, "cloud_link": false})

	// The server comes back (a new process, a new metrics port): the node reconnects; the heartbeat age of
	// the node is there from the stream's attach.
	s.startServer()
	s.waitLink(true)
	srvBase = "http://" + s.srv.MetricsAddr()
	waitFor(t, 10*time.Second, "the reconnect in both scrapes", func() bool {
		_, nf := scrape(t, nodeBase+"/metrics", "", "")
		_, sf := scrape(t, srvBase+"/metrics", "", "")
		c, _ := nf.value("hashfleet_node_stream_connects_total", map[string]string{"result": "connected"})
		_, hb := sf.value("hashfleet_server_node_heartbeat_age_seconds", map[string]string{"node": nodeID})
		return c == 2 && hb
	})
	nodeBody2, _ := scrape(t, nodeBase+"/metrics", "", "")
	srvBody2, sf2 := scrape(t, srvBase+"/metrics", "", "")
	eqSeries(t, sf2, "hashfleet_server_nodes_connected", nil, 1)
	wantChecks(t, readiness(t, nodeBase+"/readyz", "", ""), "ready", map[string]bool{"node_store": true, "node_actors": true, "cloud_link": true})

	lintWithPromtool(t, promtool, nodeBody, srvBody, nodeBody2, srvBody2)
}

func eqSeries(t *testing.T, f families, name string, labels map[string]string, want float64) {
	t.Helper()
	if v, ok := f.value(name, labels); !ok || v != want {
		t.Errorf("%s%v = %v (present %v), want %v", name, labels, v, ok, want)
	}
}

// assertSplitNode checks a split-mode node's exposition after two succeeded commands and one refused replay.
func assertSplitNode(t *testing.T, f families, n int) {
	t.Helper()
	for _, name := range []string{"go_goroutines", "go_gc_duration_seconds", "process_cpu_seconds_total",
		"process_resident_memory_bytes", "process_open_fds", "hashfleet_build_info"} {
		if _, ok := f[name]; !ok {
			t.Errorf("golden signal %s missing", name)
		}
	}
	eqSeries(t, f, "hashfleet_actors_alive", map[string]string{"kind": "miner"}, float64(n))
	for _, kind := range []string{"site", "uplink", "command-gate", "telemetry-batcher", "metrics-forwarder"} {
		eqSeries(t, f, "hashfleet_actors_alive", map[string]string{"kind": kind}, 1)
	}
	eqSeries(t, f, "hashfleet_node_miners", map[string]string{"state": "mining"}, float64(n))
	if v, _ := f.value("hashfleet_node_polls_total", map[string]string{"driver": "cgminer", "result": "ok"}); v < float64(n) {
		t.Errorf("cgminer polls ok = %v, want >= %d", v, n)
	}
	if p99 := f.histogramQuantile("hashfleet_node_poll_latency_seconds", 0.99); !(p99 > 0 && p99 < 5) {
		t.Errorf("poll latency p99 = %v s, want within (0, 5)", p99)
	}
	eqSeries(t, f, "hashfleet_node_gate_decisions_total", map[string]string{"code": "running"}, 2)
	eqSeries(t, f, "hashfleet_node_gate_decisions_total", map[string]string{"code": "refused_seq"}, 1)
	eqSeries(t, f, "hashfleet_node_commands_total", map[string]string{"result": "succeeded"}, 2)
	eqSeries(t, f, "hashfleet_node_seq_high_water_mark", nil, 2)
	for _, st := range []string{"control", "telemetry", "events", "heartbeat"} {
		eqSeries(t, f, "hashfleet_node_stream_up", map[string]string{"stream": st}, 1)
	}
	eqSeries(t, f, "hashfleet_node_stream_connects_total", map[string]string{"result": "connected"}, 1)
	for _, kind := range []string{"telemetry", "events"} {
		if _, ok := f.value("hashfleet_node_spool_items", map[string]string{"kind": kind}); !ok {
			t.Errorf("hashfleet_node_spool_items{kind=%q} missing", kind)
		}
	}
	if _, ok := f.value("hashfleet_node_spool_oldest_age_seconds", nil); !ok {
		t.Error("hashfleet_node_spool_oldest_age_seconds missing")
	}
	for _, store := range []string{"node", "spool"} {
		assertBadger(t, f, store)
	}
	if f.hasSeries("hashfleet_store_badger_lsm_bytes") {
		if _, ok := f.value("hashfleet_store_badger_lsm_bytes", map[string]string{"store": "cloud"}); ok {
			t.Error(fmt.Sprint("the node reports the cloud's store"))
		}
	}
}
