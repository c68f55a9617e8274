package cgminer

import (
	"context"
	"testing"

	"github.com/hashfleet/hashfleet/miners/sim"
)

// BenchmarkPollTCP is one driver polling one simulated miner over loopback TCP: a connection, the joined
// request, the simulator building its reply, parsing and normalizing. Allocations include the simulator's.
func BenchmarkPollTCP(b *testing.B) {
	f, err := sim.Start(sim.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	d := New(f.Devices()[0], Config{})
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if _, err := d.Poll(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "polls/s")
}
