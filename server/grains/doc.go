// Package grains holds the cloud's actors: the Org (device registry, ingest, command routing), a Node actor
// per node (live session, heartbeat, command queue and seq counter), a Miner actor per miner (observed
// state, desired state; it gets a sample only when the sample changes the state), the CommandTracker (per-miner results of operator commands, timeouts)
// and the FleetView (the read model the API lists 20,000 miners from in one request). They run on one
// member today; the names and messages are those the clustered grains will keep.
//
//	gateway ─IngestTelemetry/Events─▶ Org ─WriteBatch─▶ store
//	                                   │ ├─▶ Miner ×N ──desired──┐
//	                                   │ └─samples, states──────▶ FleetView ◀── API list/get
//	API ─IssueCommand─▶ Org ─record─▶ store
//	                     ├─trackCommand─▶ CommandTracker ◀─ack/result── Node ◀─frames── NodeSession (gateway)
//	                     └─enqueue──────▶ Node ─persist seq+queue─▶ store
//	                                       └─SendFrame{command}──▶ NodeSession ─▶ stream ─▶ node
//
// Commissioning (commissioning.go, org_commission.go): discovery scans and pairings are node-control commands
// the Org records (ScanRecord, PairingRecord) and sends through the node's queue; the Node actor hands their
// answers back to the Org, which registers paired devices (one node per device, OwnerPolicy) and folds scan
// reports in without ever claiming a device. The ownership map sent to a node carries the logins the Vault
// sealed to it.
//
// Warm-standby pairs (pairs.go, org_pairs.go, node_pair.go, fleet_pairs.go): the Org keeps the declarations
// and runs one server/lease LeaseActor per pair as its child; Node actors relay their node's lease requests
// and heartbeats to it; commands for a pair's devices go to the current holder with its epoch, wait while
// nobody holds the lease, and on a change of holder move (never started) or end INTERRUPTED (started).
//
// Decisions are pure functions with time passed in (planTelemetry, planEvents, ValidateCommand, ApplyAck,
// ApplyReport, ApplyTimeout, RecordStatus, buildPage); the actors gather inputs, call them, and persist or
// send what they return. Telemetry protos are immutable once ingested: the store, the Miner actors and the
// FleetView share them read-only.
package grains
