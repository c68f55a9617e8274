package site

import (
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/miner"
)

// SetDevices replaces the set of miners this site runs. Miners not in it are stopped, new ones spawned,
// changed ones (address, protocol) restarted. A *pb.HelloAck sent to the site does the same with its devices.
type SetDevices struct{ Devices []*pb.Device }

// Dispatch runs one command on each named miner. Every miner answers the sender of the Dispatch with a
// *miner.Result; a miner this site does not run is answered UNKNOWN_MINER at once.
type Dispatch struct {
	CommandID      string
	IdempotencyKey string
	MinerIDs       []string
	Spec           *pb.CommandSpec
}

// ListRequest asks for every miner's status, answered with *List.
type ListRequest struct{}

// List is the answer to ListRequest, sorted by miner id. Samples are shared and must not be modified.
type List struct{ Miners []miner.Status }

// StatusRequest asks for one miner's status, answered with a miner.Status (samples cloned) or an error
// wrapping ErrUnknownMiner.
type StatusRequest struct{ MinerID string }
