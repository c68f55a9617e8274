// Package lease is the node side of a warm-standby pair: the LeaseHolder that decides whether this node
// may write to miners, keeps its cloud lease renewed, asks for promotion when its peer is gone, and fences
// itself when it cannot be sure it still holds the lease.
//
//	         cluster/gossip ──*gossip.PeerEvent (alive/suspect/dead/left + peer's Advert)──┐
//	  Uplink ──*CloudStatus, *pb.LeaseGrant, *pb.LeaseDenied──────────────────────────────┤
//	local UI ──*TransferLease, *ReleaseLease, *StatusRequest───────────────────────────────┤
//	                                                                                      ▼
//	                                     LeaseHolderActor (tick every TickInterval)
//	                      pure: MayWrite · NextOp/ShouldPromote · ApplyGrant · ApplyDenied
//	  Sender.SendLeaseRequest ◀──┤  ├──▶ Handle (atomic Permit) ◀── gate EpochCheck, MinerActor writes
//	    (ACQUIRE/RENEW/PROMOTE/  │  ├──▶ Events: *Fenced *Unfenced *Promoted *Demoted
//	     TRANSFER/RELEASE)       │  └──▶ gossip.SetMeta(Advert{Holding, CloudUp, Epoch})
//
// # Writing
//
// A node may write while (MayWrite):
//
//   - ModeLease: it holds a grant and now < FenceAt = sentAt + TTL − Margin, sentAt being when IT SENT
//     the request the grant answers (before the cloud's clock started the TTL), on its own monotonic
//     clock. The cloud gives the lease to another node only after ExpiresAt + Margin_cloud, so with clock
//     rates within ±ρ and writes landing within W of their check, Margin + Margin_cloud ≥ 2·ρ·TTL + W keeps
//     the old holder's last write before the new holder's first. Defaults: 1 s + 1 s against TTL 6 s.
//   - ModeLocalHold (LocalHold, default on): the WAN is down, its lease lapsed, and gossip shows the peer
//     alive, without a cloud and not writing. The peer cannot be promoted without a cloud and does not
//     ask while it sees this node alive and holding; if the peer regains the cloud, or turns suspect, the
//     hold ends at once and this node advertises Holding=false only Drain later.
//   - ModeLocalPromoted (AllowLocalPromotion, default OFF): the standby has no cloud and gossip declared
//     the active dead. Risk: gossip cannot tell a dead active from one cut off on the LAN; if it is alive,
//     both nodes write to the same miners until the WAN returns. Local-promoted writes carry the last known
//     epoch; the cloud's PROMOTE decides once the WAN is back.
//
// Each write checks Handle.MayWrite at its start, is tagged with Permit.Epoch, and uses Permit.Until as
// its I/O deadline.
//
// # Asking
//
// The holder renews every RenewInterval (two lost renewals still leave a second before FenceAt). A
// standby asks PROMOTE every RetryInterval while no live holder is visible (ShouldPromote): the peer is
// dead, gone, never seen, or alive but advertising Holding=false; never while the peer is alive and
// holding, or suspect. A node with Standby=false ACQUIREs while nobody holds the lease. A refusal that
// names a newer epoch or another holder demotes this node (a node returning with an old epoch); a grant or
// refusal about an older epoch is ignored.
//
// # Handover
//
// TransferLease and ReleaseLease stop writes at once, wait Drain for started writes, then ask the cloud.
// The cloud's TRANSFER answer names the new holder; its grant is forwarded to that node unasked, which
// then RENEWs at once, since an unasked grant gives no validity (its sender cannot know when the TTL
// began). Until that RENEW is granted the node is in ModeConfirming: EpochCheck answers ErrConfirming for
// commands of the new epoch, which the gate holds for a moment rather than bouncing them.
package lease
