package curtail

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/miner"
)

// boardSite is a 20,000-miner site's statuses with two samples per miner, so a refresh can swap in new
// readings without allocating them in the measured loop.
func boardSite(n int) ([]miner.Status, [2][]*pb.Telemetry) {
	sts := make([]miner.Status, n)
	var samples [2][]*pb.Telemetry
	for k := range samples {
		samples[k] = make([]*pb.Telemetry, n)
	}
	for i := range n {
		dev := &pb.Device{Protocol: pb.Protocol_PROTOCOL_ANTMINER}
		for k := range samples {
			samples[k][i] = &pb.Telemetry{MinerId: fmt.Sprintf("m-%05d", i), ObservedAtUnixMs: int64(1000 * (i + k)),
				PowerW: 3000 + float64(k), Hashrate_5SThs: 100, Boards: []*pb.Board{{TempC: 60}, {TempC: 61, ChipTempC: 70}, {TempC: 62}}}
		}
		sts[i] = miner.Status{MinerID: fmt.Sprintf("m-%05d", i), Device: dev, State: pb.MinerState_MINER_STATE_MINING,
			StateSince: t0, Sample: samples[0][i], LastGood: samples[0][i]}
	}
	return sts, samples
}

// BenchmarkBoardRefresh is the BoardFeeder's refresh of a 20,000-miner site (every 2 s) followed by the
// CurtailActor's read: between two refreshes `changed` of the miners were polled (5 s polls: 40%).
func BenchmarkBoardRefresh(b *testing.B) {
	for _, changed := range []float64{0, 0.4} {
		b.Run(fmt.Sprintf("changed=%.0f%%", changed*100), func(b *testing.B) {
			sts, samples := boardSite(20_000)
			board := NewBoard(nil, nil)
			board.Replace(sts)
			step := int(1 / max(changed, 1e-9))
			b.ResetTimer()
			for n := range b.N {
				if changed > 0 {
					for i := n % step; i < len(sts); i += step {
						k := (n/step + 1) % 2
						sts[i].Sample, sts[i].LastGood = samples[k][i], samples[k][i]
						sts[i].StateSince = t0.Add(time.Duration(n) * time.Second)
					}
				}
				board.Replace(sts)
				if got := board.Snapshots(); len(got) != len(sts) {
					b.Fatal(len(got))
				}
			}
		})
	}
}
