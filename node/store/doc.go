// Package store is the node's durable state in Badger (actors/badgerkv, opened with SyncWrites):
//
//	key                                   value                  written by
//	seq/mark                              pb.SeqMark             CommandGate, before dispatch
//	audit/<at_ms BE8><n BE8>              pb.AuditRecord         CommandGate, every accepted/refused command
//	cmd/<seq BE8>                         pb.AuditRecord         CommandGate, the accepted command at seq
//	result/<seq BE8>                      pb.CommandResultReport CommandGate, the final result of seq
//	owner/devices                         pb.HelloAck (devices)  CommandGate, from the cloud's HelloAck
//	keyring                               pb.EnrollResponse      enrollment, key commands, restore (keyring.go)
//	batchseq/<kind>                       pb.SeqMark             TelemetryBatcher, reserved batch_seq blocks
//
// Keys with big-endian numbers sort in time/seq order, so the audit log reads back in order with a prefix
// scan. Store is the seam; Open returns the Badger implementation, in memory when DataDir is "".
//
// # Crash safety: every write is synced, and why
//
// A kill -9 alone loses nothing Badger accepted: its write-ahead log is in the page cache, and the next open
// replays it (cmd/hashfleet's kill -9 tests read the mark and the audit log back from a killed node). Syncing
// is for what a kill cannot show: power loss and kernel crashes, where an unsynced commit is gone. Each
// write here is one small transaction, rare (per command, per thousand batches), and each must be durable
// before what follows it happens, so every commit is fsynced (SyncWrites) rather than choosing per write:
//
//   - CommitCommand / CommitKeyCommand (mark + command record + audit, and the keyring for a key command, in
//     one transaction): before the command is dispatched. A command run but not recorded would be accepted
//     again after a crash: the replay protection is exactly this write.
//   - AppendAudit (a refusal): the audit log is evidence; a refusal lost in a crash is a hole in it.
//   - PutResult: the final outcome a re-sent command (DUPLICATE) is answered with; lost, the gate can only
//     report the command's outcome as lost.
//   - ReserveBatchSeqs (a block of 1,000 batch seqs): a block handed out but not durable would be handed out
//     again after a crash, and the cloud drops every batch at or below the highest batch_seq it applied: a
//     repeated seq is lost telemetry. One fsync per thousand batches.
//   - SetOwnership: a lost update only means starting with the previous device set until the cloud's next
//     HelloAck; synced anyway, it is rare.
//   - RestoreState (hashfleet node restore): one transaction, and it never moves the mark or a batch seq
//     backwards (backup.go).
//
// The spool (node/spool) is a Badger directory of its own, with its own account of what it syncs.
package store
