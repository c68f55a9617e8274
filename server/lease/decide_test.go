package lease

import (
	"errors"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

var t0 = time.Unix(1_700_000_000, 0)

func req(node string, op pb.LeaseOp, epoch uint64) *pb.LeaseRequest {
	return &pb.LeaseRequest{PairId: "p", NodeId: node, Op: op, Epoch: epoch, RequestId: "r"}
}

const (
	acquire   = pb.LeaseOp_LEASE_OP_ACQUIRE
	renewOp   = pb.LeaseOp_LEASE_OP_RENEW
	promote   = pb.LeaseOp_LEASE_OP_PROMOTE
	transferO = pb.LeaseOp_LEASE_OP_TRANSFER
	releaseO  = pb.LeaseOp_LEASE_OP_RELEASE
)

// held returns the state where a holds epoch 3 granted at t0 (expires t0+TTL), both members heard at t0.
func held(cfg Config) State {
	s := NewState("p", [2]string{"a", "b"})
	s.Holder, s.Epoch, s.ExpiresAt, s.Version = "a", 3, t0.Add(cfg.TTL), 7
	s.LastHeartbeat["a"], s.LastHeartbeat["b"] = t0, t0
	return s
}

func TestDecideTable(t *testing.T) {
	cfg := DefaultConfig()
	ttl, margin := cfg.TTL, cfg.Margin
	fresh := NewState("p", [2]string{"a", "b"})
	released := held(cfg)
	released.Holder, released.ExpiresAt = "", time.Time{}

	cases := []struct {
		name       string
		s          State
		req        *pb.LeaseRequest
		at         time.Duration // since t0
		wantErr    error
		wantOut    Outcome
		wantHolder string
		wantEpoch  uint64
		failover   bool
	}{
		{"first acquire", fresh, req("a", acquire, 0), 0, nil, OutcomeAcquired, "a", 1, false},
		{"first promote", fresh, req("b", promote, 0), 0, nil, OutcomePromoted, "b", 1, false},
		{"acquire by a stranger", fresh, req("x", acquire, 0), 0, ErrNotMember, OutcomeDenied, "", 0, false},
		{"acquire names a future epoch", fresh, req("a", acquire, 1), 0, ErrFutureEpoch, OutcomeDenied, "", 0, false},
		{"wrong pair", fresh, &pb.LeaseRequest{PairId: "q", NodeId: "a", Op: acquire, RequestId: "r"}, 0, ErrInvalidRequest, OutcomeDenied, "", 0, false},
		{"no op", fresh, req("a", pb.LeaseOp_LEASE_OP_UNSPECIFIED, 0), 0, ErrInvalidRequest, OutcomeDenied, "", 0, false},
		{"undeclared pair", State{PairID: "p"}, req("a", acquire, 0), 0, ErrNoPair, OutcomeDenied, "", 0, false},

		{"renew before expiry", held(cfg), req("a", renewOp, 3), 2 * time.Second, nil, OutcomeRenewed, "a", 3, false},
		{"renew at expiry", held(cfg), req("a", renewOp, 3), ttl, ErrExpired, OutcomeDenied, "a", 3, false},
		{"renew with a stale epoch", held(cfg), req("a", renewOp, 2), time.Second, ErrStaleEpoch, OutcomeDenied, "a", 3, false},
		{"renew by the standby", held(cfg), req("b", renewOp, 3), time.Second, ErrNotHolder, OutcomeDenied, "a", 3, false},
		{"holder re-acquires after expiry, nobody took it", held(cfg), req("a", acquire, 3), ttl + time.Hour, nil, OutcomeExtended, "a", 3, false},
		{"holder re-acquires with no epoch (restart)", held(cfg), req("a", acquire, 0), time.Second, nil, OutcomeExtended, "a", 3, false},

		{"promote while the lease is valid", held(cfg), req("b", promote, 3), 2 * time.Second, ErrHeld, OutcomeDenied, "a", 3, false},
		{"promote inside the margin", held(cfg), req("b", promote, 3), ttl + margin - time.Millisecond, ErrHeld, OutcomeDenied, "a", 3, false},
		{"promote after expiry+margin, holder silent", held(cfg), req("b", promote, 3), ttl + margin, nil, OutcomePromoted, "b", 4, true},
		{"acquire after expiry+margin, holder silent", held(cfg), req("b", acquire, 3), ttl + margin, nil, OutcomeAcquired, "b", 4, true},

		{"transfer to the standby", held(cfg), func() *pb.LeaseRequest { r := req("a", transferO, 3); r.TransferTo = "b"; return r }(), time.Second, nil, OutcomeTransferred, "b", 4, false},
		{"transfer to itself", held(cfg), func() *pb.LeaseRequest { r := req("a", transferO, 3); r.TransferTo = "a"; return r }(), time.Second, ErrBadTransfer, OutcomeDenied, "a", 3, false},
		{"transfer to a stranger", held(cfg), func() *pb.LeaseRequest { r := req("a", transferO, 3); r.TransferTo = "x"; return r }(), time.Second, ErrBadTransfer, OutcomeDenied, "a", 3, false},
		{"transfer after expiry", held(cfg), func() *pb.LeaseRequest { r := req("a", transferO, 3); r.TransferTo = "b"; return r }(), ttl, ErrExpired, OutcomeDenied, "a", 3, false},
		{"transfer with a stale epoch", held(cfg), func() *pb.LeaseRequest { r := req("a", transferO, 2); r.TransferTo = "b"; return r }(), time.Second, ErrStaleEpoch, OutcomeDenied, "a", 3, false},

		{"release", held(cfg), req("a", releaseO, 3), time.Second, nil, OutcomeReleased, "", 3, false},
		{"release by the standby", held(cfg), req("b", releaseO, 3), time.Second, ErrNotHolder, OutcomeDenied, "a", 3, false},
		{"acquire after release: epoch+1, never reused", released, req("b", acquire, 3), time.Second, nil, OutcomeAcquired, "b", 4, false},
		{"previous holder re-acquires after release: epoch+1", released, req("a", acquire, 3), time.Second, nil, OutcomeAcquired, "a", 4, false},
		{"renew after release", released, req("a", renewOp, 3), time.Second, ErrNotHolder, OutcomeDenied, "", 3, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := t0.Add(tc.at)
			next, r, err := Decide(cfg, tc.s, tc.req, now)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if r.Outcome != tc.wantOut || next.Holder != tc.wantHolder || next.Epoch != tc.wantEpoch || r.Failover != tc.failover {
				t.Fatalf("outcome %s holder %q epoch %d failover %v; want %s %q %d %v", r.Outcome, next.Holder, next.Epoch,
					r.Failover, tc.wantOut, tc.wantHolder, tc.wantEpoch, tc.failover)
			}
			if (r.Grant == nil) == (r.Denied == nil) {
				t.Fatalf("reply must carry exactly one of grant/denied: %+v", r)
			}
			if err != nil {
				if !next.DurableEqual(tc.s) {
					t.Fatalf("a refusal changed durable state: %+v → %+v", tc.s, next)
				}
				if r.Denied.GetReason() == "" || r.Denied.GetRequestId() != "r" || r.Denied.GetEpoch() != tc.s.Epoch {
					t.Fatalf("denial %+v lacks reason, request id or current epoch", r.Denied)
				}
				return
			}
			if next.Version != tc.s.Version+1 {
				t.Fatalf("version %d after a durable change from %d", next.Version, tc.s.Version)
			}
			g := r.Grant
			if g.GetHolder() != next.Holder || g.GetEpoch() != next.Epoch || g.GetRequestId() != "r" || g.GetTtlMs() != ttl.Milliseconds() {
				t.Fatalf("grant %+v does not describe %+v", g, next)
			}
			if next.Holder != "" && !next.ExpiresAt.Equal(now.Add(ttl)) && tc.wantOut != OutcomeExtended {
				t.Fatalf("expires %s, want now+ttl", next.ExpiresAt)
			}
			if next.LastHeartbeat[tc.req.GetNodeId()] != now {
				t.Fatal("the requester was not recorded as heard")
			}
		})
	}
}

func TestPromoteWaitsForHeartbeatsToLapse(t *testing.T) {
	cfg := DefaultConfig()
	s := held(cfg)
	// a's renewals fail but its gateway heartbeats still arrive: the cloud hears it, so b is refused.
	s.LastHeartbeat["a"] = t0.Add(cfg.TTL)
	at := t0.Add(cfg.TTL + cfg.Margin)
	if _, _, err := Decide(cfg, s, req("b", promote, 3), at); !errors.Is(err, ErrHolderAlive) {
		t.Fatalf("promote while a is heard: %v, want ErrHolderAlive", err)
	}
	at = s.LastHeartbeat["a"].Add(cfg.HeartbeatTimeout)
	next, r, err := Decide(cfg, s, req("b", promote, 3), at)
	if err != nil || next.Holder != "b" || next.Epoch != 4 || !r.Failover {
		t.Fatalf("promote after the heartbeat timeout: %v holder %q epoch %d", err, next.Holder, next.Epoch)
	}
}

func TestExtendNeverShortensTheLease(t *testing.T) {
	cfg := DefaultConfig()
	s := held(cfg)
	s.ExpiresAt = t0.Add(time.Hour)
	next, _, err := Decide(cfg, s, req("a", acquire, 3), t0)
	if err != nil || !next.ExpiresAt.Equal(s.ExpiresAt) || next.Version != s.Version {
		t.Fatalf("extend: %v expires %s version %d", err, next.ExpiresAt, next.Version)
	}
}

func TestDeniedHeartbeatStillCounts(t *testing.T) {
	cfg := DefaultConfig()
	s := held(cfg)
	at := t0.Add(time.Second)
	next, _, err := Decide(cfg, s, req("a", renewOp, 2), at)
	if !errors.Is(err, ErrStaleEpoch) || next.LastHeartbeat["a"] != at {
		t.Fatalf("err %v, heartbeat %v", err, next.LastHeartbeat["a"])
	}
}

func TestDecideMembers(t *testing.T) {
	cfg := DefaultConfig()
	s := held(cfg)
	if _, err := DecideMembers(s, [2]string{"a", "a"}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("duplicate members: %v", err)
	}
	next, err := DecideMembers(s, [2]string{"b", "c"})
	if err != nil || next.Holder != "a" || next.Version != s.Version+1 {
		t.Fatalf("members: %v %+v", err, next)
	}
	// a is no longer a member: refused, so it demotes; c can take over only after expiry + margin.
	if _, _, err := Decide(cfg, next, req("a", renewOp, 3), t0.Add(time.Second)); !errors.Is(err, ErrNotMember) {
		t.Fatalf("renew by a removed holder: %v", err)
	}
	if _, _, err := Decide(cfg, next, req("c", promote, 3), t0.Add(time.Second)); !errors.Is(err, ErrHeld) {
		t.Fatalf("promote by a new member before expiry: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultConfig()
	bad.RenewInterval = 5 * time.Second
	if err := bad.Validate(); err == nil {
		t.Fatal("renew interval + margin ≥ ttl accepted")
	}
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("zero config accepted")
	}
}
