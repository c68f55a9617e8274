package bench

import (
	"context"
	"testing"
	"time"
)

// The Go benchmarks run one poller of the suites on 1,000 simulated miners in their own processes (this test
// binary, re-executed) at the suites' 5s interval: 7.5s of warm-up and a 20s window, about 30s each. One op is
// one poll; ns/op is this process's CPU time per poll (not wall time), so benchstat compares CPU cost.
//
//	go test -run '^$' -bench 'Poll1k|Naive1k|BareLoop1k' ./simulations/bench/
//	go test -run '^$' -bench Poll1k -cpuprofile cpu.out ./simulations/bench/   # the node's CPU profile

// BenchmarkPoll1k is the poll suite's node: one node, 1,000 miners.
func BenchmarkPoll1k(b *testing.B) { benchPoller(b, pollerNode, 1000) }

// BenchmarkBaselineNaive1k is the baseline suite's naive loop: a goroutine per miner, encoding/json.
func BenchmarkBaselineNaive1k(b *testing.B) { benchPoller(b, pollerNaive, 1000) }

// BenchmarkBareLoop1k is the baseline suite's bare loop over the cgminer driver.
func BenchmarkBareLoop1k(b *testing.B) { benchPoller(b, pollerBare, 1000) }

func benchPoller(b *testing.B, name string, miners int) {
	o := testOptions(b, miners)
	o.Duration = 20 * time.Second
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var ph phase
	for b.Loop() {
		s, err := startSite(ctx, o, name, discardProgress{})
		if err != nil {
			b.Fatal(err)
		}
		ph, err = measure(ctx, o, s, newPoller(name), name, discardProgress{}, profiles{})
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ph.cpu)/float64(max(ph.lag.polls, 1)), "ns/op")
	b.ReportMetric(float64(ph.lag.polls)/ph.window.Seconds(), "polls/s")
	b.ReportMetric(ph.cpuPerPoll()*1e6, "cpu-ms/1k-polls")
	b.ReportMetric(float64(ph.lag.lagPolls), "lag-polls")
	b.ReportMetric(float64(ph.lag.late), "late-polls")
	b.ReportMetric(float64(ph.p99)/float64(time.Millisecond), "p99-ms")
	b.ReportMetric(ph.memPerMiner()/1024, "heap+stack-KB/miner")
}

// The cloud suites' Go benchmarks, one op being one run of the suite at a size that finishes in about a
// minute; the figures are the suite's, as metrics:
//
//	go test -run '^$' -bench 'Fanout|Ingest|Spool' -benchtime 1x ./simulations/bench/

// BenchmarkFanout is the fanout suite on 1,000 miners, one trial of each action.
func BenchmarkFanout(b *testing.B) {
	o := testOptions(b, 1000)
	o.Trials = 1
	res := benchSuite(b, FanoutSuite{}, o)
	for _, a := range fanoutActions {
		reportMetric(b, res, a.Action+"_all_acked_median_ms", a.Action+"-all-acked-ms")
		reportMetric(b, res, a.Action+"_miner_latency_p50_ms", a.Action+"-p50-ms")
		reportMetric(b, res, a.Action+"_miner_latency_p99_ms", a.Action+"-p99-ms")
	}
}

// BenchmarkIngest is the ingest suite: 10 nodes × 500 miners at 5s, a 20s window without probes, then one
// with them.
func BenchmarkIngest(b *testing.B) {
	o := testOptions(b, 5000)
	o.Duration = 20 * time.Second
	res := benchSuite(b, IngestSuite{}, o)
	reportMetric(b, res, "samples_per_s", "samples/s")
	reportMetric(b, res, "e2e_latency_p50_ms", "e2e-p50-ms")
	reportMetric(b, res, "e2e_latency_p99_ms", "e2e-p99-ms")
	reportMetric(b, res, "cloud_cpu_ms_per_1k_samples", "cloud-cpu-ms/1k-samples")
	reportMetric(b, res, "cloud_cpu_ms_per_1k_samples_no_probes", "cloud-cpu-ms/1k-samples-no-probes")
}

// BenchmarkSpool is the spool suite: 1,000 miners, 10 minutes of site time.
func BenchmarkSpool(b *testing.B) {
	o := testOptions(b, 1000)
	res := benchSuite(b, SpoolSuite{}, o)
	reportMetric(b, res, "write_samples_per_s", "write-samples/s")
	reportMetric(b, res, "replay_samples_per_s", "replay-samples/s")
	reportMetric(b, res, "append_p99_ms", "append-p99-ms")
	reportMetric(b, res, "bytes_per_miner_hour_logical", "bytes/miner-hour")
	reportMetric(b, res, "bytes_per_miner_hour_disk", "disk-bytes/miner-hour")
}

func benchSuite(b *testing.B, s Suite, o Options) Result {
	var res Result
	for b.Loop() {
		var err error
		if res, err = s.Run(context.Background(), o, discardProgress{}); err != nil {
			b.Fatal(err)
		}
	}
	return res
}

func reportMetric(b *testing.B, r Result, name, unit string) {
	if v, ok := r.Metric(name); ok {
		b.ReportMetric(v, unit)
	}
}

// BenchmarkFailover is the failover suite: a pair with 1,000 miners, three kills.
func BenchmarkFailover(b *testing.B) {
	o := testOptions(b, 1000)
	res := benchSuite(b, FailoverSuite{}, o)
	reportMetric(b, res, "first_write_p50_ms", "p50-ms")
	reportMetric(b, res, "first_write_p99_ms", "p99-ms")
	reportMetric(b, res, "first_write_max_ms", "max-ms")
}
