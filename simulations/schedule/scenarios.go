package schedule

import (
	"fmt"
	"sort"
	"time"
)

// Scenario is a named kind of trial: which faults, aimed how.
type Scenario struct {
	Name        string
	Description string
	Weights     map[Kind]int
	// ActiveShare and NoGraceful override Config's when set (ActiveShare > 0).
	ActiveShare float64
	NoGraceful  bool
	// GracefulOnly makes every kill graceful.
	GracefulOnly bool
	// MinFault, when above Config's, makes every fault last at least this long (a partition that outlasts
	// the lease).
	MinFault time.Duration
}

// Apply returns c with the scenario's weights and aiming.
func (s Scenario) Apply(c Config) Config {
	c.Weights = make(map[Kind]int, len(s.Weights))
	for k, w := range s.Weights {
		c.Weights[k] = w
	}
	if s.ActiveShare > 0 {
		c.ActiveShare = s.ActiveShare
	}
	if s.MinFault > 0 {
		c = c.withDefaults()
		c.MinFault = max(c.MinFault, s.MinFault)
		c.MaxFault = max(c.MaxFault, c.MinFault)
	}
	switch {
	case s.NoGraceful:
		c.NoGraceful, c.GracefulShare = true, 0
	case s.GracefulOnly:
		c.NoGraceful, c.GracefulShare = false, 1
	}
	return c
}

var scenarios = []Scenario{
	{Name: "kill-active", Description: "abrupt kill of the lease holder, restarted later: the standby must take over",
		Weights: map[Kind]int{KillNode: 1}, ActiveShare: 1, NoGraceful: true},
	{Name: "restart-graceful", Description: "clean stop and restart of either node of a pair (upgrade path)",
		Weights: map[Kind]int{KillNode: 1}, GracefulOnly: true},
	{Name: "kill-cloud", Description: "the cloud stops (gracefully or not) and comes back: local-degraded mode, backfill",
		Weights: map[Kind]int{KillCloud: 1}},
	{Name: "wan-active", Description: "the holder loses the cloud but keeps the LAN: it must self-fence before the standby writes",
		Weights: map[Kind]int{WANNode: 1}, ActiveShare: 1},
	{Name: "wan-site", Description: "a whole site loses the cloud: the active keeps control, nobody promotes",
		Weights: map[Kind]int{WANSite: 1}},
	{Name: "lan-pair", Description: "the pair loses its LAN link: no promotion while the cloud hears the active",
		Weights: map[Kind]int{LANPair: 1}},
	{Name: "asymmetric", Description: "one direction between a node and the cloud is lost",
		Weights: map[Kind]int{Asymmetric: 1}},
	{Name: "gateway-chaos", Description: "delay, loss, duplication and reordering on the gateway streams",
		Weights: map[Kind]int{GatewayDelay: 1, GatewayLoss: 1, GatewayDup: 1, GatewayReorder: 1}},
	{Name: "clock-skew", Description: "one node's clock steps and drifts",
		Weights: map[Kind]int{ClockSkew: 1}},
	{Name: "disk-full", Description: "a node's disk fills: spool and store writes fail",
		Weights: map[Kind]int{DiskFull: 1}},
	{Name: "miner-hang", Description: "a miner carries out writes and never answers",
		Weights: map[Kind]int{MinerHang: 1}},
	{Name: "stale-active", Description: "the holder loses the cloud long enough for the standby to be promoted, then returns with its old epoch: refused, demoted, never writes",
		Weights: map[Kind]int{WANNode: 1}, ActiveShare: 1, MinFault: 12 * time.Second},
	{Name: "graceful-transfer", Description: "the operator hands the lease to the standby under a steady stream of commands: none lost, none duplicated, no overlap",
		Weights: map[Kind]int{TransferLease: 1}},
	{Name: "mixed", Description: "every fault kind, kills and partitions weighted up",
		Weights: map[Kind]int{KillNode: 3, KillCloud: 1, WANNode: 3, WANSite: 2, LANPair: 2, Asymmetric: 2,
			GatewayDelay: 1, GatewayLoss: 1, GatewayDup: 1, GatewayReorder: 1, ClockSkew: 1, DiskFull: 1, MinerHang: 1}},
}

// Scenarios returns every scenario, by name.
func Scenarios() []Scenario {
	out := make([]Scenario, len(scenarios))
	copy(out, scenarios)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the scenario called name.
func Lookup(name string) (Scenario, error) {
	for _, s := range scenarios {
		if s.Name == name {
			return s, nil
		}
	}
	var names []string
	for _, s := range Scenarios() {
		names = append(names, s.Name)
	}
	return Scenario{}, fmt.Errorf("%w %q (have %v)", ErrUnknownScenario, name, names)
}
