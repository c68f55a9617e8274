// Package node is the fleet node: the on-prem process that owns all miner I/O of a site and keeps a
// node-initiated link to the cloud. New builds it from a Config; Start opens the store and spawns its actors;
// Stop stops every actor and goroutine and closes the store.
//
//	                         ┌──────────────────────────── Node ─────────────────────────────┐
//	cloud ◀══gRPC (node-initiated)══▶ Uplink ──ControlCommand──▶ CommandGate ──Dispatch──┐    │
//	                         │          ▲  │  ◀──Ack/Result────────┘  │ Store (Badger:     │    │
//	                         │          │  └──HelloAck (ownership)──▶ │  seq mark, audit,  │    │
//	                         │          │                             │  results)          ▼    │
//	                         │   batches│ Acked/LinkChanged      SiteSupervisor ──▶ MinerActor ×N ══TCP══▶ miners
//	                         │          │                                          │  (Limiter: MaxInFlight)
//	                         │    TelemetryBatcher (Outbox) ◀── samples, events ───┘    │
//	                         └───────────────────────────────────────────────────────────┘
//
// Node-control commands (discovery scans, pairing of discovered devices) leave the gate for the
// CommissionActor (node/commission), which starts scans on the node's DiscoveryActor (node/discovery), reports
// their progress as EVENT_KIND_SCAN events, and pairs devices through Drivers.Pair; Drivers (drivers.go) builds
// each miner's driver by protocol with the node's keys and the logins the cloud sealed to it.
//
// Site control (site_automation.go): the gate hands signed site policies and curtailment starts and stops to
// the SiteControl actor (node/gate), which runs them on the AutomationActor (node/automation: rules,
// schedules, trusted pools, the policy kept in the store) and the CurtailActor (node/curtail: ramped,
// verified, least-efficient-first events, their state kept in the store). Both read the miners' live
// snapshots from a board the BoardFeeder copies from the SiteSupervisor, command miners through the same
// site.Dispatch path as the cloud (limiter and lease fence included), act only while the node may write
// (a pair's standby holds but does not act), and audit every automatic action in the store and toward the
// cloud through the spooled event outbox. The gate asks the installed policy's pool guard before any pool
// change.
//
// Warm-standby pairs (pair.go, pair_actor.go): when a HelloAck carries PairInfo, the PairActor opens the pair
// key sealed to this node, starts the pair's gossip (cluster/gossip) and a LeaseHolderActor (node/lease) with
// the Uplink as its way to the cloud, and points the node's lease guard at the holder's Handle: the gate then
// refuses miner commands of another epoch (REFUSED_EPOCH) or while fenced (FENCED), and every MinerActor
// checks the guard when a write starts and bounds its I/O by the permit's deadline, logging the write with its
// epoch (node/writelog). A lone node has no guard: no epoch check, every write allowed.
//
// Each actor lives in its own package (node/uplink, node/gate, node/site, node/miner, node/telemetry) and the
// store in node/store; this package only wires them and offers the queries UIs and tests use (Miners, Miner,
// LinkStatus). The actors are top-level named actors "hashfleet-node/<node id>/<role>" of the node's
// ActorSystem (its own, or one passed in for combined mode).
package node
