// Package commission brings devices into service on a node: it runs the node-control commands the
// CommandGate accepted (discovery scans and pairings) and reports discovery progress to the cloud. It claims
// nothing: a scan reports what it found as *discovered*, a pairing reports per device whether the node could
// reach it and log in, and only the cloud, hearing "paired", adds the device to the node's ownership map.
//
//	CommandGate ──ControlDispatch(discovery)──▶ CommissionActor ──StartScan──▶ DiscoveryActor
//	     ▲                                           │  ▲                          │ ScanProgress /
//	     │ miner.Result "scan/<id>": started/failed ─┘  └──────────────────────────┘ ScanFinished
//	     │                                           │
//	     │                                           └──EVENT_KIND_SCAN events (counters, devices found,
//	     │                                              target errors) ──▶ TelemetryBatcher ──▶ cloud
//	     │
//	CommandGate ──ControlDispatch(pairing)──▶ CommissionActor ──goroutine per device (bounded)──▶ Pair(dev)
//	     ▲                                           │        (Drivers.Pair: reach it, check its login,
//	     └─ miner.Result per device: SUCCEEDED,  ◀───┘         pair a Proto rig with the node's key)
//	        NEEDS_CREDENTIALS, WRONG_CREDENTIALS, FAILED
//
// A scan's Antminer login travels sealed to this node, bound to the device id "scan/<scan id>"; it is opened
// here just before the scan starts.
package commission
