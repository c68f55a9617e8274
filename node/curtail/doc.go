// Package curtail owns site curtailment on the node: events that bring a site's (or a set of miners') power
// draw down to a kW target, or to nothing, and back up again, ramped so the grid never sees a step larger than
// configured, and kept true while miners reboot, come online or ignore a command. It runs with the WAN down:
// events are started from the cloud (a signed command the gate verified), the local UI, or node automation
// (a schedule), and all decisions are made here.
//
//	StartEvent / StopEvent ──▶ CurtailActor ──tick (injected clock)──┐
//	  (gate, local UI,             │                                   │
//	   automation)                 │  Snapshots.Snapshots() ◀── Board ◀── MinerActor statuses
//	                               │  *miner.Result ◀──────────────────── MinerActors (replies)
//	                               ▼
//	          Begin / End / Reconcile(state, observations, now)   pure: decisions, verification, ramp
//	                               │
//	                               ▼ []Action, grouped into Commands (one per step and spec)
//	                      Commander.Dispatch ──▶ node routing ──▶ MinerActors (ACTION_CURTAIL / UNCURTAIL)
//
// The decisions are pure functions with time passed in:
//
//   - Plan(cfg, event, miners, now) chooses miners from scratch: least efficient first (J/TH; or highest
//     power first, or by priority tags), each put to sleep or power-limited according to the event's mode and
//     the driver's capabilities (the last one power-limited to meet the target closely, when it can be), and
//     groups them into ramp steps of at most StepKW / StepMiners, StepInterval apart.
//   - Reconcile(state, observations, now) makes the same choices incrementally and keeps them true: it
//     verifies each miner's reported power a settle time after its command, retries stragglers with backoff up
//     to a maximum (then chooses another miner), re-curtails a miner that comes back from a reboot
//     uncurtailed, chooses more miners when new ones come online and the draw rises above target, and, when the
//     event ends, releases every miner it acted on in the same ramp steps. At most one ramp step is commanded
//     per StepInterval, whatever the reason for the commands in it (new choices, retries, re-curtailments,
//     releases), so power never falls or rises faster than configured.
//
// Event life (State.Phase):
//
//	idle ──Begin──▶ scheduled ──start time──▶ curtailing ──End / end time──▶ releasing ──all released──▶ idle
//	                    └──────End (cancelled)──────────────────────────────────────────────────────────▶ idle
//	curtailing/releasing ──Begin(new event starting now)──▶ curtailing (takes the miners over, rebalances)
//
// Miner life within an event (Track.Phase): queued → sent → held, with retry (straggler, backoff), waiting
// (unreachable or rebooting), failed / unsupported (given up, replaced); on release: release_queued →
// release_sent → forgotten, with release_retry, release_waiting and release_failed (reported to the operator).
package curtail
