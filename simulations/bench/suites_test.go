package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSpoolSuite spools a minute of 100 miners into a real Badger directory and replays it.
func TestSpoolSuite(t *testing.T) {
	o := testOptions(t, 100)
	o.SpoolSpan = time.Minute
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "hashfleet-bench-spool-*"))
	res, err := SpoolSuite{}.Run(context.Background(), o, discardProgress{})
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := filepath.Glob(filepath.Join(os.TempDir(), "hashfleet-bench-spool-*")); len(after) > len(before) {
		t.Errorf("the spool's temporary directory is left behind: %v", after)
	}
	t.Log(resultText(res))
	if n, _ := res.Metric("samples"); n != 1200 {
		t.Errorf("%v samples, want 100 miners × 12 ticks", n)
	}
	for _, k := range []string{"write_samples_per_s", "replay_samples_per_s", "bytes_per_miner_hour_logical", "bytes_per_miner_hour_disk", "sample_proto_bytes"} {
		if v, ok := res.Metric(k); !(ok && v > 0) {
			t.Errorf("%s = %v", k, v)
		}
	}
	if v, _ := res.Metric("dropped_batches"); v != 0 {
		t.Errorf("%v batches dropped", v)
	}
}

// TestFanoutSuite runs one trial of each bulk command against 40 miners in two simulator processes, a cloud
// process and an enrolled node.
func TestFanoutSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cloud process, a node and simulators for about 20s")
	}
	o := testOptions(t, 40)
	o.MinersPerSim, o.Trials, o.Interval = 20, 1, time.Second
	res, err := FanoutSuite{}.Run(context.Background(), o, discardProgress{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(resultText(res))
	if v, _ := res.Metric("reboot_succeeded"); v != 40 {
		t.Errorf("reboot: %v succeeded, want 40", v)
	}
	if v, _ := res.Metric("set_power_target_failed"); v != 40 {
		t.Errorf("set_power_target: %v final as failed (unsupported over the CGMiner API), want 40", v)
	}
	for _, a := range []string{"reboot", "set_power_target"} {
		p50, _ := res.Metric(a + "_miner_latency_p50_ms")
		p99, _ := res.Metric(a + "_miner_latency_p99_ms")
		all, _ := res.Metric(a + "_all_acked_median_ms")
		if !(p50 > 0 && p99 >= p50 && all >= p99-1) {
			t.Errorf("%s: p50 %v p99 %v all acked %v", a, p50, p99, all)
		}
		started, _ := res.Metric(a + "_miner_started_p50_ms")
		node, _ := res.Metric(a + "_node_cpu_median_ms")
		if !(started > 0 && started <= p50+1 && node > 0) {
			t.Errorf("%s: slot taken p50 %v (latency p50 %v), node CPU %v ms", a, started, p50, node)
		}
	}
}

// TestIngestSuite runs two nodes of 30 miners each into a cloud process for a short window.
func TestIngestSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cloud process and two nodes for about 15s")
	}
	o := testOptions(t, 60)
	o.Nodes, o.Interval, o.Warmup, o.Duration = 2, time.Second, time.Second, 4*time.Second
	o.CPUProfile = filepath.Join(t.TempDir(), "ing.prof")
	res, err := IngestSuite{}.Run(context.Background(), o, discardProgress{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(resultText(res))
	// 60 miners at 1s for 4s: about 240 samples.
	if v, _ := res.Metric("samples_applied"); v < 150 {
		t.Errorf("%v samples applied, want about 240", v)
	}
	if v, _ := res.Metric("e2e_probes"); v < 2 {
		t.Errorf("%v probes measured", v)
	}
	for _, k := range []string{"e2e_latency_p50_ms", "cloud_cpu_ms_per_1k_samples", "cloud_cpu_cores", "samples_per_batch",
		"probe_api_calls_per_s", "samples_per_s_no_probes", "cloud_cpu_ms_per_1k_samples_no_probes"} {
		if v, _ := res.Metric(k); !(v > 0) {
			t.Errorf("%s = %v", k, v)
		}
	}
	// The cloud's profiles cover the two windows: without probes, and with them.
	for _, name := range []string{"cloud-quiet", "cloud", "node"} {
		if fi, err := os.Stat(o.CPUProfile + "." + name); err != nil || fi.Size() == 0 {
			t.Errorf("profile %s: %v", name, err)
		}
	}
}

func TestSumCounter(t *testing.T) {
	text := `# HELP hashfleet_server_telemetry_samples_total x
# TYPE hashfleet_server_telemetry_samples_total counter
hashfleet_server_telemetry_samples_total{result="applied"} 1200
hashfleet_server_telemetry_samples_total{result="duplicate"} 3
hashfleet_server_telemetry_samples_total_other{result="applied"} 99
hashfleet_server_ingest_batches_total{kind="telemetry",result="applied"} 2.5e+01
plain_counter 7
`
	for _, tc := range []struct {
		name, match string
		want        float64
	}{
		{"hashfleet_server_telemetry_samples_total", `result="applied"`, 1200},
		{"hashfleet_server_telemetry_samples_total", "", 1203},
		{"hashfleet_server_ingest_batches_total", `kind="telemetry"`, 25},
		{"plain_counter", "", 7},
		{"absent", "", 0},
	} {
		got, err := sumCounter(strings.NewReader(text), tc.name, tc.match)
		if err != nil || got != tc.want {
			t.Errorf("%s %s: %v, %v; want %v", tc.name, tc.match, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		"x{result=\"applied\" 3\n", // no closing brace
		"x{a=\"b\"}\n",             // no value
		"x{a=\"b\"} many\n",        // not a number
	} {
		if _, err := sumCounter(strings.NewReader(bad), "x", ""); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestServeCloudNeedsItsFlags(t *testing.T) {
	var out bytes.Buffer
	if err := ServeCloud(context.Background(), []string{"--token", "t"}, &out); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("missing flags: %v", err)
	}
	if err := ServeCloud(context.Background(), []string{"--bogus"}, &out); err == nil {
		t.Error("unknown flag accepted")
	}
}

// TestCloudFailureIsReported runs a "cloud" that exits at once and expects its output in the error.
func TestCloudFailureIsReported(t *testing.T) {
	o := testOptions(t, 10)
	o.CloudEnv = nil
	o.CloudCommand = []string{"/bin/sh", "-c", "echo no cloud here >&2; exit 3", "sh"}
	_, err := FanoutSuite{}.Run(context.Background(), withInProcessSim(o), discardProgress{})
	if !errors.Is(err, ErrCloud) || !strings.Contains(err.Error(), "no cloud here") {
		t.Fatalf("error %v, want ErrCloud with the cloud's output", err)
	}
}

func withInProcessSim(o Options) Options {
	o.InProcessSim = true
	return o
}

func TestSuiteOptionsValidate(t *testing.T) {
	if d := (Options{Miners: 4}).withDefaults(); d.Nodes != 4 || d.Validate() != nil {
		t.Errorf("4 miners: %d nodes by default (%v), want 4", d.Nodes, d.Validate())
	}
	if d := DefaultOptions(); d.Nodes != 10 || d.Trials != 3 || d.SpoolSpan != 10*time.Minute {
		t.Errorf("defaults: %d nodes, %d trials, span %s", d.Nodes, d.Trials, d.SpoolSpan)
	}
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"nodes above miners", Options{Miners: 5, Nodes: 6}, "nodes 6"},
		{"trials", Options{Trials: -1}, "trials -1"},
		{"spool span", Options{SpoolSpan: time.Second}, "spool span"},
	} {
		err := tc.o.withDefaults().Validate()
		if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func resultText(r Result) string {
	var b bytes.Buffer
	printTable(&b, r)
	return b.String()
}

// TestFailoverSuite runs one failover of a pair with 20 miners in a simulator process.
func TestFailoverSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cloud process, a node pair and a simulator for about 30s")
	}
	o := testOptions(t, 20)
	o.Trials, o.Interval = 1, time.Second
	res, err := FailoverSuite{}.Run(context.Background(), o, discardProgress{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(resultText(res))
	if v, _ := res.Metric("trials"); v != 1 {
		t.Errorf("%v trials", v)
	}
	// The lease's TTL and margins put the takeover 5–8s after the kill; allow a loaded machine.
	if v, _ := res.Metric("first_write_p50_ms"); v < 1000 || v > 30000 {
		t.Errorf("first write after %v ms", v)
	}
}
