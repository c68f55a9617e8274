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
//	nsent/<node>/<seq, 8 BE>    pb.ControlCommand every signed command sent to the node (audit, replay proof)
//	naudit/<node>/<ms><n>       pb.AuditRecord   the node's CommandGate audit, from its COMMAND_AUDIT events
//	pend/<node>/<miner>         pb.Device        devices a node reported that no operator paired yet
//	node/<node>                 pb.NodeRecord    enrollment: public keys, fingerprint, confirmed, api key hash
//	ecode/<hmac>                JSON             enrollment codes, by HMAC(code) only (enroll.CodeStore)
//	secret/enroll               32 bytes         the server secret keying code HMACs and session tokens
//	sec/<ms><n>                 JSON             security events (sessions refused, fingerprints confirmed)
//
// The org's command-issuance private keys are not here: they live in 0600 files (server/keys), so they never
// enter Badger's value log (which keeps overwritten values until garbage collection) or a store dump.
//
// Telemetry is written with a WriteBatch (one per ingested batch, never a transaction per sample); records
// that must survive a crash (commands, queue, seq counter) are written in synced transactions.
package store
