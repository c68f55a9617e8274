// Package oracle holds the invariant checks of the chaos simulations (ARCHITECTURE.md, "Invariants the
// chaos simulations check") as pure functions over recorded histories. The harness records what happened
// (the miners' own write logs, the commands it issued and what the operator API told it, the commands it
// forged or replayed, the telemetry the cloud acknowledged and what it stored, lease events) and hands the
// records to the checks, during a run on a snapshot or after it on the whole history. A check never reads a
// clock or a socket; it returns Violations that name the miner, nodes, epochs, command ids and instants that
// prove them, so a failing seed can be debugged from the report alone.
//
//	miners' write logs ─▶ []Write ──────────┬─▶ NoOverlappingWriters      (1) one writer at a time, epochs rise
//	                                       ├─▶ ExecutionsFromWrites ─┐
//	node audit ─────────▶ []Executed ◀─────┘                        │
//	operator API ───────▶ []Issued, []Acked ─────────────────────────┼─▶ ExactlyOnce   (2) no dup, none lost
//	forged/replayed ────▶ []Attempt ─────────────────────────────────┴─▶ NoForbiddenExecution (3)
//	cloud acks/store ───▶ []SampleKey (acked, stored) ─────────────────▶ NoLostTelemetry (4)
//	lease grants, kills ▶ []LeaseEvent ─┬─ + []Write ─▶ FailoverDetails ─▶ FailoverTimes, FailoverWithin (5)
//	local UI commands ──▶ []LocalAction + audited ids ─────────────────▶ LocalActionsAudited (5)
//
// History gathers every input and Check runs every check.
//
// # Time bases
//
// Write.At is the miner's clock: one miner's log is totally ordered by it, so NoOverlappingWriters never
// compares two machines' clocks. FailoverDetails does compare lease events (harness clock) with miner writes
// (miner clock): the harness must record both on one time base (the shared simulation clock in process, the
// wall clock across processes on one host).
package oracle
