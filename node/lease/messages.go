package lease

import (
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Messages the LeaseHolderActor receives besides *pb.LeaseGrant, *pb.LeaseDenied (from the uplink) and
// *gossip.PeerEvent (from cluster/gossip's ActorSink).

// CloudStatus tells the actor whether the uplink's control stream is up.
type CloudStatus struct{ Up bool }

// TransferLease hands the lease to the other member (zero-downtime upgrade): this node stops writing at
// once, waits Drain for started writes, then sends TRANSFER. Answered with nil or an error.
type TransferLease struct{ To string }

// ReleaseLease gives the lease up (clean shutdown): stop writing, wait Drain, send RELEASE. Answered with
// nil or an error.
type ReleaseLease struct{}

// MayWriteRequest asks for the permit at the actor's now; answered with Permit.
type MayWriteRequest struct{}

// EpochRequest asks for the current epoch; answered with Epoch.
type EpochRequest struct{}

// Epoch answers EpochRequest.
type Epoch struct{ Epoch uint64 }

// StatusRequest asks for Status.
type StatusRequest struct{}

// Status is the node's lease as the local UI shows it.
type Status struct {
	PairID  string
	NodeID  string
	Holder  string
	Epoch   uint64
	Mode    Mode
	FenceAt time.Time
	Permit  Permit
	CloudUp bool
	Peer    Peer
}

// Events the actor sends to Env.Events.

// Fenced: this node stopped writing. Reason is the mode it entered (fenced, standby).
type Fenced struct {
	Epoch  uint64
	Reason Mode
	At     time.Time
}

// Unfenced: this node may write again (Mode: lease, local_hold, local_promoted) until Until.
type Unfenced struct {
	Epoch uint64
	Mode  Mode
	Until time.Time
}

// Promoted: this node became the holder (Local: by local promotion, without the cloud).
type Promoted struct {
	Epoch uint64
	Local bool
}

// Demoted: this node lost or gave up the lease; Holder and Epoch are the new ones ("" when released).
type Demoted struct {
	Holder string
	Epoch  uint64
}

type tick struct{}

type sendTransfer struct {
	op  pb.LeaseOp
	to  string
	gen uint64
}
