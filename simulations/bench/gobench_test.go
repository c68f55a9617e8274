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
