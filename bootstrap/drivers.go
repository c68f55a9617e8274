package bootstrap

import (
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/node"
)

// DriverFactory returns the driver factory of the node: every protocol hashfleet speaks. clk nil is the wall
// clock.
func DriverFactory(cfg *cgminer.Config) func(*pb.Device) (miners.Driver, error) {
	c := cgminer.DefaultConfig()
	if cfg != nil {
		c = *cfg
	}
	return node.DefaultDriverFactory(c)
}
