package gate

import (
	"fmt"
	"math"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
)

// Site-control commands are node-control commands about the whole site rather than named miners: a signed
// site policy (node/automation: rules, schedules, trusted pools) and a curtailment event's start or stop
// (node/curtail). Like discovery they consume the seq and skip the ownership check (curtailment chooses its
// own miners among those the node owns); their one result is reported under SitePolicyResultID or
// CurtailResultID.

// Limits on site-control payloads.
const (
	// MaxSitePolicyBytes bounds a signed policy's body.
	MaxSitePolicyBytes = 1 << 20
	// MaxCurtailMiners bounds the miners a curtailment event names.
	MaxCurtailMiners = 100_000
)

// SitePolicyResultID is the id a site policy command's single result is reported under.
const SitePolicyResultID = "site-policy"

// CurtailResultID is the id a curtailment command's single result is reported under: "curtail/<event id>".
func CurtailResultID(eventID string) string { return "curtail/" + eventID }

// PoolGuard answers whether a pool change is allowed by the site's policy (*automation.PoolGuard).
type PoolGuard interface {
	AllowsPools(pools []*pb.Pool) (bool, string)
}

// poolsAllowed checks an UPDATE_POOLS spec against the guard; other actions pass.
func poolsAllowed(g PoolGuard, spec *pb.CommandSpec) (bool, string) {
	if g == nil || spec.GetAction() != pb.Action_ACTION_UPDATE_POOLS {
		return true, ""
	}
	return g.AllowsPools(spec.GetPools())
}

func isSiteControl(p *pb.CommandPayload) bool {
	return p.GetSitePolicy() != nil || p.GetCurtail() != nil
}

// siteControlID checks a site-control payload's shape and returns the id its result is reported under.
func siteControlID(p *pb.CommandPayload) (string, error) {
	if sp := p.GetSitePolicy(); sp != nil {
		switch {
		case len(sp.GetBody()) == 0 || len(sp.GetSignature()) == 0 || sp.GetKeyId() == "":
			return SitePolicyResultID, fmt.Errorf("site policy: body, key id and signature are required")
		case len(sp.GetBody()) > MaxSitePolicyBytes:
			return SitePolicyResultID, fmt.Errorf("site policy: body of %d bytes (at most %d)", len(sp.GetBody()), MaxSitePolicyBytes)
		}
		return SitePolicyResultID, nil
	}
	c := p.GetCurtail()
	if err := sealing.ValidateID("curtailment event id", c.GetEventId()); err != nil {
		return "curtail/", fmt.Errorf("curtail: %w", err)
	}
	id := CurtailResultID(c.GetEventId())
	if c.GetStop() {
		return id, nil
	}
	kw := c.GetTargetKw()
	switch {
	case math.IsNaN(kw) || math.IsInf(kw, 0) || kw < 0:
		return id, fmt.Errorf("curtail %s: target %v kW must be a number ≥ 0", c.GetEventId(), kw)
	case c.GetFull() && kw > 0:
		return id, fmt.Errorf("curtail %s: give a target in kW or full, not both", c.GetEventId())
	case !c.GetFull() && kw == 0:
		return id, fmt.Errorf("curtail %s: no target: give target_kw above 0 or full", c.GetEventId())
	case len(c.GetMinerIds()) > MaxCurtailMiners:
		return id, fmt.Errorf("curtail %s: %d miners (at most %d)", c.GetEventId(), len(c.GetMinerIds()), MaxCurtailMiners)
	case c.GetEndAtUnixMs() < 0:
		return id, fmt.Errorf("curtail %s: negative end time", c.GetEventId())
	}
	for _, m := range c.GetMinerIds() {
		if m == "" {
			return id, fmt.Errorf("curtail %s: empty miner id", c.GetEventId())
		}
	}
	return id, nil
}

// controlTarget is the actor a node-control payload goes to (nil: not supported on this node).
func (g *Gate) controlTarget(p *pb.CommandPayload) *actor.PID {
	switch {
	case isSiteControl(p):
		return g.env.SiteControl
	case p.GetDiscovery() != nil || p.GetPairing() != nil:
		return g.env.Control
	}
	return nil
}
