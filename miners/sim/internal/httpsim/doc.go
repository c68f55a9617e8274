// Package httpsim is the plumbing the HTTP miner simulators (miners/sim/antweb, miners/sim/protorig) share:
// the settings they have in common with their defaults and validation, per-miner loopback addressing
// (shared with miners/sim's CGMiner fleet), and a Fleet of per-miner HTTP listeners (Endpoints) served by
// one router behind fault injection and a write log.
//
//	Fleet ─┬─ Endpoint "id-0" ── http.Server on its own address ─┐
//	       ├─ Endpoint "id-1" ── ...                              ├─ faults ▶ write log ▶ the simulator's router
//	       └─ ...                                                 ┘   (OwnerOf(r) is the simulator's miner)
//
// An Endpoint is one miner's listener: up, down under FaultDown, or down for a reboot on the simulator's
// clock. Network behaviour (timeouts, the slow-reply fault) runs on the wall clock, as sockets do.
package httpsim
