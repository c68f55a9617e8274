// Package miners owns everything that speaks to miner hardware: the Driver interface every protocol
// implements, the drivers themselves (cgminer/ for the CGMiner API on TCP 4028; Antminer web CGI and Proto rig
// REST follow the same shape), and the simulators in sim/ that speak the same protocols over real sockets
// for tests, demos and benchmarks.
//
//	MinerActor ──Poll/Execute──▶ Driver ──TCP/HTTP──▶ miner (or sim.Miner on loopback)
package miners
