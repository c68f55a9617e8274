package miner

import (
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/sim"
)

// BenchmarkPollPathDial is BenchmarkPollPath with the cgminer driver's dial budget below the poll's timeout
// (2s, the default: the dial gets a deadline context of its own) and equal to it (3s = PollTimeout: the
// poll's context bounds the dial, no context per dial). It measures what that context costs per poll.
func BenchmarkPollPathDial(b *testing.B) {
	fleet, err := sim.Start(sim.Config{Count: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer fleet.Close()
	for _, dial := range []time.Duration{cgminer.DefaultDialTimeout, DefaultConfig().PollTimeout} {
		b.Run("dial="+dial.String(), func(b *testing.B) {
			benchPoll(b, fleet.Devices()[0], func(d *pb.Device) (miners.Driver, error) {
				return cgminer.New(d, cgminer.Config{DialTimeout: dial}), nil
			})
		})
	}
}
