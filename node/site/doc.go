// Package site owns the SiteSupervisor: the parent of every MinerActor of the node. It spawns one MinerActor
// per owned device (restarting a failed one with backoff, touching no other), adds and removes miners when the
// device set changes (the cloud's HelloAck, or the static list), routes commands to miners by id, and keeps
// the site read model the UIs list from.
//
//	HelloAck / SetDevices ──▶ SiteSupervisor ──spawn/stop──▶ MinerActor ×N
//	Dispatch (gate) ────────▶       │  ──Execute (sender = gate)──▶ MinerActor ──Result──▶ gate
//	                                │  ◀──StatusUpdate (every poll)── MinerActor
//	ListRequest ────────────────────┘  answers from the read model: one message, no fan-out to N miners
//
// The read model is a map of the latest Status each miner pushed; samples in it are immutable once pushed, so a
// list of 10,000 miners is one slice copy inside one Receive.
package site
