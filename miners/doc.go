// Package miners owns everything that speaks to miner hardware: the Driver interface every protocol
// implements, the drivers themselves (cgminer/ for the CGMiner API on TCP 4028; Antminer web CGI, Proto rig
// REST, Whatsminer API v2/v3 in whatsminer/ and Braiins OS gRPC + cgminer API in braiins/ follow the same
// shape), and the simulators in sim/ that speak the same protocols over real sockets for tests, demos and
// benchmarks.
//
//	MinerActor ──Poll/Execute──▶ Driver ──TCP/HTTP──▶ miner (or sim.Miner on loopback)
package miners
