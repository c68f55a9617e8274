package history

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Fleet is the group every miner belongs to; FleetTotals reads it. SetGroups cannot register it.
const Fleet = ""

// MaxIDLen bounds miner and group ids, which become key parts (the same bound as server/store).
const MaxIDLen = 256

// Resolution is what a series is read from.
type Resolution uint8

const (
	// Raw is every sample at full resolution (per miner only; kept RawRetention).
	Raw Resolution = iota + 1
	// Minute is the 1-minute rollup (per miner and per group; kept MinuteRetention).
	Minute
	// Hour is the 1-hour rollup (per miner and per group; kept HourRetention).
	Hour
)

func (r Resolution) String() string {
	switch r {
	case Raw:
		return "raw"
	case Minute:
		return "1m"
	case Hour:
		return "1h"
	}
	return fmt.Sprintf("Resolution(%d)", uint8(r))
}

// Duration is the bucket length: 0 for Raw, 1m, 1h.
func (r Resolution) Duration() time.Duration {
	switch r {
	case Minute:
		return time.Minute
	case Hour:
		return time.Hour
	}
	return 0
}

// Fn combines the miners of an Aggregate.
type Fn uint8

const (
	// Sum adds the miners' step means (fleet hashrate, site power).
	Sum Fn = iota + 1
	// Avg is Sum divided by the miners with data in the step.
	Avg
	// Max is the largest miner's step mean.
	Max
)

func (f Fn) String() string {
	switch f {
	case Sum:
		return "sum"
	case Avg:
		return "avg"
	case Max:
		return "max"
	}
	return fmt.Sprintf("Fn(%d)", uint8(f))
}

// ParseFn reads "sum", "avg" or "max" (any case).
func ParseFn(s string) (Fn, error) {
	switch strings.ToLower(s) {
	case "sum":
		return Sum, nil
	case "avg":
		return Avg, nil
	case "max":
		return Max, nil
	}
	return 0, fmt.Errorf("%w: %q (want sum, avg or max)", ErrInvalidFn, s)
}

// Point is one step of one miner's series: the mean of its readings in [AtUnixMs, AtUnixMs+Step). Means
// are time-weighted at the resolution read: over samples for Raw, over minutes for Minute and Hour (a minute
// of 12 samples and a minute of 1 downsampled sample weigh the same).
type Point struct {
	AtUnixMs int64
	// LastUnixMs is when the newest sample in the step was observed.
	LastUnixMs int64
	// Samples is the number of raw samples the step summarizes.
	Samples        int
	HashrateTHs    float64
	HashrateMinTHs float64
	HashrateMaxTHs float64
	PowerW         float64
	// EfficiencyJTH is PowerW / HashrateTHs; 0 without hashrate.
	EfficiencyJTH float64
	// TempMaxC is the hottest board or chip reading; 0 when the miner reported none.
	TempMaxC float64
	// FanMinRPM is the slowest fan; -1 when the miner reported no fans.
	FanMinRPM int
	// State is the miner's state in its newest sample of the step.
	State pb.MinerState
}

// Series is one miner's history over a range.
type Series struct {
	MinerID    string
	Resolution Resolution
	// Step is the step used: the one asked for, raised to a multiple of the resolution when the range reaches
	// further back than a finer resolution keeps.
	Step time.Duration
	// From and To are the range covered: From aligned down to Step (and not before the resolution's
	// retention), To as asked (exclusive).
	From, To time.Time
	// Points holds the steps with data, oldest first.
	Points []Point
}

// TotalPoint is one step of a group's (or an Aggregate's) totals.
type TotalPoint struct {
	AtUnixMs int64
	// Miners is how many miners reported in the step (the most in any bucket of it).
	Miners int
	// Stale (Live only) counts members whose newest sample is older than Config.StaleAfter, or that never
	// reported; they are in neither Miners nor States.
	Stale int
	// HashrateTHs and PowerW are sums over the miners (or the Aggregate's Fn), averaged over the step's time.
	HashrateTHs float64
	PowerW      float64
	// EfficiencyJTH is PowerW / HashrateTHs (for Aggregate with Max: the worst miner's); 0 without hashrate.
	EfficiencyJTH float64
	// TempMaxC is the hottest reading of any miner.
	TempMaxC float64
	// States counts miners by their newest state in the step's last bucket (Live: by their newest sample).
	States map[pb.MinerState]int
}

// Totals is a group's (or an Aggregate's) totals over a range.
type Totals struct {
	// Group is the group read ("" for the fleet and for Aggregate).
	Group      string
	Fn         Fn
	Resolution Resolution
	Step       time.Duration
	From, To   time.Time
	Points     []TotalPoint
}

// AppendResult counts what an Append did with each sample; the counts add up to the samples given.
type AppendResult struct {
	// Written: stored at full resolution and added to the rollups.
	Written int
	// Expired: older than RawRetention, so added to the rollups only (a node replaying an old spool).
	Expired int
	// Late: stored at full resolution, but its minute had already been closed by MinuteCloseGrace, so it is
	// not in the rollups.
	Late int
	// Duplicate: at or before the miner's newest sample (a resend, or out of order): dropped.
	Duplicate int
	// Invalid: no usable miner id, no observed time, or observed further ahead than MaxFutureSkew: dropped.
	Invalid int
}
