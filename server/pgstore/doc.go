// Package pgstore is the cloud's shared store on PostgreSQL (github.com/jackc/pgx/v5): the same
// server/store.Store and server/lease.Store that the single-member Badger store implements, for a cloud of
// several members that all read and write one database. Both pass the suite in server/storetest.
//
//	member A ─┐                          ┌─ devices, pending_devices, telemetry_latest, marks
//	member B ─┼─ pgxpool ─▶ PostgreSQL ──┼─ commands, node_seq, node_queue, node_sent, audit
//	member C ─┘                          ├─ leases (CAS on version) + lease_epochs (one holder per epoch)
//	                                     ├─ orgs, nodes, pairs, scans, pairings, local_commands, conflicts
//	                                     └─ telemetry_history (partitioned by day, retention drops partitions)
//
// Safety across members:
//   - lease CompareAndSet is "UPDATE … WHERE version = expected" (an INSERT … ON CONFLICT DO NOTHING for the
//     first version) in one transaction with an insert into lease_epochs, whose primary key (pair, epoch)
//     refuses a second holder for one epoch: two activations of a Lease grain cannot both grant.
//   - AllocSeq is one "INSERT … ON CONFLICT DO UPDATE SET seq = seq + 1 RETURNING seq": per-node seqs are
//     strictly increasing whichever member allocates; Enqueue refuses a seq already sent (node_sent's
//     primary key), so a stale activation can never send a second command under one seq.
//
// Schema changes are forward-only, additive migrations embedded from migrations/NNNN_name.sql, applied at
// Open under an advisory lock (members starting together migrate once) and recorded with their sha256 in
// schema_migrations; an applied migration whose file changed is refused.
package pgstore
