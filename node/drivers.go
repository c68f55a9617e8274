package node

import (
	"fmt"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/cgminer"
)

// DefaultDriverFactory returns the DriverFactory for the drivers that exist: the CGMiner API for CGMiner and
// Antminer devices (Antminer web CGI writes and Proto rig REST are not wired yet and answer ErrUnsupported).
func DefaultDriverFactory(cfg cgminer.Config) func(*pb.Device) (miners.Driver, error) {
	return func(dev *pb.Device) (miners.Driver, error) {
		switch dev.GetProtocol() {
		case pb.Protocol_PROTOCOL_CGMINER, pb.Protocol_PROTOCOL_ANTMINER:
			return cgminer.New(dev, cfg), nil
		}
		return nil, fmt.Errorf("protocol %s: %w", dev.GetProtocol(), miners.ErrUnsupported)
	}
}
