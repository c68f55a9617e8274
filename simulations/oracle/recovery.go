package oracle

import (
	"fmt"
	"time"
)

// Recovery kinds (invariant 5, single nodes and the cloud).
const (
	// KindNoRecovery: after a fault healed, a node never got its cloud link back.
	KindNoRecovery Kind = "no-recovery"
	// KindSlowRecovery: it got it back later than the target.
	KindSlowRecovery Kind = "slow-recovery"
)

// Recovery is a fault that broke a node's cloud link (a kill, a WAN partition, the cloud's restart) and
// when the link came back.
type Recovery struct {
	NodeID string
	// Fault describes the fault for the report.
	Fault    string
	HealedAt time.Time
	// Up: the link came back at UpAt (HealedAt itself when it never went down).
	Up   bool
	UpAt time.Time
}

// Time is HealedAt to UpAt; 0 when the link never came back.
func (r Recovery) Time() time.Duration {
	if !r.Up {
		return 0
	}
	return max(r.UpAt.Sub(r.HealedAt), 0)
}

// RecoveryWithin checks that every node whose link a fault broke had it back within target of the heal.
func RecoveryWithin(rs []Recovery, target time.Duration) Violations {
	var out Violations
	for _, r := range rs {
		v := Violation{Invariant: InvRecovery, Nodes: []string{r.NodeID}, Times: []time.Time{r.HealedAt}}
		switch {
		case !r.Up:
			v.Kind = KindNoRecovery
			v.Detail = fmt.Sprintf("%s healed at %s; node %s never got its cloud link back", r.Fault, stamp(r.HealedAt), r.NodeID)
		case r.Time() > target:
			v.Kind = KindSlowRecovery
			v.Times = append(v.Times, r.UpAt)
			v.Detail = fmt.Sprintf("%s healed at %s; node %s link back after %s (target %s)", r.Fault, stamp(r.HealedAt), r.NodeID, r.Time(), target)
		default:
			continue
		}
		out = append(out, v)
	}
	return out
}
