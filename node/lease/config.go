package lease

import (
	"errors"
	"fmt"
	"time"
)

// Config configures a node's LeaseHolder. Timings pair with the cloud's server/lease.Config; see doc.go for
// the arithmetic.
type Config struct {
	// NodeID is this node. Required.
	NodeID string
	// PairID is the warm-standby pair. Required.
	PairID string
	// Standby: this node starts as the standby and never ACQUIREs; it asks PROMOTE when the rules say the
	// active is gone. A node with Standby false ACQUIREs while nobody holds the lease. Default false.
	Standby bool
	// RenewInterval is how often the holder renews. Default 2s (the cloud's TTL/3).
	RenewInterval time.Duration
	// Margin is the node's clock-drift safety margin: writes stop at sentAt + TTL − Margin on this node's
	// monotonic clock, sentAt being when the granting request was sent. Default 1s. Safety needs
	// Margin + the cloud's Margin ≥ 2·ρ·TTL + W (ρ: clock rate error, W: longest write landing time).
	Margin time.Duration
	// DefaultTTL is used when a grant carries no ttl_ms. Default 6s (the cloud's default).
	DefaultTTL time.Duration
	// RetryInterval spaces ACQUIRE and PROMOTE attempts while they are wanted. Default 500ms: it adds at most
	// that much to a failover.
	RetryInterval time.Duration
	// PromoteGrace: a standby challenges a peer it has never seen, or one that is alive with a cloud but
	// not writing (starting up, acquiring), only after no holder was visible for this long. A peer declared
	// dead, or alive but advertising it lost its cloud, is challenged at once. Default 5s.
	PromoteGrace time.Duration
	// RequestTimeout: a request unanswered this long is given up (and may be sent again). Default 2s.
	RequestTimeout time.Duration
	// TickInterval is how often the actor re-evaluates (fencing events, requests, gossip metadata).
	// Default 100ms. Writes themselves are fenced exactly (Handle.MayWrite reads the deadline), not per tick.
	TickInterval time.Duration
	// Drain is how long a node that stops writing (transfer, release, end of a local hold) waits for writes
	// already started to land before it tells anyone (the cloud, or the peer through gossip). Default 1s;
	// writers must bound each write's I/O with the permit's Until deadline.
	Drain time.Duration
	// LocalHold lets the holder keep writing after its lease lapsed while the WAN is down, as long as it sees
	// the peer alive in gossip and the peer reports that it has no cloud either (so it cannot be promoted).
	// Default true (the design: "the active keeps control while it sees the standby and is alive").
	LocalHold bool
	// AllowLocalPromotion lets the standby take control WITHOUT the cloud when the WAN is down and gossip
	// declared the active dead. Default false. Risk: gossip cannot tell a dead active from one cut off from
	// the standby on the LAN; if the active is alive, both write to the miners (split brain) until the WAN
	// returns. Enable only where the LAN between the pair is more reliable than the miners' tolerance for
	// conflicting commands.
	AllowLocalPromotion bool
	// UnsafeTestNoSelfFence disables self-fencing: the holder keeps writing after FenceAt, as long as it
	// believes it holds the lease. TEST-ONLY, never set it in a deployment: it exists so the chaos
	// simulations can prove their single-writer oracle catches a node that does not fence itself (a
	// deliberately broken build). Default false.
	UnsafeTestNoSelfFence bool
}

// DefaultConfig returns the defaults documented on Config (NodeID and PairID are left empty).
func DefaultConfig() Config {
	return Config{
		RenewInterval:  2 * time.Second,
		Margin:         time.Second,
		DefaultTTL:     6 * time.Second,
		RetryInterval:  500 * time.Millisecond,
		PromoteGrace:   5 * time.Second,
		RequestTimeout: 2 * time.Second,
		TickInterval:   100 * time.Millisecond,
		Drain:          time.Second,
		LocalHold:      true,
	}
}

// Validate reports a configuration an operator must fix.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf("lease holder: "+format, a...)) }
	if c.NodeID == "" {
		add("node id is empty")
	}
	if c.PairID == "" {
		add("pair id is empty")
	}
	for name, d := range map[string]time.Duration{"renew interval": c.RenewInterval, "default ttl": c.DefaultTTL,
		"retry interval": c.RetryInterval, "request timeout": c.RequestTimeout, "tick interval": c.TickInterval} {
		if d <= 0 {
			add("%s %s must be positive", name, d)
		}
	}
	if c.Margin < 0 || c.Drain < 0 || c.PromoteGrace < 0 {
		add("margin %s, drain %s and promote grace %s must not be negative", c.Margin, c.Drain, c.PromoteGrace)
	}
	if c.DefaultTTL > 0 && c.RenewInterval+c.Margin >= c.DefaultTTL {
		add("renew interval %s + margin %s must stay below the ttl %s, or the holder fences itself between renewals",
			c.RenewInterval, c.Margin, c.DefaultTTL)
	}
	return errors.Join(errs...)
}
