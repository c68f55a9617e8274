// Package gateway is the cloud half of the node ↔ cloud wire (docs/GATEWAY.md): the gRPC pb.GatewayServer
// the bootstrap registers on its own grpc.Server. Each accepted ControlStream gets a NodeSession actor that
// attaches to the node's Node actor (newest stream wins: the older one gets ControlGoaway and is closed).
// Uploads are applied through the Org actor and acked by batch_seq once applied; heartbeats are stamped on
// the Node actor. Telemetry frames keep each sample's bytes (wireCodec, part of ServerOptions), which the
// store writes as they came instead of encoding the samples again.
//
//	node ══ControlStream══▶ handler goroutine (sole writer) ◀─bridge─ NodeSession ◀─▶ Node actor
//	          ▲                 │  reader goroutine ─frames─▶ NodeSession ─ack/result─▶ Node actor
//	          └─hello_ack, commands, goaway ◀── bridge.out ◀── SendFrame / Goaway
//	node ══UploadTelemetry/Events══▶ handler ─Ingest─▶ Org ─(applied)─▶ Ack{batch_seq}
//	node ══Heartbeat══▶ handler ─Heartbeat─▶ Node actor; HeartbeatPong back
//	node ─lease_request─▶ NodeSession ─▶ Node actor ─▶ pair's LeaseActor; grant/denied back on the same stream
//
// Identity comes from an Authenticator: TrustNodeMetadata in combined mode (chosen explicitly), or
// SessionAuthenticator in split mode (Bearer session token + x-hashfleet-node; the node must be known,
// confirmed and not revoked). With Config.Sessions a node's streams also end when its newest session token
// expires; the node refreshes it before then and sends the new token in its heartbeats, batches and hello. Frames are bounded by MaxRecvMsgSize (ServerOptions, default
// 4 MiB); oversized, malformed and out-of-protocol frames end the stream with a status that says what was
// wrong, and count in hashfleet_server_gateway_rejected_total. Every handler and reader goroutine is counted;
// Drain sends ControlGoaway to every control stream first, gives nodes DrainGrace to close their other
// streams themselves (so a node sees the goaway, not a stream error), then ends the rest with Unavailable
// and waits for every goroutine.
// Enroll, Challenge and OpenSession are delegated to Config.Enrollment (server/registry); without one (combined
// mode) they answer Unimplemented.
package gateway
