package uplink_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/uplink"
	"google.golang.org/protobuf/proto"
)

// BenchmarkUplinkBatchSize sends pre-encoded telemetry batches through the real Uplink over loopback gRPC/TLS
// to the test gateway (which decodes and acks each) and waits for every ack: the per-sample cost of the
// stream, node and receiving side in one process, by batch size. A batch closed by the flush timer before it
// fills pays the per-batch part of it (telemetry.Config.FlushInterval).
func BenchmarkUplinkBatchSize(b *testing.B) {
	for _, size := range []int{10, 50, 200, 500} {
		b.Run(fmt.Sprintf("samples=%d", size), func(b *testing.B) {
			h := newHarness(b, nil)
			h.waitUp(1)
			samples := make([]*pb.Telemetry, size)
			for i := range samples {
				samples[i] = &pb.Telemetry{MinerId: fmt.Sprintf("m-%05d", i), ObservedAtUnixMs: 1_700_000_000_000, PowerW: 3200,
					Hashrate_5SThs: 101.5, Boards: []*pb.Board{{TempC: 61}, {TempC: 62}, {TempC: 60}}, FansRpm: []int32{5100, 5200, 5150, 5300}}
			}
			before := len(h.gw.Telemetry())
			b.ResetTimer()
			for n := range b.N {
				batch := &pb.TelemetryBatch{NodeId: "n1", BatchSeq: uint64(1000 + n), Samples: samples}
				wire, err := proto.Marshal(batch)
				if err != nil {
					b.Fatal(err)
				}
				h.sys.Root.Send(h.pid, &uplink.EncodedTelemetryBatch{Batch: batch, Wire: wire})
				if n%8 == 7 { // the batcher's MaxInFlight window
					waitFor(b, func() bool { return len(h.gw.Telemetry())-before == n+1 })
				}
			}
			waitFor(b, func() bool { return len(h.gw.Telemetry())-before == b.N })
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/sample")
		})
	}
}

func waitFor(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("timed out")
		}
		time.Sleep(50 * time.Microsecond)
	}
}
