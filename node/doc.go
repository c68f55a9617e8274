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
// Each actor lives in its own package (node/uplink, node/gate, node/site, node/miner, node/telemetry) and the
// store in node/store; this package only wires them and offers the queries UIs and tests use (Miners, Miner,
// LinkStatus). The actors are top-level named actors "hashfleet-node/<node id>/<role>" of the node's
// ActorSystem (its own, or one passed in for combined mode).
package node
