// Package discovery finds miners on the site LAN: it parses the operator's targets, probes every address
// for the three miner protocols, and reports *discovered* devices. It never claims ownership: a device becomes
// a node's only after the operator confirms pairing in the cloud (or the local UI in combined mode).
//
//	StartScan ──▶ DiscoveryActor ──Plan (pure: ParseTargets, ports)──▶ goroutine per scan: Scanner.Run
//	  (ScanStarted │   ▲    ▲                                              │ Concurrency workers, one address each
//	   or error)   │   │    └──── scanUpdate (throttled) ◀──────────────────┤ per address, in parallel:
//	               │   └───────── scanDone (Result) ◀───────────────────────┤   CGMiner API  version+stats  :4028
//	               │                                                        │   Proto rig    GET pairing/info :80/:443
//	               ▼                                                        │   Antminer CGI digest challenge :80
//	     ScanProgress / ScanFinished ──▶ Subscriber, Env.Listener           ▼   (+ get_system_info.cgi with creds)
//	     StatusRequest / ListScans / CancelScan answered from actor state   decide (pure) ──▶ Found or TargetError
//
// Targets (targets.go, pure): single addresses, CIDR blocks, full and last-octet ranges; duplicates collapse;
// at most Config.MaxAddresses per scan; public, link-local, multicast, unspecified, reserved and broadcast
// addresses refused (public and link-local admitted by AllowPublic); loopback allowed, since tests and the
// simulators live there.
//
// Identification (identity.go, decide): a Proto rig by its unauthenticated GET /api/v1/pairing/info (MAC,
// control-board serial; model from the equally open GET /api/v1/system); an Antminer by the digest challenge
// of its web CGI whose realm names an Antminer, and with credentials by get_system_info.cgi (model, serial,
// MAC); a CGMiner API by its version+stats reply (model from Type, firmware from CompileTime); a Whatsminer
// (btminer API v2) on the same port by its string STATUS refusal of that request, then its clear-text
// get_version, devdetails and get_miner_info (probe_whatsminer.go); Braiins OS by bosminer naming itself
// (BOSminer or BOSer) in that reply, found as a BRAIINS device addressed at its CGMiner API, whose driver
// reaches the gRPC API on the same host (the gRPC API itself is not probed). The MinerId is
// derived from the MAC, else the serial, else the address (MinerID).
//
// Hostile input (architecture, security point 7): every read is bounded (Config.MaxReplyBytes, 16 KiB of
// headers), every probe has a deadline (Config.ProbeTimeout), redirects are never followed, gzip is never
// inflated, and a malformed, oversized, stalled or redirecting reply makes that address a TargetError
// (ErrHostile, logged as a warning and counted in hashfleet_discovery_probes_total{result="hostile"}) while
// the other addresses carry on. Something that answers without being a miner is a TargetError too
// (ErrNotMiner); silence is not.
package discovery
