package gate

import "github.com/hashfleet/hashfleet/messages/pb"

// SetOwnership replaces the set of miners this node owns. A *pb.HelloAck sent to the gate does the same with
// its devices, and saves them in the store.
type SetOwnership struct{ MinerIDs []string }

// StatusRequest asks the gate for its Status.
type StatusRequest struct{}

// Status is the gate's state for UIs and tests.
type Status struct {
	SeqMark uint64
	Running int
	Owned   int
}

type commandTimeout struct{ seq uint64 }
type reportTick struct{ gen uint64 }

// ControlDispatch hands an authentic node-control command (a discovery scan or a pairing) to Env.Control.
// IDs are what its results are reported under: the devices of a pairing, or ScanResultID(scan) for a scan.
// Env.Control answers the sender one *miner.Result per id.
type ControlDispatch struct {
	CommandID string
	Payload   *pb.CommandPayload
	IDs       []string
}
