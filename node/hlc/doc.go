// Package hlc is the node's hybrid logical clock: a timestamp that follows the wall clock when it can, never
// goes backwards when the wall clock does, and orders an event after every event it has seen (a local
// command after the cloud command it was issued on top of, a cloud command after the local log it backfilled).
//
// A timestamp is (wall_ms, logical, node_id) as in pb.HLC: wall_ms is the largest physical time seen (local
// or remote), logical counts events within one wall_ms, node_id breaks the remaining ties so Compare is a
// total order.
//
//	          wall clock (injected clock.Clock)
//	               │ ms
//	Now() ─────▶ Tick(last, wall)          ──▶ last ──▶ *pb.HLC (stamped on a LocalCommand)
//	Update(r) ─▶ Merge(last, remote, wall) ──▶ last ──▶ *pb.HLC (after receiving r)
//
// Tick and Merge are pure (time passed in as data); Clock is a small mutex shell around them. Restore seeds
// a clock with the last timestamp persisted before a restart, so a node whose wall clock stepped back while
// it was down still issues timestamps after everything it issued before.
package hlc
