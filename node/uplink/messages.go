package uplink

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// Stream names one of the node-initiated gRPC streams.
type Stream int

const (
	StreamControl Stream = iota + 1
	StreamTelemetry
	StreamEvents
	StreamHeartbeat
)

func (s Stream) String() string {
	switch s {
	case StreamControl:
		return "control"
	case StreamTelemetry:
		return "telemetry"
	case StreamEvents:
		return "events"
	case StreamHeartbeat:
		return "heartbeat"
	}
	return "unknown"
}

// Messages the Uplink accepts from other node actors:
//
//	*pb.TelemetryBatch, *pb.EventBatch   sent on UploadTelemetry / UploadEvents when the link is up, dropped
//	                                     when it is down (the sender keeps them until Acked and re-sends them
//	                                     after the next LinkChanged{Up: true})
//	*EncodedTelemetryBatch               the same as *pb.TelemetryBatch, written as its bytes (encoded.go)
//	*pb.CommandAck, *pb.CommandResultReport
//	                                     sent on ControlStream; kept while the link is down and sent after the
//	                                     next hello_ack, never dropped
//	*StatusRequest                       answered with Status
//
// Messages the Uplink sends:
//
//	*pb.ControlCommand   to Env.Gate (as a request: the gate answers the Uplink)
//	*pb.HelloAck         to every Env.HelloAckTo (ownership map)
//	*LinkChanged, *Acked to every Env.Subscribers

// LinkChanged tells subscribers the link to the cloud went up (hello acked) or down.
type LinkChanged struct {
	Up bool
	// Since is when the link entered this state (business clock).
	Since time.Time
	// Uplink is the Uplink's PID, to send batches to.
	Uplink *actor.PID
	// Session numbers the session; the Uplink repeats LinkChanged{Up} at every heartbeat (so a restarted
	// subscriber learns the state), and a subscriber re-sends its unacked batches only for a new Session.
	Session uint64
	// Reason is why the link went down (empty when up).
	Reason string
}

// Acked relays the cloud's Ack of one telemetry or event batch.
type Acked struct {
	Stream  Stream
	Seq     uint64
	Code    pb.ResultCode
	Message string
}

// StatusRequest asks the Uplink for its Status.
type StatusRequest struct{}

// Status is the link as the UIs show it.
type Status struct {
	Up bool
	// Since is when the link went up or down.
	Since time.Time
	// LastError is why the link last went down or failed to come up.
	LastError string
	// Attempts counts failed connection attempts since the link was last stable (drives the backoff).
	Attempts int
	// NextAttemptAt is when the next connection attempt starts (zero when up or connecting).
	NextAttemptAt time.Time
	// Connects counts sessions established; Goaways counts ControlGoaway received.
	Connects, Goaways uint64
	// PendingResults counts acks and result reports waiting for the link.
	PendingResults int
}
