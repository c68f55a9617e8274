// Package grains holds the cloud's actors: the Org (device registry, ingest, command routing), a Node actor
// per node (live session, heartbeat, command queue and seq counter), a Miner actor per miner (latest
// telemetry, state, desired state), the CommandTracker (per-miner results of operator commands, timeouts)
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
// Decisions are pure functions with time passed in (planTelemetry, planEvents, ValidateCommand, applyAck,
// applyReport, applyTimeout, recordStatus, buildPage); the actors gather inputs, call them, and persist or
// send what they return. Telemetry protos are immutable once ingested: the store, the Miner actors and the
// FleetView share them read-only.
package grains
