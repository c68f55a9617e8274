// Package store is the cloud server's persistence: the device registry (miner → owning node), the latest
// telemetry per miner, operator command records, each node's command queue and seq counter, and the
// ingest dedup marks. Store is the seam; Badger (actors/badgerkv) implements it on disk, and the same Badger
// opened in memory is the twin the tests and demos use.
//
//	Org actor ──Apply(devices, latest telemetry, mark)──▶ WriteBatch ─┐
//	Node actor ─Enqueue(seq counter + queued command)──▶ txn (sync) ──┼─▶ Badger
//	CommandTracker ─PutCommand(record, idem, active)───▶ txn (sync) ──┘
//
// Key layout (every node id is validated to contain no '/'):
//
//	dev/<miner>                 pb.Device        device registry, Device.node_id is the owner
//	tel/<miner>                 pb.Telemetry     latest sample per miner
//	cmd/<command>               pb.CommandRecord operator command and its per-miner results
//	cmdact/<command>            (empty)          index of commands without a final status
//	idem/<key>                  command id       idempotency keys of operator commands
//	nseq/<node>                 pb.SeqMark       last command seq allocated to the node
//	nq/<node>/<seq, 8 bytes BE> pb.ControlCommand the node's queue: commands without a final report
//	mark/<kind>/<node>          pb.SeqMark       highest batch_seq applied per node and stream kind
//
// Telemetry is written with a WriteBatch (one per ingested batch, never a transaction per sample); records
// that must survive a crash (commands, queue, seq counter) are written in synced transactions.
package store
