// Package gossip runs the same-site failure detector of a warm-standby pair on hashicorp/memberlist (SWIM
// with Lifeguard), encrypted with the pair key, and turns membership changes into PeerEvents.
//
//	node A ◀──UDP probes / TCP fallback / gossip (AES-GCM, pair key)──▶ node B
//	  │ memberlist delegates (join, leave, update: enqueue only, never block memberlist)
//	  ▼
//	dispatcher goroutine ──poll every ≤100ms: probe acks → alive⇄suspect──┐
//	  │  per-peer state machine: alive → suspect → dead | left │
//	  ▼                                                        │
//	Config.Events (Sink: an actor PID or a channel) ◀──────────┘
//	rejoin goroutine: Join(Peers ∪ PeersFile) while alone, and for StartupRejoinWindow after Start
//	PeersFile: every peer address seen alive, rewritten atomically when it changes
//	metadata goroutine: SetMeta (non-blocking) → memberlist UpdateNode (blocks until broadcast)
//
// The three goroutines belong to the *Gossip and end in Stop (or Halt); nothing else is started.
//
// Two memberlist v0.7.0 traps are handled here: the exported Node.State is never updated (a shadowed
// field), so suspicion is inferred from probe acks (PingDelegate: no ack for 2·PI + ProbeTimeout is
// suspect), and a graceful leave is reported exactly like a death, so a member flags "leaving" in its
// metadata (one framing byte before the caller's bytes) before it leaves, and the peer reports PeerLeft.
//
// # Detection time
//
// With two members there is nobody to probe indirectly, so a probe of a dead peer fails only when the TCP
// fallback gives up at the end of the probe interval, and the suspicion timeout is memberlist's minimum,
// SuspicionMult × max(1, log10(n)) × ProbeInterval = SuspicionMult × ProbeInterval. A peer that dies at a
// uniformly random instant is declared dead after
//
//	D = wait for the next probe  U(0, PI)
//	  + the probe itself         PI
//	  + suspicion                SM × PI
//	  ∈ [(1+SM)·PI, (2+SM)·PI]
//
// (longer by Lifeguard's awareness factor while the local node itself is degraded). memberlist's LAN
// defaults (PI 1 s, SM 4) give 5–6 s. The defaults here, PI 500 ms and SM 3, give 2.0–2.5 s.
//
// The price is false positives: a peer is wrongly declared dead when it answers neither a UDP ping nor the
// TCP fallback for a whole probe interval and then cannot refute the suspicion within SM×PI, i.e. when its
// process stalls (GC, swap, CPU starvation) or the LAN drops everything for about 2 s. For a pair this is
// cheap by design: a standby that wrongly thinks the active is dead asks the cloud to promote it, and the
// cloud refuses while the active's lease is live. It is NOT cheap with local promotion allowed
// (node/lease AllowLocalPromotion): then a false positive is a split brain, and a longer PI or SM is wiser.
//
// # Restarts
//
// memberlist never rejoins by itself, and refuses a node that comes back under the same name at a new
// address until the old one has been dead for DeadNodeReclaimTime. So the known peers are persisted in
// PeersFile and joined again on start, and the restarted node keeps re-joining for StartupRejoinWindow: each
// join is a push/pull that carries its new address, accepted once the peer has declared the old one dead
// and DeadNodeReclaimTime passed.
package gossip
