// Package spool is the node's offline spool: a Badger-backed, bounded, ordered telemetry.Outbox. The
// TelemetryBatcher appends every batch it closes (telemetry samples, and events: state changes, the gate's
// command audit records, the local command log) and keeps walking it with Next; a batch leaves the spool only
// when the cloud acks it. Replay is the batcher's: after a restart or a reconnect it calls Next from seq 0, so
// everything unacked is sent again in seq order (the cloud drops what it already applied by
// (node, kind, batch_seq)).
//
//	MinerActor ×N ─samples─┐                                    ┌──────────── Spool ─────────────┐
//	CommandGate ─audit────▶├─▶ TelemetryBatcher ──Append(batch)──▶│ index (seq → meta) in memory    │
//	local UI ─local cmd───┘        │   ▲                           │ Badger <data-dir>/spool, fsync │
//	                               │   │ Next(kind, after)         │   spool/t/<seq>  telemetry     │
//	            window of batches  │   │ Ack(kind, seq) ──delete──▶│   spool/e/<seq>  events        │
//	            (paced: ReplayRate)▼   │                           │   spool/m/<seq>  meta          │
//	                             Uplink ──▶ cloud (acks)          │ over MaxBytes: shed (below)    │
//	                                                               └────────────────────────────────┘
//
// # Its own Badger directory
//
// The spool lives in its own directory (the node passes <data-dir>/spool), not under a prefix of the node
// store. The node store's commits are the CommandGate's synced seq-mark and audit writes, on the command path;
// the spool writes a batch every second or so and deletes it moments later, and when full it rewrites tens of
// megabytes at a time. Badger commits through one write pipeline per directory, so sharing it would queue a
// command's fsync behind a spool rewrite. Separately they also get their own sizing (the spool's memtable must
// hold its largest batch), their own compaction, and their own failure domain: a spool that has to be set
// aside never touches the seq high-water mark or the keys. All spool keys start with "spool/" all the same,
// so merging the two later needs no key changes. Key layout: keys.go.
//
// # Bounded: downsample, then drop, never the command log
//
// MaxBytes bounds the bytes held. When an append would cross it, the spool sheds down to ShedToBytes, oldest
// data first: (1) the oldest raw telemetry is folded into per-miner minute aggregates (Downsample: one sample
// per miner per minute, hashrate/power/temperatures averaged, the newest state kept), region by region, each
// region ending on a minute boundary so a minute is not split; (2) when nothing is left to downsample the
// oldest telemetry batches are dropped; (3) an event append may then drop the oldest events, but never
// command audit or local command events (Protected). If those alone fill the spool, new telemetry is refused
// (ErrFull) and they are kept. Everything let go is counted in
// hashfleet_node_spool_dropped_samples_total{reason} / hashfleet_node_spool_dropped_events_total{reason}.
// Batches Next has handed out are never reshaped or dropped: they may be on the wire, and their ack must
// delete exactly what the cloud received.
//
// # Crash safety: which writes are synced, and why
//
// The spool's Badger is opened with SyncWrites, so every commit is fsynced before it returns. (Badger's
// db.Sync only syncs the active memtable's log, not a rotated one still waiting to be flushed, so per-write
// syncing is the only sound way to make a chosen write durable.) What each write needs:
//
//   - Append (batch + meta, one transaction): synced. When Append returns the batcher treats the batch as
//     safe; losing it on power loss would lose telemetry the node took responsibility for, and for event
//     batches the audit log and local command log that must reach the cloud whole. One fsync per batch (≈500
//     samples), not per sample: about one a second on a 1,000-miner site.
//   - Ack: not written at once. The batch leaves the index immediately; its keys are deleted in a group
//     (AckFlushEvery) or with the next Append, which is synced anyway. A crash forgets at most that group of
//     acks: those batches come back at Open, are sent again and the cloud, which deduplicates by
//     (node, kind, batch_seq), acks them without applying them twice. Losing an ack costs a resend; syncing
//     every ack would cost an fsync per batch during replay.
//   - Downsample step: intent (synced) → aggregates under their own keys (synced) → one commit transaction
//     (synced) that deletes the raw batches, writes the metas making the aggregates live, rewrites the
//     boundary batch and deletes the intent. Before the commit the raw batches are live and Open deletes the
//     aggregates the intent names; after it the step is complete. A kill -9 at any point leaves either the
//     raw batches or their aggregates, never both and never neither.
//   - Drops and event rewrites: each batch's data and meta change in one synced transaction, so the index
//     never names a batch that is not there.
//   - The meta record is written in the same transaction as its batch; Open rebuilds the index from metas
//     only, so a restart reads a few bytes per batch, not the batches.
//
// The other stores hold what this package relies on: batch seqs are reserved in blocks in the node store
// (synced), so a batch appended after a restart always has a seq above every batch the spool holds.
//
// A kill -9 by itself loses no committed write (Badger's log is in the page cache and is replayed at the next
// Open); the fsyncs above are for power loss. What a kill does test is the recovery: the log replay, the
// index rebuilt from metas, an interrupted downsample rolled back, acks forgotten and their batches resent.
// cmd/hashfleet's TestKill9NodeWhileSpooling and TestKill9NodeWhileReplaying kill the real node process in
// both states and check, against the server's ingest journal, that everything the spool held reaches the
// cloud exactly once and in order per miner.
//
// # In the node
//
// node.Node opens the spool in DirName under its Config.DataDir (split mode: <data-dir>/store/spool) when it
// has a data directory and a cloud link (without a cloud nothing leaves the outbox, so it stays in memory),
// and closes it after the batcher stops. Stats and Progress reach the operator through the node's
// status.json and `hashfleet node status`, the Badger views through the node's loopback admin endpoint
// (`hashfleet store inspect --dir <data-dir>/store/spool` falls back to it while the node runs), and a
// draining backlog is logged every ProgressLogInterval ("spool replay", then "spool backlog drained").
package spool
