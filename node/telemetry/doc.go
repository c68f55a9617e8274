// Package telemetry owns the TelemetryBatcher: it gathers the miners' samples and events into batches (by
// size or time, whichever comes first), gives each batch its batch_seq, keeps it in the Outbox until the cloud
// acks it, and feeds the Uplink a bounded window of unacked batches per stream.
//
//	MinerActor ×N ──*pb.Telemetry / *pb.Event──▶ TelemetryBatcher ──Append──▶ Outbox (MemoryOutbox, or node/spool on disk)
//	                                                 │     ▲
//	                     window of MaxInFlight batches│     │ Acked{seq} ──▶ Outbox.Ack (delete)
//	                                                 ▼     │
//	                                                Uplink ──UploadTelemetry / UploadEvents──▶ cloud
//
// While the link is down batches accumulate in the Outbox (oldest dropped beyond its bound, counted); on
// LinkChanged{Up} the window restarts at the oldest unacked batch, so every batch not acked before the drop is
// sent again (the cloud dedups by batch_seq). Sending is paced at ReplayRate items per second per stream, so
// a long backlog drains without flooding the cloud. batch_seq blocks are reserved in the node store, so seqs
// never repeat across restarts.
package telemetry
