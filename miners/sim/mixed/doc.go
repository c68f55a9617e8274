// Package mixed starts a mixed simulated site in one call: Antminers (CGMiner API + web CGI, miners/sim/antweb),
// Proto rigs (MDK REST, miners/sim/protorig) and CGMiner-only miners (miners/sim), each speaking its real
// protocol over real sockets, with one device list and one write log normalized across kinds.
//
//	Start(Config) ─▶ Fleet ─┬─ antweb.Fleet   Antminers    BaseIP …          API :APIPort, web :WebPort
//	                        ├─ protorig.Fleet Proto rigs   next addresses …  REST :WebPort
//	                        ├─ sim.Fleet      CGMiner-only next addresses …  API :APIPort
//	                        ├─ whatsminer     Whatsminers  next addresses …  API v2 :APIPort, v3 :4433
//	                        └─ braiins        Braiins OS   next addresses …  cgminer API :APIPort, gRPC :50051
//	                                 │
//	                 Devices() ◀─────┤ (Antminers, then Proto rigs, then CGMiner-only, each in index order)
//	                 WriteLog(id) ◀──┘ Write{At, MinerID, Kind, Op, Remote, Accepted}
//
// With PerMinerIP every miner has its own loopback address (Linux answers all of 127.0.0.0/8 on lo) and the
// kinds take consecutive address blocks from BaseIP, so one range scan covers the site, as on a real LAN.
// Without it every miner listens on Host with ephemeral ports.
//
// ParseMix reads an operator's "antminer=70,proto=30" into counts.
package mixed
