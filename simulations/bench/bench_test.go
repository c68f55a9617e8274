package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunPollAndBaseline runs both suites briefly through Run, with two simulator processes, and checks the
// report: its shape, polls done, no lag on a relaxed schedule, the baseline's ratios present.
func TestRunPollAndBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs simulators and a node for about 20s")
	}
	o := relaxed(testOptions(t, 200))
	o.MinersPerSim = 100 // two simulator processes
	path := filepath.Join(t.TempDir(), "report.json")
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"poll", "baseline"}, o, &out, path); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Machine map[string]any `json:"machine"`
		Suites  []struct {
			Name    string             `json:"name"`
			Params  map[string]any     `json:"params"`
			Metrics map[string]float64 `json:"metrics"`
		} `json:"suites"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, b)
	}
	for _, k := range []string{"cores", "mem_bytes", "go"} {
		if _, ok := rep.Machine[k]; !ok {
			t.Errorf("machine has no %q: %v", k, rep.Machine)
		}
	}
	if len(rep.Suites) != 2 || rep.Suites[0].Name != "poll" || rep.Suites[1].Name != "baseline" {
		t.Fatalf("suites: %+v", rep.Suites)
	}
	if rep.Suites[0].Params["miners"] != float64(200) || rep.Suites[0].Params["interval"] != "1s" {
		t.Errorf("poll params: %v", rep.Suites[0].Params)
	}
	for _, s := range []struct{ suite, prefix string }{{"poll", ""}, {"baseline", "bare_"}, {"baseline", "naive_"}, {"baseline", "node_"}} {
		m := rep.Suites[0].Metrics
		if s.suite == "baseline" {
			m = rep.Suites[1].Metrics
		}
		get := func(name string) float64 {
			v, ok := m[s.prefix+name]
			if !ok {
				t.Errorf("%s: no metric %s%s", s.suite, s.prefix, name)
			}
			return v
		}
		// 200 miners at 1s for 3s: about 600 polls.
		if n := get("polls_completed"); n < 400 {
			t.Errorf("%s %s: %v polls completed, want about 600", s.suite, s.prefix, n)
		}
		if v := get("lag_polls"); v != 0 {
			t.Errorf("%s %s: lag %v polls, want 0", s.suite, s.prefix, v)
		}
		if v := get("polls_failed"); v != 0 {
			t.Errorf("%s %s: %v polls failed", s.suite, s.prefix, v)
		}
		if get("polls_due") != get("polls_completed") {
			t.Errorf("%s %s: due %v != completed %v without lag", s.suite, s.prefix, get("polls_due"), get("polls_completed"))
		}
		if p50, p99 := get("poll_latency_p50_ms"), get("poll_latency_p99_ms"); !(p50 > 0 && p99 >= p50) {
			t.Errorf("%s %s: latency p50 %v p99 %v", s.suite, s.prefix, p50, p99)
		}
		if v := get("cpu_ms_per_1k_polls"); !(v > 0) {
			t.Errorf("%s %s: cpu per 1k polls %v", s.suite, s.prefix, v)
		}
		if v := get("sim_cpu_cores"); !(v > 0) {
			t.Errorf("%s %s: simulator CPU %v: the simulator processes were not measured", s.suite, s.prefix, v)
		}
	}
	poll := rep.Suites[0].Metrics
	for _, k := range []string{"rss_peak_mb", "heap_per_miner_kb", "node_counted_polls"} {
		if !(poll[k] > 0) {
			t.Errorf("poll: %s = %v", k, poll[k])
		}
	}
	if r := rep.Suites[1].Metrics["node_over_bare_cpu_per_poll"]; !(r > 0) {
		t.Errorf("baseline: node/bare ratio %v", r)
	}
	if !strings.Contains(out.String(), "== poll ==") || !strings.Contains(out.String(), "== baseline ==") {
		t.Errorf("no tables in the output:\n%s", out.String())
	}
}

// TestPollInProcess runs the poll suite with the simulator in this process.
func TestPollInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a simulator and a node for about 5s")
	}
	o := relaxed(testOptions(t, 100))
	o.InProcessSim = true
	o.Duration = 2 * time.Second
	res, err := PollSuite{}.Run(context.Background(), o, discardProgress{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.Metric("polls_completed"); n < 100 {
		t.Errorf("%v polls completed, want about 200", n)
	}
	if v, _ := res.Metric("lag_polls"); v != 0 {
		t.Errorf("lag %v", v)
	}
	if !strings.Contains(strings.Join(res.Notes, " "), "including the in-process simulator") {
		t.Errorf("the notes do not say the simulator's CPU is included: %q", res.Notes)
	}
}

// TestSiteStopsSimulators checks that Close ends every simulator process.
func TestSiteStopsSimulators(t *testing.T) {
	o := testOptions(t, 30).withDefaults()
	o.MinersPerSim = 10
	s, err := startSite(context.Background(), o, "test", discardProgress{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.devices) != 30 || len(s.procs) != 3 {
		t.Fatalf("%d devices in %d processes, want 30 in 3", len(s.devices), len(s.procs))
	}
	seen := map[string]bool{}
	for _, d := range s.devices {
		if seen[d.GetMinerId()] || seen[d.GetAddress()] {
			t.Fatalf("duplicate miner %s at %s", d.GetMinerId(), d.GetAddress())
		}
		seen[d.GetMinerId()], seen[d.GetAddress()] = true, true
	}
	pids := []int{}
	for _, p := range s.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		// Reaped by Wait, so the pid no longer exists (or, rarely, belongs to someone else by now).
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) && !errors.Is(err, syscall.EPERM) {
			t.Errorf("simulator %d still exists after Close: %v", pid, err)
		}
	}
}

// TestSimulatorFailureIsReported runs a "simulator" that exits at once and expects its output in the error.
func TestSimulatorFailureIsReported(t *testing.T) {
	o := testOptions(t, 10)
	o.SimEnv = nil
	o.SimCommand = []string{"/bin/sh", "-c", "echo no miners here >&2; exit 3", "sh"}
	err := Run(context.Background(), []string{"poll"}, o, &bytes.Buffer{}, "")
	if !errors.Is(err, ErrSimulator) || !strings.Contains(err.Error(), "no miners here") {
		t.Fatalf("error %v, want ErrSimulator with the simulator's output", err)
	}
}

func TestRunRejectsUnknownSuites(t *testing.T) {
	if err := Run(context.Background(), []string{"poll", "warp"}, Options{}, &bytes.Buffer{}, ""); !errors.Is(err, ErrUnknownSuite) ||
		!strings.Contains(err.Error(), "warp") {
		t.Errorf("unknown suite: %v", err)
	}
	if err := Run(context.Background(), nil, Options{}, &bytes.Buffer{}, ""); !errors.Is(err, ErrNoSuites) {
		t.Errorf("no suite: %v", err)
	}
}

func TestOptionsDefaultsAndValidate(t *testing.T) {
	d := DefaultOptions()
	if d.Miners != 1000 || d.Interval != 5*time.Second || d.Jitter != 500*time.Millisecond || d.Duration != time.Minute ||
		d.Warmup != 7500*time.Millisecond || d.deadline() != 5750*time.Millisecond || d.Port != 4028 {
		t.Errorf("defaults: %+v", d)
	}
	if big := (Options{Miners: 50000}).withDefaults(); big.Interval != 10*time.Second || big.simProcesses() != 4 {
		t.Errorf("50k miners: interval %s in %d processes, want 10s in 4", big.Interval, big.simProcesses())
	}
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"in-process too big", Options{Miners: 6000, InProcessSim: true}, "in-process simulator serves at most 5000"},
		{"too many per process", Options{MinersPerSim: 20000}, "miners per simulator 20000"},
		{"jitter", Options{Interval: time.Second, Jitter: time.Second}, "jitter"},
		{"ranges", Options{Miners: 100000, MinersPerSim: 100, FirstNet: 10}, "address ranges"},
		{"backlog", Options{BacklogSamples: 10}, "backlog samples 10"},
	} {
		err := tc.o.withDefaults().Validate()
		if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestResultJSONKeepsOrder(t *testing.T) {
	r := Result{Name: "x"}
	r.param("miners", 10)
	r.param("interval", 5*time.Second)
	r.metric("b_second", 2)
	r.metric("a_first", 1)
	r.metric("ratio", nan)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"x","params":{"miners":10,"interval":"5s"},"metrics":{"b_second":2,"a_first":1,"ratio":null}}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}
