// Package faults holds the fault injectors of the chaos simulations. Each works against the real thing
// (sockets, gRPC streams, memberlist, the node's store seams), is switched at run time by the harness as
// its schedule says, draws any randomness from a seed, and stops every goroutine it started when closed.
//
//	node uplink ──gRPC──▶ Proxy (TCP: partition, black hole, asymmetric stall, delay, bandwidth, reset)
//	   │ Shim.DialOptions                  │ ──▶ cloud gateway (Shim.ServerOptions: delay, drop,
//	   │ (message faults, client side)     │                      duplicate, reorder per message)
//	node ──TCP──▶ Proxy(Match: CGMiner writes, Asymmetric(Down)) ──▶ simulated miner: executes, never answers
//	node ◀─memberlist─▶ GossipTransport (LAN partition of a pair member, either direction)
//	node clock = SkewedClock(base): offset steps and drift in ppm
//	node spool = DiskFullOutbox{spool, disk}; node store = DiskFullStore{badger, disk}; disk.Fill()/Free()
//
// # Which layer for which fault
//
// WAN partitions, black holes and asymmetric partitions belong on the Proxy between a node and the gateway:
// they act on TCP as a network does, so gRPC keepalives, TLS and reconnect backoff are exercised for real.
// Duplicated and reordered messages cannot happen on one TCP connection, so those live in the Shim,
// message by message, which is where the gateway's deduplication (by node, kind and batch_seq) and the
// gate's seq ordering must cope with them (a resend after a reconnect does look like that).
//
// # A miner that hangs mid-command
//
// miners/sim's FaultHang (CGMiner API) and the web simulators' FaultHang read the request and never
// answer, for every request, and carry out none: a miner that hangs before the command. A hang after the
// command ran (the node times out on a write the miner did apply, the case idempotency must survive) is
// made here: a Proxy in front of the miner with Match picking the write requests and Asymmetric(Down),
// so the write reaches the miner and lands in its log and the reply never comes. CGMinerWrite matches the
// CGMiner API's write commands (one request per connection); HTTPWrite matches the web CGI's and the Proto
// rig's writing methods (keep-alive connections: from the first write on, that connection hangs).
// PreserveSourceIP keeps the node's address in the miner's write log.
package faults
