// Package uplink owns the Uplink actor: the node's side of the gateway protocol (docs/GATEWAY.md). It opens
// every connection (no inbound port on the site), keeps the four streams, and bridges them into actors.
//
//	                 ┌──────────── Uplink actor (one session at a time, numbered gen) ────────────┐
//	CommandGate ◀────┤ *pb.ControlCommand        ◀── reader ◀── ControlStream  ◀── cloud        │
//	CommandGate ────▶│ *pb.CommandAck / Result   ──▶ writer ──▶ ControlStream  ──▶ (hello first)│
//	Batcher     ────▶│ *pb.TelemetryBatch        ──▶ writer ──▶ UploadTelemetry ──▶             │
//	Batcher     ◀────┤ *Acked                    ◀── reader ◀── UploadTelemetry ◀── Ack          │
//	Batcher     ────▶│ *pb.EventBatch / *Acked      (same on UploadEvents)                        │
//	                 │ heartbeat tick (Clock)    ──▶ writer ──▶ Heartbeat ⇄ pong ◀── reader      │
//	Site, Gate  ◀────┤ *pb.HelloAck (ownership), Subscribers ◀── *LinkChanged                    │
//	                 └───────────────────────────────────────────────────────────────────────────┘
//
// Connecting (dial, streams, hello → hello_ack) runs in a connector goroutine; an established session runs a
// reader and a writer goroutine per stream. All are owned by the actor: a session is torn down (context
// cancelled, goroutines joined, connection closed) on any stream error, a lost heartbeat, a stalled send
// queue, a ControlGoaway, or Stop; every message from a session carries its gen, so nothing from an old
// session is acted on. Reconnects follow Backoff (pure, tested) on the injected Clock, or the goaway's
// reconnect_after_ms plus jitter.
//
// Nothing the node must deliver is lost with a session: telemetry and event batches stay in the
// TelemetryBatcher's Outbox until acked and are re-sent after LinkChanged{Up}; command acks and results
// produced while down wait in the Uplink and go out after the next hello_ack, and results written shortly
// before a drop are written again (the cloud applies a result once; a result lost anyway is recovered by the
// cloud re-sending the command and the gate answering DUPLICATE with the recorded result).
package uplink
