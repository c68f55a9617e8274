// Package lease owns the cloud's side of warm-standby pairs: one lease per pair, naming the node that may
// command the pair's miners (the holder), a fencing token (the epoch) and an expiry.
//
//	node A (holder) ──RENEW every RenewInterval──┐
//	node B (standby) ──PROMOTE when A is dead────┤
//	                                             ▼
//	        Node grain ──*pb.LeaseRequest──▶ LeaseActor (one per pair)
//	                                             │ 1. Decide(cfg, state, req, now)  pure, time passed in
//	                                             │ 2. Store.CompareAndSet(pair, version, next)   fsynced
//	                                             │    (conflict: another activation wrote; reload, decide again)
//	                                             │ 3. reply *pb.LeaseGrant / *pb.LeaseDenied
//	                                             └─▶ Notify: *HolderChanged (the new holder's session
//	                                                 must receive its grant; see TRANSFER)
//	        Node grain ──*Heartbeat (every HeartbeatPing)──▶ LeaseActor: LastHeartbeat[node] = now
//
// The rules (Decide):
//
//   - ACQUIRE and PROMOTE take the lease when nobody holds it, or when the holder's lease expired more than
//     Margin ago AND nothing was heard from the holder (request or heartbeat) for HeartbeatTimeout. The epoch
//     then becomes Epoch+1. Asked by the current holder they extend its lease (same epoch).
//   - RENEW extends the lease by TTL; only the holder, with the current epoch, before expiry.
//   - TRANSFER hands the lease to the named other member at once (epoch+1): the graceful path for upgrades.
//     The old holder has fenced itself before asking.
//   - RELEASE gives the lease up; the epoch is kept so that it is never issued again.
//   - RENEW, TRANSFER and RELEASE with an epoch other than the current one are refused (ErrStaleEpoch).
//
// The epoch advances exactly when the holder changes, is persisted before any reply names it, and is never
// reused: State.Epoch is the highest epoch ever issued, kept across RELEASE.
//
// When a decision moves the lease, the requester's answer and Notify's *HolderChanged go out in an order
// that keeps commands behind grants: a requester that became the holder is answered first (commands the
// Notify receiver routes to it with the new epoch queue behind its grant); one that gave the lease up is
// answered after Notify (nothing it asks after the answer is routed to it any more).
//
// # Timing and clock drift
//
// The cloud's clock decides expiry; a node never compares the cloud's timestamps with its own. A node
// measures its lease from the instant it SENT the request (which precedes the cloud's "now") and stops every
// miner write at sentAt + TTL − Margin_node on its own monotonic clock (self-fence). The cloud grants the
// lease to another node only after ExpiresAt + Margin_cloud. With clock rates within ±ρ of real time and
// writes landing at most W after their last fence check, the old holder's last write precedes the new
// holder's first write when
//
//	Margin_node + Margin_cloud ≥ 2·ρ·TTL + W
//
// Defaults: TTL 6 s, both margins 1 s: 2 s ≥ 2·0.001·6 s + W holds for any W ≤ 1.98 s even at ρ = 1000 ppm
// (quartz is ~50 ppm; Go measures intervals on the monotonic clock, so NTP steps do not count).
//
// Failover time with the defaults, the active killed at t = 0 right after a renewal (the worst case):
//
//	gossip declares it dead            t ≈ 2.0–2.5 s  (cluster/gossip defaults)
//	its lease expires at the cloud     t ≤ TTL + RTT           = 6 s + RTT
//	the cloud may grant the standby    t ≤ TTL + Margin + RTT  = 7 s + RTT
//	heartbeats lapsed                  t ≤ HeartbeatTimeout    = 6 s   (last contact ≤ t = 0)
//	the standby's PROMOTE retry lands  t ≤ 7 s + RetryInterval (node, 0.5 s) + RTT ≈ 7.5 s + 1.5·RTT
//
// so the standby is in control in at most ≈ 7.5 s plus round trips, typically 6–7 s (the takeover instant
// is max(last renewal + TTL + Margin, last contact + HeartbeatTimeout), the last renewal being 0–2 s old;
// node/lease's pair harness measures 6.05 s on a simulated clock), under the 10 s p99 target with 2 s to
// spare for WAN round trips. Gossip detection (2.0–2.5 s) runs inside the lease's wait and adds nothing.
//
// # Double activation
//
// protoactor cluster can activate one pair's LeaseActor on two members around a membership change. Both then
// decide from their own copy of the state, and only the compare-and-set on State.Version (a revision bumped
// by every durable change, renewals included) keeps them from both granting: a CAS keyed by the epoch alone
// would let a stale activation's PROMOTE (epoch e→e+1) overwrite a renewal the other activation had just
// stored at epoch e, leaving two nodes that each believe they hold the lease.
package lease
