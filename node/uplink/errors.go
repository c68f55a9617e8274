package uplink

import "errors"

var (
	// ErrHandshake: the cloud did not answer the hello with a hello_ack (timeout, wrong first message, wrong
	// node id).
	ErrHandshake = errors.New("control stream handshake failed")
	// ErrHeartbeat: no HeartbeatPong for HeartbeatMisses intervals; the link is treated as dead.
	ErrHeartbeat = errors.New("heartbeat lost")
	// ErrStalled: a stream's send queue filled up (the cloud stopped reading); the link is treated as dead.
	ErrStalled = errors.New("stream stalled")
	// ErrGoaway: the cloud asked the node to reconnect (shutdown, newer stream for this node).
	ErrGoaway = errors.New("cloud sent goaway")
	// ErrSession: the node could not obtain or refresh a session (api_key or identity refused, challenge
	// failed).
	ErrSession = errors.New("cannot open a session")
	// ErrNoDial: the uplink has no Dial function.
	ErrNoDial = errors.New("no dial function")
)
