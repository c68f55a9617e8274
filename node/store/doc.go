// Package store is the node's durable state in Badger (actors/badgerkv, opened with SyncWrites: every commit
// is fsynced, because the seq high-water mark and the audit log must survive kill -9):
//
//	key                                   value                  written by
//	seq/mark                              pb.SeqMark             CommandGate, before dispatch
//	audit/<at_ms BE8><n BE8>              pb.AuditRecord         CommandGate, every accepted/refused command
//	cmd/<seq BE8>                         pb.AuditRecord         CommandGate, the accepted command at seq
//	result/<seq BE8>                      pb.CommandResultReport CommandGate, the final result of seq
//	owner/devices                         pb.HelloAck (devices)  CommandGate, from the cloud's HelloAck
//	batchseq/<kind>                       pb.SeqMark             TelemetryBatcher, reserved batch_seq blocks
//
// Keys with big-endian numbers sort in time/seq order, so the audit log reads back in order with a prefix
// scan. Store is the seam; Open returns the Badger implementation, in memory when DataDir is "".
package store
