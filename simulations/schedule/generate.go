package schedule

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"text/tabwriter"
	"time"
)

// Schedule is a trial's faults in start order.
type Schedule struct {
	Seed     int64         `json:"seed"`
	Duration time.Duration `json:"duration"`
	Faults   []Fault       `json:"faults"`
}

// Generate makes the schedule of c. The draws come from a PCG generator seeded by c.Seed alone, in a fixed
// order, so the schedule depends on nothing but c.
func Generate(c Config) (Schedule, error) {
	if err := c.Validate(); err != nil {
		return Schedule{}, err
	}
	c = c.withDefaults()
	g := &gen{c: c, rng: rand.New(rand.NewPCG(uint64(c.Seed), 0x7363686564756c65))}
	s := Schedule{Seed: c.Seed, Duration: c.Duration}
	end := c.Duration - c.Settle
	next := c.Warmup
	for {
		f := g.fault()
		start := next
		for {
			blockers := blocking(s.Faults, f, start, c.MaxConcurrent)
			if len(blockers) == 0 {
				break
			}
			earliest := blockers[0].End()
			for _, b := range blockers[1:] {
				earliest = min(earliest, b.End())
			}
			start = earliest + g.duration(c.MinGap, c.MaxGap)
		}
		if start+c.MinFault > end {
			break
		}
		f.At = start
		f.Duration = min(f.Duration, end-start)
		f.Index = len(s.Faults) + 1
		s.Faults = append(s.Faults, f)
		next = start + g.duration(c.MinGap, c.MaxGap)
	}
	return s, nil
}

// blocking returns the faults active at start that keep f from starting then: any conflicting one, or
// all of them when MaxConcurrent are active. Starts only increase, so every fault that could overlap f is
// active at its start.
func blocking(fs []Fault, f Fault, start time.Duration, maxConcurrent int) []Fault {
	var active, conflicting []Fault
	for _, g := range fs {
		if g.At <= start && start < g.End() {
			active = append(active, g)
			if g.conflicts(f) {
				conflicting = append(conflicting, g)
			}
		}
	}
	if len(active) >= maxConcurrent {
		return active
	}
	return conflicting
}

type gen struct {
	c   Config
	rng *rand.Rand
}

// duration draws from [lo, hi], rounded to the millisecond so the printed schedule is exact.
func (g *gen) duration(lo, hi time.Duration) time.Duration {
	d := lo
	if hi > lo {
		d += time.Duration(g.rng.Int64N(int64(hi-lo) + 1))
	}
	// Round to whole milliseconds for readable schedules, but never outside [lo, hi]:
	// rounding 424.75ms up would break a bound such as jitter ≤ delay/4.
	return max(min(d.Round(time.Millisecond), max(hi, lo)), lo)
}

func (g *gen) float(lo, hi float64) float64 { return lo + g.rng.Float64()*(hi-lo) }

// kind draws a kind by weight, walking Kinds() in order.
func (g *gen) kind() Kind {
	total := 0
	for _, k := range Kinds() {
		total += max(g.c.Weights[k], 0)
	}
	n := g.rng.IntN(total)
	for _, k := range Kinds() {
		w := max(g.c.Weights[k], 0)
		if n < w {
			return k
		}
		n -= w
	}
	panic("unreachable: weights sum checked by Validate")
}

// fault draws one fault's kind, duration, target and parameters (At is set by Generate).
func (g *gen) fault() Fault {
	c := g.c
	f := Fault{Kind: g.kind(), Duration: g.duration(c.MinFault, c.MaxFault)}
	sites := c.Topology.Sites
	switch {
	case f.Kind == KillCloud:
	case f.Kind == LANPair || f.Kind == TransferLease:
		var pairs []Site
		for _, s := range sites {
			if s.Pair() {
				pairs = append(pairs, s)
			}
		}
		f.Target.Site = pairs[g.rng.IntN(len(pairs))].Name
	case f.Kind == MinerHang:
		var withMiners []Site
		for _, s := range sites {
			if len(s.Miners) > 0 {
				withMiners = append(withMiners, s)
			}
		}
		s := withMiners[g.rng.IntN(len(withMiners))]
		f.Target = Target{Site: s.Name, Miner: s.Miners[g.rng.IntN(len(s.Miners))]}
	case f.Kind == WANSite:
		f.Target.Site = sites[g.rng.IntN(len(sites))].Name
	case f.Kind.targetsNode():
		s := sites[g.rng.IntN(len(sites))]
		f.Target.Site = s.Name
		if s.Pair() {
			f.Target.Role = RoleStandby
			if g.rng.Float64() < c.ActiveShare {
				f.Target.Role = RoleActive
			}
		} else {
			f.Target.Node = s.Nodes[0]
		}
	}
	switch f.Kind {
	case KillNode, KillCloud:
		f.Graceful = g.rng.Float64() < c.GracefulShare
	case Asymmetric:
		f.Direction = "up"
		if g.rng.IntN(2) == 1 {
			f.Direction = "down"
		}
	case GatewayDelay:
		f.Delay = g.duration(c.MinDelay, c.MaxDelay)
		f.Jitter = g.duration(0, f.Delay/4)
	case GatewayLoss, GatewayDup, GatewayReorder:
		f.Probability = float64(int(g.float(c.MinProbability, c.MaxProbability)*1000)) / 1000
	case ClockSkew:
		f.Offset = g.duration(-c.MaxOffset, c.MaxOffset)
		f.DriftPPM = float64(int(g.float(-c.MaxDriftPPM, c.MaxDriftPPM)))
	}
	return f
}

// Active returns the faults active at trial offset at.
func (s Schedule) Active(at time.Duration) []Fault {
	var out []Fault
	for _, f := range s.Faults {
		if f.At <= at && at < f.End() {
			out = append(out, f)
		}
	}
	return out
}

// Counts returns how many faults of each kind the schedule has.
func (s Schedule) Counts() map[Kind]int {
	m := map[Kind]int{}
	for _, f := range s.Faults {
		m[f.Kind]++
	}
	return m
}

// Digest is a short hash of the schedule: two runs with equal digests injected the same faults.
func (s Schedule) Digest() string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("schedule: marshal: %v", err)) // plain data: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// String is the printable schedule: a header line and one row per fault.
func (s Schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "schedule seed=%d duration=%s faults=%d digest=%s\n", s.Seed, s.Duration, len(s.Faults), s.Digest())
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tstart\tend\tkind\ttarget\tparams")
	for _, f := range s.Faults {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", f.Index, offset(f.At), offset(f.End()), f.Kind, f.Target, f.Params())
	}
	_ = tw.Flush()
	return b.String()
}

// TrialSeed derives trial n's seed (from 0) of scenario from a run's seed, so `--seed S --trials N` runs
// N distinct, reproducible schedules per scenario and a report can print the one seed that replays a
// failing trial.
func TrialSeed(seed int64, scenario string, trial int) int64 {
	h := fnv.New64a()
	h.Write([]byte(scenario))
	x := uint64(seed) ^ h.Sum64() ^ uint64(trial)*0x9e3779b97f4a7c15
	// splitmix64 finaliser: nearby inputs give unrelated seeds.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return int64(x)
}
