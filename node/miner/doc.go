// Package miner owns the MinerActor: one per miner, holding that miner's Driver, its last sample and its
// state machine, polling on a jittered self-scheduled timer and running commands one at a time.
//
//	                  pollTick (SendAfter on the Clock)
//	                        │
//	Execute ──▶ queue ──▶ MinerActor ──start op──▶ Limiter (site-wide slots: MaxInFlight for polls,
//	 (gate, via site)       ▲   │                      │ MaxCommandsInFlight for commands; a FIFO queue each,
//	                        │   │                      │ commands first)
//	                        │   │                      ▼
//	                        │   │                  Driver.Poll / Driver.Execute ──TCP──▶ miner
//	                        │   │                      │
//	                        └───┼──── pollDone / cmdDone (message back to the actor)
//	                            │
//	                            ├──▶ TelemetryBatcher: *pb.Telemetry every poll, *pb.Event on state change
//	                            ├──▶ parent (SiteSupervisor): *StatusUpdate, the site read model
//	                            └──▶ requester: *Result per command
//
// Receive never blocks: driver I/O runs on one of the Limiter's long-lived workers (queued in FIFO order while
// every slot is taken, its timeout starting when a worker takes it), and its outcome comes back as a message
// tagged with the incarnation and operation id, so a result that arrives after a restart or stop is ignored.
// Only one driver operation is in flight per miner (the Driver contract); a queued command waits at most for
// the poll in flight, and polls and commands alternate when both are due. A command that arrives while its
// miner's poll still waits for a slot withdraws that poll (it runs after the command), so a bulk command's
// wave, which goes ahead of the site's polls in the Limiter, never waits behind a poll queued behind it.
//
// The state decision is the pure Rules.Next (state.go), tested with tables. A panic in a driver is recovered
// on its worker, posted back, and re-raised inside Receive so the SiteSupervisor restarts that one actor.
package miner
