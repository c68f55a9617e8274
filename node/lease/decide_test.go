package lease

import (
	"errors"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/cluster/gossip"
	"github.com/hashfleet/hashfleet/messages/pb"
)

var t0 = time.Unix(1_700_000_000, 0)

func mine(fenceIn time.Duration) Lease {
	return Lease{Holder: "a", Epoch: 3, FenceAt: t0.Add(fenceIn)}
}

func TestMayWrite(t *testing.T) {
	cfg := DefaultConfig()
	alive := Peer{State: gossip.PeerAlive}
	cases := []struct {
		name string
		cfg  func(*Config)
		in   Inputs
		ok   bool
		mode Mode
	}{
		{"holder before its fence", nil, Inputs{Lease: mine(time.Second), CloudUp: true, Peer: alive}, true, ModeLease},
		{"holder at its fence", nil, Inputs{Lease: mine(0), CloudUp: true, Peer: alive}, false, ModeFenced},
		{"holder with an unasked grant", nil, Inputs{Lease: Lease{Holder: "a", Epoch: 3}, CloudUp: true}, false, ModeConfirming},
		{"holder with an unasked grant, WAN down", nil, Inputs{Lease: Lease{Holder: "a", Epoch: 3}}, false, ModeFenced},
		{"holder told to re-acquire", nil, Inputs{Lease: Lease{Holder: "a", Epoch: 3, NeedAcquire: true}, CloudUp: true}, false, ModeFenced},
		{"handing over", nil, Inputs{Lease: mine(time.Second), CloudUp: true, Transferring: true}, false, ModeFenced},
		{"standby", nil, Inputs{Lease: Lease{Holder: "b", Epoch: 3}, CloudUp: true}, false, ModeStandby},
		{"WAN down, peer alive without cloud: local hold", nil, Inputs{Lease: mine(-time.Minute), Peer: alive}, true, ModeLocalHold},
		{"WAN down, local hold off", func(c *Config) { c.LocalHold = false }, Inputs{Lease: mine(-time.Minute), Peer: alive}, false, ModeFenced},
		{"WAN down, peer suspect", nil, Inputs{Lease: mine(-time.Minute), Peer: Peer{State: gossip.PeerSuspect}}, false, ModeFenced},
		{"WAN down, peer dead", nil, Inputs{Lease: mine(-time.Minute), Peer: Peer{State: gossip.PeerDead}}, false, ModeFenced},
		{"WAN down, peer has the cloud", nil, Inputs{Lease: mine(-time.Minute), Peer: Peer{State: gossip.PeerAlive, CloudUp: true}}, false, ModeFenced},
		{"WAN down, peer writing", nil, Inputs{Lease: mine(-time.Minute), Peer: Peer{State: gossip.PeerAlive, Holding: true}}, false, ModeFenced},
		{"own cloud up, lease lapsed", nil, Inputs{Lease: mine(-time.Minute), CloudUp: true, Peer: alive}, false, ModeFenced},
		{"local promotion, policy on", func(c *Config) { c.AllowLocalPromotion = true },
			Inputs{Lease: Lease{Holder: "b", Epoch: 3}, Peer: Peer{State: gossip.PeerDead}, LocalPromoted: true}, true, ModeLocalPromoted},
		{"local promotion, peer back", func(c *Config) { c.AllowLocalPromotion = true },
			Inputs{Lease: Lease{Holder: "b", Epoch: 3}, Peer: alive, LocalPromoted: true}, false, ModeStandby},
		{"local promotion, policy off", nil,
			Inputs{Lease: Lease{Holder: "b", Epoch: 3}, Peer: Peer{State: gossip.PeerDead}, LocalPromoted: true}, false, ModeStandby},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			tc.in.Now, tc.in.Me = t0, "a"
			p := MayWrite(c, tc.in)
			if p.OK != tc.ok || p.Mode != tc.mode || p.Epoch != tc.in.Lease.Epoch {
				t.Fatalf("permit %+v, want ok=%v mode=%s", p, tc.ok, tc.mode)
			}
			if p.OK != p.Valid(t0) {
				t.Fatalf("Valid(now) = %v for %+v", p.Valid(t0), p)
			}
			if p.Mode == ModeLease && !p.Until.Equal(tc.in.Lease.FenceAt) {
				t.Fatalf("lease permit until %s, want the fence %s", p.Until, tc.in.Lease.FenceAt)
			}
		})
	}
}

func TestShouldPromoteAndNextOp(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Standby = true
	other := Lease{Holder: "b", Epoch: 3}
	cases := []struct {
		name     string
		standby  bool
		in       Inputs
		lastSent time.Duration // before now
		pending  bool
		want     pb.LeaseOp
	}{
		{"peer alive and holding: never ask", true, Inputs{Lease: other, CloudUp: true, Peer: Peer{State: gossip.PeerAlive, Holding: true}}, time.Hour, false, 0},
		{"peer suspect: wait", true, Inputs{Lease: other, CloudUp: true, Peer: Peer{State: gossip.PeerSuspect, Holding: true}}, time.Hour, false, 0},
		{"peer dead: promote", true, Inputs{Lease: other, CloudUp: true, Peer: Peer{State: gossip.PeerDead}}, time.Hour, false, pb.LeaseOp_LEASE_OP_PROMOTE},
		{"peer left: promote", true, Inputs{Lease: other, CloudUp: true, Peer: Peer{State: gossip.PeerLeft}}, time.Hour, false, pb.LeaseOp_LEASE_OP_PROMOTE},
		{"peer never seen: wait for the grace", true, Inputs{Lease: other, CloudUp: true, NoHolderFor: time.Second}, time.Hour, false, 0},
		{"peer never seen, grace over: promote (the cloud decides)", true, Inputs{Lease: other, CloudUp: true, NoHolderFor: 5 * time.Second}, time.Hour, false, pb.LeaseOp_LEASE_OP_PROMOTE},
		{"peer alive, lost its cloud, fenced: promote at once", true, Inputs{Lease: other, CloudUp: true, Peer: Peer{State: gossip.PeerAlive}}, time.Hour, false, pb.LeaseOp_LEASE_OP_PROMOTE},
		{"peer alive with a cloud, not yet holding: wait", true, Inputs{Lease: Lease{}, CloudUp: true, Peer: Peer{State: gossip.PeerAlive, CloudUp: true}}, time.Hour, false, 0},
		{"peer alive with a cloud, never holding: promote after the grace", true, Inputs{Lease: Lease{}, CloudUp: true, Peer: Peer{State: gossip.PeerAlive, CloudUp: true}, NoHolderFor: time.Minute}, time.Hour, false, pb.LeaseOp_LEASE_OP_PROMOTE},
		{"peer dead, WAN down: nothing", true, Inputs{Lease: other, Peer: Peer{State: gossip.PeerDead}}, time.Hour, false, 0},
		{"peer dead, retry not due", true, Inputs{Lease: other, CloudUp: true, Peer: Peer{State: gossip.PeerDead}}, 100 * time.Millisecond, false, 0},
		{"peer dead, request pending", true, Inputs{Lease: other, CloudUp: true, Peer: Peer{State: gossip.PeerDead}}, time.Hour, true, 0},
		{"holder: renew due", true, Inputs{Lease: mine(3 * time.Second), CloudUp: true}, 2 * time.Second, false, pb.LeaseOp_LEASE_OP_RENEW},
		{"holder: renew not due", true, Inputs{Lease: mine(3 * time.Second), CloudUp: true}, time.Second, false, 0},
		{"holder with an unasked grant: renew now", true, Inputs{Lease: Lease{Holder: "a", Epoch: 4}, CloudUp: true}, 0, false, pb.LeaseOp_LEASE_OP_RENEW},
		{"holder told its lease expired: acquire", true, Inputs{Lease: Lease{Holder: "a", Epoch: 3, NeedAcquire: true}, CloudUp: true}, time.Hour, false, pb.LeaseOp_LEASE_OP_ACQUIRE},
		{"handing over: nothing", true, Inputs{Lease: mine(3 * time.Second), CloudUp: true, Transferring: true}, time.Hour, false, 0},
		{"active-preferred, nobody holds: acquire", false, Inputs{CloudUp: true, Peer: Peer{State: gossip.PeerAlive}}, time.Hour, false, pb.LeaseOp_LEASE_OP_ACQUIRE},
		{"active-preferred, peer holds: nothing", false, Inputs{CloudUp: true, Peer: Peer{State: gossip.PeerAlive, Holding: true}}, time.Hour, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.Standby = tc.standby
			tc.in.Now, tc.in.Me = t0, "a"
			if got := NextOp(c, tc.in, t0.Add(-tc.lastSent), tc.pending); got != tc.want {
				t.Fatalf("NextOp = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestApplyGrant(t *testing.T) {
	cfg := DefaultConfig()
	sent := t0
	ttl := cfg.DefaultTTL
	grant := func(holder string, epoch uint64) *pb.LeaseGrant {
		return &pb.LeaseGrant{PairId: "p", Holder: holder, Epoch: epoch, TtlMs: ttl.Milliseconds()}
	}
	cases := []struct {
		name       string
		l          Lease
		g          *pb.LeaseGrant
		sentAt     *time.Time
		lostAt     time.Time
		wantHolder string
		wantEpoch  uint64
		wantFence  time.Time
		change     Change
	}{
		{"first grant", Lease{}, grant("a", 1), &sent, time.Time{}, "a", 1, t0.Add(ttl - cfg.Margin), ChangePromoted},
		{"renewal extends", mine(time.Second), grant("a", 3), &sent, time.Time{}, "a", 3, t0.Add(ttl - cfg.Margin), ChangeNone},
		{"a late renewal never shortens", mine(time.Minute), grant("a", 3), &sent, time.Time{}, "a", 3, t0.Add(time.Minute), ChangeNone},
		{"older epoch ignored", mine(time.Second), grant("b", 2), &sent, time.Time{}, "a", 3, t0.Add(time.Second), ChangeNone},
		{"transfer answer: demoted", mine(time.Second), grant("b", 4), &sent, time.Time{}, "b", 4, time.Time{}, ChangeDemoted},
		{"released: demoted", mine(time.Second), grant("", 3), &sent, time.Time{}, "", 3, time.Time{}, ChangeDemoted},
		{"unasked grant to me: holder without validity", Lease{Holder: "b", Epoch: 3}, grant("a", 4), nil, time.Time{}, "a", 4, time.Time{}, ChangePromoted},
		{"grant to a request older than the loss", Lease{Holder: "b", Epoch: 3}, grant("a", 4), &sent, t0.Add(time.Second), "b", 3, time.Time{}, ChangeNone},
		{"my released epoch granted late", Lease{Holder: "", Epoch: 3}, grant("a", 3), &sent, time.Time{}, "", 3, time.Time{}, ChangeNone},
		{"no ttl in the grant: default", Lease{}, &pb.LeaseGrant{Holder: "a", Epoch: 1}, &sent, time.Time{}, "a", 1, t0.Add(ttl - cfg.Margin), ChangePromoted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next, ch := ApplyGrant(cfg, "a", tc.l, tc.g, tc.sentAt, tc.lostAt)
			if next.Holder != tc.wantHolder || next.Epoch != tc.wantEpoch || !next.FenceAt.Equal(tc.wantFence) || ch != tc.change {
				t.Fatalf("got %+v change %d; want holder %q epoch %d fence %s change %d", next, ch, tc.wantHolder, tc.wantEpoch, tc.wantFence, tc.change)
			}
		})
	}
}

func TestApplyDenied(t *testing.T) {
	deny := func(holder string, epoch uint64) *pb.LeaseDenied {
		return &pb.LeaseDenied{PairId: "p", Holder: holder, Epoch: epoch}
	}
	// A node returning with an old epoch is refused and demotes itself.
	next, ch := ApplyDenied("a", mine(time.Second), deny("b", 4))
	if ch != ChangeDemoted || next.Holder != "b" || next.Epoch != 4 || !next.FenceAt.IsZero() {
		t.Fatalf("stale renew: %+v %d", next, ch)
	}
	// Its own lease expired at the cloud, nobody took it: acquire again, same epoch.
	next, ch = ApplyDenied("a", mine(time.Second), deny("a", 3))
	if ch != ChangeNone || !next.NeedAcquire || next.Holder != "a" {
		t.Fatalf("expired: %+v %d", next, ch)
	}
	// Older news is ignored.
	if next, ch = ApplyDenied("a", mine(time.Second), deny("b", 2)); ch != ChangeNone || next.Epoch != 3 || next.Holder != "a" {
		t.Fatalf("older denial: %+v %d", next, ch)
	}
	// A standby learns the holder from its refused PROMOTE.
	if next, ch = ApplyDenied("b", Lease{}, deny("a", 3)); ch != ChangeNone || next.Holder != "a" || next.Epoch != 3 {
		t.Fatalf("promote refused: %+v %d", next, ch)
	}
}

func TestAdvert(t *testing.T) {
	for _, a := range []Advert{{}, {Holding: true}, {CloudUp: true, Epoch: 1 << 40}, {Holding: true, CloudUp: true, Epoch: 7}} {
		got, err := DecodeAdvert(EncodeAdvert(a))
		if err != nil || got != a {
			t.Fatalf("round trip %+v → %+v, %v", a, got, err)
		}
	}
	got, err := DecodeAdvert([]byte{9, 9})
	if !errors.Is(err, ErrBadMeta) || !got.Holding || !got.CloudUp {
		t.Fatalf("garbage must decode to the cautious advert: %+v %v", got, err)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.NodeID, c.PairID = "a", "p"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.RenewInterval = 5 * time.Second
	if err := c.Validate(); err == nil {
		t.Fatal("renew + margin ≥ ttl accepted")
	}
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("empty config accepted")
	}
}
