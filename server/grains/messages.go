package grains

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// The session protocol: what a NodeSession (server/gateway) and a Node actor say to each other. The session
// owns one ControlStream; the Node actor owns the node's queue and decides what goes on the wire.

// AttachSession is sent by a NodeSession after the node's hello. The Node actor makes it the node's current
// session (newest stream wins: the previous one gets Goaway), answers with SendFrame{hello_ack} and re-sends
// every queued command with seq > hello.last_seq.
type AttachSession struct {
	Session *actor.PID
	Hello   *pb.ControlHello
}

// DetachSession is sent by a NodeSession whose stream ended. Ignored unless Session is the current one.
type DetachSession struct {
	Session *actor.PID
	Reason  string
}

// SessionFrame carries a node → cloud frame other than hello (ack, result) from a NodeSession.
type SessionFrame struct {
	Session *actor.PID
	Frame   *pb.NodeToCloud
}

// Heartbeat is a node's ping as the gateway received it at At (server clock).
type Heartbeat struct {
	At   time.Time
	Ping *pb.HeartbeatPing
}

// SendFrame asks a NodeSession to write a frame to its stream.
type SendFrame struct{ Frame *pb.CloudToNode }

// Goaway asks a NodeSession to send ControlGoaway and close its stream.
type Goaway struct {
	Reason         string
	ReconnectAfter time.Duration
}

// --- org ---

type getNode struct{ id string }
type ingestTelemetry struct {
	node  string
	batch *pb.TelemetryBatch
	// encoded, when not nil, holds the encoding of each of batch.Samples as the node sent it.
	encoded [][]byte
}
type ingestEvents struct {
	node  string
	batch *pb.EventBatch
}
type issueCommand struct{ req CommandRequest }
type registerDevices struct{ devices []*pb.Device }
type pairDevices struct {
	node     string
	minerIDs []string
}
type rotateKeys struct {
	overlap time.Duration
	nodes   []string
}
type revokeKey struct {
	keyID string
	nodes []string
}
type injectCommand struct {
	node string
	cmd  *pb.ControlCommand
}
type startScan struct {
	scanID string
	node   string
	req    *pb.DiscoveryRequest
	actor  string
}
type preparePairing struct {
	node     string
	minerIDs []string
}
type pairingPlan struct {
	node    string
	devices []*pb.Device
}
type startPairing struct {
	pairingID string
	node      string
	devices   []*pb.Device // with login_envelope/login_user when credentials were given
	given     bool
	actor     string
}

// controlOutcome is a node's ack or result report for a node-control command (scan, pairing), forwarded by
// its Node actor to the Org.
type controlOutcome struct {
	node      string
	commandID string
	ack       *pb.CommandAck
	report    *pb.CommandResultReport
}
type orgReady struct{}
type okReply struct{}

// --- node ---

type enqueueCommand struct {
	commandID string
	actor     string
	minerIDs  []string
	spec      *pb.CommandSpec
	issuedAt  time.Time
	// keys, when set, is a key-management payload (a serialized CommandPayload with a KeyAnnouncement or
	// KeyRevocation) sent instead of miner_ids/spec; sign, when set, signs it instead of the active key (a
	// rotation's announcement: signing.Rotation.Sign, by the key the nodes trust, even once that key is
	// revoked or retired). Key commands are not operator commands: the CommandTracker does not track them
	// and they stay queued until the node answers, however long it is away.
	keys []byte
	sign func(*pb.ControlCommand) error
	// pair, when set, is the warm-standby pair whose devices minerIDs are (only); the command is for the
	// pair's holder and carries epoch as its lease_epoch.
	pair  string
	epoch uint64
	// control, when set, is a node-control payload (a serialized CommandPayload with a DiscoveryRequest or a
	// PairingRequest). Not tracked by the CommandTracker: the node's acks and reports go to the Org
	// (controlOutcome), and it stays queued until the node answers.
	control []byte
	// watermark, with stamped set, is the node's local watermark as the Org knew it when the operator issued
	// the command (reconcile.go): what the cloud had seen then, not what it has seen by the time the Node
	// actor queues it. Without stamped the Node actor stamps its own current watermark.
	watermark *pb.HLC
	stamped   bool
}
type addDevices struct{ devices []*pb.Device }

// nodeProcess is a node's forwarded process snapshot (EVENT_KIND_NODE_METRICS), immutable once sent.
type nodeProcess struct {
	metrics    *pb.NodeMetrics
	receivedAt time.Time
}
type dropCommand struct {
	commandID string
	seq       uint64
}

// --- miner ---

type minerTelemetry struct{ sample *pb.Telemetry }
type minerState struct {
	state pb.MinerState
	at    time.Time
}
type minerDevice struct{ device *pb.Device }
type minerCommand struct {
	spec *pb.CommandSpec
	at   time.Time
}

// --- command tracker ---

type trackCommand struct{ rec *pb.CommandRecord }
type commandIssued struct {
	commandID string
	node      string
	seq       uint64
}
type commandAcked struct {
	commandID string
	node      string
	minerIDs  []string
	code      pb.ResultCode
	message   string
}
type commandReport struct {
	commandID string
	node      string
	minerIDs  []string // the node's part; nil when the node no longer queues the command
	results   []*pb.MinerResult
	done      bool
}
type commandTimedOut struct{ commandID string }
type flushTick struct{}
type getCommand struct{ id string }

// --- fleet view ---

type viewSeed struct {
	devices   []*pb.Device
	telemetry []*pb.Telemetry
}
type viewTelemetry struct {
	samples    []*pb.Telemetry
	receivedAt time.Time
}
type stateChange struct {
	miner string
	state pb.MinerState
	at    time.Time
}
type viewStates struct{ changes []stateChange }
type viewDevices struct{ devices []*pb.Device }
type viewDesired struct {
	miner   string
	desired Desired
}
type viewNode struct{ status NodeStatus }
type listMiners struct{ q MinerQuery }
type getMiner struct{ id string }
type listNodes struct{}
