// Package braiins simulates miners running Braiins OS over real sockets: the gRPC public API (the subset in
// miners/braiins/bospb; 50051 on a real miner) on one listener per miner, in front of a miners/sim CGMiner
// fleet that is both the miner's state and its cgminer-compatible read API (4028 on a real miner), as
// bosminer serves one.
//
//	Start(Config) ─▶ Fleet ─┬─ sim.Fleet (CGMiner API: Device.Address)        ◀── reads: summary, stats, pools
//	                        └─ Miner ── grpc.Server (Device.WebAddress) ── auth interceptor ─▶ services
//	                                     │ PauseMining / ResumeMining / Reboot / SetPoolGroups write through
//	                                     └─ to the sim miner's API (pause, resume, restart, pools)
//
// Authentication is really checked: AuthenticationService.Login compares user and password and issues a
// random token valid for Config.TokenTTL on Config.Clock; every other method needs that token in the
// "authorization" metadata, else codes.Unauthenticated. Every write, accepted or not, goes to the write
// log with the time, method, parameters (passwords masked), the caller's address and why it was refused.
//
// State beyond miners/sim: the power target (SetPowerTarget), the locate LED, error records to report
// (SetErrors) and the pool groups as configured (passwords included). While the sim miner reboots, the gRPC
// side answers codes.Unavailable.
//
// Faults (SetFault) make the gRPC replies hostile: bytes that are not protobuf, replies too large for any
// sane client, or Unavailable.
package braiins
