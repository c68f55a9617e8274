package lease

import (
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// The LeaseActor's messages besides *pb.LeaseRequest (answered with *pb.LeaseGrant or *pb.LeaseDenied).

// Heartbeat tells the LeaseActor that the cloud heard NodeID (a gateway HeartbeatPing). The actor stamps it
// with its own clock.
type Heartbeat struct{ NodeID string }

// StatusRequest asks for the pair's Status.
type StatusRequest struct{}

// Status is the pair's lease for the API, UIs and tests.
type Status struct {
	PairID    string
	Holder    string
	Epoch     uint64
	ExpiresAt time.Time
	Members   [2]string
	Version   uint64
	// Live is whether the holder's lease is unexpired on the cloud clock.
	Live bool
	// Heard is when the cloud last heard each member (heartbeat or lease request; activation counts).
	Heard map[string]time.Time
	// AsOf is the actor's clock when the status was taken; ages are relative to it.
	AsOf time.Time
}

// SetMembers replaces the pair's members (operator action); answered with *Status or an error.
type SetMembers struct{ Members [2]string }

// HolderChanged is sent to Env.Notify after a decision moved the lease, once it is persisted. The wiring
// must deliver Grant to the new holder's control stream when it did not ask (TRANSFER names it).
type HolderChanged struct {
	PairID   string
	From, To string
	Epoch    uint64
	// Grant is the grant to forward to To (nil when To is "": released).
	Grant *pb.LeaseGrant
	// Failover is true for a takeover from a holder that expired without handing over.
	Failover bool
}
