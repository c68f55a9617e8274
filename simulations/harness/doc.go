// Package harness runs the chaos simulations: one trial starts a real cloud (split mode's server, its TLS
// gateway on loopback TCP, Badger in a temporary directory), one or more sites (enrolled nodes with their
// own Badger directories, one per site or a warm-standby pair declared through the API, simulated miners of
// both protocols: Antminers with the CGMiner API and web CGI, and CGMiner-only miners), drives a steady
// stream of operator commands through the real HTTP API (and local commands on nodes that lost the cloud),
// injects forbidden commands and the faults of a seeded schedule (simulations/schedule) through the
// injectors of simulations/faults, and hands what it recorded to the oracles (simulations/oracle).
//
//	             operator API ◀── workload (update_pools, one unique pool URL per command) + outcomes
//	cloud (server, gateway) ◀─TLS─ WAN Proxy ◀─ Shim ── node  (clock: SkewedClock, spool: DiskFullOutbox,
//	     ▲ ingest journal                                  │    write log: epoch of every miner write)
//	     │ (what the cloud acked)          pair gossip ◀──▶│ dials miners from its own 127.0.0.x
//	     └ inject forged / out-of-order / wrong-node / revoked-key commands
//	                                                       ▼
//	                                          miners (own write logs: time, op, source address)
//	                                               ▲ hang proxy (a write applied, never answered)
//
// After the schedule's Settle the harness waits for every accepted command to reach a final state, then
// builds an oracle.History: the miners' write logs (writer = the node that owns the source address, epoch
// from that node's write log, command id from the pool URL the write carried), the commands issued and
// what the API said of them, the forbidden attempts, the telemetry the cloud acknowledged against what it
// stores, the local commands against the cloud's audit log, the pairs' lease grants (the cloud's pair
// history) and the faults after which a standby had to take over. Check runs every invariant; the trial's
// Timeline (node lifetimes, links, lease tenures, faults, writes) feeds the report's SVG.
//
// # Faults
//
// kill-node: graceful is the node's own Stop; abrupt first resets the node's WAN connections (no goodbye
// reaches the cloud) and then stops it in process (no kill -9 in process). kill-cloud: the same for the
// server, which restarts on its addresses with its data directory. WAN partitions, asymmetric partitions
// and gateway delay act on the node's TCP proxy; loss, duplication and reordering on its gRPC shim; clock
// skew on the node's clock (it takes effect at once, and lasts the fault); disk-full on its spool; a hang on
// the proxy in front of the site's hang miner (a CGMiner-only miner: the write reaches the miner and is
// logged, the answer never comes back). At a pair a node fault names a role, resolved to the holder the
// cloud names when the fault fires; an abrupt kill also halts the node's gossip; a LAN partition halts the
// standby's gossip (healed by a clean restart); a transfer is the operator's request in the cloud and the
// holder's TransferLease.
package harness
